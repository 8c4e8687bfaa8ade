//! Externally joining higher-level groups with the virtual client (draft §5.5.2).
//!
//! 1. The acting emulator client sends an emulation-group Commit whose SafeAAD item of
//!    component [`crate::wire::VC_COMPONENT_ID`] is the `ExternalJoin { group_id }` action
//!    ([`EmulatorClient::announce_external_join`]).
//! 2. Once that Commit is accepted, it joins `group_id` by external commit
//!    ([`EmulatorClient::join_by_external_commit`]) with a LeafNode and UpdatePath derived from
//!    the newest emulation epoch (§5.3), the ExternalInit's ephemeral key pair from the
//!    operation's `init_key_secret` (docs/decisions.md E-vc-ext1). If the virtual client is
//!    already in the group (its state there is stale), the commit removes the old leaf (the
//!    resync of RFC 9420 §12.4.3.2).
//! 3. Every sibling recorded the action when it processed the Commit; when the external commit
//!    arrives (the delivery service hands the emulators the GroupInfo it was built from), it
//!    re-derives the leaf and the ExternalInit from the `DerivationInfoExtension` and follows
//!    the commit into the new epoch ([`EmulatorClient::follow_external_join`]).
//!
//! An announcement is good for one external commit into that group: the joiner's is used by
//! its join, a sibling's by following. A sibling never follows an external commit into a group
//! nobody announced ([`EmulatorError::NoExternalJoin`]).

use mls_engine::codec::{ExtensionPayload as _, RatchetTreeExtension};
use mls_engine::codec::{GroupInfo, MlsMessage};
use mls_engine::group::{
    CommitOptions, CommitOutput, ExternalCommitOptions, Group, GroupError, Services,
};
use mls_engine::tree::{LeafIndex, RatchetTree};
use tls_codec::VLBytes;

use super::emulation::with_action;
use super::sibling_leaf::SiblingLeafResolver;
use super::{EmulatorClient, EmulatorError, HigherGroup, LeafState, PendingExternalJoin};
use crate::wire::{ExternalJoin, VirtualClientAction};

impl EmulatorClient {
    /// The emulation-group Commit (`options`, e.g. empty) announcing that this client is about
    /// to join `group_id` by external commit as the virtual client (§5.5.2). Send it; once it
    /// was accepted ([`EmulatorClient::confirm_emulation_commit`], or its echo processed),
    /// call [`EmulatorClient::join_by_external_commit`]. If it is refused, call
    /// [`EmulatorClient::abandon_emulation_commit`].
    pub fn announce_external_join(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
        options: CommitOptions,
        now: u64,
    ) -> Result<CommitOutput, EmulatorError> {
        let action = VirtualClientAction::ExternalJoin(ExternalJoin {
            group_id: VLBytes::new(group_id.to_vec()),
        });
        let out = self
            .emulation
            .commit(services, with_action(options, &action)?, now)?;
        self.pending_external_join = Some(group_id.to_vec());
        Ok(out)
    }

    /// Joins the group of `group_info` (with `ratchet_tree` unless the GroupInfo carries it)
    /// by external commit as the virtual client, with derived secrets, and installs the group
    /// at once: [`EmulatorClient::begin_external_join`] followed by
    /// [`EmulatorClient::confirm_external_join`]. If the delivery service then refuses the
    /// commit, the state the client had of the group is gone (a resync must start over):
    /// prefer the pending form.
    pub fn join_by_external_commit(
        &mut self,
        services: &Services<'_>,
        group_info: &GroupInfo,
        ratchet_tree: Option<RatchetTree>,
        now: u64,
    ) -> Result<MlsMessage, EmulatorError> {
        let mut next = self.clone();
        let commit = next.begin_external_join(services, group_info, ratchet_tree, now)?;
        next.confirm_external_join(group_info.group_context.group_id.as_slice())?;
        *self = next;
        Ok(commit)
    }

