//! Membership of the emulation group (draft §5.4 "Adding emulator clients", a TODO in the
//! draft; DESIGN §5 row 12 (a)): the state transfer to a new emulator client or to siblings
//! (a group one emulator client created), its merge, and the removal of an emulator client
//! with the post-compromise update of every higher-level group. The wire format is in
//! [`crate::transfer`].

use mls_engine::codec::{LeafNode, MlsMessage, Proposal};
use mls_engine::crypto::CryptoProvider;
use mls_engine::group::{CommitOptions, CommitOutput, Group, GroupStatus, Services};
use tls_codec::SecretVLBytes;

use super::state_codec::{
    key_package_keys, leaf_from, leaf_to, own_key_package, update_to, uploaded_from, uploaded_to,
};
use super::{EmulatorClient, EmulatorError, HigherGroup};
use crate::derivation::{derivation_info_of, derive_for_receiver, DerivationError};
use crate::epoch::EmulationEpochSecrets;
use crate::pprf::PprfError;
use crate::transfer::{DeviceState, EmulationMessage, TransferError, TransferredGroup};

fn inconsistent(what: &'static str) -> EmulatorError {
    TransferError::Inconsistent(what).into()
}

impl EmulatorClient {
    /// Whether a commit of the emulation group removed this emulator client (it then holds
    /// nothing of the virtual client).
    pub fn is_removed(&self) -> bool {
        matches!(self.emulation.status(), GroupStatus::Removed)
    }

    /// [`EmulatorError::Removed`] once this client was removed.
    pub(super) fn check_member(&self) -> Result<(), EmulatorError> {
        if self.is_removed() {
            return Err(EmulatorError::Removed);
        }
        Ok(())
    }

    /// A commit removed us: keep the (inactive) emulation group, delete every secret of the
    /// virtual client, derive nothing.
    pub(super) fn enter_removed(&mut self, emulation: Group) {
        self.emulation = emulation;
        self.epochs.clear();
        self.groups.clear();
        self.key_packages.clear();
        self.uploaded.clear();
        self.external_joins.clear();
        self.pending_external_join = None;
        self.pending_external.clear();
    }

    /// The state transfer to a new emulator client (row 12 (a)): an emulation-group
    /// application message (PrivateMessage) carrying a `DeviceState` with every emulation
    /// epoch this client keeps, its unused KeyPackages (own, with private keys, and those
    /// siblings announced) and every active higher-level group with the virtual client's leaf
    /// state. Send it after the Commit adding the new client was confirmed, so that the new
    /// client can open it; the new client then merges it in
    /// [`EmulatorClient::process_emulation`] (so do the other siblings, to no effect). Drop
    /// its echo from the delivery service. A pending commit of ours in a higher-level group is
    /// not transferred: if it wins, the new client processes it as a sibling's.
    pub fn device_state_message(
        &mut self,
        services: &Services<'_>,
    ) -> Result<MlsMessage, EmulatorError> {
        self.check_member()?;
        let state = self.device_state(None)?;
        self.send_emulation_message(services, &EmulationMessage::DeviceState(state))
    }

    /// The state transfer of one higher-level group, `group_id` (E-vc7): a `DeviceState` with
    /// just that group, sent by the emulator client that created it
    /// ([`EmulatorClient::create_group`]) before its first commit there. Every sibling
    /// installs the group when it processes the message (one that holds it already leaves
    /// it alone). Any emulator client may send it for a sibling that lacks a group, e.g. one
    /// added after an `ExternalJoin` was announced (announcements are not transferred). Drop
    /// its echo.
    pub fn group_state_message(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
    ) -> Result<MlsMessage, EmulatorError> {
        self.check_member()?;
        let state = self.device_state(Some(group_id))?;
        self.send_emulation_message(services, &EmulationMessage::DeviceState(state))
    }

    fn send_emulation_message(
        &mut self,
        services: &Services<'_>,
        message: &EmulationMessage,
    ) -> Result<MlsMessage, EmulatorError> {
        let bytes = message.to_bytes()?;
        Ok(self.emulation.encrypt_application(services, &bytes, &[])?)
    }

