//! Cipher suite identifiers and their parameters (RFC 9420 §5.1, §17.1).

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

/// A cipher suite identifier as it travels on the wire (`uint16 CipherSuite`, RFC 9420 §5.1).
///
/// Any value decodes: capability lists may name suites this engine does not implement
/// (including GREASE values, §13.5). Use [`CipherSuite::params`] to learn whether a value is
/// one we support.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct CipherSuite(pub u16);

impl CipherSuite {
    /// `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519` (0x0001).
    pub const MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519: Self = Self(0x0001);
    /// `MLS_128_DHKEMP256_AES128GCM_SHA256_P256` (0x0002).
    pub const MLS_128_DHKEMP256_AES128GCM_SHA256_P256: Self = Self(0x0002);
    /// `MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519` (0x0003).
    pub const MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_ED25519: Self = Self(0x0003);

    /// Every cipher suite this engine implements, in ascending order.
    pub const SUPPORTED: [Self; 3] = [
        Self::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519,
        Self::MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
        Self::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_ED25519,
    ];

    /// The algorithms of this suite, or `None` if the engine does not implement it.
    pub fn params(self) -> Option<SuiteParams> {
        use AeadAlgorithm::*;
        use KemAlgorithm::*;
        use SignatureAlgorithm::*;
        let (kem, aead, signature) = match self.0 {
            1 => (DhKemX25519, Aes128Gcm, Ed25519),
            2 => (DhKemP256, Aes128Gcm, EcdsaP256Sha256),
            3 => (DhKemX25519, ChaCha20Poly1305, Ed25519),
            _ => return None,
        };
        Some(SuiteParams {
            suite: self,
            kem,
            kdf: KdfAlgorithm::HkdfSha256,
            aead,
            signature,
        })
    }
}

/// The HPKE KEM of a cipher suite (RFC 9180 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KemAlgorithm {
    /// DHKEM(X25519, HKDF-SHA256), KEM id 0x0020.
    DhKemX25519,
    /// DHKEM(P-256, HKDF-SHA256), KEM id 0x0010.
    DhKemP256,
}

/// The KDF (and hash) of a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KdfAlgorithm {
    /// HKDF with SHA-256; the suite's hash is SHA-256.
    HkdfSha256,
}

/// The AEAD of a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AeadAlgorithm {
    /// AES-128-GCM.
    Aes128Gcm,
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305,
}

/// The signature scheme of a cipher suite (RFC 8446 `SignatureScheme`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// `ed25519`.
    Ed25519,
    /// `ecdsa_secp256r1_sha256`; signatures are DER-encoded.
    EcdsaP256Sha256,
}

/// The algorithms of one supported cipher suite and their sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SuiteParams {
    /// The suite these parameters describe.
    pub suite: CipherSuite,
    /// HPKE KEM.
    pub kem: KemAlgorithm,
    /// KDF and hash.
    pub kdf: KdfAlgorithm,
    /// AEAD, used by HPKE and by message protection.
    pub aead: AeadAlgorithm,
    /// Signature scheme.
    pub signature: SignatureAlgorithm,
}

impl SuiteParams {
    /// `KDF.Nh`: the output size of the hash and of `KDF.Extract`.
    pub fn hash_len(&self) -> usize {
        match self.kdf {
            KdfAlgorithm::HkdfSha256 => 32,
        }
    }

    /// `AEAD.Nk`: the AEAD key size.
    pub fn aead_key_len(&self) -> usize {
        match self.aead {
            AeadAlgorithm::Aes128Gcm => 16,
            AeadAlgorithm::ChaCha20Poly1305 => 32,
        }
    }

    /// `AEAD.Nn`: the AEAD nonce size.
    pub fn aead_nonce_len(&self) -> usize {
        12
    }

    /// `KEM.Nsk`-sized seed length used by `DeriveKeyPair` inputs in this engine (`KDF.Nh`).
    pub fn kem_seed_len(&self) -> usize {
        self.hash_len()
    }
}
