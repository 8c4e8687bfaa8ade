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
    /// `MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448` (0x0004). Not implemented: see
    /// [`CipherSuite::NOT_IMPLEMENTED`].
    pub const MLS_256_DHKEMX448_AES256GCM_SHA512_ED448: Self = Self(0x0004);
    /// `MLS_256_DHKEMP521_AES256GCM_SHA512_P521` (0x0005).
    pub const MLS_256_DHKEMP521_AES256GCM_SHA512_P521: Self = Self(0x0005);
    /// `MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448` (0x0006). Not implemented: see
    /// [`CipherSuite::NOT_IMPLEMENTED`].
    pub const MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_ED448: Self = Self(0x0006);
    /// `MLS_256_DHKEMP384_AES256GCM_SHA384_P384` (0x0007).
    pub const MLS_256_DHKEMP384_AES256GCM_SHA384_P384: Self = Self(0x0007);
    /// `MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519` of draft-ietf-mls-pq-ciphersuites-06
    /// (its TBD1): the X-Wing hybrid KEM (HPKE KEM id 0x647A), AES-128-GCM, SHA-256, Ed25519.
    /// The draft has no IANA value yet; 0x004F is the provisional code point OpenMLS 0.9 uses
    /// with its `draft-ietf-mls-pq-ciphersuites` feature, so that the two interoperate.
    pub const MLS_128_MLKEM768X25519_AES128GCM_SHA256_ED25519: Self = Self(0x004F);

    /// Every cipher suite this engine implements, in ascending order.
    pub const SUPPORTED: [Self; 6] = [
        Self::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519,
        Self::MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
        Self::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_ED25519,
        Self::MLS_256_DHKEMP521_AES256GCM_SHA512_P521,
        Self::MLS_256_DHKEMP384_AES256GCM_SHA384_P384,
        Self::MLS_128_MLKEM768X25519_AES128GCM_SHA256_ED25519,
    ];

    /// The RFC 9420 suites this engine leaves out, each with the reason: X448 and Ed448 have
    /// no released RustCrypto crate (only pre-releases of `x448` and `ed448-goldilocks`), and
    /// neither `hpke` 0.13 nor 0.14 has DHKEM(X448).
    pub const NOT_IMPLEMENTED: [(Self, &'static str); 2] = [
        (
            Self::MLS_256_DHKEMX448_AES256GCM_SHA512_ED448,
            "X448/Ed448: no released crate",
        ),
        (
            Self::MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_ED448,
            "X448/Ed448: no released crate",
        ),
    ];

    /// The registered (or, for the post-quantum suite, provisional) name of a suite this
    /// engine knows, implemented or not.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
            2 => "MLS_128_DHKEMP256_AES128GCM_SHA256_P256",
            3 => "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
            4 => "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448",
            5 => "MLS_256_DHKEMP521_AES256GCM_SHA512_P521",
            6 => "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448",
            7 => "MLS_256_DHKEMP384_AES256GCM_SHA384_P384",
            0x004F => "MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519",
            _ => return None,
        })
    }

    /// The algorithms of this suite, or `None` if the engine does not implement it.
    pub fn params(self) -> Option<SuiteParams> {
        use AeadAlgorithm::*;
        use KdfAlgorithm::*;
        use KemAlgorithm::*;
        use SignatureAlgorithm::*;
        let (kem, kdf, aead, signature) = match self.0 {
            1 => (DhKemX25519, HkdfSha256, Aes128Gcm, Ed25519),
            2 => (DhKemP256, HkdfSha256, Aes128Gcm, EcdsaP256Sha256),
            3 => (DhKemX25519, HkdfSha256, ChaCha20Poly1305, Ed25519),
            5 => (DhKemP521, HkdfSha512, Aes256Gcm, EcdsaP521Sha512),
            7 => (DhKemP384, HkdfSha384, Aes256Gcm, EcdsaP384Sha384),
            0x004F => (XWing, HkdfSha256, Aes128Gcm, Ed25519),
            _ => return None,
        };
        Some(SuiteParams {
            suite: self,
            kem,
            kdf,
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
    /// DHKEM(P-384, HKDF-SHA384), KEM id 0x0011.
    DhKemP384,
    /// DHKEM(P-521, HKDF-SHA512), KEM id 0x0012.
    DhKemP521,
    /// X-Wing (ML-KEM-768 + X25519, draft-connolly-cfrg-xwing-kem-06), KEM id 0x647A.
    XWing,
}

/// The KDF (and hash) of a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KdfAlgorithm {
    /// HKDF with SHA-256; the suite's hash is SHA-256.
    HkdfSha256,
    /// HKDF with SHA-384; the suite's hash is SHA-384.
    HkdfSha384,
    /// HKDF with SHA-512; the suite's hash is SHA-512.
    HkdfSha512,
}

/// The AEAD of a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AeadAlgorithm {
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
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
    /// `ecdsa_secp384r1_sha384`; signatures are DER-encoded.
    EcdsaP384Sha384,
    /// `ecdsa_secp521r1_sha512`; signatures are DER-encoded.
    EcdsaP521Sha512,
}

impl SignatureAlgorithm {
    /// The RFC 8446 `SignatureScheme` code point (`ed25519(0x0807)`,
    /// `ecdsa_secp256r1_sha256(0x0403)`, `ecdsa_secp384r1_sha384(0x0503)`,
    /// `ecdsa_secp521r1_sha512(0x0603)`).
    pub fn signature_scheme(self) -> u16 {
        match self {
            Self::Ed25519 => 0x0807,
            Self::EcdsaP256Sha256 => 0x0403,
            Self::EcdsaP384Sha384 => 0x0503,
            Self::EcdsaP521Sha512 => 0x0603,
        }
    }
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
            KdfAlgorithm::HkdfSha384 => 48,
            KdfAlgorithm::HkdfSha512 => 64,
        }
    }

    /// `AEAD.Nk`: the AEAD key size.
    pub fn aead_key_len(&self) -> usize {
        match self.aead {
            AeadAlgorithm::Aes128Gcm => 16,
            AeadAlgorithm::Aes256Gcm | AeadAlgorithm::ChaCha20Poly1305 => 32,
        }
    }

    /// `AEAD.Nn`: the AEAD nonce size.
    pub fn aead_nonce_len(&self) -> usize {
        12
    }

    /// `KEM.Npk`: the size of a serialized HPKE public key (an uncompressed SEC1 point for the
    /// NIST curves).
    pub fn kem_public_key_len(&self) -> usize {
        match self.kem {
            KemAlgorithm::DhKemX25519 => 32,
            KemAlgorithm::DhKemP256 => 65,
            KemAlgorithm::DhKemP384 => 97,
            KemAlgorithm::DhKemP521 => 133,
            KemAlgorithm::XWing => 1216,
        }
    }

    /// `KEM.Nsk`-sized seed length used by `DeriveKeyPair` inputs in this engine (`KDF.Nh`).
    pub fn kem_seed_len(&self) -> usize {
        self.hash_len()
    }
}
