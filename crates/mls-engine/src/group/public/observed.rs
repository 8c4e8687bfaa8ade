//! What [`super::PublicGroup::process`] observed in a message: who sent it and, for a
//! handshake, what it does. Applying an observation ([`super::PublicGroup::apply`]) stores a
//! proposal or enters the epoch a Commit creates.

use crate::codec::{
    ContentType, Credential, GroupContext, KeyPackageRef, LeafNode, PreSharedKeyID, Proposal,
    ProposalRef, ReInit, Sender,
};
use crate::extensions::SafeAad;
use crate::tree::{LeafIndex, RatchetTree};

/// A message's `authenticated_data`, and the `SafeAAD` at its start when the group uses
/// SafeAAD (draft-ietf-mls-extensions-08 §4.9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedAad {
    /// The whole `authenticated_data`.
    pub authenticated_data: Vec<u8>,
    /// Its `SafeAAD`, when the epoch's GroupContext puts one there (checked well-formed).
    pub safe_aad: Option<SafeAad>,
}

/// The identity a credential names: a basic credential's `identity`, an X.509 credential's
/// end-entity certificate (DER), empty for an X.509 credential without certificates.
pub fn credential_identity(credential: &Credential) -> &[u8] {
    match credential {
        Credential::Basic(identity) => identity.as_slice(),
        Credential::X509(chain) => chain.first().map_or(&[], |c| c.cert_data.as_slice()),
    }
}

/// The authenticated sender of a PublicMessage (§6): whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObservedSender {
    /// A member, at its leaf in the epoch of the message.
    Member {
        /// The member's leaf.
        leaf_index: LeafIndex,
        /// Its credential's identity ([`credential_identity`]).
        identity: Vec<u8>,
    },
    /// An entry of the group's `external_senders` extension (§12.1.8.1).
    External {
        /// Its index in the extension.
        index: u32,
        /// Its credential's identity.
        identity: Vec<u8>,
    },
    /// A new member proposing its own Add (`new_member_proposal`, §12.1.8).
    NewMemberProposal {
        /// The identity of the KeyPackage's credential.
        identity: Vec<u8>,
    },
    /// A new member joining by external commit (`new_member_commit`, §12.4.3.2).
    NewMemberCommit {
        /// The identity of the UpdatePath leaf's credential.
        identity: Vec<u8>,
    },
}

impl ObservedSender {
    /// The sender's identity bytes.
    pub fn identity(&self) -> &[u8] {
        match self {
            Self::Member { identity, .. }
            | Self::External { identity, .. }
            | Self::NewMemberProposal { identity }
            | Self::NewMemberCommit { identity } => identity,
        }
    }

    /// The member's leaf, for a member sender.
    pub fn leaf_index(&self) -> Option<LeafIndex> {
        match self {
            Self::Member { leaf_index, .. } => Some(*leaf_index),
            _ => None,
        }
    }
}

/// A proposal received by itself and validated (§12.1); stored for the Commits of this epoch
/// once applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedProposal {
    pub(super) group_id: Vec<u8>,
    pub(super) epoch: u64,
    pub(super) raw_sender: Sender,
    pub(super) sender: ObservedSender,
    pub(super) reference: ProposalRef,
    pub(super) proposal: Proposal,
    pub(super) aad: ObservedAad,
}

impl ObservedProposal {
    /// The epoch it was sent in.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Its sender.
    pub fn sender(&self) -> &ObservedSender {
        &self.sender
    }

    /// Its `ProposalRef` (§5.2), by which a Commit may name it.
    pub fn reference(&self) -> &ProposalRef {
        &self.reference
    }

    /// The proposal.
    pub fn proposal(&self) -> &Proposal {
        &self.proposal
    }
}

/// A member a Commit adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedLeaf {
    /// The leaf it is placed at.
    pub leaf_index: LeafIndex,
    /// Its credential's identity.
    pub identity: Vec<u8>,
    /// The `KeyPackageRef` of its KeyPackage: the `new_member` of its entry in the Welcome.
    pub key_package_ref: KeyPackageRef,
}

