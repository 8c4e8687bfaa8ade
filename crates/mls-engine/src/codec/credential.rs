//! Credentials (RFC 9420 §5.3).

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes};

use super::CredentialType;

/// One certificate of an X.509 chain: `opaque cert_data<V>` (DER, kept as bytes).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Certificate {
    /// The DER-encoded certificate.
    pub cert_data: VLBytes,
}

/// `Credential` (§5.3). A credential of a type the RFC does not define cannot be decoded,
/// since its body has no length prefix.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u16)]
pub enum Credential {
    /// `basic`: `opaque identity<V>`.
    #[tls_codec(discriminant = 1)]
    Basic(VLBytes),
    /// `x509`: `Certificate certificates<V>`, the end-entity certificate first.
    #[tls_codec(discriminant = 2)]
    X509(Vec<Certificate>),
}

impl Credential {
    /// A basic credential carrying `identity`.
    pub fn basic(identity: impl Into<Vec<u8>>) -> Self {
        Credential::Basic(VLBytes::new(identity.into()))
    }

    /// The credential's type.
    pub fn credential_type(&self) -> CredentialType {
        match self {
            Credential::Basic(_) => CredentialType::BASIC,
            Credential::X509(_) => CredentialType::X509,
        }
    }

    /// The identity of a basic credential.
    pub fn basic_identity(&self) -> Option<&[u8]> {
        match self {
            Credential::Basic(identity) => Some(identity.as_slice()),
            Credential::X509(_) => None,
        }
    }
}
