//! Typed bodies of the RFC 9420 extensions (§5.3.3 application_id, §12.4.3.3 ratchet_tree,
//! §11.1 required_capabilities, §12.4.3.2 external_pub, §12.1.8.1 external_senders), with
//! conversion to and from an [`Extension`].

use tls_codec::{
    DeserializeBytes, Serialize, Size, TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize,
    VLBytes,
};

use super::{
    CodecError, Credential, CredentialType, Extension, ExtensionType, HpkePublicKey, Node,
    ProposalType, SignaturePublicKey,
};

/// The body of an RFC 9420 extension, stored as the `extension_data` of an [`Extension`].
pub trait ExtensionPayload: Sized + Serialize + DeserializeBytes {
    /// The extension type that carries this body.
    const EXTENSION_TYPE: ExtensionType;

    /// An `Extension` of type [`Self::EXTENSION_TYPE`] carrying this body.
    fn to_extension(&self) -> Result<Extension, CodecError> {
        Ok(Extension::new(Self::EXTENSION_TYPE, super::encode(self)?))
    }

    /// Decodes the body of `extension`, which must be of type [`Self::EXTENSION_TYPE`] and
    /// whose data must hold exactly one body.
    fn from_extension(extension: &Extension) -> Result<Self, ExtensionPayloadError> {
        if extension.extension_type != Self::EXTENSION_TYPE {
            return Err(ExtensionPayloadError::WrongType {
                expected: Self::EXTENSION_TYPE,
                found: extension.extension_type,
            });
        }
        Ok(super::decode_exact(extension.extension_data.as_slice())?)
    }

    /// Decodes the body of the first extension of type [`Self::EXTENSION_TYPE`] in
    /// `extensions`, if there is one.
    fn find_in(extensions: &[Extension]) -> Result<Option<Self>, ExtensionPayloadError> {
        extensions
            .iter()
            .find(|e| e.extension_type == Self::EXTENSION_TYPE)
            .map(Self::from_extension)
            .transpose()
    }
}

/// Why an extension's body could not be read as a typed payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionPayloadError {
    /// The extension is of another type.
    #[error("extension type {found:?} is not {expected:?}")]
    WrongType {
        /// The type the payload needs.
        expected: ExtensionType,
        /// The extension's type.
        found: ExtensionType,
    },
    /// The body did not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// `application_id` (§5.3.3): an application-defined identifier of a leaf's client.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ApplicationIdExtension {
    /// `opaque application_id<V>`.
    pub application_id: VLBytes,
}

impl ExtensionPayload for ApplicationIdExtension {
    const EXTENSION_TYPE: ExtensionType = ExtensionType::APPLICATION_ID;
}

/// `ratchet_tree` (§12.4.3.3): `optional<Node> ratchet_tree<V>`, the public tree in array
/// order, with no blank nodes after the last non-blank one.
///
/// Decoding checks the shape the RFC requires of the vector itself: it is not empty, its last
/// entry is not blank, and every entry at an even position is a leaf and every entry at an odd
/// position a parent. The encoder refuses values that break these rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatchetTreeExtension {
    /// The nodes; `None` is a blank node.
    pub ratchet_tree: Vec<Option<Node>>,
}

impl RatchetTreeExtension {
    /// Checks the shape rules of the type's documentation.
    pub fn check_shape(nodes: &[Option<Node>]) -> Result<(), RatchetTreeShapeError> {
        match nodes.last() {
            None => return Err(RatchetTreeShapeError::Empty),
            Some(None) => return Err(RatchetTreeShapeError::TrailingBlank),
            Some(Some(_)) => {}
        }
        for (index, node) in nodes.iter().enumerate() {
            let fits = match node {
                None => true,
                Some(Node::Leaf(_)) => index % 2 == 0,
                Some(Node::Parent(_)) => index % 2 == 1,
            };
            if !fits {
                return Err(RatchetTreeShapeError::WrongNodeType { index });
            }
        }
        Ok(())
    }
}

/// How a `ratchet_tree` vector breaks the RFC's shape rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RatchetTreeShapeError {
    /// The vector is empty.
    #[error("the ratchet tree is empty")]
    Empty,
    /// The last entry is blank (§12.4.3.3: the sender must truncate blank nodes).
    #[error("the ratchet tree ends in a blank node")]
    TrailingBlank,
    /// A leaf at an odd position or a parent at an even one.
    #[error("node {index} has the wrong node type for its position")]
    WrongNodeType {
        /// The position in the vector.
        index: usize,
    },
}

impl Size for RatchetTreeExtension {
    fn tls_serialized_len(&self) -> usize {
        self.ratchet_tree.tls_serialized_len()
    }
}

impl Serialize for RatchetTreeExtension {
    fn tls_serialize<W: std::io::Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        Self::check_shape(&self.ratchet_tree)
            .map_err(|e| tls_codec::Error::EncodingError(e.to_string()))?;
        self.ratchet_tree.tls_serialize(writer)
    }
}

impl DeserializeBytes for RatchetTreeExtension {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), tls_codec::Error> {
        let (ratchet_tree, rest) = Vec::<Option<Node>>::tls_deserialize_bytes(bytes)?;
        Self::check_shape(&ratchet_tree)
            .map_err(|e| tls_codec::Error::DecodingError(e.to_string()))?;
        Ok((Self { ratchet_tree }, rest))
    }
}

