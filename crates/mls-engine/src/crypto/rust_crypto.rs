//! The default [`CryptoProvider`]: RustCrypto primitives and the `hpke` crate.

use core::marker::PhantomData;

use hpke::{Deserializable as _, Kem as KemTrait, Serializable as _};
use rand_core::{OsRng, TryRngCore as _, UnwrapErr};
use sha2::{Digest as _, Sha256};

use super::{
    AeadAlgorithm, CipherSuite, CryptoError, CryptoProvider, HpkeKeyPair, HpkePrivateKey, Secret,
    SignatureAlgorithm, SignatureKeyPair, SignaturePrivateKey, SuiteParams, SuiteProvider,
};

type HpkeKdf = hpke::kdf::HkdfSha256;

/// The default provider: cipher suites 1, 2 and 3 on RustCrypto crates, HPKE through the
/// `hpke` crate, randomness from the operating system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RustCrypto;

impl RustCrypto {
    /// A new provider.
    pub fn new() -> Self {
        Self
    }
}

static SUITE_1: RustSuite<hpke::kem::X25519HkdfSha256, hpke::aead::AesGcm128> = RustSuite::new(1);
static SUITE_2: RustSuite<hpke::kem::DhP256HkdfSha256, hpke::aead::AesGcm128> = RustSuite::new(2);
static SUITE_3: RustSuite<hpke::kem::X25519HkdfSha256, hpke::aead::ChaCha20Poly1305> =
    RustSuite::new(3);

impl CryptoProvider for RustCrypto {
    fn suite(&self, suite: CipherSuite) -> Result<&dyn SuiteProvider, CryptoError> {
        match suite.0 {
            1 => Ok(&SUITE_1),
            2 => Ok(&SUITE_2),
            3 => Ok(&SUITE_3),
            _ => Err(CryptoError::UnsupportedCipherSuite(suite)),
        }
    }
}

/// One cipher suite: the HPKE KEM `K` and AEAD `A` as `hpke` types; hash and KDF are SHA-256.
struct RustSuite<K, A> {
    id: u16,
    _algs: PhantomData<fn() -> (K, A)>,
}

impl<K, A> RustSuite<K, A> {
    const fn new(id: u16) -> Self {
        Self {
            id,
            _algs: PhantomData,
        }
    }
}

fn os_rng() -> UnwrapErr<OsRng> {
    UnwrapErr(OsRng)
}

/// A "random" generator that yields given bytes once: the ephemeral key seed of a derived
/// encapsulation. A draw beyond them yields zeros and is recorded, so the caller can refuse
/// the result instead of panicking.
struct GivenBytes<'a> {
    bytes: &'a [u8],
    taken: usize,
    overdrawn: bool,
}

impl<'a> GivenBytes<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            taken: 0,
            overdrawn: false,
        }
    }

    /// Whether exactly the given bytes, no more and no fewer, were drawn.
    fn exactly_used(&self) -> bool {
        !self.overdrawn && self.taken == self.bytes.len()
    }
}

impl rand_core::RngCore for GivenBytes<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let rest = self.bytes.get(self.taken..).unwrap_or_default();
        if dest.len() > rest.len() {
            self.overdrawn = true;
            dest.fill(0);
            return;
        }
        let (now, _) = rest.split_at(dest.len());
        dest.copy_from_slice(now);
        self.taken += dest.len();
    }
}

impl rand_core::CryptoRng for GivenBytes<'_> {}

fn hpke_public_key<K: KemTrait>(bytes: &[u8]) -> Result<K::PublicKey, CryptoError> {
    K::PublicKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidPublicKey)
}

fn hpke_private_key<K: KemTrait>(key: &HpkePrivateKey) -> Result<K::PrivateKey, CryptoError> {
    K::PrivateKey::from_bytes(key.as_bytes()).map_err(|_| CryptoError::InvalidPrivateKey)
}

fn hpke_encapped_key<K: KemTrait>(bytes: &[u8]) -> Result<K::EncappedKey, CryptoError> {
    K::EncappedKey::from_bytes(bytes).map_err(|_| CryptoError::DecryptionFailed)
}

