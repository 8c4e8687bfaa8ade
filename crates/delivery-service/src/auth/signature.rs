//! Signature verification with the MLS signature schemes of mls-engine's crypto provider, so a
//! device signs its requests with the key of its MLS credential.

use mls_engine::crypto::{CipherSuite, CryptoProvider, MlsCrypto, RustCrypto, SuiteProvider};
use vmls_protocol::auth::{ECDSA_SECP256R1_SHA256, ED25519};

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The `SignatureScheme` is not one of ed25519 (0x0807) and ecdsa_secp256r1_sha256 (0x0403).
    #[error("unsupported signature scheme {0:#06x}")]
    UnsupportedScheme(u16),
    /// The signature is not valid for the key and content.
    #[error("signature does not verify")]
    Invalid,
    /// The signed content could not be encoded.
    #[error("signed content cannot be encoded")]
    Encoding,
}

/// The suite provider implementing `scheme`'s signature algorithm (suite 1 for ed25519,
/// suite 2 for ECDSA P-256).
pub(crate) fn provider(scheme: u16) -> Result<&'static dyn SuiteProvider, SignatureError> {
    static CRYPTO: RustCrypto = RustCrypto;
    let suite = match scheme {
        ED25519 => CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519,
        ECDSA_SECP256R1_SHA256 => CipherSuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
        other => return Err(SignatureError::UnsupportedScheme(other)),
    };
    CRYPTO
        .suite(suite)
        .map_err(|_| SignatureError::UnsupportedScheme(scheme))
}

/// `VerifyWithLabel(key, label, content, signature)` (RFC 9420 §5.1.2) under `scheme`.
pub fn verify_labelled(
    scheme: u16,
    key: &[u8],
    label: &str,
    content: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    provider(scheme)?
        .verify_with_label(key, label, content, signature)
        .map_err(|_| SignatureError::Invalid)
}