impl ExtensionPayload for RatchetTreeExtension {
    const EXTENSION_TYPE: ExtensionType = ExtensionType::RATCHET_TREE;
}

/// `required_capabilities` (§11.1): what every member must support.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct RequiredCapabilitiesExtension {
    /// Extension types every member must support.
    pub extension_types: Vec<ExtensionType>,
    /// Proposal types every member must support.
    pub proposal_types: Vec<ProposalType>,
    /// Credential types every member must support.
    pub credential_types: Vec<CredentialType>,
}

impl ExtensionPayload for RequiredCapabilitiesExtension {
    const EXTENSION_TYPE: ExtensionType = ExtensionType::REQUIRED_CAPABILITIES;
}

/// `external_pub` (§12.4.3.2): the HPKE key external joiners encrypt their `init_secret` to.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ExternalPubExtension {
    /// `HPKEPublicKey external_pub`.
    pub external_pub: HpkePublicKey,
}

impl ExtensionPayload for ExternalPubExtension {
    const EXTENSION_TYPE: ExtensionType = ExtensionType::EXTERNAL_PUB;
}

/// `ExternalSender` (§12.1.8.1): a party allowed to send external proposals.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ExternalSender {
    /// The key its proposals are signed with.
    pub signature_key: SignaturePublicKey,
    /// Its credential.
    pub credential: Credential,
}

/// `external_senders` (§12.1.8.1): `ExternalSender external_senders<V>`; a `sender_index`
/// of an `external` Sender indexes this list.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct ExternalSendersExtension {
    /// The external senders.
    pub external_senders: Vec<ExternalSender>,
}

impl ExtensionPayload for ExternalSendersExtension {
    const EXTENSION_TYPE: ExtensionType = ExtensionType::EXTERNAL_SENDERS;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_exact, encode, ParentNode};

    fn parent() -> Node {
        Node::Parent(ParentNode {
            encryption_key: vec![1].into(),
            parent_hash: VLBytes::new(vec![]),
            unmerged_leaves: vec![],
        })
    }

    #[test]
    fn typed_round_trip_through_extension() {
        let payload = ExternalPubExtension {
            external_pub: vec![1, 2, 3].into(),
        };
        let extension = payload.to_extension().unwrap();
        assert_eq!(extension.extension_type, ExtensionType::EXTERNAL_PUB);
        assert_eq!(extension.extension_data.as_slice(), &[3, 1, 2, 3]);
        assert_eq!(
            ExternalPubExtension::from_extension(&extension).unwrap(),
            payload
        );
        assert_eq!(
            ExternalPubExtension::find_in(std::slice::from_ref(&extension)).unwrap(),
            Some(payload)
        );
        assert_eq!(
            ApplicationIdExtension::find_in(std::slice::from_ref(&extension)),
            Ok(None)
        );
        assert!(matches!(
            ApplicationIdExtension::from_extension(&extension),
            Err(ExtensionPayloadError::WrongType { .. })
        ));
        // Trailing bytes inside extension_data are refused.
        let long = Extension::new(ExtensionType::EXTERNAL_PUB, vec![1, 9, 0]);
        assert!(matches!(
            ExternalPubExtension::from_extension(&long),
            Err(ExtensionPayloadError::Codec(CodecError::TrailingData(1)))
        ));
    }

    #[test]
    fn required_capabilities_layout() {
        let payload = RequiredCapabilitiesExtension {
            extension_types: vec![ExtensionType(0xff01)],
            proposal_types: vec![],
            credential_types: vec![CredentialType::BASIC],
        };
        let bytes = encode(&payload).unwrap();
        assert_eq!(bytes, vec![2, 0xff, 1, 0, 2, 0, 1]);
        assert_eq!(
            decode_exact::<RequiredCapabilitiesExtension>(&bytes).unwrap(),
            payload
        );
        // An odd-length list of uint16 does not decode.
        assert!(decode_exact::<RequiredCapabilitiesExtension>(&[1, 0xff, 0, 0]).is_err());
    }

    #[test]
    fn ratchet_tree_shape() {
        assert_eq!(
            RatchetTreeExtension::check_shape(&[]),
            Err(RatchetTreeShapeError::Empty)
        );
        assert_eq!(
            RatchetTreeExtension::check_shape(&[None]),
            Err(RatchetTreeShapeError::TrailingBlank)
        );
        assert_eq!(
            RatchetTreeExtension::check_shape(&[Some(parent())]),
            Err(RatchetTreeShapeError::WrongNodeType { index: 0 })
        );
        assert_eq!(
            RatchetTreeExtension::check_shape(&[None, Some(parent())]),
            Ok(())
        );
        // Encoded: vector of [blank, parent].
        let tree = RatchetTreeExtension {
            ratchet_tree: vec![None, Some(parent())],
        };
        let bytes = encode(&tree).unwrap();
        assert_eq!(bytes, vec![7, 0, 1, 2, 1, 1, 0, 0]);
        assert_eq!(decode_exact::<RatchetTreeExtension>(&bytes).unwrap(), tree);
        // An empty vector and a trailing blank do not decode or encode.
        assert!(decode_exact::<RatchetTreeExtension>(&[0]).is_err());
        assert!(decode_exact::<RatchetTreeExtension>(&[1, 0]).is_err());
        assert!(encode(&RatchetTreeExtension {
            ratchet_tree: vec![None]
        })
        .is_err());
    }
}