/// A member a Commit removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedLeaf {
    /// The leaf it held.
    pub leaf_index: LeafIndex,
    /// Its credential's identity.
    pub identity: Vec<u8>,
}

/// A member whose leaf a Commit replaces (an Update proposal, or the committer's UpdatePath).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatedLeaf {
    /// The leaf.
    pub leaf_index: LeafIndex,
    /// The identity of its new credential.
    pub identity: Vec<u8>,
}

/// The joiner of an external commit (§12.4.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalJoin {
    /// The leaf it takes.
    pub leaf_index: LeafIndex,
    /// Its credential's identity.
    pub identity: Vec<u8>,
    /// The leaf the commit removes (a resync of the joiner's old leaf), if any.
    pub resync_removed: Option<RemovedLeaf>,
}

/// A Commit that passed every check a non-member can make (§12.4.2): the next epoch's tree and
/// GroupContext, and what changed. Enter it with [`super::PublicGroup::merge`].
///
/// Not checked (it needs the epoch's secrets): the confirmation tag, the encrypted path
/// secrets, the PSKs' values, the membership tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedPublicCommit {
    pub(super) base_epoch: u64,
    pub(super) base_interim_transcript_hash: Vec<u8>,
    pub(super) aad: ObservedAad,
    pub(super) sender: ObservedSender,
    pub(super) added: Vec<AddedLeaf>,
    pub(super) removed: Vec<RemovedLeaf>,
    pub(super) updated: Vec<UpdatedLeaf>,
    pub(super) path_leaf: Option<LeafIndex>,
    pub(super) external: Option<ExternalJoin>,
    pub(super) psks: Vec<PreSharedKeyID>,
    pub(super) reinit: Option<ReInit>,
    pub(super) extensions_changed: bool,
    pub(super) context: GroupContext,
    pub(super) tree: RatchetTree,
    pub(super) interim_transcript_hash: Vec<u8>,
    pub(super) confirmation_tag: Vec<u8>,
}

impl StagedPublicCommit {
    /// The epoch the Commit was for.
    pub fn base_epoch(&self) -> u64 {
        self.base_epoch
    }

    /// The epoch it creates.
    pub fn new_epoch(&self) -> u64 {
        self.context.epoch
    }

    /// The committer.
    pub fn sender(&self) -> &ObservedSender {
        &self.sender
    }

    /// The members it adds, in Commit order.
    pub fn added(&self) -> &[AddedLeaf] {
        &self.added
    }

    /// The members it removes, in Commit order (an external commit's resync removal
    /// included).
    pub fn removed(&self) -> &[RemovedLeaf] {
        &self.removed
    }

    /// The leaves replaced by Update proposals, in Commit order.
    pub fn updated(&self) -> &[UpdatedLeaf] {
        &self.updated
    }

    /// The committer's leaf, if the Commit carries an UpdatePath (its leaf is then new).
    pub fn path_leaf(&self) -> Option<LeafIndex> {
        self.path_leaf
    }

    /// The joiner, if it is an external commit.
    pub fn external_join(&self) -> Option<&ExternalJoin> {
        self.external.as_ref()
    }

    /// Whether it is an external commit.
    pub fn is_external(&self) -> bool {
        self.external.is_some()
    }

    /// The PSKs it injects (their values are not known to the observer).
    pub fn psks(&self) -> &[PreSharedKeyID] {
        &self.psks
    }

    /// The ReInit it commits, if any (§11.2: the group then accepts no further Commits).
    pub fn reinit(&self) -> Option<&ReInit> {
        self.reinit.as_ref()
    }

    /// Whether a GroupContextExtensions proposal replaced the extensions.
    pub fn extensions_changed(&self) -> bool {
        self.extensions_changed
    }

    /// The new epoch's GroupContext.
    pub fn group_context(&self) -> &GroupContext {
        &self.context
    }

