//! The state machine's bridge to [`super::proposals`] (RFC 9420 §12.2, §12.3): building the
//! [`ProposalValidationContext`] of a group (or of a GroupInfo, for an external joiner) from
//! the group's policy and services.

use super::config::{GroupConfig, Services};
use crate::codec::{GroupContext, LeafNode};
use crate::crypto::SuiteProvider;
use crate::tree::RatchetTree;

use super::proposals::{AppliedProposals, ApplyError, CommittedProposal};

pub(crate) use super::proposals::{
    apply_proposals, external_commit_removed_leaf, filter_proposals, path_required,
    provisional_requirements, validate_proposal_list, ProposalValidationContext, ResolvedProposal,
};

/// The §12.2 validation context of the epoch described by `context` and `tree`.
pub(crate) fn validation_context<'a>(
    cs: &'a dyn SuiteProvider,
    services: &Services<'a>,
    config: &GroupConfig,
    context: &'a GroupContext,
    tree: &'a RatchetTree,
    commit_leaf: Option<&'a LeafNode>,
    now: u64,
) -> ProposalValidationContext<'a> {
    let mut ctx = ProposalValidationContext::new(
        cs,
        context.group_id.as_slice(),
        &context.extensions,
        tree,
        services.identity,
        now,
    );
    ctx.version = context.version;
    ctx = ctx.with_lifetime_check(config.lifetime_check(now));
    if let Some(max) = config.max_lifetime {
        ctx = ctx.with_max_lifetime(max);
    }
    if let Some(leaf) = commit_leaf {
        ctx = ctx.with_commit_leaf(leaf);
    }
    ctx
}

/// The next epoch's tree and GroupContext, before any UpdatePath: `proposals` applied in §12.3
/// order to copies of `tree` and `context`'s extensions, the epoch counted up. The caller
/// merges the path and sets the tree hash; `tree` and `context` are left as they are.
pub(crate) fn apply_to_next_epoch<P: CommittedProposal>(
    cs: &dyn SuiteProvider,
    tree: &RatchetTree,
    context: &GroupContext,
    proposals: &[P],
) -> Result<(RatchetTree, AppliedProposals, GroupContext), ApplyError> {
    let mut next_tree = tree.clone();
    let mut extensions = context.extensions.clone();
    let applied = apply_proposals(cs, &mut next_tree, &mut extensions, proposals)?;
    let next_context = GroupContext {
        epoch: context.epoch + 1,
        extensions,
        ..context.clone()
    };
    Ok((next_tree, applied, next_context))
}
