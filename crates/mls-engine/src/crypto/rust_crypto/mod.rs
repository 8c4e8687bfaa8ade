//! The default [`CryptoProvider`]: RustCrypto primitives and the `hpke` crate.
//!
//! * `primitives`: hash, KDF, MAC, AEAD and signatures, chosen by [`SuiteParams`].
//! * `dhkem`: HPKE with a DHKEM (suites 1, 2, 3, 5, 7) on `hpke` 0.13.
//! * `xwing`: HPKE with the X-Wing KEM (the post-quantum suite) on `hpke` 0.14.
//! * `rng`: the randomness sources handed to `hpke`.

mod dhkem;
mod primitives;
mod rng;
mod xwing;

#[cfg(test)]
mod tests;

use core::marker::PhantomData;

use rand_core::{OsRng, TryRngCore as _};

use super::{
    CipherSuite, CryptoError, CryptoProvider, HpkeKeyPair, HpkePrivateKey, Secret,
    SignatureKeyPair, SignaturePrivateKey, SuiteParams, SuiteProvider,
};
use dhkem::Dhkem;

/// The default provider: cipher suites 1, 2, 3, 5, 7 and the X-Wing suite 0x004F on
/// RustCrypto crates, HPKE through the `hpke` crate, randomness from the operating system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RustCrypto;

impl RustCrypto {
    /// A new provider.
    pub fn new() -> Self {
        Self
    }
}

type Suite1 = Dhkem<hpke::kem::X25519HkdfSha256, hpke::aead::AesGcm128, hpke::kdf::HkdfSha256>;
type Suite2 = Dhkem<hpke::kem::DhP256HkdfSha256, hpke::aead::AesGcm128, hpke::kdf::HkdfSha256>;
type Suite3 =
    Dhkem<hpke::kem::X25519HkdfSha256, hpke::aead::ChaCha20Poly1305, hpke::kdf::HkdfSha256>;
type Suite5 = Dhkem<hpke::kem::DhP521HkdfSha512, hpke::aead::AesGcm256, hpke::kdf::HkdfSha512>;
type Suite7 = Dhkem<hpke::kem::DhP384HkdfSha384, hpke::aead::AesGcm256, hpke::kdf::HkdfSha384>;

static SUITE_1: RustSuite<Suite1> = RustSuite::new(0x0001);
static SUITE_2: RustSuite<Suite2> = RustSuite::new(0x0002);
static SUITE_3: RustSuite<Suite3> = RustSuite::new(0x0003);
static SUITE_5: RustSuite<Suite5> = RustSuite::new(0x0005);
static SUITE_7: RustSuite<Suite7> = RustSuite::new(0x0007);
static SUITE_XWING: RustSuite<xwing::XWingHpke> = RustSuite::new(0x004F);

impl CryptoProvider for RustCrypto {
    fn suite(&self, suite: CipherSuite) -> Result<&dyn SuiteProvider, CryptoError> {
        match suite.0 {
            0x0001 => Ok(&SUITE_1),
            0x0002 => Ok(&SUITE_2),
            0x0003 => Ok(&SUITE_3),
            0x0005 => Ok(&SUITE_5),
            0x0007 => Ok(&SUITE_7),
            0x004F => Ok(&SUITE_XWING),
            _ => Err(CryptoError::UnsupportedCipherSuite(suite)),
        }
    }
}

