//! Why the public view refused something. Each variant names the RFC 9420 check that failed;
//! the view is left exactly as it was whenever one is returned.

use crate::codec::{CodecError, Sender, WireFormat};
use crate::crypto::CipherSuite;
use crate::framing::PublicMessageError;
use crate::group::proposals::{ApplyError, ProposalListError};
use crate::group::GroupError;
use crate::messages::{GroupRequirementsError, KeyPackageValidationError, LeafNodeValidationError};
use crate::tree::{TreeError, TreeKemError, TreeValidationError};

/// A field of a GroupInfo that differs from the public view (see
/// [`super::PublicGroup::check_group_info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupInfoField {
    /// `group_context.version`.
    Version,
    /// `group_context.cipher_suite`.
    CipherSuite,
    /// `group_context.group_id`.
    GroupId,
    /// `group_context.tree_hash`.
    TreeHash,
    /// `group_context.confirmed_transcript_hash`.
    ConfirmedTranscriptHash,
    /// `group_context.extensions`.
    Extensions,
    /// `confirmation_tag`: not the tag of the Commit that started the epoch.
    ConfirmationTag,
    /// The `ratchet_tree` extension: a tree whose hash is not the view's.
    RatchetTree,
}

/// Why [`super::PublicGroup`] refused a message, a GroupInfo or a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicGroupError {
    /// §6: the message is for another group (`group_id` differs).
    #[error("the message is for another group")]
    WrongGroup,
    /// §6, §12.4.2: the message is not for the current epoch (a Commit must be).
    #[error("the message is for epoch {got}, the group is at epoch {current}")]
    WrongEpoch {
        /// The view's epoch.
        current: u64,
        /// The message's epoch.
        got: u64,
    },
    /// The message's wire format or protocol version is not one the view processes.
    #[error("wire format {0:?} not accepted here")]
    UnexpectedWireFormat(WireFormat),
    /// §6: the sender is not a member (blank leaf or outside the tree).
    #[error("unknown sender leaf {0}")]
    UnknownSender(u32),
    /// §12.1.8.1: the external sender index is not in the `external_senders` extension.
    #[error("unknown external sender {0}")]
    UnknownExternalSender(u32),
    /// §6.1, §12.1.8: this sender type may not send this content.
    #[error("sender {0:?} may not send this content")]
    UnexpectedSender(Sender),
    /// §6.1: the signature does not verify under the sender's key.
    #[error("bad signature")]
    BadSignature,
    /// §6.2: the framing of a PublicMessage is invalid for another reason (a member's message
    /// without a membership tag, a non-member's with one, a confirmation tag on a proposal,
    /// application data in a PublicMessage).
    #[error("invalid PublicMessage: {0}")]
    Framing(PublicMessageError),
    /// §12.4.2: a proposal reference of the Commit is not a proposal received in this epoch.
    #[error("unknown proposal reference")]
    UnknownProposalRef,
    /// §12.4.2: the Commit needs an UpdatePath and has none.
    #[error("the commit requires a path")]
    MissingPath,
    /// §12.2: the proposal list is invalid.
    #[error("invalid proposal list: {0}")]
    InvalidProposalList(#[from] ProposalListError),
    /// §12.3: the proposal list could not be applied.
    #[error("proposals could not be applied: {0}")]
    ApplyProposals(#[from] ApplyError),
    /// §7.3: a LeafNode (an Update's, the UpdatePath's) is invalid.
    #[error("invalid leaf node: {0}")]
    InvalidLeafNode(#[from] LeafNodeValidationError),
    /// §10.1: an Add's KeyPackage is invalid.
    #[error("invalid key package: {0}")]
    InvalidKeyPackage(#[from] KeyPackageValidationError),
    /// §11.1, §12.1.7: GroupContext extensions (of a GroupContextExtensions proposal, or
    /// of the GroupInfo) are invalid or not supported as required.
    #[error("invalid group context extensions: {0}")]
    InvalidGroupContextExtensions(#[from] GroupRequirementsError),
    /// The GroupInfo's cipher suite is not one the crypto provider implements, or differs
    /// from the tree's.
    #[error("cipher suite 0x{:04x} is not usable here", .0 .0)]
    CipherSuite(CipherSuite),
    /// §7.5, §7.9.2, §12.4.2: the UpdatePath does not fit the tree (length, ciphertext
    /// counts, keys already in use, parent hash of the new leaf).
    #[error("invalid update path: {0}")]
    InvalidPath(#[from] TreeKemError),
    /// §7.9.2, §12.4.3.1: the ratchet tree of a GroupInfo is invalid.
    #[error("invalid ratchet tree: {0}")]
    InvalidTree(#[from] TreeValidationError),
    /// §12.4.3.1: no `ratchet_tree` extension in the GroupInfo and no tree given.
    #[error("no ratchet tree available")]
    MissingRatchetTree,
    /// §12.4.3.1: the GroupInfo's signer leaf is blank or outside the tree.
    #[error("unknown GroupInfo signer {0}")]
    UnknownGroupInfoSigner(u32),
    /// §12.4.3.1: the GroupInfo signature does not verify under its signer's leaf.
    #[error("bad GroupInfo signature")]
    BadGroupInfoSignature,
    /// The GroupInfo is for another epoch than the view's.
    #[error("the GroupInfo is for epoch {got}, the group is at epoch {current}")]
    GroupInfoWrongEpoch {
        /// The view's epoch.
        current: u64,
        /// The GroupInfo's epoch.
        got: u64,
    },
    /// The GroupInfo does not describe the view's epoch: this field differs.
    #[error("the GroupInfo's {0:?} differs from the group's")]
    GroupInfoMismatch(GroupInfoField),
    /// A staged Commit or an observed proposal of another epoch (or group) was applied: the
    /// view has moved on since it was processed.
    #[error("observed in epoch {observed}, the group is at epoch {current}")]
    StaleObservation {
        /// The view's epoch.
        current: u64,
        /// The epoch the observation was made in.
        observed: u64,
    },
    /// §11.2, §12.1.5: a ReInit was committed; the group accepts no further messages.
    #[error("the group was reinitialised; it is closed")]
    ReInitCommitted,
    /// draft-ietf-mls-extensions-08 §4.9: the group uses SafeAAD and the message's
    /// `authenticated_data` does not start with a well-formed, sorted `SafeAAD`.
    #[error(transparent)]
    SafeAad(#[from] crate::extensions::SafeAadError),
    /// The Welcome's cipher suite or its `new_member` entries do not match the Commit's Adds
    /// (§12.4.3.1: one `EncryptedGroupSecrets` per new member).
    #[error("the Welcome's recipients do not match the commit's Adds")]
    WelcomeMismatch,
    /// The encoded message is larger than the limit given.
    #[error("message of {size} octets exceeds the limit of {max}")]
    MessageTooLarge {
        /// The message's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The serialised view has an unknown format version.
    #[error("unknown public state format version {0}")]
    UnknownStateVersion(u16),
    /// The serialised view is malformed.
    #[error("malformed public state: {0}")]
    MalformedState(&'static str),
    /// Encoding or decoding failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A ratchet tree operation failed.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// Another failure of the engine (cryptography, an extension payload, a transcript hash).
    #[error(transparent)]
    Engine(GroupError),
}

impl From<PublicMessageError> for PublicGroupError {
    fn from(e: PublicMessageError) -> Self {
        GroupError::from(e).into()
    }
}

impl From<GroupError> for PublicGroupError {
    fn from(e: GroupError) -> Self {
        match e {
            GroupError::WrongGroup => Self::WrongGroup,
            GroupError::StaleEpoch { current, message }
            | GroupError::FutureEpoch { current, message } => Self::WrongEpoch {
                current,
                got: message,
            },
            GroupError::UnexpectedWireFormat(w) => Self::UnexpectedWireFormat(w),
            GroupError::UnknownSender(leaf) => Self::UnknownSender(leaf),
            GroupError::UnknownExternalSender(i) => Self::UnknownExternalSender(i),
            GroupError::UnexpectedSender(s) => Self::UnexpectedSender(s),
            GroupError::BadSignature => Self::BadSignature,
            GroupError::PublicMessage(e) => Self::Framing(e),
            GroupError::BadMembershipTag => Self::Framing(PublicMessageError::MissingMembershipTag),
            GroupError::ApplicationDataInPublicMessage => {
                Self::Framing(PublicMessageError::ApplicationData)
            }
            GroupError::UnknownProposalRef => Self::UnknownProposalRef,
            GroupError::MissingPath => Self::MissingPath,
            GroupError::InvalidProposalList(e) => Self::InvalidProposalList(e),
            GroupError::ApplyProposals(e) => Self::ApplyProposals(e),
            GroupError::InvalidLeafNode(e) => Self::InvalidLeafNode(e),
            GroupError::InvalidKeyPackage(e) => Self::InvalidKeyPackage(e),
            GroupError::TreeKem(e) => Self::InvalidPath(e),
            GroupError::InvalidTree(e) => Self::InvalidTree(e),
            GroupError::MissingRatchetTree => Self::MissingRatchetTree,
            GroupError::UnknownGroupInfoSigner(i) => Self::UnknownGroupInfoSigner(i),
            GroupError::BadGroupInfoSignature => Self::BadGroupInfoSignature,
            GroupError::Codec(e) => Self::Codec(e),
            GroupError::Tree(e) => Self::Tree(e),
            GroupError::ReInitCommitted => Self::ReInitCommitted,
            GroupError::SafeAad(e) => Self::SafeAad(e),
            GroupError::Requirements(e) => Self::InvalidGroupContextExtensions(e),
            GroupError::CipherSuiteMismatch(suite)
            | GroupError::Crypto(crate::crypto::CryptoError::UnsupportedCipherSuite(suite)) => {
                Self::CipherSuite(suite)
            }
            other => Self::Engine(other),
        }
    }
}
