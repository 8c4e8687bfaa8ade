//! The public checks of a received handshake message (RFC 9420 §6, §12.1, §12.4.2): every
//! check that needs the ratchet tree and the GroupContext of the epoch but no secret. A member
//! ([`super::Group::process`], [`super::Group::follow_external_commit`]) and an observer
//! without private keys ([`super::PublicGroup::process`]) run exactly these functions; the
//! member then adds what needs its secrets (membership tag, path decryption, key schedule,
//! confirmation tag).
//!
//! * [`sender_signature_key`]: the key a PublicMessage's sender signs with (§6.1).
//! * [`check_received_proposal`]: a proposal received on its own (§12.1).
//! * [`check_commit`]: a Commit's proposal list (§12.2), its application (§12.3), the
//!   UpdatePath's leaf (§7.3) and path (§7.5, parent hashes, §7.9.2), the new tree hash and the
//!   confirmed transcript hash (§8.2).

use tls_codec::VLBytes;

use super::config::{GroupConfig, Services};
use super::error::GroupError;
use super::proposal_list::{
    apply_to_next_epoch, external_commit_removed_leaf, path_required, provisional_requirements,
    validate_proposal_list, validation_context, ResolvedProposal,
};
use super::proposals::{AppliedProposals, ProposalListError};
use super::state::leaf_validation;
use crate::codec::{
    AuthenticatedContent, ExtensionPayload as _, ExternalSendersExtension, FramedContentBody,
    GroupContext, Proposal, ProposalOrRef, ProposalRef, Sender,
};
use crate::crypto::SuiteProvider;
use crate::framing::UnverifiedPublicMessage;
use crate::messages::{
    validate_key_package, validate_leaf_node, GroupRequirements, KeyPackageValidationContext,
    LeafNodeOrigin,
};
use crate::schedule::{confirmed_transcript_hash, confirmed_transcript_hash_input};
use crate::tree::{merge_update_path, LeafIndex, RatchetTree};

/// One epoch of a group as the public checks see it: the policy, the GroupContext, the
/// ratchet tree and the interim transcript hash.
#[derive(Clone, Copy)]
pub(crate) struct EpochView<'a> {
    /// The policy (lifetime checks).
    pub(crate) config: GroupConfig,
    /// The epoch's GroupContext.
    pub(crate) context: &'a GroupContext,
    /// The epoch's ratchet tree.
    pub(crate) tree: &'a RatchetTree,
    /// The epoch's interim transcript hash.
    pub(crate) interim_transcript_hash: &'a [u8],
}

/// A Commit that passed every public check: the next epoch's tree and GroupContext.
#[derive(Debug, Clone)]
pub(crate) struct CheckedCommit {
    /// The proposals the Commit covers, resolved, in Commit order.
    pub(crate) proposals: Vec<ResolvedProposal>,
    /// What applying them changed (§12.3).
    pub(crate) applied: AppliedProposals,
    /// The next epoch's ratchet tree: proposals applied and the UpdatePath merged.
    pub(crate) tree: RatchetTree,
    /// The provisional GroupContext (§12.4.1): epoch + 1, new extensions and tree hash, the
    /// previous confirmed transcript hash. The path secrets are encrypted under it.
    pub(crate) provisional_context: GroupContext,
    /// The next epoch's GroupContext: the provisional one with the new confirmed transcript
    /// hash.
    pub(crate) context: GroupContext,
    /// The committer's leaf in the new tree (an external joiner's is the leftmost blank
    /// leaf of the provisional tree).
    pub(crate) committer: LeafIndex,
    /// Whether it is an external commit (`new_member_commit` sender, §12.4.3.2).
    pub(crate) external: bool,
}

/// The signature key of the sender of a PublicMessage of the epoch of `context` and `tree`
/// (§6.1): a member's leaf, an `external_senders` entry (§12.1.8.1), the KeyPackage of a
/// `new_member_proposal` Add, the UpdatePath leaf of a `new_member_commit`.
pub(crate) fn sender_signature_key(
    context: &GroupContext,
    tree: &RatchetTree,
    unverified: &UnverifiedPublicMessage<'_>,
) -> Result<Vec<u8>, GroupError> {
    match unverified.sender() {
        Sender::Member(leaf) => member_signature_key(tree, leaf),
        Sender::External(index) => external_sender_key(context, index),
        Sender::NewMemberProposal => match &unverified.content().body {
            FramedContentBody::Proposal(Proposal::Add(add)) => {
                Ok(add.key_package.leaf_node.signature_key.as_slice().to_vec())
            }
            _ => Err(GroupError::UnexpectedSender(Sender::NewMemberProposal)),
        },
        Sender::NewMemberCommit => match &unverified.content().body {
            FramedContentBody::Commit(commit) => Ok(commit
                .path
                .as_ref()
                .ok_or(GroupError::MissingPath)?
                .leaf_node
                .signature_key
                .as_slice()
                .to_vec()),
            _ => Err(GroupError::UnexpectedSender(Sender::NewMemberCommit)),
        },
    }
}

