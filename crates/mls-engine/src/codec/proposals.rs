//! Proposals (RFC 9420 §12.1) and the ways a Commit names them (§12.4).
//!
//! A `Proposal` of a type the RFC does not define cannot be decoded: its body has no length
//! prefix, so there is no way to skip it (`CodecError::UnknownValue`).

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes};

use super::{Extension, KeyPackage, LeafNode, PreSharedKeyID, ProposalType, ProtocolVersion};
use crate::crypto::CipherSuite;

/// `Add` (§12.1.1): add the client of `key_package` to the group.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Add {
    /// The new member's KeyPackage.
    pub key_package: KeyPackage,
}

/// `Update` (§12.1.2): replace the sender's leaf.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Update {
    /// The sender's new leaf.
    pub leaf_node: LeafNode,
}

/// `Remove` (§12.1.3): remove the member at leaf index `removed`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct Remove {
    /// The leaf index of the member to remove.
    pub removed: u32,
}

/// `PreSharedKey` (§12.1.4): inject a PSK into the next epoch's key schedule.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct PreSharedKey {
    /// The PSK to inject.
    pub psk: PreSharedKeyID,
}

/// `ReInit` (§12.1.5): reinitialize the group with new parameters.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ReInit {
    /// The new group's ID.
    pub group_id: VLBytes,
    /// The new group's protocol version.
    pub version: ProtocolVersion,
    /// The new group's cipher suite.
    pub cipher_suite: CipherSuite,
    /// The new group's GroupContext extensions.
    pub extensions: Vec<Extension>,
}

/// `ExternalInit` (§12.1.6): the KEM output of an external joiner's `init_secret`.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ExternalInit {
    /// `kem_output` of the export to the group's `external_pub` (§8.3).
    pub kem_output: VLBytes,
}

/// `GroupContextExtensions` (§12.1.7): replace the GroupContext extensions wholesale.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct GroupContextExtensions {
    /// The new list of GroupContext extensions.
    pub extensions: Vec<Extension>,
}

/// `Proposal` (§12.1): `proposal_type` followed by the body it selects.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u16)]
#[allow(clippy::large_enum_variant)] // Proposals are short-lived; boxing would only add allocations.
pub enum Proposal {
    /// `add(1)`.
    #[tls_codec(discriminant = 1)]
    Add(Add),
    /// `update(2)`.
    #[tls_codec(discriminant = 2)]
    Update(Update),
    /// `remove(3)`.
    #[tls_codec(discriminant = 3)]
    Remove(Remove),
    /// `psk(4)`.
    #[tls_codec(discriminant = 4)]
    PreSharedKey(PreSharedKey),
    /// `reinit(5)`.
    #[tls_codec(discriminant = 5)]
    ReInit(ReInit),
    /// `external_init(6)`.
    #[tls_codec(discriminant = 6)]
    ExternalInit(ExternalInit),
    /// `group_context_extensions(7)`.
    #[tls_codec(discriminant = 7)]
    GroupContextExtensions(GroupContextExtensions),
}

impl Proposal {
    /// The proposal's `ProposalType`.
    pub fn proposal_type(&self) -> ProposalType {
        match self {
            Proposal::Add(_) => ProposalType::ADD,
            Proposal::Update(_) => ProposalType::UPDATE,
            Proposal::Remove(_) => ProposalType::REMOVE,
            Proposal::PreSharedKey(_) => ProposalType::PSK,
            Proposal::ReInit(_) => ProposalType::REINIT,
            Proposal::ExternalInit(_) => ProposalType::EXTERNAL_INIT,
            Proposal::GroupContextExtensions(_) => ProposalType::GROUP_CONTEXT_EXTENSIONS,
        }
    }

    /// An Add proposal for `key_package`.
    pub fn add(key_package: KeyPackage) -> Self {
        Proposal::Add(Add { key_package })
    }

    /// An Update proposal carrying `leaf_node`.
    pub fn update(leaf_node: LeafNode) -> Self {
        Proposal::Update(Update { leaf_node })
    }

    /// A Remove proposal for the member at leaf index `removed`.
    pub fn remove(removed: u32) -> Self {
        Proposal::Remove(Remove { removed })
    }

    /// A PreSharedKey proposal for `psk`.
    pub fn pre_shared_key(psk: PreSharedKeyID) -> Self {
        Proposal::PreSharedKey(PreSharedKey { psk })
    }

    /// Whether an `external` sender may send this proposal (§12.1.8): add, remove, psk,
    /// reinit and group_context_extensions.
    pub fn is_allowed_for_external_sender(&self) -> bool {
        !matches!(self, Proposal::Update(_) | Proposal::ExternalInit(_))
    }
}