    /// The `DeviceState` of everything (`only = None`) or of the one group `only`.
    fn device_state(&self, only: Option<&[u8]>) -> Result<DeviceState, EmulatorError> {
        let mut state = DeviceState::default();
        let groups: Vec<&HigherGroup> = match only {
            Some(group_id) => vec![self
                .groups
                .get(group_id)
                .ok_or(EmulatorError::UnknownGroup)?],
            None => self
                .groups
                .values()
                .filter(|g| matches!(g.group.status(), GroupStatus::Active))
                .collect(),
        };
        for g in groups {
            let mut group = g.group.clone();
            group.clear_pending_commit();
            state.group_states.push(TransferredGroup {
                group: SecretVLBytes::new(group.to_bytes()?),
                leaf: leaf_to(&g.leaf),
                updates: g.updates.iter().map(update_to).collect(),
            });
        }
        if only.is_some() {
            return Ok(state);
        }
        for e in &self.epochs {
            state
                .emulation_epochs
                .push(SecretVLBytes::new(e.to_bytes()?));
        }
        state.key_package_keys = self.key_packages.iter().map(key_package_keys).collect();
        state.uploaded_key_packages = self.uploaded.iter().map(uploaded_to).collect();
        Ok(state)
    }

    /// An emulation-group application message: decodes the `EmulationMessage` in `data` and
    /// merges it into a copy of the client (with `emulation`, the group that opened it);
    /// installs the copy only if all of it succeeded.
    pub(super) fn process_emulation_message(
        &mut self,
        services: &Services<'_>,
        emulation: Group,
        data: &[u8],
    ) -> Result<(), EmulatorError> {
        let EmulationMessage::DeviceState(state) = EmulationMessage::from_bytes(data)?;
        let mut next = self.clone();
        next.emulation = emulation;
        next.merge_device_state(services.crypto, state)?;
        *self = next;
        Ok(())
    }

    /// Merges a `DeviceState`: installs every emulation epoch (by `epoch_id`), KeyPackage (by
    /// `KeyPackageRef`) and higher-level group (by group ID) this client does not have; what
    /// it has is left alone, so a stale copy never overwrites newer state. The PPRF leaf of
    /// every installed group's leaf and KeyPackage is then punctured in our copy of its
    /// emulation epoch, if still there (it is in an epoch we computed ourselves, e.g. the
    /// creator's leaf of a new group). Works in place: the caller discards `self` on error.
    fn merge_device_state(
        &mut self,
        crypto: &dyn CryptoProvider,
        state: DeviceState,
    ) -> Result<(), EmulatorError> {
        let mut incoming = Vec::with_capacity(state.emulation_epochs.len());
        for bytes in &state.emulation_epochs {
            incoming.push(EmulationEpochSecrets::from_bytes(bytes.as_slice())?);
        }
        self.merge_epochs(incoming)?;

        // Leaves whose PPRF leaf we puncture once everything is installed.
        let mut installed: Vec<LeafNode> = Vec::new();
        for k in state.key_package_keys {
            let own = own_key_package(crypto, k)?;
            if self.knows_key_package(&own.bundle.reference) {
                continue;
            }
            installed.push(own.bundle.key_package.leaf_node.clone());
            self.key_packages.push(own);
        }

        for u in state.uploaded_key_packages {
            if self.knows_key_package(&u.key_package_ref) {
                continue;
            }
            if !self
                .epochs
                .iter()
                .any(|e| e.epoch_id() == u.epoch_id.as_slice())
            {
                return Err(inconsistent(
                    "uploaded KeyPackage of an emulation epoch neither held nor transferred",
                ));
            }
            self.uploaded.push(uploaded_from(u));
        }

        let mut seen: Vec<Vec<u8>> = Vec::with_capacity(state.group_states.len());
        for g in state.group_states {
            let group = Group::from_bytes(g.group.as_slice())?;
            let group_id = group.group_id().to_vec();
            if seen.contains(&group_id) {
                return Err(inconsistent("a group listed twice"));
            }
            seen.push(group_id.clone());
            if group.has_pending_commit() {
                return Err(inconsistent("a group with a pending commit"));
            }
            if self.groups.contains_key(&group_id) {
                continue;
            }
            if group
                .own_leaf_node()
                .is_some_and(|l| l.credential != self.credential)
            {
                return Err(inconsistent(
                    "a group whose leaf is not of the virtual client's credential",
                ));
            }
            let leaf = leaf_from(&g.leaf);
            let higher = crypto.suite(group.cipher_suite())?;
            let derived = higher.hpke_derive_key_pair(leaf.encryption_key_secret.as_bytes())?;
            let own_key = group.own_leaf_node().map(|l| l.encryption_key.as_slice());
            if own_key != Some(derived.public_key.as_slice()) {
                return Err(inconsistent("a leaf secret that is not the group's leaf"));
            }
            installed.extend(group.own_leaf_node().cloned());
            self.groups.insert(
                group_id,
                HigherGroup {
                    group,
                    leaf,
                    pending: None,
                    updates: g
                        .updates
                        .iter()
                        .map(|u| (u.encryption_key.as_slice().to_vec(), leaf_from(&u.leaf)))
                        .collect(),
                },
            );
        }
        let emu = crypto.suite(self.emulation.cipher_suite())?;
        for leaf in &installed {
            self.puncture_installed(emu, leaf)?;
        }
        self.prune_epochs();
        Ok(())
    }