fn check_len(expected: usize, actual: usize) -> Result<(), CryptoError> {
    if expected == actual {
        Ok(())
    } else {
        Err(CryptoError::InvalidLength { expected, actual })
    }
}

impl<K, A> SuiteProvider for RustSuite<K, A>
where
    K: KemTrait + Send + Sync,
    A: hpke::aead::Aead + Send + Sync,
{
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
        Sha256::digest(data).to_vec()
    }

    fn kdf_extract(&self, salt: &[u8], ikm: &[u8]) -> Secret {
        let (prk, _) = hkdf::Hkdf::<Sha256>::extract(Some(salt), ikm);
        Secret::new(prk.to_vec())
    }

    fn kdf_expand(&self, prk: &[u8], info: &[u8], len: usize) -> Result<Secret, CryptoError> {
        let hk = hkdf::Hkdf::<Sha256>::from_prk(prk).map_err(|_| CryptoError::InvalidLength {
            expected: self.params().hash_len(),
            actual: prk.len(),
        })?;
        let mut okm = vec![0u8; len];
        hk.expand(info, &mut okm)
            .map_err(|_| CryptoError::KdfOutputTooLong)?;
        Ok(Secret::new(okm))
    }

    fn mac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        use hmac::Mac as _;
        let mut mac =
            hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    fn aead_seal(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let params = self.params();
        check_len(params.aead_key_len(), key.len())?;
        check_len(params.aead_nonce_len(), nonce.len())?;
        aead_op(params.aead, key, nonce, aad, plaintext, true)
            .map_err(|_| CryptoError::EncryptionFailed)
    }

    fn aead_open(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let params = self.params();
        check_len(params.aead_key_len(), key.len())?;
        check_len(params.aead_nonce_len(), nonce.len())?;
        aead_op(params.aead, key, nonce, aad, ciphertext, false)
            .map_err(|_| CryptoError::DecryptionFailed)
    }

    fn hpke_seal(
        &self,
        public_key: &[u8],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        let pk = hpke_public_key::<K>(public_key)?;
        let (enc, ct) = hpke::single_shot_seal::<A, HpkeKdf, K, _>(
            &hpke::OpModeS::Base,
            &pk,
            info,
            plaintext,
            aad,
            &mut os_rng(),
        )
        .map_err(|_| CryptoError::EncryptionFailed)?;
        Ok((enc.to_bytes().to_vec(), ct))
    }

    fn hpke_open(
        &self,
        private_key: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let sk = hpke_private_key::<K>(private_key)?;
        let enc = hpke_encapped_key::<K>(kem_output)?;
        hpke::single_shot_open::<A, HpkeKdf, K>(
            &hpke::OpModeR::Base,
            &sk,
            &enc,
            info,
            ciphertext,
            aad,
        )
        .map_err(|_| CryptoError::DecryptionFailed)
    }

    fn hpke_setup_sender_and_export(
        &self,
        public_key: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<(Vec<u8>, Secret), CryptoError> {
        let pk = hpke_public_key::<K>(public_key)?;
        let (enc, ctx) =
            hpke::setup_sender::<A, HpkeKdf, K, _>(&hpke::OpModeS::Base, &pk, info, &mut os_rng())
                .map_err(|_| CryptoError::EncryptionFailed)?;
        let mut out = vec![0u8; len];
        ctx.export(exporter_context, &mut out)
            .map_err(|_| CryptoError::KdfOutputTooLong)?;
        Ok((enc.to_bytes().to_vec(), Secret::new(out)))
    }

    fn hpke_setup_sender_and_export_derived(
        &self,
        public_key: &[u8],
        ikm_e: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<(Vec<u8>, Secret), CryptoError> {
        let nsk = <K::PrivateKey as hpke::Serializable>::size();
        check_len(nsk, ikm_e.len())?;
        let pk = hpke_public_key::<K>(public_key)?;
        // `Encap` draws exactly `Nsk` bytes for its ephemeral key and runs `DeriveKeyPair` on
        // them; this generator hands out `ikm_e` once and reports any further draw.
        let mut rng = GivenBytes::new(ikm_e);
        let (enc, ctx) =
            hpke::setup_sender::<A, HpkeKdf, K, _>(&hpke::OpModeS::Base, &pk, info, &mut rng)
                .map_err(|_| CryptoError::EncryptionFailed)?;
        if !rng.exactly_used() {
            return Err(CryptoError::InvalidPrivateKey);
        }
        let mut out = vec![0u8; len];
        ctx.export(exporter_context, &mut out)
            .map_err(|_| CryptoError::KdfOutputTooLong)?;
        Ok((enc.to_bytes().to_vec(), Secret::new(out)))
    }

    fn hpke_setup_receiver_and_export(
        &self,
        private_key: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<Secret, CryptoError> {
        let sk = hpke_private_key::<K>(private_key)?;
        let enc = hpke_encapped_key::<K>(kem_output)?;
        let ctx = hpke::setup_receiver::<A, HpkeKdf, K>(&hpke::OpModeR::Base, &sk, &enc, info)
            .map_err(|_| CryptoError::DecryptionFailed)?;
        let mut out = vec![0u8; len];
        ctx.export(exporter_context, &mut out)
            .map_err(|_| CryptoError::KdfOutputTooLong)?;
        Ok(Secret::new(out))
    }

    fn hpke_derive_key_pair(&self, ikm: &[u8]) -> Result<HpkeKeyPair, CryptoError> {
        let (sk, pk) = K::derive_keypair(ikm);
        Ok(HpkeKeyPair {
            private_key: HpkePrivateKey::new(sk.to_bytes().to_vec()),
            public_key: pk.to_bytes().to_vec(),
        })
    }

    fn hpke_public_key(&self, private_key: &HpkePrivateKey) -> Result<Vec<u8>, CryptoError> {
        let sk = hpke_private_key::<K>(private_key)?;
        Ok(K::sk_to_pk(&sk).to_bytes().to_vec())
    }

    fn signature_key_pair_from_seed(&self, seed: &[u8]) -> Result<SignatureKeyPair, CryptoError> {
        let private_key = match self.params().signature {
            SignatureAlgorithm::Ed25519 => {
                let bytes = seed.get(..32).ok_or(CryptoError::InvalidLength {
                    expected: 32,
                    actual: seed.len(),
                })?;
                SignaturePrivateKey::new(bytes.to_vec())
            }
            SignatureAlgorithm::EcdsaP256Sha256 => {
                let (sk, _) = hpke::kem::DhP256HkdfSha256::derive_keypair(seed);
                SignaturePrivateKey::new(sk.to_bytes().to_vec())
            }
        };
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
        match self.params().signature {
            SignatureAlgorithm::Ed25519 => Ok(ed25519_signing_key(private_key)?
                .verifying_key()
                .to_bytes()
                .to_vec()),
            SignatureAlgorithm::EcdsaP256Sha256 => {
                let sk = p256_signing_key(private_key)?;
                Ok(sk
                    .verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec())
            }
        }
    }

    fn sign(
        &self,
        private_key: &SignaturePrivateKey,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match self.params().signature {
            SignatureAlgorithm::Ed25519 => {
                use ed25519_dalek::Signer as _;
                Ok(ed25519_signing_key(private_key)?
                    .sign(message)
                    .to_bytes()
                    .to_vec())
            }
            SignatureAlgorithm::EcdsaP256Sha256 => {
                use p256::ecdsa::signature::Signer as _;
                let sig: p256::ecdsa::Signature = p256_signing_key(private_key)?.sign(message);
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }

    fn verify(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        match self.params().signature {
            SignatureAlgorithm::Ed25519 => {
                let pk: [u8; 32] = public_key
                    .try_into()
                    .map_err(|_| CryptoError::InvalidPublicKey)?;
                let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk)
                    .map_err(|_| CryptoError::InvalidPublicKey)?;
                let sig = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| CryptoError::InvalidSignature)?;
                vk.verify_strict(message, &sig)
                    .map_err(|_| CryptoError::InvalidSignature)
            }
            SignatureAlgorithm::EcdsaP256Sha256 => {
                use p256::ecdsa::signature::Verifier as _;
                let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| CryptoError::InvalidPublicKey)?;
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|_| CryptoError::InvalidSignature)?;
                vk.verify(message, &sig)
                    .map_err(|_| CryptoError::InvalidSignature)
            }
        }
    }
}

