//! The provider traits through which all cryptography enters the engine.

use super::{CipherSuite, CryptoError, HpkeKeyPair, Secret, SignatureKeyPair, SuiteParams};
use super::{HpkePrivateKey, SignaturePrivateKey};

/// A source of cipher-suite implementations and of randomness.
pub trait CryptoProvider: Send + Sync {
    /// The implementation of `suite`, or [`CryptoError::UnsupportedCipherSuite`].
    fn suite(&self, suite: CipherSuite) -> Result<&dyn SuiteProvider, CryptoError>;

    /// Whether `suite` is implemented.
    fn supports(&self, suite: CipherSuite) -> bool {
        self.suite(suite).is_ok()
    }
}

/// The primitive operations of one cipher suite (RFC 9420 §5.1). Every MLS-level operation
/// ([`super::MlsCrypto`]) is built on these.
pub trait SuiteProvider: Send + Sync {
    /// The suite's algorithms and sizes.
    fn params(&self) -> SuiteParams;

    /// The suite identifier.
    fn cipher_suite(&self) -> CipherSuite {
        self.params().suite
    }

    /// Fills `out` with cryptographically secure random bytes.
    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError>;

    /// `Hash(data)`.
    fn hash(&self, data: &[u8]) -> Vec<u8>;

    /// `KDF.Extract(salt, ikm)`.
    fn kdf_extract(&self, salt: &[u8], ikm: &[u8]) -> Secret;

    /// `KDF.Expand(prk, info, len)`.
    fn kdf_expand(&self, prk: &[u8], info: &[u8], len: usize) -> Result<Secret, CryptoError>;

    /// `MAC(key, data)`: HMAC with the suite's hash.
    fn mac(&self, key: &[u8], data: &[u8]) -> Vec<u8>;

    /// `AEAD.Seal(key, nonce, aad, plaintext)`; returns ciphertext with the tag appended.
    fn aead_seal(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;

    /// `AEAD.Open(key, nonce, aad, ciphertext)`.
    fn aead_open(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;

    /// HPKE single-shot `SealBase(pk, info, aad, pt)`; returns `(kem_output, ciphertext)`.
    fn hpke_seal(
        &self,
        public_key: &[u8],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), CryptoError>;

    /// HPKE single-shot `OpenBase(kem_output, sk, info, aad, ct)`.
    fn hpke_open(
        &self,
        private_key: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;

    /// `SetupBaseS(pk, info)` followed by `context.export(exporter_context, len)`;
    /// returns `(kem_output, exported_secret)` (RFC 9420 §8.3, external init).
    fn hpke_setup_sender_and_export(
        &self,
        public_key: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<(Vec<u8>, Secret), CryptoError>;

    /// [`SuiteProvider::hpke_setup_sender_and_export`] with the ephemeral key pair of the
    /// encapsulation given instead of drawn: `skE, pkE = KEM.DeriveKeyPair(ikm_e)` (RFC 9180
    /// §4.1 `Encap` with `GenerateKeyPair` replaced by `DeriveKeyPair` on `ikm_e`, as in
    /// RFC 9180's test vectors). `ikm_e` must be `Nsk` bytes. Two callers with the same
    /// `ikm_e` and `public_key` get the same `kem_output` and export (design hook H1 for the
    /// ExternalInit of an external commit).
    fn hpke_setup_sender_and_export_derived(
        &self,
        public_key: &[u8],
        ikm_e: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<(Vec<u8>, Secret), CryptoError>;

    /// `SetupBaseR(kem_output, sk, info)` followed by `context.export(exporter_context, len)`.
    fn hpke_setup_receiver_and_export(
        &self,
        private_key: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        len: usize,
    ) -> Result<Secret, CryptoError>;

    /// `KEM.DeriveKeyPair(ikm)` (RFC 9180 §7.1.3).
    fn hpke_derive_key_pair(&self, ikm: &[u8]) -> Result<HpkeKeyPair, CryptoError>;

    /// The public key of an HPKE private key.
    fn hpke_public_key(&self, private_key: &HpkePrivateKey) -> Result<Vec<u8>, CryptoError>;

    /// A fresh HPKE key pair from `KDF.Nh` random bytes through `DeriveKeyPair`.
    fn hpke_generate_key_pair(&self) -> Result<HpkeKeyPair, CryptoError> {
        let mut seed = Secret::zero(self.params().kem_seed_len());
        let mut bytes = vec![0u8; seed.len()];
        self.fill_random(&mut bytes)?;
        seed = Secret::new(bytes);
        self.hpke_derive_key_pair(seed.as_bytes())
    }

    /// A signature key pair deterministically derived from `seed`: Ed25519 uses the first 32
    /// bytes as its secret seed; ECDSA P-256 uses the scalar that DHKEM(P-256)'s
    /// `DeriveKeyPair` produces from `seed`.
    fn signature_key_pair_from_seed(&self, seed: &[u8]) -> Result<SignatureKeyPair, CryptoError>;

    /// A fresh signature key pair.
    fn signature_generate_key_pair(&self) -> Result<SignatureKeyPair, CryptoError> {
        let mut bytes = vec![0u8; 32];
        self.fill_random(&mut bytes)?;
        let seed = Secret::new(bytes);
        self.signature_key_pair_from_seed(seed.as_bytes())
    }

    /// The public key of a signature private key.
    fn signature_public_key(
        &self,
        private_key: &SignaturePrivateKey,
    ) -> Result<Vec<u8>, CryptoError>;

    /// `Signature.Sign(sk, message)`.
    fn sign(
        &self,
        private_key: &SignaturePrivateKey,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;

    /// `Signature.Verify(pk, message, signature)`.
    fn verify(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError>;
}