    /// Builds an external commit into the group of `group_info` (with `ratchet_tree` unless
    /// the GroupInfo carries it) as the virtual client, with derived secrets; needs an
    /// accepted announcement of ours for that group ([`EmulatorError::NoExternalJoin`]
    /// otherwise). If the virtual client is in the group already, the commit replaces its
    /// leaf (resync). Send the returned commit as an external commit with the GroupInfo's
    /// epoch. The join is pending (hole 4, docs/decisions.md E-vc18): the client keeps the
    /// state it had of the group (if any) until [`EmulatorClient::confirm_external_join`]
    /// (the service accepted it; or its echo is processed with [`EmulatorClient::process`]),
    /// which installs the new state and uses the announcement up;
    /// [`EmulatorClient::abandon_external_join`] (refused) drops it and keeps the
    /// announcement for a retry with a fresh GroupInfo. The pending group (e.g. for its new
    /// GroupInfo) is [`EmulatorClient::pending_external_join`]. On error nothing changes.
    pub fn begin_external_join(
        &mut self,
        services: &Services<'_>,
        group_info: &GroupInfo,
        ratchet_tree: Option<RatchetTree>,
        now: u64,
    ) -> Result<MlsMessage, EmulatorError> {
        let group_id = group_info.group_context.group_id.as_slice().to_vec();
        self.announced(&group_id)?;
        if self.pending_external.contains_key(&group_id) {
            return Err(EmulatorError::ExternalJoinPending);
        }
        let cipher_suite = group_info.group_context.cipher_suite;
        let emu = self.emulation_suite(services)?;
        let higher = services.crypto.suite(cipher_suite)?;
        let (epoch, sent) = self.derive_new(emu)?;
        let secrets = sent.leaf_secrets(emu, higher)?;
        let resync_remove = match self.groups.get(&group_id) {
            Some(g) => Some(g.group.own_leaf_index()),
            None => self.virtual_client_leaf(group_info, ratchet_tree.as_ref())?,
        };
        let options = secrets.external_commit_options(ExternalCommitOptions {
            resync_remove,
            external_init_seed: Some(sent.key_secrets.init_key_secret.clone()),
            ..ExternalCommitOptions::default()
        });
        let (group, commit) = Group::join_by_external_commit(
            services,
            self.config,
            group_info,
            ratchet_tree,
            secrets.own_leaf(self.leaf_params(cipher_suite)),
            options,
            now,
        )?;
        let pending = PendingExternalJoin {
            group,
            leaf: LeafState::derived(&sent.key_secrets, &epoch),
            commit: commit.to_bytes().map_err(GroupError::from)?,
        };
        self.pending_external.insert(group_id, pending);
        self.install_newest(epoch);
        Ok(commit)
    }

    /// The virtual client's leaf in the group of `group_info`, found by its credential: a
    /// device without state of the group (a new device rejoining it, hole 3) replaces that
    /// leaf instead of adding a second one. A forged tree is caught by the engine's checks of
    /// the join.
    fn virtual_client_leaf(
        &self,
        group_info: &GroupInfo,
        ratchet_tree: Option<&RatchetTree>,
    ) -> Result<Option<LeafIndex>, EmulatorError> {
        let from_info = RatchetTreeExtension::find_in(&group_info.extensions)
            .map_err(GroupError::from)?
            .map(|ext| RatchetTree::from_nodes(ext.ratchet_tree))
            .transpose()
            .map_err(GroupError::from)?;
        let Some(tree) = from_info.as_ref().or(ratchet_tree) else {
            return Ok(None);
        };
        let leaf = tree
            .leaves()
            .find(|(_, leaf)| leaf.credential == self.credential)
            .map(|(index, _)| index);
        Ok(leaf)
    }

    /// The group our pending external commit into `group_id` leads to.
    pub fn pending_external_join(&self, group_id: &[u8]) -> Option<&Group> {
        self.pending_external.get(group_id).map(|p| &p.group)
    }