    /// Punctures the PPRF leaf `leaf` was derived from in our copy of its emulation epoch.
    /// Nothing to do if the leaf has no `DerivationInfoExtension`, its epoch is gone, or the
    /// PPRF leaf is already punctured (the epoch came with the transfer).
    fn puncture_installed(
        &mut self,
        emu: &dyn mls_engine::crypto::SuiteProvider,
        leaf: &LeafNode,
    ) -> Result<(), EmulatorError> {
        let Some(ext) = derivation_info_of(leaf)? else {
            return Ok(());
        };
        let Some(epoch) = self
            .epochs
            .iter_mut()
            .find(|e| e.epoch_id() == ext.epoch_id.as_slice())
        else {
            return Ok(());
        };
        match derive_for_receiver(epoch, emu, &ext) {
            Ok(received) => Ok(received.puncture(epoch, emu)?),
            Err(DerivationError::Pprf(PprfError::Punctured { .. })) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn knows_key_package(&self, reference: &mls_engine::codec::KeyPackageRef) -> bool {
        self.key_packages
            .iter()
            .any(|k| &k.bundle.reference == reference)
            || self.uploaded.iter().any(|u| &u.reference == reference)
    }

    /// Merges transferred emulation epochs (oldest first) into ours. Both lists are
    /// subsequences of the emulation group's epochs, so the epochs both hold anchor the
    /// order: a missing epoch goes right before the next common one. Ours are kept as they
    /// are (a transferred copy never replaces one we hold). Refused: another suite, an
    /// `epoch_id` twice, common epochs in another order, a newest transferred epoch we do not
    /// hold (the sender sent in an emulation epoch we are in, so its newest is one of ours).
    fn merge_epochs(&mut self, incoming: Vec<EmulationEpochSecrets>) -> Result<(), EmulatorError> {
        let suite = self.emulation.cipher_suite();
        for (i, e) in incoming.iter().enumerate() {
            if e.cipher_suite() != suite {
                return Err(inconsistent("an emulation epoch of another cipher suite"));
            }
            if incoming
                .iter()
                .take(i)
                .any(|o| o.epoch_id() == e.epoch_id())
            {
                return Err(inconsistent("an emulation epoch listed twice"));
            }
        }
        if let Some(last) = incoming.last() {
            if !self.epochs.iter().any(|o| o.epoch_id() == last.epoch_id()) {
                return Err(inconsistent("a newest emulation epoch we do not hold"));
            }
        }
        let own = std::mem::take(&mut self.epochs);
        let mut merged = Vec::with_capacity(own.len() + incoming.len());
        let mut next_own = 0;
        for e in incoming {
            match own.iter().position(|o| o.epoch_id() == e.epoch_id()) {
                Some(p) if p < next_own => {
                    return Err(inconsistent("emulation epochs out of order"));
                }
                Some(p) => {
                    merged.extend(own.get(next_own..=p).into_iter().flatten().cloned());
                    next_own = p + 1;
                }
                None => merged.push(e),
            }
        }
        merged.extend(own.get(next_own..).into_iter().flatten().cloned());
        self.epochs = merged;
        Ok(())
    }

    /// Removes the emulator client at emulation-group leaf `leaf_index` (a Commit with a
    /// Remove; pending like [`EmulatorClient::add_emulator`]'s). Once it was confirmed
    /// ([`EmulatorClient::confirm_emulation_commit`]) or processed, call
    /// [`EmulatorClient::update_all_groups`]: until then the removed client still holds the
    /// current leaf secrets of every higher-level group.
    pub fn remove_emulator(
        &mut self,
        services: &Services<'_>,
        leaf_index: u32,
        now: u64,
    ) -> Result<CommitOutput, EmulatorError> {
        self.check_member()?;
        Ok(self.emulation.commit(
            services,
            CommitOptions::new().proposal(Proposal::remove(leaf_index)),
            now,
        )?)
    }

    /// The post-compromise step after a removal (or any suspected compromise): a Commit with
    /// path in every active higher-level group, its new leaf derived from the newest
    /// emulation epoch (which a removed emulator client does not have, so it can neither
    /// re-derive the leaf nor follow the group). Each Commit is pending: confirm it per group
    /// ([`EmulatorClient::confirm_commit`]) or process it when it comes back; siblings
    /// re-derive each through H2. All or nothing: a group with a pending commit
    /// (`GroupError::CommitPending`) or any other failure leaves the client unchanged.
    ///
    /// Each commit's new leaf also has a new signature key (derived like the leaf's other
    /// keys), so the removed device's copy of the old one signs nothing in the new epoch.
    /// Unused KeyPackages published before the removal stay joinable by the removed
    /// client's copy of their keys: every remaining device retires them with
    /// [`EmulatorClient::retire_key_packages`].
    pub fn update_all_groups(
        &mut self,
        services: &Services<'_>,
        now: u64,
    ) -> Result<Vec<(Vec<u8>, CommitOutput)>, EmulatorError> {
        self.check_member()?;
        let ids: Vec<Vec<u8>> = self
            .groups
            .iter()
            .filter(|(_, g)| matches!(g.group.status(), GroupStatus::Active))
            .map(|(id, _)| id.clone())
            .collect();
        let mut next = self.clone();
        let mut out = Vec::with_capacity(ids.len());
        for group_id in ids {
            let commit = next.commit(services, &group_id, Vec::new(), now)?;
            out.push((group_id, commit));
        }
        *self = next;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mls_engine::codec::{Credential, Lifetime};
    use mls_engine::crypto::Secret;
    use mls_engine::crypto::{CipherSuite, RustCrypto};
    use mls_engine::group::OwnLeaf;
    use mls_engine::messages::{HpkeKeySource, LeafNodeParams};

    static P: RustCrypto = RustCrypto;
    const CS: CipherSuite = CipherSuite(1);

    fn epoch(n: u8) -> EmulationEpochSecrets {
        let cs = P.suite(CS).unwrap();
        EmulationEpochSecrets::from_emulator_epoch_secret(cs, Secret::new(vec![n; 32])).unwrap()
    }

    fn client(own: &[u8]) -> EmulatorClient {
        let mut c = EmulatorClient::create(
            &Services::new(&P),
            b"emulation".to_vec(),
            CS,
            OwnLeaf {
                params: LeafNodeParams::new(CS, Credential::basic(b"device".to_vec())),
                encryption_key: HpkeKeySource::Generate,
                signature_key: P.suite(CS).unwrap().signature_generate_key_pair().unwrap(),
            },
            Lifetime {
                not_before: 0,
                not_after: u64::MAX,
            },
            Credential::basic(b"vc".to_vec()),
        )
        .unwrap();
        c.epochs = own.iter().map(|n| epoch(*n)).collect();
        c
    }

    fn ids(c: &EmulatorClient) -> Vec<Vec<u8>> {
        c.epochs.iter().map(|e| e.epoch_id().to_vec()).collect()
    }

    #[test]
    fn transferred_epochs_go_between_the_ones_both_hold() {
        let mut c = client(&[2, 4, 5]);
        c.merge_epochs([1, 2, 3, 4].iter().map(|n| epoch(*n)).collect())
            .unwrap();
        let want: Vec<Vec<u8>> = [1, 2, 3, 4, 5]
            .iter()
            .map(|n| epoch(*n).epoch_id().to_vec())
            .collect();
        assert_eq!(ids(&c), want);
        // Again: nothing new.
        c.merge_epochs([1, 3, 5].iter().map(|n| epoch(*n)).collect())
            .unwrap();
        assert_eq!(ids(&c), want);
    }

    #[test]
    fn an_installed_leaf_is_punctured_in_our_copy_of_its_epoch() {
        let svc = Services::new(&P);
        let mut c = client(&[9]);
        let unpunctured = c.epochs.clone();
        c.create_group(
            &svc,
            b"g".to_vec(),
            CS,
            Lifetime {
                not_before: 0,
                not_after: u64::MAX,
            },
        )
        .unwrap();
        assert_ne!(c.epochs, unpunctured);
        let state = c.device_state(Some(b"g")).unwrap();
        let mut sibling = c.clone();
        sibling.groups.clear();
        sibling.epochs = unpunctured;
        sibling.merge_device_state(&P, state).unwrap();
        assert_eq!(sibling.epochs, c.epochs);
        assert!(sibling.group(b"g").is_some());
        // Merging again: the group is held, nothing is punctured twice.
        let state = c.device_state(Some(b"g")).unwrap();
        sibling.merge_device_state(&P, state).unwrap();
        assert_eq!(sibling.epochs, c.epochs);
    }

    #[test]
    fn inconsistent_epoch_lists_are_refused() {
        let c = client(&[2, 4]);
        for incoming in [vec![4, 2], vec![1], vec![2, 2], vec![4, 1, 2]] {
            let mut copy = c.clone();
            let got = copy.merge_epochs(incoming.iter().map(|n| epoch(*n)).collect());
            assert!(
                matches!(
                    got,
                    Err(EmulatorError::Transfer(TransferError::Inconsistent(_)))
                ),
                "{incoming:?}"
            );
        }
    }
}
