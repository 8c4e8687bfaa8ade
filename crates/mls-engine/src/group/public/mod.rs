//! The public view of a group (RFC 9420 §12.4.2 for a non-member): the ratchet tree's public
//! parts, the GroupContext, the interim transcript hash and the proposals received by
//! reference in the current epoch. No private key, no secret. A delivery service keeps one
//! per group and takes from it, never from a client's claim, the epoch a Commit is for, the
//! sender's membership, the validity of the proposals and of the new tree, and who is added
//! and removed (the model: OpenMLS's `PublicGroup`, mls-rs's `ExternalGroup`).
//!
//! * [`PublicGroup::from_group_info`]: start from a signed GroupInfo and its ratchet tree,
//!   checked as a joiner checks them (§12.4.3.1) except the confirmation tag.
//! * [`PublicGroup::process`]: check a message without changing the view; returns an
//!   [`Observed`]. A member's [`super::Group::process`] runs the same public checks (the
//!   `received` module); only what needs the epoch's secrets is left out: the membership tag
//!   (its presence is checked, not its value), the path secrets, the PSK values and the
//!   confirmation tag. A PrivateMessage yields its cleartext header, unverified.
//! * [`PublicGroup::apply`] / [`PublicGroup::merge`] / [`PublicGroup::store_proposal`]: store
//!   an observed proposal or enter the epoch of a staged Commit.
//! * [`PublicGroup::check_group_info`]: a GroupInfo describes the current epoch of the view.
//! * [`welcome_new_members`]: the `new_member` refs of a Welcome (public data only), to match
//!   against [`StagedPublicCommit::welcome_recipients`].
//! * [`PublicGroup::to_bytes`] / [`PublicGroup::from_bytes`], and the ratchet tree apart from
//!   the rest ([`PublicGroup::hot_state_to_bytes`], [`PublicGroup::export_ratchet_tree`],
//!   [`PublicGroup::from_parts`]).

mod error;
mod group_info;
mod join;
mod observed;
mod process;
mod state_codec;
mod welcome;

pub use error::{GroupInfoField, PublicGroupError};
pub use observed::{
    credential_identity, AddedLeaf, ExternalJoin, Observed, ObservedAad, ObservedProposal,
    ObservedSender, RemovedLeaf, StagedPublicCommit, UnverifiedHeader, UpdatedLeaf,
};
pub use state_codec::PUBLIC_STATE_FORMAT_VERSION;
pub use welcome::{welcome_new_members, welcome_new_members_from_bytes};

use super::config::GroupConfig;
use super::proposals::StoredProposal;
use super::received::EpochView;
use crate::codec::{CipherSuite, Credential, GroupContext, KeyPackageRef, LeafNode, ReInit};
use crate::tree::{LeafIndex, RatchetTree};

/// The checks of a public view that are the application's policy (the rest are the RFC's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicGroupPolicy {
    /// Whether the `key_package` leaves of Adds are checked against `now` (§7.3).
    pub check_lifetimes: bool,
    /// The maximum total lifetime of a `key_package` leaf (§7.2); `None` accepts any.
    pub max_lifetime: Option<u64>,
}

impl Default for PublicGroupPolicy {
    /// Lifetimes checked, any total lifetime: the defaults of a member's
    /// [`GroupConfig`].
    fn default() -> Self {
        let config = GroupConfig::default();
        Self {
            check_lifetimes: config.check_lifetimes,
            max_lifetime: config.max_lifetime,
        }
    }
}

impl PublicGroupPolicy {
    /// The member policy the shared checks read (only the lifetime fields matter).
    fn group_config(&self) -> GroupConfig {
        GroupConfig {
            check_lifetimes: self.check_lifetimes,
            max_lifetime: self.max_lifetime,
            ..GroupConfig::default()
        }
    }
}

/// One member as the public view sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicMember<'a> {
    /// Its leaf.
    pub leaf_index: LeafIndex,
    /// Its credential's identity ([`credential_identity`]).
    pub identity: &'a [u8],
    /// Its signature public key.
    pub signature_key: &'a [u8],
    /// Its credential.
    pub credential: &'a Credential,
    /// Its whole leaf.
    pub leaf_node: &'a LeafNode,
}

/// The public view of one group in one epoch (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicGroup {
    policy: PublicGroupPolicy,
    context: GroupContext,
    tree: RatchetTree,
    interim_transcript_hash: Vec<u8>,
    confirmation_tag: Vec<u8>,
    proposals: Vec<StoredProposal>,
    /// The ReInit committed in the previous epoch, if any: the group is then closed.
    reinit: Option<ReInit>,
}

impl PublicGroup {
    /// The group ID.
    pub fn group_id(&self) -> &[u8] {
        self.context.group_id.as_slice()
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.context.epoch
    }

    /// The cipher suite.
    pub fn cipher_suite(&self) -> CipherSuite {
        self.context.cipher_suite
    }

    /// The GroupContext of the current epoch.
    pub fn group_context(&self) -> &GroupContext {
        &self.context
    }

    /// The tree hash of the current epoch.
    pub fn tree_hash(&self) -> &[u8] {
        self.context.tree_hash.as_slice()
    }