/// `ProposalRef` (§5.2): `MakeProposalRef` of the `AuthenticatedContent` that carried a
/// proposal (`opaque HashReference<V>`).
#[derive(
    Clone,
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
pub struct ProposalRef(pub VLBytes);

impl ProposalRef {
    /// The reference bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl From<Vec<u8>> for ProposalRef {
    fn from(bytes: Vec<u8>) -> Self {
        Self(VLBytes::new(bytes))
    }
}

/// `ProposalOrRefType` (§12.4): how a Commit names a proposal.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
#[repr(u8)]
pub enum ProposalOrRefType {
    /// `proposal(1)`: by value.
    Proposal = 1,
    /// `reference(2)`: by reference.
    Reference = 2,
}

/// `ProposalOrRef` (§12.4): a proposal covered by a Commit, by value or by reference.
#[derive(
    Clone, Debug, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
#[allow(clippy::large_enum_variant)] // Same trade-off as `Proposal`.
pub enum ProposalOrRef {
    /// `proposal(1)`: the proposal itself.
    #[tls_codec(discriminant = 1)]
    Proposal(Proposal),
    /// `reference(2)`: the `ProposalRef` of a proposal sent earlier in the epoch.
    #[tls_codec(discriminant = 2)]
    Reference(ProposalRef),
}

impl ProposalOrRef {
    /// The `ProposalOrRefType` of this entry.
    pub fn proposal_or_ref_type(&self) -> ProposalOrRefType {
        match self {
            ProposalOrRef::Proposal(_) => ProposalOrRefType::Proposal,
            ProposalOrRef::Reference(_) => ProposalOrRefType::Reference,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_exact, encode, CodecError, ExtensionType};

    #[test]
    fn remove_layout() {
        let proposal = Proposal::remove(0x0102_0304);
        let bytes = encode(&proposal).unwrap();
        assert_eq!(bytes, vec![0, 3, 1, 2, 3, 4]);
        assert_eq!(decode_exact::<Proposal>(&bytes).unwrap(), proposal);
        assert_eq!(proposal.proposal_type(), ProposalType::REMOVE);
    }

    #[test]
    fn reinit_layout() {
        let proposal = Proposal::ReInit(ReInit {
            group_id: vec![0xaa].into(),
            version: ProtocolVersion::MLS10,
            cipher_suite: CipherSuite(3),
            extensions: vec![Extension::new(ExtensionType(0xff00), vec![7])],
        });
        let bytes = encode(&proposal).unwrap();
        assert_eq!(bytes, vec![0, 5, 1, 0xaa, 0, 1, 0, 3, 4, 0xff, 0, 1, 7]);
        assert_eq!(decode_exact::<Proposal>(&bytes).unwrap(), proposal);
    }

    #[test]
    fn unknown_and_reserved_proposal_types_are_refused() {
        // reserved(0), an unassigned value and a GREASE value.
        for proposal_type in [0u16, 8, 0x0a0a] {
            let mut bytes = proposal_type.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[0, 0, 0, 0]);
            assert!(matches!(
                decode_exact::<Proposal>(&bytes),
                Err(CodecError::UnknownValue(_))
            ));
        }
    }

    #[test]
    fn proposal_or_ref_round_trips() {
        let by_ref = ProposalOrRef::Reference(vec![1, 2, 3].into());
        let bytes = encode(&by_ref).unwrap();
        assert_eq!(bytes, vec![2, 3, 1, 2, 3]);
        assert_eq!(decode_exact::<ProposalOrRef>(&bytes).unwrap(), by_ref);
        assert_eq!(by_ref.proposal_or_ref_type(), ProposalOrRefType::Reference);

        let by_value = ProposalOrRef::Proposal(Proposal::ExternalInit(ExternalInit {
            kem_output: vec![9; 3].into(),
        }));
        let bytes = encode(&by_value).unwrap();
        assert_eq!(bytes, vec![1, 0, 6, 3, 9, 9, 9]);
        assert_eq!(decode_exact::<ProposalOrRef>(&bytes).unwrap(), by_value);

        assert!(decode_exact::<ProposalOrRef>(&[0, 0]).is_err());
        assert!(decode_exact::<ProposalOrRef>(&[3, 0]).is_err());
    }

    #[test]
    fn external_sender_rule() {
        assert!(Proposal::remove(1).is_allowed_for_external_sender());
        assert!(!Proposal::ExternalInit(ExternalInit {
            kem_output: VLBytes::new(vec![])
        })
        .is_allowed_for_external_sender());
    }
}
