//! Credential validation: the engine's view of the Authentication Service (RFC 9420 §5.3.1).
//!
//! MLS leaves the meaning of a credential to the application. Two questions come up while
//! validating leaves, and both are put to an [`IdentityProvider`]:
//!
//! 1. *Is this credential valid for this signature key?* (§5.3.1: the AS verifies that the
//!    credential's presented identifiers are correctly associated with the `signature_key` of
//!    the LeafNode). Asked for every LeafNode the engine validates (§7.3, first step).
//! 2. *May this credential replace that one?* (§5.3.1, last paragraph: when a member's
//!    credential is replaced by an Update or by the leaf of a Commit's UpdatePath, the new set
//!    of presented identifiers must be a valid successor of the old one). Asked for Update and
//!    Commit leaves that replace an existing leaf.
//!
//! [`BasicIdentityProvider`] is the default: it accepts any `basic` credential, refuses `x509`
//! credentials unless the application installs a certificate validator, and refuses every
//! change of identity.

use std::fmt;
use std::sync::Arc;

use crate::codec::{Certificate, Credential, CredentialType, SignaturePublicKey};

/// Why a credential was refused by an [`IdentityProvider`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The provider does not accept credentials of this type at all.
    #[error("credential type 0x{:04x} is not accepted", .0 .0)]
    UnsupportedCredentialType(CredentialType),
    /// An `x509` credential, and no certificate validator is configured.
    #[error("x509 credentials are not accepted (no certificate validator configured)")]
    X509NotConfigured,
    /// An `x509` credential without any certificate.
    #[error("x509 credential has no certificate")]
    EmptyCertificateChain,
    /// The credential's subject key is not the LeafNode's `signature_key` (§5.3).
    #[error("credential is not bound to the signature key")]
    SignatureKeyMismatch,
    /// The credential (or a certificate of its chain) is expired, not yet valid or revoked.
    #[error("credential is expired, not yet valid or revoked")]
    NotCurrentlyValid,
    /// The credential could not be authenticated (untrusted issuer, bad certificate
    /// signature, malformed certificate, unacceptable identity).
    #[error("credential could not be authenticated")]
    NotAuthenticated,
    /// The new credential is not an acceptable successor of the old one (§5.3.1).
    #[error("identity change refused")]
    IdentityChangeRefused,
}

/// The application's Authentication Service, as the engine consults it (§5.3.1).
pub trait IdentityProvider: Send + Sync {
    /// Whether `credential` is valid and is bound to `signature_key` (§5.3.1). Called for every
    /// LeafNode the engine validates (§7.3) and for every credential newly introduced into a
    /// group.
    fn validate_credential(
        &self,
        credential: &Credential,
        signature_key: &SignaturePublicKey,
    ) -> Result<(), CredentialError>;

    /// Whether `new` is an acceptable successor of `old` (§5.3.1), for an Update proposal or
    /// a Commit's UpdatePath leaf that replaces a member's leaf (§7.3, §12.1.2). Called after
    /// [`Self::validate_credential`] accepted `new`; called even when `old == new`.
    fn validate_successor(&self, old: &Credential, new: &Credential)
        -> Result<(), CredentialError>;
}

/// Validates an `x509` certificate chain (end-entity certificate first) for a signature key.
/// Installed into a [`BasicIdentityProvider`] with [`BasicIdentityProvider::with_x509`].
pub type X509Validator =
    Arc<dyn Fn(&[Certificate], &SignaturePublicKey) -> Result<(), CredentialError> + Send + Sync>;

/// The default [`IdentityProvider`].
///
/// * `basic` credentials: accepted, whatever the identity (a basic credential is "a bare
///   assertion of an identity", §5.3; the application authenticates it out of band).
/// * `x509` credentials: refused with [`CredentialError::X509NotConfigured`] unless a
///   validator was installed with [`Self::with_x509`]; an empty chain is refused with
///   [`CredentialError::EmptyCertificateChain`] before the validator runs.
/// * Successors: a credential may only be replaced by an identical credential; every other
///   change is refused with [`CredentialError::IdentityChangeRefused`]. Applications that
///   rotate certificates implement their own [`IdentityProvider`].
#[derive(Clone, Default)]
pub struct BasicIdentityProvider {
    x509: Option<X509Validator>,
}

