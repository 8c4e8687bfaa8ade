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

use mls_engine::codec::{GroupInfo, MlsMessage};
use mls_engine::group::{CommitOptions, CommitOutput, ExternalCommitOptions, Group, Services};
use mls_engine::tree::RatchetTree;
use tls_codec::VLBytes;

use super::emulation::with_action;
use super::sibling_leaf::SiblingLeafResolver;
use super::{EmulatorClient, EmulatorError, HigherGroup, LeafState};
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
    /// by external commit as the virtual client, with derived secrets; needs an accepted
    /// announcement of ours for that group ([`EmulatorError::NoExternalJoin`] otherwise),
    /// which this uses up. If the virtual client is in the group already, the commit replaces
    /// its leaf (resync). The group is installed in the new epoch; send the returned commit as
    /// an external commit with the GroupInfo's epoch. If the delivery service refuses it,
    /// announce again and retry with a fresh GroupInfo. On error nothing changes.
    pub fn join_by_external_commit(
        &mut self,
        services: &Services<'_>,
        group_info: &GroupInfo,
        ratchet_tree: Option<RatchetTree>,
        now: u64,
    ) -> Result<MlsMessage, EmulatorError> {
        let group_id = group_info.group_context.group_id.as_slice().to_vec();
        let announced = self.announced(&group_id)?;
        let cipher_suite = group_info.group_context.cipher_suite;
        let emu = self.emulation_suite(services)?;
        let higher = services.crypto.suite(cipher_suite)?;
        let (epoch, sent) = self.derive_new(emu)?;
        let secrets = sent.leaf_secrets(emu, higher)?;
        let options = secrets.external_commit_options(ExternalCommitOptions {
            resync_remove: self.groups.get(&group_id).map(|g| g.group.own_leaf_index()),
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
        self.replace_group(group, LeafState::derived(&sent.key_secrets, &epoch));
        self.external_joins.remove(announced);
        self.install_newest(epoch);
        self.prune_epochs();
        Ok(commit)
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
        let result = Group::follow_external_commit(
            &with_resolver,
            self.config,
            group_info,
            ratchet_tree,
            commit,
            now,
        );
        let found = resolver.found.into_inner();
        let group = match (result, found) {
            (Ok(group), Some(Ok(found))) => {
                self.replace_group(group, found.leaf);
                if let Some(slot) = self.epochs.get_mut(found.index) {
                    *slot = found.punctured;
                }
                group_id
            }
            (Err(_), Some(Err(derivation))) => return Err(derivation),
            (Err(e), _) => return Err(e.into()),
            (Ok(_), _) => return Err(EmulatorError::MissingDerivationInfo),
        };
        self.external_joins.remove(announced);
        self.prune_epochs();
        Ok(group)
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