fn ed25519_signing_key(
    key: &SignaturePrivateKey,
) -> Result<ed25519_dalek::SigningKey, CryptoError> {
    let seed: &[u8; 32] = key
        .as_bytes()
        .try_into()
        .map_err(|_| CryptoError::InvalidPrivateKey)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(seed))
}

fn p256_signing_key(key: &SignaturePrivateKey) -> Result<p256::ecdsa::SigningKey, CryptoError> {
    p256::ecdsa::SigningKey::from_slice(key.as_bytes()).map_err(|_| CryptoError::InvalidPrivateKey)
}

/// One AEAD operation; `seal` selects encryption, otherwise decryption.
fn aead_op(
    alg: AeadAlgorithm,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    data: &[u8],
    seal: bool,
) -> Result<Vec<u8>, ()> {
    use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
    let payload = Payload { msg: data, aad };
    match alg {
        AeadAlgorithm::Aes128Gcm => {
            let cipher = aes_gcm::Aes128Gcm::new_from_slice(key).map_err(|_| ())?;
            let nonce = aes_gcm::Nonce::from_slice(nonce);
            if seal {
                cipher.encrypt(nonce, payload)
            } else {
                cipher.decrypt(nonce, payload)
            }
            .map_err(|_| ())
        }
        AeadAlgorithm::ChaCha20Poly1305 => {
            let cipher = chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).map_err(|_| ())?;
            let nonce = chacha20poly1305::Nonce::from_slice(nonce);
            if seal {
                cipher.encrypt(nonce, payload)
            } else {
                cipher.decrypt(nonce, payload)
            }
            .map_err(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MlsCrypto as _;

    fn suites() -> Vec<&'static dyn SuiteProvider> {
        CipherSuite::SUPPORTED
            .iter()
            .map(|s| RustCrypto.suite(*s).unwrap())
            .collect()
    }

    #[test]
    fn unsupported_suite_is_typed_error() {
        for id in [0u16, 4, 5, 6, 7, 0x0A0A, 0xFFFF] {
            let err = RustCrypto.suite(CipherSuite(id)).err();
            assert_eq!(
                err,
                Some(CryptoError::UnsupportedCipherSuite(CipherSuite(id)))
            );
            assert!(!RustCrypto.supports(CipherSuite(id)));
        }
        for suite in CipherSuite::SUPPORTED {
            assert_eq!(RustCrypto.suite(suite).unwrap().cipher_suite(), suite);
        }
    }

    #[test]
    fn signature_key_from_seed_is_deterministic_and_signs() {
        for cs in suites() {
            let seed = [7u8; 32];
            let a = cs.signature_key_pair_from_seed(&seed).unwrap();
            let b = cs.signature_key_pair_from_seed(&seed).unwrap();
            assert_eq!(a, b);
            let c = cs.signature_key_pair_from_seed(&[8u8; 32]).unwrap();
            assert_ne!(a.public_key, c.public_key);
            let sig = cs.sign_with_label(&a.private_key, "L", b"content").unwrap();
            cs.verify_with_label(&a.public_key, "L", b"content", &sig)
                .unwrap();
            assert_eq!(
                cs.verify_with_label(&c.public_key, "L", b"content", &sig),
                Err(CryptoError::InvalidSignature)
            );
        }
    }

    #[test]
    fn signature_key_from_seed_follows_design_row_5() {
        // Ed25519: the seed is the first 32 bytes of the secret.
        let ed = RustCrypto.suite(CipherSuite(1)).unwrap();
        let secret: Vec<u8> = (0u8..48).collect();
        let kp = ed.signature_key_pair_from_seed(&secret).unwrap();
        assert_eq!(kp.private_key.as_bytes(), &secret[..32]);
        assert_eq!(
            ed.signature_key_pair_from_seed(&secret[..31]).err(),
            Some(CryptoError::InvalidLength {
                expected: 32,
                actual: 31
            })
        );
        // ECDSA P-256: the scalar of DHKEM(P-256).DeriveKeyPair(secret).
        let p256 = RustCrypto.suite(CipherSuite(2)).unwrap();
        let kp = p256.signature_key_pair_from_seed(&secret).unwrap();
        let hpke_kp = p256.hpke_derive_key_pair(&secret).unwrap();
        assert_eq!(kp.private_key.as_bytes(), hpke_kp.private_key.as_bytes());
        assert_eq!(kp.public_key, hpke_kp.public_key);
    }

    #[test]
    fn aead_rejects_tampering_and_bad_lengths() {
        for cs in suites() {
            let p = cs.params();
            let key = vec![1u8; p.aead_key_len()];
            let nonce = vec![2u8; p.aead_nonce_len()];
            let ct = cs.aead_seal(&key, &nonce, b"aad", b"hello").unwrap();
            assert_eq!(cs.aead_open(&key, &nonce, b"aad", &ct).unwrap(), b"hello");
            let mut bad = ct.clone();
            bad[0] ^= 1;
            assert_eq!(
                cs.aead_open(&key, &nonce, b"aad", &bad),
                Err(CryptoError::DecryptionFailed)
            );
            assert_eq!(
                cs.aead_open(&key, &nonce, b"other", &ct),
                Err(CryptoError::DecryptionFailed)
            );
            assert!(matches!(
                cs.aead_seal(&key[1..], &nonce, b"", b""),
                Err(CryptoError::InvalidLength { .. })
            ));
        }
    }

    #[test]
    fn hpke_round_trips_and_exports_agree() {
        for cs in suites() {
            let kp = cs.hpke_generate_key_pair().unwrap();
            assert_eq!(cs.hpke_public_key(&kp.private_key).unwrap(), kp.public_key);
            let (enc, ct) = cs
                .hpke_seal(&kp.public_key, b"info", b"aad", b"pt")
                .unwrap();
            let pt = cs
                .hpke_open(&kp.private_key, &enc, b"info", b"aad", &ct)
                .unwrap();
            assert_eq!(pt, b"pt");
            assert_eq!(
                cs.hpke_open(&kp.private_key, &enc, b"other", b"aad", &ct),
                Err(CryptoError::DecryptionFailed)
            );
            let (enc, s) = cs
                .hpke_setup_sender_and_export(&kp.public_key, b"", b"ctx", 32)
                .unwrap();
            let r = cs
                .hpke_setup_receiver_and_export(&kp.private_key, &enc, b"", b"ctx", 32)
                .unwrap();
            assert_eq!(s, r);
            assert_eq!(
                cs.hpke_seal(b"not a key", b"", b"", b"").err(),
                Some(CryptoError::InvalidPublicKey)
            );
        }
    }

    #[test]
    fn kdf_refuses_overlong_output() {
        let cs = RustCrypto.suite(CipherSuite(1)).unwrap();
        let prk = cs.kdf_extract(b"salt", b"ikm");
        assert!(cs.kdf_expand(prk.as_bytes(), b"", 255 * 32).is_ok());
        assert_eq!(
            cs.kdf_expand(prk.as_bytes(), b"", 255 * 32 + 1).err(),
            Some(CryptoError::KdfOutputTooLong)
        );
        assert_eq!(
            cs.expand_with_label(prk.as_bytes(), "x", b"", 70_000).err(),
            Some(CryptoError::KdfOutputTooLong)
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new(vec![0xAB; 4]);
        assert_eq!(format!("{s:?}"), "Secret(4 bytes, redacted)");
    }
}