/// HPKE base mode (RFC 9180 §5.1) of one cipher suite: its KEM with the suite's KDF and AEAD.
/// Keys are in the KEM's `SerializePublicKey` / `SerializePrivateKey` forms.
trait Hpke: 'static {
    /// How many random bytes one encapsulation draws (`Nsk` for a DHKEM, whose `Encap` runs
    /// `DeriveKeyPair` on them; 64 for X-Wing's `EncapsulateDerand`).
    fn encap_randomness_len() -> usize;

    /// `SealBase(pk, info, aad, pt)`: `(enc, ct)`.
    fn seal(
        public_key: &[u8],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), CryptoError>;

    /// `OpenBase(enc, sk, info, aad, ct)`.
    fn open(
        private_key: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;

    /// `SetupBaseS(pk, info)` then `export(exporter_context, len)`. The encapsulation draws
    /// from the operating system, or exactly `randomness` if given.
    fn sender_export(
        public_key: &[u8],
        randomness: Option<&[u8]>,
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<(Vec<u8>, Secret), CryptoError>;

    /// `SetupBaseR(enc, sk, info)` then `export(exporter_context, len)`.
    fn receiver_export(
        private_key: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<Secret, CryptoError>;

    /// `KEM.DeriveKeyPair(ikm)`.
    fn derive_key_pair(ikm: &[u8]) -> Result<HpkeKeyPair, CryptoError>;

    /// The public key of a private key.
    fn public_key(private_key: &HpkePrivateKey) -> Result<Vec<u8>, CryptoError>;
}

/// The `info` of the KDF that stretches a derived encapsulation's seed when its length is not
/// the number of bytes the KEM's encapsulation draws (P-521: `Nh` = 64 < `Nsk` = 66; X-Wing:
/// 32 < 64). See docs/decisions.md, "Cipher suites 4-7 and post-quantum".
const DERIVED_ENCAP_INFO: &[u8] = b"vmls derived encapsulation randomness";

/// One cipher suite: its HPKE `H`; everything else is chosen by the suite's [`SuiteParams`].
struct RustSuite<H> {
    id: u16,
    _hpke: PhantomData<fn() -> H>,
}

impl<H> RustSuite<H> {
    const fn new(id: u16) -> Self {
        Self {
            id,
            _hpke: PhantomData,
        }
    }
}

impl<H: Hpke> SuiteProvider for RustSuite<H> {
    fn params(&self) -> SuiteParams {
        CipherSuite(self.id)
            .params()
            .expect("RustSuite is only built for supported suites")
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        OsRng
            .try_fill_bytes(out)
            .map_err(|_| CryptoError::RandomnessUnavailable)
    }

    fn hash(&self, data: &[u8]) -> Vec<u8> {
        primitives::hash(self.params().kdf, data)
    }

    fn kdf_extract(&self, salt: &[u8], ikm: &[u8]) -> Secret {
        primitives::kdf_extract(self.params().kdf, salt, ikm)
    }

    fn kdf_expand(&self, prk: &[u8], info: &[u8], len: usize) -> Result<Secret, CryptoError> {
        primitives::kdf_expand(self.params().kdf, prk, info, len)
    }

    fn mac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        primitives::mac(self.params().kdf, key, data)
    }

    fn aead_seal(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        primitives::aead_seal(&self.params(), key, nonce, aad, plaintext)
    }

    fn aead_open(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        primitives::aead_open(&self.params(), key, nonce, aad, ciphertext)
    }

    fn hpke_seal(
        &self,
        public_key: &[u8],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        H::seal(public_key, info, aad, plaintext)
    }

    fn hpke_open(
        &self,
        private_key: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        H::open(private_key, kem_output, info, aad, ciphertext)
    }

    fn hpke_setup_sender_and_export(
        &self,
        public_key: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<(Vec<u8>, Secret), CryptoError> {
        H::sender_export(public_key, None, info, exporter_context, len)
    }

    fn hpke_setup_sender_and_export_derived(
        &self,
        public_key: &[u8],
        ikm_e: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<(Vec<u8>, Secret), CryptoError> {
        if ikm_e.is_empty() {
            return Err(CryptoError::InvalidLength {
                expected: H::encap_randomness_len(),
                actual: 0,
            });
        }
        let needed = H::encap_randomness_len();
        let randomness = if ikm_e.len() == needed {
            Secret::from(ikm_e)
        } else {
            let prk = self.kdf_extract(&[], ikm_e);
            self.kdf_expand(prk.as_bytes(), DERIVED_ENCAP_INFO, needed)?
        };
        H::sender_export(
            public_key,
            Some(randomness.as_bytes()),
            info,
            exporter_context,
            len,
        )
    }

    fn hpke_setup_receiver_and_export(
        &self,
        private_key: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<Secret, CryptoError> {
        H::receiver_export(private_key, kem_output, info, exporter_context, len)
    }

    fn hpke_derive_key_pair(&self, ikm: &[u8]) -> Result<HpkeKeyPair, CryptoError> {
        H::derive_key_pair(ikm)
    }

    fn hpke_public_key(&self, private_key: &HpkePrivateKey) -> Result<Vec<u8>, CryptoError> {
        H::public_key(private_key)
    }

    fn signature_key_pair_from_seed(&self, seed: &[u8]) -> Result<SignatureKeyPair, CryptoError> {
        let private_key =
            primitives::signature_private_key_from_seed(self.params().signature, seed)?;
        let public_key = self.signature_public_key(&private_key)?;
        Ok(SignatureKeyPair {
            private_key,
            public_key,
        })
    }

    fn signature_public_key(
        &self,
        private_key: &SignaturePrivateKey,
    ) -> Result<Vec<u8>, CryptoError> {
        primitives::signature_public_key(self.params().signature, private_key)
    }

    fn sign(
        &self,
        private_key: &SignaturePrivateKey,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        primitives::sign(self.params().signature, private_key, message)
    }

    fn verify(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        primitives::verify(self.params().signature, public_key, message, signature)
    }
}
