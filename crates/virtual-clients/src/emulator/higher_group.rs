//! Higher-level groups as the virtual client (draft §5.3): creating one, commits and Update
//! proposals from derived secrets, their confirmation, and processing the group's messages
//! (a sibling's commit from our leaf is re-derived through [`super::sibling_leaf`]).

use mls_engine::codec::{Lifetime, MlsMessage, Proposal, Sender};
use mls_engine::crypto::CipherSuite;
use mls_engine::crypto::Secret;
use mls_engine::framing::private::ReuseGuard;
use mls_engine::group::{
    CommitOptions, CommitOutput, Group, GroupConfig, GroupStatus, ProcessedMessage, Services,
};
use mls_engine::messages::LeafNodeParams;

use super::sibling_leaf::SiblingLeafResolver;
use super::{EmulatorClient, EmulatorError, HigherGroup, LeafState};
use crate::reuse_guard::ReuseGuardSender;

impl EmulatorClient {
    /// Installs a joined group. A group of that ID the virtual client was removed from (or
    /// that was reinitialised) is replaced: the virtual client is being added back.
    pub(super) fn insert_group(
        &mut self,
        group: Group,
        leaf: LeafState,
    ) -> Result<Vec<u8>, EmulatorError> {
        let group_id = group.group_id().to_vec();
        let active = |g: &HigherGroup| matches!(g.group.status(), GroupStatus::Active);
        if self.groups.get(&group_id).is_some_and(active) {
            return Err(EmulatorError::GroupExists);
        }
        self.groups.insert(
            group_id.clone(),
            HigherGroup {
                group,
                leaf,
                pending: None,
                updates: Vec::new(),
            },
        );
        Ok(group_id)
    }

    /// Creates a higher-level group `group_id` with the virtual client as its only member,
    /// from derived secrets. Only this emulator client is in it at first: send
    /// [`EmulatorClient::group_state_message`] to the emulation group right after, before the
    /// first commit in the new group, and each sibling installs the group when it processes
    /// that message ([`EmulatorClient::process_emulation`]; E-vc7).
    pub fn create_group(
        &mut self,
        services: &Services<'_>,
        group_id: Vec<u8>,
        cipher_suite: CipherSuite,
        lifetime: Lifetime,
    ) -> Result<(), EmulatorError> {
        if self.groups.contains_key(&group_id) {
            return Err(EmulatorError::GroupExists);
        }
        let emu = self.emulation_suite(services)?;
        let higher = services.crypto.suite(cipher_suite)?;
        let (epoch, sent) = self.derive_new(emu)?;
        let secrets = sent.leaf_secrets(emu, higher)?;
        let group = Group::create(
            services,
            self.config,
            group_id,
            cipher_suite,
            secrets.own_leaf(self.leaf_params(cipher_suite)),
            lifetime,
            vec![],
        )?;
        let leaf = LeafState::derived(&sent.key_secrets, &epoch);
        self.insert_group(group, leaf)?;
        self.install_newest(epoch);
        Ok(())
    }

    /// A Commit with path of `proposals` in `group_id` as the virtual client, its new leaf
    /// from derived secrets; the output carries the signed GroupInfo of the new epoch (with
    /// `external_pub`). The commit is pending: call [`EmulatorClient::confirm_commit`]
    /// once the delivery service accepted it, or process it when it comes back.
    pub fn commit(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
        proposals: Vec<Proposal>,
        now: u64,
    ) -> Result<CommitOutput, EmulatorError> {
        let emu = self.emulation_suite(services)?;
        let (epoch, sent) = self.derive_new(emu)?;
        let cipher_suite = self
            .group(group_id)
            .ok_or(EmulatorError::UnknownGroup)?
            .cipher_suite();
        let params = self.leaf_params(cipher_suite);
        let leaf_index = self.emulation.own_leaf_index().0;
        let leaves = self.emulation.ratchet_tree().n_leaves();
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        let higher = services.crypto.suite(cipher_suite)?;
        let secrets = sent.leaf_secrets(emu, higher)?;
        let mut options = CommitOptions::new();
        options.proposals = proposals;
        // The GroupInfo of the new epoch (with external_pub) goes to the delivery service with
        // the Commit, for its public view and for external joiners.
        options.group_info = true;
        options.external_pub = true;
        // A PrivateMessage Commit carries this emulator client's FF1 reuse guard (§5.6), as
        // application messages do: siblings share the leaf's handshake ratchet (hole 8).
        let guard_sender = ReuseGuardSender::with_random(
            emu,
            &entry.leaf.encryption_key_secret,
            leaf_index,
            leaves,
        )?;
        let guard = |nonce: &Secret| guard_sender.guard_for(nonce);
        let out = entry.group.commit_with_reuse_guard(
            services,
            secrets.commit_options(params, options),
            now,
            ReuseGuard::FromNonce(&guard),
        )?;
        entry.pending = Some(LeafState::derived(&sent.key_secrets, &epoch));
        self.install_newest(epoch);
        Ok(out)
    }