impl BasicIdentityProvider {
    /// A provider that accepts basic credentials only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `x509` credentials that `validator` accepts.
    pub fn with_x509(mut self, validator: X509Validator) -> Self {
        self.x509 = Some(validator);
        self
    }
}

impl fmt::Debug for BasicIdentityProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicIdentityProvider")
            .field("x509", &self.x509.is_some())
            .finish()
    }
}

impl IdentityProvider for BasicIdentityProvider {
    fn validate_credential(
        &self,
        credential: &Credential,
        signature_key: &SignaturePublicKey,
    ) -> Result<(), CredentialError> {
        match credential {
            Credential::Basic(_) => Ok(()),
            Credential::X509(chain) => {
                let validator = self
                    .x509
                    .as_ref()
                    .ok_or(CredentialError::X509NotConfigured)?;
                if chain.is_empty() {
                    return Err(CredentialError::EmptyCertificateChain);
                }
                validator(chain, signature_key)
            }
        }
    }

    fn validate_successor(
        &self,
        old: &Credential,
        new: &Credential,
    ) -> Result<(), CredentialError> {
        if old == new {
            Ok(())
        } else {
            Err(CredentialError::IdentityChangeRefused)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tls_codec::VLBytes;

    fn key() -> SignaturePublicKey {
        SignaturePublicKey::from(vec![7u8; 32])
    }

    fn x509() -> Credential {
        Credential::X509(vec![Certificate {
            cert_data: VLBytes::new(vec![0x30, 0x00]),
        }])
    }

    #[test]
    fn basic_credentials_are_accepted_whatever_the_identity() {
        let provider = BasicIdentityProvider::new();
        assert_eq!(
            provider.validate_credential(&Credential::basic(b"alice".to_vec()), &key()),
            Ok(())
        );
        assert_eq!(
            provider.validate_credential(&Credential::basic(Vec::new()), &key()),
            Ok(())
        );
    }

    #[test]
    fn x509_is_refused_unless_configured() {
        let provider = BasicIdentityProvider::new();
        assert_eq!(
            provider.validate_credential(&x509(), &key()),
            Err(CredentialError::X509NotConfigured)
        );
        let configured = BasicIdentityProvider::new().with_x509(Arc::new(|chain, key| {
            if chain.len() == 1 && key.as_slice() == [7u8; 32] {
                Ok(())
            } else {
                Err(CredentialError::SignatureKeyMismatch)
            }
        }));
        assert_eq!(configured.validate_credential(&x509(), &key()), Ok(()));
        assert_eq!(
            configured.validate_credential(&x509(), &SignaturePublicKey::from(vec![1u8; 32])),
            Err(CredentialError::SignatureKeyMismatch)
        );
        assert_eq!(
            configured.validate_credential(&Credential::X509(Vec::new()), &key()),
            Err(CredentialError::EmptyCertificateChain)
        );
        assert!(format!("{configured:?}").contains("x509: true"));
    }

    #[test]
    fn identity_changes_are_refused() {
        let provider = BasicIdentityProvider::new();
        let alice = Credential::basic(b"alice".to_vec());
        let bob = Credential::basic(b"bob".to_vec());
        assert_eq!(provider.validate_successor(&alice, &alice.clone()), Ok(()));
        assert_eq!(
            provider.validate_successor(&alice, &bob),
            Err(CredentialError::IdentityChangeRefused)
        );
        assert_eq!(
            provider.validate_successor(&alice, &x509()),
            Err(CredentialError::IdentityChangeRefused)
        );
    }
}