    /// The interim transcript hash of the current epoch (§8.2).
    pub fn interim_transcript_hash(&self) -> &[u8] {
        &self.interim_transcript_hash
    }

    /// The confirmation tag of the Commit (or GroupInfo) that started the epoch, as sent.
    pub fn confirmation_tag(&self) -> &[u8] {
        &self.confirmation_tag
    }

    /// The ratchet tree of the current epoch (public parts only).
    pub fn ratchet_tree(&self) -> &RatchetTree {
        &self.tree
    }

    /// The application's policy.
    pub fn policy(&self) -> PublicGroupPolicy {
        self.policy
    }

    /// Replaces the application's policy (it travels with the state).
    pub fn set_policy(&mut self, policy: PublicGroupPolicy) {
        self.policy = policy;
    }

    /// The members (non-blank leaves), in leaf order.
    pub fn members(&self) -> impl Iterator<Item = PublicMember<'_>> + '_ {
        self.tree.leaves().map(|(leaf_index, leaf)| PublicMember {
            leaf_index,
            identity: credential_identity(&leaf.credential),
            signature_key: leaf.signature_key.as_slice(),
            credential: &leaf.credential,
            leaf_node: leaf,
        })
    }

    /// The member at `leaf`, if that leaf is not blank.
    pub fn member(&self, leaf: LeafIndex) -> Option<PublicMember<'_>> {
        self.tree.leaf(leaf).map(|l| PublicMember {
            leaf_index: leaf,
            identity: credential_identity(&l.credential),
            signature_key: l.signature_key.as_slice(),
            credential: &l.credential,
            leaf_node: l,
        })
    }

    /// The ReInit the last Commit committed, if any (§11.2): the group is closed, and every
    /// message is refused with [`PublicGroupError::ReInitCommitted`].
    pub fn reinit(&self) -> Option<&ReInit> {
        self.reinit.as_ref()
    }

    /// The `KeyPackageRef`s a Welcome for `staged` must be addressed to (see
    /// [`StagedPublicCommit::welcome_recipients`]).
    pub fn welcome_recipients(staged: &StagedPublicCommit) -> Vec<KeyPackageRef> {
        staged.welcome_recipients()
    }

    /// The proposals received in this epoch (by reference, for the next Commit), in order.
    pub fn pending_proposals(&self) -> &[StoredProposal] {
        &self.proposals
    }

    /// Stores, applies or ignores `observed`: a proposal is stored ([`Self::store_proposal`]),
    /// a Commit entered ([`Self::merge`]), a PrivateMessage's header changes nothing.
    pub fn apply(&mut self, observed: Observed) -> Result<(), PublicGroupError> {
        match observed {
            Observed::Proposal(p) => self.store_proposal(p),
            Observed::Commit(c) => self.merge(*c),
            Observed::Unverified(_) => Ok(()),
        }
    }

    /// Stores a proposal [`Self::process`] observed in the current epoch, so that a Commit
    /// may name it by reference (a proposal stored twice is kept once).
    pub fn store_proposal(&mut self, proposal: ObservedProposal) -> Result<(), PublicGroupError> {
        self.check_observed_in(&proposal.group_id, proposal.epoch)?;
        if !self
            .proposals
            .iter()
            .any(|p| p.reference == proposal.reference)
        {
            self.proposals.push(StoredProposal {
                reference: proposal.reference,
                sender: proposal.raw_sender,
                proposal: proposal.proposal,
            });
        }
        Ok(())
    }

    /// Enters the epoch of a Commit [`Self::process`] staged in the current epoch: its tree
    /// and GroupContext replace the view's (no copy: the staged tree is moved in, and it
    /// shares unchanged nodes with the old one), the proposals of the old epoch are dropped.
    pub fn merge(&mut self, staged: StagedPublicCommit) -> Result<(), PublicGroupError> {
        self.check_observed_in(staged.context.group_id.as_slice(), staged.base_epoch)?;
        if staged.base_interim_transcript_hash != self.interim_transcript_hash {
            // Same epoch number, another history: not staged on this view.
            return Err(PublicGroupError::StaleObservation {
                current: self.epoch(),
                observed: staged.base_epoch,
            });
        }
        self.context = staged.context;
        self.tree = staged.tree;
        self.interim_transcript_hash = staged.interim_transcript_hash;
        self.confirmation_tag = staged.confirmation_tag;
        self.reinit = staged.reinit;
        self.proposals.clear();
        Ok(())
    }

    fn check_observed_in(&self, group_id: &[u8], epoch: u64) -> Result<(), PublicGroupError> {
        if group_id != self.group_id() {
            return Err(PublicGroupError::WrongGroup);
        }
        if epoch != self.epoch() {
            return Err(PublicGroupError::StaleObservation {
                current: self.epoch(),
                observed: epoch,
            });
        }
        Ok(())
    }

    /// This epoch as the shared public checks see it.
    fn epoch_view(&self) -> EpochView<'_> {
        EpochView {
            config: self.policy.group_config(),
            context: &self.context,
            tree: &self.tree,
            interim_transcript_hash: &self.interim_transcript_hash,
        }
    }
}