    /// An Update proposal (§12.1.2) in `group_id` replacing the virtual client's leaf with one
    /// from derived secrets (the signature key stays). Once another member commits it, every
    /// emulator client's leaf follows (siblings re-derive it through H2).
    pub fn propose_update(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
    ) -> Result<MlsMessage, EmulatorError> {
        let emu = self.emulation_suite(services)?;
        let (epoch, sent) = self.derive_new(emu)?;
        let params = {
            let entry = self
                .groups
                .get(group_id)
                .ok_or(EmulatorError::UnknownGroup)?;
            let current = entry
                .group
                .own_leaf_node()
                .ok_or(EmulatorError::UnknownGroup)?;
            LeafNodeParams {
                credential: current.credential.clone(),
                capabilities: current.capabilities.clone(),
                extensions: current
                    .extensions
                    .iter()
                    .filter(|e| e.extension_type != crate::wire::DERIVATION_INFO_EXTENSION_TYPE)
                    .cloned()
                    .collect(),
            }
        };
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        let higher = services.crypto.suite(entry.group.cipher_suite())?;
        let secrets = sent.leaf_secrets(emu, higher)?;
        let (message, _) = entry.group.propose_update(
            services,
            secrets.leaf_key(),
            Some(secrets.leaf_params(params)),
        )?;
        let public = higher
            .hpke_derive_key_pair(sent.key_secrets.encryption_key_secret.as_bytes())?
            .public_key;
        entry
            .updates
            .push((public, LeafState::derived(&sent.key_secrets, &epoch)));
        self.install_newest(epoch);
        Ok(message)
    }

    /// Merges our pending commit in `group_id` (the delivery service accepted it). Its echo
    /// from the delivery service must then be dropped, not processed (it is of the previous
    /// epoch). Alternatively, process the echo instead of calling this.
    pub fn confirm_commit(&mut self, group_id: &[u8]) -> Result<(), EmulatorError> {
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        let leaf = entry
            .pending
            .clone()
            .ok_or(EmulatorError::NoPendingCommit)?;
        entry.group.merge_pending_commit()?;
        entry.leaf = leaf;
        entry.pending = None;
        self.prune_epochs();
        Ok(())
    }

    /// Drops our pending commit in `group_id` (the delivery service refused it).
    pub fn abandon_commit(&mut self, group_id: &[u8]) -> Result<(), EmulatorError> {
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        entry.group.clear_pending_commit();
        entry.pending = None;
        self.prune_epochs();
        Ok(())
    }

