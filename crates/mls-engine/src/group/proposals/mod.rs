//! Proposals inside a group: the proposals received in an epoch, the validation of the list a
//! Commit covers (RFC 9420 §12.2) and its application to the ratchet tree and GroupContext
//! (§12.3).
//!
//! * [`store`]: [`ProposalStore`], the proposals received in the current epoch by
//!   [`ProposalRef`](crate::codec::ProposalRef), and the resolution of a Commit's
//!   `ProposalOrRef` list into [`ResolvedProposal`]s.
//! * [`validation`]: [`validate_proposal_list`] (every rule of §12.2 for member and external
//!   Commits, each failure its own [`ProposalListError`] variant) and [`filter_proposals`] (the
//!   committer's side: drop what would make the list invalid, as §12.2 and §12.4 advise).
//! * [`apply`]: [`apply_proposals`] in the order of §12.3, returning [`AppliedProposals`];
//!   [`path_required`] (§12.4).
//!
//! Everything here is a pure function of its inputs: the group state machine owns the tree,
//! the GroupContext and the store, and applies proposals to a working copy it discards on
//! error.

pub mod apply;
pub mod store;
pub mod validation;

pub use apply::{
    apply_proposals, path_required, AddedMember, AppliedProposals, ApplyError, RemovedMember,
};
pub use store::{
    CommittedProposal, ProposalStore, ProposalStoreError, ResolvedProposal, StoredProposal,
};
pub use validation::{
    external_commit_removed_leaf, filter_proposals, provisional_requirements,
    validate_proposal_list, DroppedProposal, FilteredProposals, MissingCapability,
    ProposalListError, ProposalValidationContext, PskUsageContext,
};