/// The signature key of the member at `leaf` (§6: a blank or absent leaf is no member).
pub(crate) fn member_signature_key(tree: &RatchetTree, leaf: u32) -> Result<Vec<u8>, GroupError> {
    tree.leaf(LeafIndex(leaf))
        .map(|l| l.signature_key.as_slice().to_vec())
        .ok_or(GroupError::UnknownSender(leaf))
}

/// The signature key of the `external` sender `index` (§12.1.8.1).
pub(crate) fn external_sender_key(
    context: &GroupContext,
    index: u32,
) -> Result<Vec<u8>, GroupError> {
    let senders = ExternalSendersExtension::find_in(&context.extensions)?
        .ok_or(GroupError::UnknownExternalSender(index))?;
    senders
        .external_senders
        .get(index as usize)
        .map(|s| s.signature_key.as_slice().to_vec())
        .ok_or(GroupError::UnknownExternalSender(index))
}

/// The group requirements (§11.1) in force once `proposals` are applied: those of a
/// GroupContextExtensions proposal among them, else those of `context`.
pub(crate) fn requirements_after(
    context: &GroupContext,
    proposals: &[ResolvedProposal],
) -> Result<GroupRequirements, GroupError> {
    let extensions = proposals
        .iter()
        .find_map(|i| match &i.proposal {
            Proposal::GroupContextExtensions(g) => Some(&g.extensions),
            _ => None,
        })
        .unwrap_or(&context.extensions);
    Ok(GroupRequirements::from_group_context_extensions(
        extensions,
    )?)
}

/// The checks on a proposal received on its own (§12.1): an Update's leaf (§7.3), an Add's
/// KeyPackage (§10.1), a GroupContextExtensions' requirements, a Remove's target; an
/// ExternalInit never travels alone.
pub(crate) fn check_received_proposal(
    cs: &dyn SuiteProvider,
    services: &Services<'_>,
    view: &EpochView<'_>,
    sender: Sender,
    proposal: &Proposal,
    now: u64,
) -> Result<(), GroupError> {
    let EpochView {
        config,
        context,
        tree,
        ..
    } = *view;
    match proposal {
        Proposal::Update(update) => {
            let Sender::Member(leaf) = sender else {
                return Err(GroupError::UnexpectedSender(sender));
            };
            let replaced = tree
                .leaf(LeafIndex(leaf))
                .ok_or(GroupError::UnknownSender(leaf))?;
            let requirements = requirements_after(context, &[])?;
            let members = tree.member_credential_types(&[LeafIndex(leaf)]);
            let ctx = leaf_validation(
                &config,
                services.identity,
                &requirements,
                &members,
                tree,
                now,
            );
            validate_leaf_node(
                cs,
                &update.leaf_node,
                LeafNodeOrigin::Update {
                    group_id: context.group_id.as_slice(),
                    leaf_index: leaf,
                    replaced,
                },
                &ctx,
            )?;
        }
        Proposal::Add(add) => {
            let requirements = requirements_after(context, &[])?;
            let members = tree.member_credential_types(&[]);
            let ctx = leaf_validation(
                &config,
                services.identity,
                &requirements,
                &members,
                tree,
                now,
            );
            validate_key_package(cs, &add.key_package, &KeyPackageValidationContext::new(ctx))?;
        }
        Proposal::Remove(remove) => {
            if tree.leaf(LeafIndex(remove.removed)).is_none() {
                return Err(ProposalListError::RemoveOfBlankLeaf {
                    index: 0,
                    removed: remove.removed,
                }
                .into());
            }
        }
        Proposal::GroupContextExtensions(_) => {
            requirements_after(
                context,
                &[ResolvedProposal::by_value(sender, proposal.clone())],
            )?;
        }
        Proposal::ExternalInit(_) => {
            return Err(ProposalListError::ExternalInitInMemberCommit { index: 0 }.into())
        }
        Proposal::PreSharedKey(_) | Proposal::ReInit(_) => {}
    }
    Ok(())
}