    /// Processes an encoded message of the higher-level group `group_id`. A Commit from our
    /// own leaf that is not our pending commit is a sibling's: its secrets are re-derived
    /// (H2) and its PPRF leaf punctured once the engine accepted it. On error nothing
    /// changes.
    pub fn process(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
        bytes: &[u8],
        now: u64,
    ) -> Result<ProcessedMessage, EmulatorError> {
        self.check_member()?;
        if self.is_pending_external_echo(group_id, bytes) {
            // Our own external commit came back: it was accepted.
            self.confirm_external_join(group_id)?;
            let epoch = self
                .group(group_id)
                .ok_or(EmulatorError::UnknownGroup)?
                .epoch();
            return Ok(ProcessedMessage::Commit {
                sender: Sender::NewMemberCommit,
                epoch,
                own: true,
                removed_us: false,
            });
        }
        let emu = self.emulation_suite(services)?;
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        let higher = services.crypto.suite(entry.group.cipher_suite())?;
        let resolver = SiblingLeafResolver::new(&self.epochs, emu, higher);
        let with_resolver = services.with_own_leaf_resolver(&resolver);
        // The engine leaves the group unchanged on error; the punctured epoch is installed
        // only on success.
        let processed = entry.group.process_bytes(&with_resolver, bytes, now)?;
        let mut new_leaf = None;
        let mut punctured = None;
        if let Some(sibling) = resolver.into_derived() {
            new_leaf = Some(sibling.leaf);
            punctured = Some((sibling.index, sibling.punctured));
        }
        if let ProcessedMessage::Commit { own, .. } = &processed {
            if *own {
                new_leaf = entry.pending.clone();
            } else if new_leaf.is_none() {
                // One of our own Update proposals was committed by another member.
                let key = entry
                    .group
                    .own_leaf_node()
                    .map(|l| l.encryption_key.as_slice());
                new_leaf = entry
                    .updates
                    .iter()
                    .find(|(public, _)| Some(public.as_slice()) == key)
                    .map(|(_, leaf)| leaf.clone());
            }
            entry.pending = None;
            entry.updates.clear();
        }
        if let Some(leaf) = new_leaf {
            entry.leaf = leaf;
        }
        if let Some((index, epoch)) = punctured {
            if let Some(slot) = self.epochs.get_mut(index) {
                *slot = epoch;
            }
        }
        if let ProcessedMessage::Commit {
            removed_us: true, ..
        } = &processed
        {
            // The virtual client is no member any more: its secrets of the group go at once
            // (docs/decisions.md E-vc17).
            self.groups.remove(group_id);
        }
        self.prune_epochs();
        self.expire_sent_keys(now);
        Ok(processed)
    }

    /// A Remove proposal of the virtual client's own leaf in `group_id` (RFC 9420 §12.1.3: a
    /// member cannot commit its own removal). Send it; once another member commits it, every
    /// emulator client processing that commit deletes the group
    /// ([`EmulatorClient::process`]). Until then the group stays as it is.
    pub fn leave_group(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
    ) -> Result<MlsMessage, EmulatorError> {
        self.check_member()?;
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        let own = entry.group.own_leaf_index();
        let (message, _) = entry.group.propose_remove(services, own)?;
        Ok(message)
    }

    /// Deletes everything this emulator client holds of `group_id` (group state, leaf
    /// secrets, pending commit, Update proposals) at once, and the emulation epochs only it
    /// pinned. Local only: the virtual client's leaf stays in the group (use
    /// [`EmulatorClient::leave_group`] to leave it) and siblings keep their copies; a group
    /// the virtual client was removed from is deleted by [`EmulatorClient::process`] already.
    pub fn forget_group(&mut self, group_id: &[u8]) -> Result<(), EmulatorError> {
        self.groups
            .remove(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        self.prune_epochs();
        Ok(())
    }

    /// The policy of the higher-level group `group_id` (saved with the group): wire format
    /// of our handshakes, padding, past epochs kept for late messages, lifetime checks and
    /// their clock-skew tolerance... `retain_sent_keys` (H3) is always on: siblings share the
    /// leaf's generations. Each emulator client sets it on its own copy.
    pub fn set_group_config(
        &mut self,
        group_id: &[u8],
        config: GroupConfig,
    ) -> Result<(), EmulatorError> {
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        entry.group.set_config(Self::virtual_client_config(config));
        Ok(())
    }

    /// The policy given to higher-level groups this client creates or joins from now on
    /// (not saved: set it again after [`EmulatorClient::from_bytes`]); see
    /// [`EmulatorClient::set_group_config`].
    pub fn set_default_group_config(&mut self, config: GroupConfig) {
        self.config = Self::virtual_client_config(config);
    }

    /// The policy new higher-level groups get.
    pub fn default_group_config(&self) -> GroupConfig {
        self.config
    }

    /// `config` as the virtual client needs it: sent keys retained (H3).
    pub(super) fn virtual_client_config(config: GroupConfig) -> GroupConfig {
        GroupConfig {
            retain_sent_keys: true,
            ..config
        }
    }
}
