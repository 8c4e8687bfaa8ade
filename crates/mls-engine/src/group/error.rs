//! Errors of the group state machine. Each variant names the RFC 9420 check that failed; the
//! group state is left exactly as it was whenever one is returned from processing.

use crate::codec::{
    CodecError, ExtensionPayloadError, PreSharedKeyID, Sender, SignatureError, WireFormat,
};
use crate::crypto::{CipherSuite, CryptoError};
use crate::framing::{PrivateMessageError, PublicMessageError};
use crate::messages::{
    CreationError, GroupRequirementsError, KeyPackageValidationError, LeafNodeValidationError,
};
use crate::schedule::{KeyScheduleError, PskError, SecretTreeError, TranscriptError};
use crate::tree::{LeafIndex, TreeError, TreeKemError, TreeValidationError};
use crate::welcome::WelcomeError;

use super::proposals::{ApplyError, ProposalListError};

/// Why a group operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// §6: the message is for another group (`group_id` differs).
    #[error("the message is for another group")]
    WrongGroup,
    /// §6: the message is for an epoch older than the current one (and not a retained one).
    #[error("stale epoch {message} (current epoch {current})")]
    StaleEpoch {
        /// The group's epoch.
        current: u64,
        /// The message's epoch.
        message: u64,
    },
    /// §6: the message is for an epoch the group has not reached.
    #[error("future epoch {message} (current epoch {current})")]
    FutureEpoch {
        /// The group's epoch.
        current: u64,
        /// The message's epoch.
        message: u64,
    },
    /// §6.1: the signature does not verify under the sender's key.
    #[error("bad signature")]
    BadSignature,
    /// §6.2: the membership tag does not verify.
    #[error("bad membership tag")]
    BadMembershipTag,
    /// §6.1, §12.4.2: the commit's confirmation tag does not match the new epoch's.
    #[error("bad confirmation tag")]
    BadConfirmationTag,
    /// §6: the sender is not a member (blank leaf or outside the tree).
    #[error("unknown sender leaf {0}")]
    UnknownSender(u32),
    /// §12.1.8.1: the external sender index is not in the `external_senders` extension.
    #[error("unknown external sender {0}")]
    UnknownExternalSender(u32),
    /// §12.4.2: the commit needs an UpdatePath and has none.
    #[error("the commit requires a path")]
    MissingPath,
    /// §12.4.2: a proposal reference of the commit is not a proposal received in this epoch.
    #[error("unknown proposal reference")]
    UnknownProposalRef,
    /// §12.2: the proposal list is invalid.
    #[error("invalid proposal list: {0}")]
    InvalidProposalList(#[from] ProposalListError),
    /// §12.3: the proposal list could not be applied.
    #[error("proposals could not be applied: {0}")]
    ApplyProposals(#[from] ApplyError),
    /// §7.9.2, §12.4.3.1: the ratchet tree is invalid.
    #[error("invalid ratchet tree: {0}")]
    InvalidTree(#[from] TreeValidationError),
    /// §7.3: a LeafNode is invalid.
    #[error("invalid leaf node: {0}")]
    InvalidLeafNode(#[from] LeafNodeValidationError),
    /// §10.1: a KeyPackage is invalid.
    #[error("invalid key package: {0}")]
    InvalidKeyPackage(#[from] KeyPackageValidationError),
    /// §12.4.3.1: a Welcome could not be processed.
    #[error("welcome: {0}")]
    Welcome(#[from] WelcomeError),
    /// §12.4.3.1: no ratchet tree in the GroupInfo and none given.
    #[error("no ratchet tree available")]
    MissingRatchetTree,
    /// §12.4.3.1: our KeyPackage's leaf is not in the tree.
    #[error("our leaf is not in the ratchet tree")]
    OwnLeafNotInTree,
    /// §12.4.3.2: the GroupInfo carries no `external_pub` extension.
    #[error("no external_pub in the GroupInfo")]
    MissingExternalPub,
    /// §12.4.3.1: the GroupInfo's signer leaf is blank or outside the tree.
    #[error("unknown GroupInfo signer {0}")]
    UnknownGroupInfoSigner(u32),
    /// §12.4.3.1: the GroupInfo signature does not verify.
    #[error("bad GroupInfo signature")]
    BadGroupInfoSignature,
    /// §8.4: a PSK the message needs is not available.
    #[error("PSK not available: {0:?}")]
    MissingPsk(Box<PreSharedKeyID>),
    /// The message's wire format is not one `process` handles, or is refused by policy.
    #[error("wire format {0:?} not accepted here")]
    UnexpectedWireFormat(WireFormat),
    /// A Commit or Update from our own leaf that is not our pending commit (design hook H2 is
    /// not supported by this entry point).
    #[error("a commit or update from our own leaf that we did not create")]
    OwnLeafMessage,
    /// The own-leaf resolver (design hook H2) failed on a commit, Update or external commit
    /// from our own leaf; its error is inside.
    #[error("own-leaf resolver: {0}")]
    OwnLeafResolver(crate::hook::HookError),
    /// §12.4.1, §12.4.3.1: a Welcome without a `path_secret` although the committer's path
    /// covers our leaf (our common ancestor with the committer is set and does not list us
    /// as unmerged).
    #[error("the Welcome lacks the path_secret of the committer's path")]
    MissingPathSecret,
    /// Following an external commit of our own leaf (design hook H2 for external commits):
    /// its ExternalInit `kem_output` is not the one the given ephemeral seed produces.
    #[error("the external commit's ExternalInit was not made from the given ephemeral seed")]
    ExternalInitMismatch,
    /// §12.4.2: the committer removes itself, or the commit removes us (we are no longer a
    /// member and the group is inactive).
    #[error("we are not a member of the group any more")]
    NotAMember,
    /// §12.1.5: a ReInit was committed; the group accepts no further messages.
    #[error("the group was reinitialised; it is closed")]
    ReInitCommitted,
    /// `merge_pending_commit` without a pending commit.
    #[error("no pending commit")]
    NoPendingCommit,
    /// A commit was created while another one is pending.
    #[error("a commit is already pending")]
    CommitPending,
    /// The message's cipher suite is not the group's.
    #[error("cipher suite 0x{:04x} is not the group's", .0 .0)]
    CipherSuiteMismatch(CipherSuite),
    /// This client cannot send this proposal this way (an Update needs `propose_update`; an
    /// ExternalInit only travels in an external commit).
    #[error("leaf {0} cannot send this proposal this way")]
    InvalidSender(LeafIndex),
    /// §6.1, §12.1.8: this sender type may not send this content.
    #[error("sender {0:?} may not send this content")]
    UnexpectedSender(Sender),
    /// Application data may only arrive in a PrivateMessage (§6.2).
    #[error("application data in a PublicMessage")]
    ApplicationDataInPublicMessage,
    /// The encoded message is larger than the group's `max_message_size`.
    #[error("message of {size} octets exceeds the limit of {max}")]
    MessageTooLarge {
        /// The message's size.
        size: usize,
        /// The limit.
        max: u32,
    },
    /// The serialised state has an unknown format version.
    #[error("unknown state format version {0}")]
    UnknownStateVersion(u16),
    /// The serialised state is malformed.
    #[error("malformed group state: {0}")]
    MalformedState(&'static str),
    /// §12.1: a GroupContextExtensions proposal (or the initial extensions) are invalid.
    #[error("invalid group context extensions: {0}")]
    Requirements(#[from] GroupRequirementsError),
    /// An extension payload did not decode.
    #[error(transparent)]
    ExtensionPayload(#[from] ExtensionPayloadError),
    /// PublicMessage protection or checks failed for another reason.
    #[error(transparent)]
    PublicMessage(PublicMessageError),
    /// PrivateMessage protection or checks failed for another reason.
    #[error(transparent)]
    PrivateMessage(PrivateMessageError),
    /// Signing failed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// TreeKEM failed (path length, decryption, key mismatch...).
    #[error(transparent)]
    TreeKem(#[from] TreeKemError),
    /// A ratchet tree operation failed.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The key schedule failed.
    #[error(transparent)]
    KeySchedule(KeyScheduleError),
    /// The transcript hash failed.
    #[error(transparent)]
    Transcript(#[from] TranscriptError),
    /// The secret tree failed.
    #[error(transparent)]
    SecretTree(#[from] SecretTreeError),
    /// PSK derivation failed.
    #[error(transparent)]
    Psk(#[from] PskError),
    /// A leaf or KeyPackage could not be created.
    #[error(transparent)]
    Creation(#[from] CreationError),
    /// Encoding or decoding failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A cryptographic operation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// draft-ietf-mls-extensions-08 §4.4 (design hook H5): the component ID has no Exporter
    /// Tree leaf (>= 2^16), or its secret was already consumed in this epoch.
    #[error(transparent)]
    SafeExport(#[from] crate::extensions::ExporterError),
    /// draft-ietf-mls-extensions-08 §4.9 (design hook H6): the group requires SafeAAD (the
    /// `safe_aad` component is in the GroupContext's `app_data_dictionary`) and a message's
    /// `authenticated_data` does not start with a well-formed, sorted `SafeAAD`; or a SafeAAD
    /// we were asked to send is misordered.
    #[error(transparent)]
    SafeAad(#[from] crate::extensions::SafeAadError),
    /// draft-ietf-mls-extensions-08 §4.9: SafeAAD items were given for a message of a group
    /// whose GroupContext does not have the `safe_aad` component, so receivers would not read
    /// them as SafeAAD.
    #[error("SafeAAD is not in use in this group (no safe_aad component in the GroupContext)")]
    SafeAadNotInUse,
    /// draft-ietf-mls-extensions-08 §4.6: an `app_data_dictionary` extension is malformed
    /// (undecodable, unsorted or with two entries for one component).
    #[error(transparent)]
    AppData(#[from] crate::extensions::AppDataError),
}

impl From<PublicMessageError> for GroupError {
    fn from(e: PublicMessageError) -> Self {
        match e {
            PublicMessageError::WrongGroupId => GroupError::WrongGroup,
            PublicMessageError::WrongEpoch { expected, actual } if actual < expected => {
                GroupError::StaleEpoch {
                    current: expected,
                    message: actual,
                }
            }
            PublicMessageError::WrongEpoch { expected, actual } => GroupError::FutureEpoch {
                current: expected,
                message: actual,
            },
            PublicMessageError::InvalidSignature => GroupError::BadSignature,
            PublicMessageError::InvalidMembershipTag | PublicMessageError::MissingMembershipTag => {
                GroupError::BadMembershipTag
            }
            PublicMessageError::ApplicationData => GroupError::ApplicationDataInPublicMessage,
            other => GroupError::PublicMessage(other),
        }
    }
}

impl From<PrivateMessageError> for GroupError {
    fn from(e: PrivateMessageError) -> Self {
        match e {
            PrivateMessageError::WrongGroupId => GroupError::WrongGroup,
            PrivateMessageError::WrongEpoch { expected, actual } if actual < expected => {
                GroupError::StaleEpoch {
                    current: expected,
                    message: actual,
                }
            }
            PrivateMessageError::WrongEpoch { expected, actual } => GroupError::FutureEpoch {
                current: expected,
                message: actual,
            },
            PrivateMessageError::InvalidSignature => GroupError::BadSignature,
            PrivateMessageError::UnknownSender(leaf) => GroupError::UnknownSender(leaf),
            other => GroupError::PrivateMessage(other),
        }
    }
}

impl From<KeyScheduleError> for GroupError {
    fn from(e: KeyScheduleError) -> Self {
        match e {
            KeyScheduleError::ConfirmationTagMismatch => GroupError::BadConfirmationTag,
            other => GroupError::KeySchedule(other),
        }
    }
}
