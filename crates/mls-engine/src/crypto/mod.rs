//! Cryptography (RFC 9420 §5): cipher suites, the provider trait, and the labelled
//! operations MLS builds from it.
//!
//! * [`CipherSuite`] / [`SuiteParams`]: identifiers and algorithm parameters (§5.1).
//! * [`CryptoProvider`] / [`SuiteProvider`]: the small trait through which all primitive
//!   cryptography and randomness enter the engine.
//! * [`RustCrypto`]: the default provider, built on RustCrypto crates and `hpke`.
//! * [`MlsCrypto`]: `ExpandWithLabel`, `DeriveSecret`, `SignWithLabel`, `EncryptWithLabel`,
//!   `RefHash` and friends (§5.1-§5.2, §8), available on every [`SuiteProvider`].

mod error;
mod keys;
mod labels;
mod provider;
mod rust_crypto;
mod suite;

pub use error::CryptoError;
pub use keys::{HpkeKeyPair, HpkePrivateKey, Secret, SignatureKeyPair, SignaturePrivateKey};
pub use labels::{HpkeCiphertextParts, MlsCrypto};
pub use provider::{CryptoProvider, SuiteProvider};
pub use rust_crypto::RustCrypto;
pub use suite::{
    AeadAlgorithm, CipherSuite, KdfAlgorithm, KemAlgorithm, SignatureAlgorithm, SuiteParams,
};
