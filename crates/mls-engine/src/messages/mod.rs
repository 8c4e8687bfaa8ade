//! Building and validating the messages a client publishes about itself: LeafNodes (RFC 9420
//! §7.2, §7.3) and KeyPackages (§10, §10.1), with the credential checks of §5.3.1 and the
//! capability and extension rules of §7.2, §11.1 and §13.4.
//!
//! * [`identity`]: the [`IdentityProvider`] trait (the Authentication Service as the engine
//!   sees it) and its default, [`BasicIdentityProvider`].
//! * [`capabilities`]: default and completed capabilities of new leaves; a group's
//!   [`GroupRequirements`] (required capabilities, extensions in use).
//! * [`leaf_node`]: [`LeafNodeParams`] (creation from given or fresh keys) and
//!   [`validate_leaf_node`] (§7.3, each check its own [`LeafNodeValidationError`] variant).
//! * [`key_package`]: [`KeyPackageParams`] (creation; returns the [`KeyPackage`], its
//!   [`KeyPackagePrivate`] keys and its [`KeyPackageRef`]) and [`validate_key_package`]
//!   (§10.1).
//!
//! [`KeyPackageRef`]: crate::codec::KeyPackageRef
//!
//! Nothing here reads a clock: times are passed in as seconds since the Unix epoch. Key pairs
//! may be given instead of generated ([`HpkeKeySource`]), so that the virtual-client layer can
//! supply derived key material (design hook H1).
//!
//! [`KeyPackage`]: crate::codec::KeyPackage

pub mod capabilities;
pub mod identity;
pub mod key_package;
pub mod leaf_node;

pub use capabilities::{
    complete_capabilities, default_capabilities, GroupRequirements, GroupRequirementsError,
    Unsupported,
};
pub use identity::{BasicIdentityProvider, CredentialError, IdentityProvider, X509Validator};
pub use key_package::{
    key_package_ref, validate_key_package, KeyPackageBundle, KeyPackageParams, KeyPackagePrivate,
    KeyPackageValidationContext, KeyPackageValidationError,
};
pub use leaf_node::{
    validate_leaf_node, KeyUniqueness, LeafNodeOrigin, LeafNodeParams, LeafNodeSourceKind,
    LeafNodeTarget, LeafNodeValidationContext, LeafNodeValidationError, LifetimeCheck,
    MemberCredentialTypes, NoOtherMembers,
};

use crate::codec::{CodecError, ExtensionType, LeafSignatureError};
use crate::crypto::{
    CryptoError, HpkeKeyPair, KemAlgorithm, Secret, SignatureKeyPair, SuiteProvider,
};

/// Where the HPKE key pair of a new leaf (`encryption_key`) or KeyPackage (`init_key`) comes
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HpkeKeySource {
    /// A fresh key pair from the suite's randomness.
    Generate,
    /// `KEM.DeriveKeyPair(seed)` of the suite (given key material, design hook H1).
    Seed(Secret),
    /// A given key pair; its public key must match its private key.
    KeyPair(HpkeKeyPair),
}

impl HpkeKeySource {
    /// The key pair this source names, for `suite`.
    pub fn into_key_pair(self, suite: &dyn SuiteProvider) -> Result<HpkeKeyPair, CreationError> {
        match self {
            HpkeKeySource::Generate => Ok(suite.hpke_generate_key_pair()?),
            HpkeKeySource::Seed(seed) => Ok(suite.hpke_derive_key_pair(seed.as_bytes())?),
            HpkeKeySource::KeyPair(pair) => {
                if suite.hpke_public_key(&pair.private_key)? == pair.public_key {
                    Ok(pair)
                } else {
                    Err(CreationError::HpkeKeyPairMismatch)
                }
            }
        }
    }
}

/// Checks that a given signature key pair is consistent (its public key is that of its
/// private key) for `suite`.
fn check_signature_key_pair(
    suite: &dyn SuiteProvider,
    signature_key: &SignatureKeyPair,
) -> Result<(), CreationError> {
    if suite.signature_public_key(&signature_key.private_key)? == signature_key.public_key {
        Ok(())
    } else {
        Err(CreationError::SignatureKeyPairMismatch)
    }
}

/// Whether `key` has the form of a `SerializePublicKey` output of the suite's KEM: `Npk` bytes
/// (32 for X25519, 1216 for X-Wing), and for the NIST curves an uncompressed SEC1 point. A
/// cheap structural check (§10: the key "MUST be a public key for the asymmetric encryption
/// scheme defined by `cipher_suite`"); whether a point lies on the curve is found out by HPKE
/// when the key is used.
fn hpke_public_key_well_formed(suite: &dyn SuiteProvider, key: &[u8]) -> bool {
    let params = suite.params();
    let sec1 = match params.kem {
        KemAlgorithm::DhKemX25519 | KemAlgorithm::XWing => true,
        KemAlgorithm::DhKemP256 | KemAlgorithm::DhKemP384 | KemAlgorithm::DhKemP521 => {
            key.first() == Some(&0x04)
        }
    };
    key.len() == params.kem_public_key_len() && sec1
}

/// Why a LeafNode or KeyPackage could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreationError {
    /// A cryptographic operation failed (key generation or derivation).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Signing failed.
    #[error(transparent)]
    Signature(#[from] LeafSignatureError),
    /// Encoding failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A given HPKE key pair's public key is not that of its private key.
    #[error("the given HPKE key pair is inconsistent")]
    HpkeKeyPairMismatch,
    /// A given signature key pair's public key is not that of its private key.
    #[error("the given signature key pair is inconsistent")]
    SignatureKeyPairMismatch,
    /// Two extensions of one list have the same type (§13.4).
    #[error("duplicate extension type 0x{:04x}", .0 .0)]
    DuplicateExtension(ExtensionType),
    /// The KeyPackage's `init_key` would equal its leaf's `encryption_key` (§10.1).
    #[error("init_key equals the leaf encryption_key")]
    InitKeyEqualsEncryptionKey,
}
