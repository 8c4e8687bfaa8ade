//! The state machine's bridge to [`super::proposals`] (RFC 9420 §12.2, §12.3): building the
//! [`ProposalValidationContext`] of a group (or of a GroupInfo, for an external joiner) from
//! the group's policy and services.

use super::config::{GroupConfig, Services};
use crate::codec::{GroupContext, LeafNode};
use crate::crypto::SuiteProvider;
use crate::messages::LifetimeCheck;
use crate::tree::RatchetTree;

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
    if !config.check_lifetimes {
        ctx = ctx.with_lifetime_check(LifetimeCheck::Skip);
    }
    if let Some(max) = config.max_lifetime {
        ctx = ctx.with_max_lifetime(max);
    }
    if let Some(leaf) = commit_leaf {
        ctx = ctx.with_commit_leaf(leaf);
    }
    ctx
}
