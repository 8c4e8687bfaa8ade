//! Errors of the crypto module.

use super::CipherSuite;

/// Why a cryptographic operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The cipher suite is not implemented by this provider.
    #[error("unsupported cipher suite 0x{:04x}", .0 .0)]
    UnsupportedCipherSuite(CipherSuite),
    /// A public key could not be parsed for the suite's algorithm.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// A private key or seed could not be used for the suite's algorithm.
    #[error("invalid private key")]
    InvalidPrivateKey,
    /// A signature did not verify (or could not be parsed).
    #[error("signature verification failed")]
    InvalidSignature,
    /// AEAD or HPKE decryption failed: wrong key, nonce, AAD or tampered ciphertext.
    #[error("decryption failed")]
    DecryptionFailed,
    /// AEAD or HPKE encryption failed.
    #[error("encryption failed")]
    EncryptionFailed,
    /// A key, nonce or secret had the wrong length.
    #[error("wrong length: expected {expected}, got {actual}")]
    InvalidLength {
        /// The length the algorithm needs.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// The KDF was asked for more output than it can produce.
    #[error("KDF output too long")]
    KdfOutputTooLong,
    /// A value could not be encoded for a labelled operation.
    #[error("encoding failed: {0}")]
    Encoding(String),
    /// The random number generator failed.
    #[error("randomness unavailable")]
    RandomnessUnavailable,
}