    /// The new epoch's tree hash.
    pub fn tree_hash(&self) -> &[u8] {
        self.context.tree_hash.as_slice()
    }

    /// The new epoch's ratchet tree.
    pub fn ratchet_tree(&self) -> &RatchetTree {
        &self.tree
    }

    /// The Commit's confirmation tag (as sent; not verifiable without the epoch's secrets).
    pub fn confirmation_tag(&self) -> &[u8] {
        &self.confirmation_tag
    }

    /// The `KeyPackageRef`s of the Adds: a Welcome for this Commit must have exactly these
    /// `new_member`s (see [`super::welcome_new_members`]).
    pub fn welcome_recipients(&self) -> Vec<KeyPackageRef> {
        self.added
            .iter()
            .map(|a| a.key_package_ref.clone())
            .collect()
    }

    /// The new members' leaves in the new tree (for the roster of the new epoch).
    pub fn new_member_leaves(&self) -> impl Iterator<Item = (LeafIndex, &LeafNode)> + '_ {
        self.added
            .iter()
            .filter_map(|a| self.tree.leaf(a.leaf_index).map(|l| (a.leaf_index, l)))
    }
}

/// The cleartext header of a PrivateMessage (§6.3): all an observer without the epoch's
/// secrets learns. Nothing in it is authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedHeader {
    /// `group_id` (checked to be this group's).
    pub group_id: Vec<u8>,
    /// `epoch` (as claimed; not compared with the view's, which does not follow a group
    /// whose handshakes are encrypted).
    pub epoch: u64,
    /// `content_type`.
    pub content_type: ContentType,
    /// `authenticated_data` (in the clear in a PrivateMessage, and bound to it by its AEAD,
    /// which the observer cannot check). Its `SafeAAD` is parsed, and must be well-formed,
    /// when the message claims the view's epoch and that epoch uses SafeAAD.
    pub aad: ObservedAad,
}

/// What [`super::PublicGroup::process`] observed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // Short-lived; a Commit is boxed.
pub enum Observed {
    /// A validated proposal of the current epoch (PublicMessage).
    Proposal(ObservedProposal),
    /// A Commit of the current epoch that passed every public check (PublicMessage).
    Commit(Box<StagedPublicCommit>),
    /// A PrivateMessage: its cleartext header only, not verified.
    Unverified(UnverifiedHeader),
}

impl Observed {
    /// The content type: Proposal, Commit, or (PrivateMessage) as the header claims.
    pub fn content_type(&self) -> ContentType {
        match self {
            Self::Proposal(_) => ContentType::Proposal,
            Self::Commit(_) => ContentType::Commit,
            Self::Unverified(h) => h.content_type,
        }
    }

    /// The epoch the message is for.
    pub fn epoch(&self) -> u64 {
        match self {
            Self::Proposal(p) => p.epoch,
            Self::Commit(c) => c.base_epoch,
            Self::Unverified(h) => h.epoch,
        }
    }

    /// The authenticated sender; `None` for a PrivateMessage (its sender is encrypted).
    pub fn sender(&self) -> Option<&ObservedSender> {
        match self {
            Self::Proposal(p) => Some(&p.sender),
            Self::Commit(c) => Some(&c.sender),
            Self::Unverified(_) => None,
        }
    }

    /// The message's `authenticated_data` and `SafeAAD`.
    pub fn aad(&self) -> &ObservedAad {
        match self {
            Self::Proposal(p) => &p.aad,
            Self::Commit(c) => &c.aad,
            Self::Unverified(h) => &h.aad,
        }
    }

    /// Whether the message was verified (signature and content): `false` for a
    /// PrivateMessage.
    pub fn is_verified(&self) -> bool {
        !matches!(self, Self::Unverified(_))
    }

    /// The staged Commit, if it is one.
    pub fn commit(&self) -> Option<&StagedPublicCommit> {
        match self {
            Self::Commit(c) => Some(c),
            _ => None,
        }
    }
}