/// The Commit's `ProposalOrRef` list resolved (§12.4.2): proposals by value are the
/// committer's, references are looked up with `stored` (the proposals received in this
/// epoch); an unknown reference is [`GroupError::UnknownProposalRef`].
pub(crate) fn resolve_proposals(
    committer: Sender,
    entries: &[ProposalOrRef],
    stored: impl Fn(&ProposalRef) -> Option<ResolvedProposal>,
) -> Result<Vec<ResolvedProposal>, GroupError> {
    entries
        .iter()
        .map(|entry| match entry {
            ProposalOrRef::Proposal(p) => Ok(ResolvedProposal::by_value(committer, p.clone())),
            ProposalOrRef::Reference(r) => stored(r).ok_or(GroupError::UnknownProposalRef),
        })
        .collect()
}

/// Every public check of a received Commit `auth` (already authenticated: its signature
/// verified) of the epoch `view` (§12.4.2): the committer's sender type; the proposal list
/// (§12.2, by-reference entries resolved with `stored`); its application (§12.3); the path
/// rule (§12.4); the UpdatePath's LeafNode (§7.3, as a `commit` leaf of the committer's
/// index) and the path itself (shape, fresh keys, parent hashes, merged into the tree, §7.5,
/// §7.9.2); the new tree hash; the confirmed transcript hash (§8.2). Nothing of `view` is
/// changed. Not checked here (needs the epoch's secrets): the membership tag, the path
/// secrets, the PSKs, the confirmation tag.
pub(crate) fn check_commit(
    cs: &dyn SuiteProvider,
    services: &Services<'_>,
    view: &EpochView<'_>,
    auth: &AuthenticatedContent,
    stored: impl Fn(&ProposalRef) -> Option<ResolvedProposal>,
    now: u64,
) -> Result<CheckedCommit, GroupError> {
    let FramedContentBody::Commit(commit) = &auth.content.body else {
        return Err(GroupError::UnexpectedSender(auth.content.sender));
    };
    let sender = auth.content.sender;
    let external = match sender {
        Sender::Member(_) => false,
        Sender::NewMemberCommit => true,
        _ => return Err(GroupError::UnexpectedSender(sender)),
    };
    let proposals = resolve_proposals(sender, &commit.proposals, stored)?;
    let validation = validation_context(
        cs,
        services,
        &view.config,
        view.context,
        view.tree,
        commit.path.as_ref().map(|p| &p.leaf_node),
        now,
    );
    validate_proposal_list(&validation, sender, &proposals)?;
    let requirements = provisional_requirements(&validation, &proposals)?;
    let (mut tree, applied, mut provisional_context) =
        apply_to_next_epoch(cs, view.tree, view.context, &proposals)?;
    let committer = match sender {
        Sender::Member(leaf) => LeafIndex(leaf),
        _ => tree.leftmost_blank_leaf()?,
    };
    match &commit.path {
        None if external || path_required(&proposals) => return Err(GroupError::MissingPath),
        None => {}
        Some(path) => {
            let replaced = if external {
                external_commit_removed_leaf(view.tree, &proposals).map(|(_, leaf)| leaf)
            } else {
                view.tree.leaf(committer)
            };
            let members = tree.member_credential_types(&[committer]);
            let ctx = leaf_validation(
                &view.config,
                services.identity,
                &requirements,
                &members,
                &tree,
                now,
            );
            validate_leaf_node(
                cs,
                &path.leaf_node,
                LeafNodeOrigin::Commit {
                    group_id: view.context.group_id.as_slice(),
                    leaf_index: committer.0,
                    replaced,
                },
                &ctx,
            )?;
            let excluded: Vec<LeafIndex> = applied.added.iter().map(|a| a.leaf_index).collect();
            merge_update_path(cs, &mut tree, committer, path, &excluded)?;
        }
    }
    provisional_context.tree_hash = VLBytes::new(tree.tree_hash(cs)?);
    let confirmed = confirmed_transcript_hash(
        cs,
        view.interim_transcript_hash,
        &confirmed_transcript_hash_input(auth)?,
    );
    let mut context = provisional_context.clone();
    context.confirmed_transcript_hash = VLBytes::new(confirmed);
    Ok(CheckedCommit {
        proposals,
        applied,
        tree,
        provisional_context,
        context,
        committer,
        external,
    })
}

impl CheckedCommit {
    /// The leaves the Commit adds (their path secrets are not encrypted to them, §12.4.1).
    pub(crate) fn added_leaves(&self) -> Vec<LeafIndex> {
        self.applied.added.iter().map(|a| a.leaf_index).collect()
    }
}