    /// Installs our pending external commit into `group_id` (the delivery service accepted
    /// it), replacing the state the client had of the group, and uses the announcement up.
    pub fn confirm_external_join(&mut self, group_id: &[u8]) -> Result<(), EmulatorError> {
        let announced = self.announced(group_id)?;
        let pending = self
            .pending_external
            .remove(group_id)
            .ok_or(EmulatorError::NoPendingExternalJoin)?;
        self.replace_group(pending.group, pending.leaf);
        self.external_joins.remove(announced);
        self.prune_epochs();
        Ok(())
    }

    /// Drops our pending external commit into `group_id` (the delivery service refused it);
    /// the state the client had of the group and the announcement stay. Its PPRF leaf stays
    /// punctured (it is never used again).
    pub fn abandon_external_join(&mut self, group_id: &[u8]) -> Result<(), EmulatorError> {
        self.pending_external
            .remove(group_id)
            .ok_or(EmulatorError::NoPendingExternalJoin)?;
        self.prune_epochs();
        Ok(())
    }

    /// Whether `bytes` are the echo of our pending external commit into `group_id`.
    pub(super) fn is_pending_external_echo(&self, group_id: &[u8], bytes: &[u8]) -> bool {
        self.pending_external
            .get(group_id)
            .is_some_and(|p| p.commit.as_slice() == bytes)
    }

    /// Follows `commit`, a sibling's external commit of the virtual client into the group of
    /// `group_info` (the GroupInfo it was built from, as the delivery service hands it to the
    /// emulator clients; with `ratchet_tree` unless it carries the tree): re-derives the leaf,
    /// the UpdatePath and the ExternalInit from the leaf's `DerivationInfoExtension`, checks
    /// the commit as a member would, and installs the group in the new epoch (replacing a
    /// stale state of it). Needs a sibling's announcement for that group
    /// ([`EmulatorError::NoExternalJoin`]), which it uses up; the PPRF leaf is punctured.
    /// Returns the group ID. On error nothing changes.
    pub fn follow_external_join(
        &mut self,
        services: &Services<'_>,
        group_info: &GroupInfo,
        ratchet_tree: Option<RatchetTree>,
        commit: &MlsMessage,
        now: u64,
    ) -> Result<Vec<u8>, EmulatorError> {
        let group_id = group_info.group_context.group_id.as_slice().to_vec();
        let announced = self.announced(&group_id)?;
        let emu = self.emulation_suite(services)?;
        let higher = services
            .crypto
            .suite(group_info.group_context.cipher_suite)?;
        let resolver = SiblingLeafResolver::new(&self.epochs, emu, higher);
        let with_resolver = services.with_own_leaf_resolver(&resolver);
        let group = Group::follow_external_commit(
            &with_resolver,
            self.config,
            group_info,
            ratchet_tree,
            commit,
            now,
        )?;
        let sibling = resolver
            .into_derived()
            .ok_or(EmulatorError::MissingDerivationInfo)?;
        self.replace_group(group, sibling.leaf);
        if let Some(slot) = self.epochs.get_mut(sibling.index) {
            *slot = sibling.punctured;
        }
        self.external_joins.remove(announced);
        self.prune_epochs();
        Ok(group_id)
    }

    /// The group IDs announced with `ExternalJoin` (by siblings, or by us and accepted) and
    /// not yet joined or followed.
    pub fn announced_external_joins(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.external_joins.iter().map(Vec::as_slice)
    }

    /// The position of an announcement for `group_id`.
    fn announced(&self, group_id: &[u8]) -> Result<usize, EmulatorError> {
        self.external_joins
            .iter()
            .position(|g| g.as_slice() == group_id)
            .ok_or(EmulatorError::NoExternalJoin)
    }

    /// Installs `group` at the virtual client's leaf `leaf`, replacing any state of it.
    fn replace_group(&mut self, group: Group, leaf: LeafState) {
        self.groups.insert(
            group.group_id().to_vec(),
            HigherGroup {
                group,
                leaf,
                pending: None,
                updates: Vec::new(),
            },
        );
    }
}
