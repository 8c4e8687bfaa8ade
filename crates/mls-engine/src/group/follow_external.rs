//! Following an external commit made from our own (shared) leaf (RFC 9420 §12.4.3.2 seen from
//! a sibling; design hooks H1 and H2 for external commits).
//!
//! Several clients may act as one leaf (virtual clients). When one of them joins a group by
//! external commit, the others were not members of the epoch the commit is for, so they cannot
//! process it as members do. What they have instead: the GroupInfo the joiner used (and its
//! ratchet tree), the commit and, through the own-leaf resolver ([`super::Services::own_leaf`]),
//! the ephemeral key seed of its ExternalInit
//! ([`super::ExternalCommitOptions::external_init_seed`]), the new leaf's key pair,
//! `path_secret[0]` and signature key.
//! From these [`Group::follow_external_commit`] checks the commit exactly as a member would
//! (framing, signature, proposal list, the new LeafNode, the UpdatePath re-derived key by key,
//! confirmation tag), recomputes `init_secret` from the seed, and returns the group in the
//! new epoch at the new leaf.

use super::config::{resolved, GroupConfig, Services};
use super::create::ExternalStart;
use super::error::GroupError;
use super::process::{check_group_epoch, ReceivedEpoch};
use super::proposal_list::{
    apply_to_next_epoch, external_commit_removed_leaf, provisional_requirements,
    validate_proposal_list, validation_context, ResolvedProposal,
};
use super::state::{leaf_validation, resolve_psk_secret, Group, GroupState};
use crate::codec::{
    FramedContentBody, GroupInfo, MlsMessage, MlsMessageBody, ProposalOrRef, Sender,
};
use crate::crypto::Secret;
use crate::framing::unprotect_public;
use crate::messages::{validate_leaf_node, LeafNodeOrigin};
use crate::schedule::{external_init_secret_sender_derived, ResumptionPskStore};
use crate::tree::{rederive_update_path, OwnPathSecrets, RatchetTree};

impl Group {
    /// Follows `message`, an external commit made from our own leaf by another client sharing
    /// it, into the epoch it creates. `group_info` (and `ratchet_tree` unless the GroupInfo
    /// carries it) describe the epoch the commit is for. `services.own_leaf` must resolve the
    /// commit's new LeafNode: its ExternalInit seed
    /// ([`super::OwnLeafResolver::external_init_seed`]), key pair, `path_secret[0]` and
    /// signature key; without an answer the commit is refused with
    /// [`GroupError::OwnLeafMessage`]. Every check a member makes on an external commit
    /// is made here too; nothing is returned unless all pass.
    pub fn follow_external_commit(
        services: &Services<'_>,
        config: GroupConfig,
        group_info: &GroupInfo,
        ratchet_tree: Option<RatchetTree>,
        message: &MlsMessage,
        now: u64,
    ) -> Result<Group, GroupError> {
        let cs = services
            .crypto
            .suite(group_info.group_context.cipher_suite)?;
        let start = ExternalStart::check(cs, services, &config, group_info, ratchet_tree, now)?;
        let MlsMessageBody::PublicMessage(public) = &message.body else {
            return Err(GroupError::UnexpectedWireFormat(message.wire_format()));
        };
        check_group_epoch(
            &start.context,
            public.content.group_id.as_slice(),
            public.content.epoch,
        )?;
        if public.content.sender != Sender::NewMemberCommit {
            return Err(GroupError::UnexpectedSender(public.content.sender));
        }
        // A new member's commit carries no membership tag: the key is not used.
        let no_membership_key = Secret::zero(cs.params().hash_len());
        let unverified = unprotect_public(cs, public.clone(), &start.context, &no_membership_key)?;
        let FramedContentBody::Commit(commit) = &unverified.content().body else {
            return Err(GroupError::UnexpectedSender(Sender::NewMemberCommit));
        };
        let path = commit.path.clone().ok_or(GroupError::MissingPath)?;
        let auth = unverified.verify(cs, path.leaf_node.signature_key.as_slice())?;
        let FramedContentBody::Commit(commit) = &auth.content.body else {
            return Err(GroupError::UnexpectedSender(Sender::NewMemberCommit));
        };

        // We hold no proposals of that epoch: a reference is unknown, as to any newcomer.
        let infos = commit
            .proposals
            .iter()
            .map(|entry| match entry {
                ProposalOrRef::Proposal(p) => Ok(ResolvedProposal::by_value(
                    Sender::NewMemberCommit,
                    p.clone(),
                )),
                ProposalOrRef::Reference(_) => Err(GroupError::UnknownProposalRef),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let validation = validation_context(
            cs,
            services,
            &config,
            &start.context,
            &start.tree,
            Some(&path.leaf_node),
            now,
        );
        validate_proposal_list(&validation, Sender::NewMemberCommit, &infos)?;
        let requirements = provisional_requirements(&validation, &infos)?;
        let (mut tree, applied, mut new_context) =
            apply_to_next_epoch(cs, &start.tree, &start.context, &infos)?;
        let own_leaf = tree.leftmost_blank_leaf()?;
        let members = tree.member_credential_types(&[own_leaf]);
        let ctx = leaf_validation(
            &config,
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
                group_id: start.context.group_id.as_slice(),
                leaf_index: own_leaf.0,
                replaced: external_commit_removed_leaf(&start.tree, &infos).map(|(_, l)| l),
            },
            &ctx,
        )?;

        let init = applied
            .external_init
            .as_ref()
            .ok_or(GroupError::UnexpectedSender(Sender::NewMemberCommit))?;
        let resolver = services.own_leaf.ok_or(GroupError::OwnLeafMessage)?;
        let seed = resolved(resolver.external_init_seed(&path.leaf_node))?;
        let (kem_output, init_secret) =
            external_init_secret_sender_derived(cs, &start.external_pub, seed.as_bytes())?;
        if kem_output.as_slice() != init.kem_output.as_slice() {
            return Err(GroupError::ExternalInitMismatch);
        }
        let secrets = resolved(resolver.commit_secrets(&path.leaf_node))?;
        let signer = secrets.signature_key.ok_or(GroupError::OwnLeafMessage)?;
        if signer.public_key.as_slice() != path.leaf_node.signature_key.as_slice() {
            return Err(GroupError::OwnLeafMessage);
        }
        let excluded: Vec<_> = applied.added.iter().map(|a| a.leaf_index).collect();
        let (mut private, commit_secret) = rederive_update_path(
            cs,
            &mut tree,
            own_leaf,
            &path,
            &excluded,
            OwnPathSecrets {
                leaf_key: secrets.leaf_key,
                path_secret_0: secrets.path_secret_0,
            },
            &mut new_context,
        )?;
        private.prune(&tree);

        let psk_secret = resolve_psk_secret(
            cs,
            services,
            &applied.psks,
            start.context.group_id.as_slice(),
            None,
        )?;
        let ReceivedEpoch {
            epoch_secrets,
            interim,
            tag,
        } = ReceivedEpoch::compute(
            cs,
            &start.interim_transcript_hash,
            &auth,
            &mut new_context,
            [init_secret, commit_secret, psk_secret],
        )?;
        let state = GroupState::for_epoch(
            cs,
            config,
            new_context,
            tree,
            private,
            signer,
            epoch_secrets,
            interim,
            tag,
            ResumptionPskStore::new(u64::from(config.resumption_psk_epochs)),
        )?;
        Ok(Group {
            state,
            pending_commit: None,
        })
    }
}
