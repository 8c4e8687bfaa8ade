//! Retention of emulation epochs (DESIGN §5 row 10): which epochs are kept, and the
//! derivations from the newest one.
//!
//! An epoch is kept while it is one of the newest [`RETAINED_EPOCHS`], or a current leaf of a
//! higher-level group, a pending commit of ours, an Update proposal of ours or one of our
//! unused KeyPackages (own or announced by a sibling) was derived from it; otherwise it is
//! deleted with its punctured PPRF and `epoch_encryption_key`.

use mls_engine::crypto::SuiteProvider;

use super::{EmulatorClient, EmulatorError};
use crate::derivation::{derive_for_sender, SenderDerivation};
use crate::epoch::EmulationEpochSecrets;

/// How many of the newest emulation epochs are kept regardless of use (row 10): enough for
/// siblings' commits and KeyPackages derived in recent epochs to be re-derived.
pub const RETAINED_EPOCHS: usize = 4;

/// Whether every sibling still holds emulation epoch `derived_from` (an emulation-group epoch
/// number) when the emulation group is at epoch `current`: siblings keep at least the newest
/// [`RETAINED_EPOCHS`] epochs, so an operation derived from an older one may be one they
/// cannot re-derive (hole 2, docs/decisions.md E-vc19). The delivery service refuses a
/// higher-level commit for which this is false.
pub fn derivable_by_siblings(derived_from: u64, current: u64) -> bool {
    derived_from <= current && current - derived_from < RETAINED_EPOCHS as u64
}

/// The position of the epoch `epoch_id` in `epochs`.
pub(super) fn find_epoch(
    epochs: &[EmulationEpochSecrets],
    epoch_id: &[u8],
) -> Result<usize, EmulatorError> {
    epochs
        .iter()
        .position(|e| e.epoch_id() == epoch_id)
        .ok_or(EmulatorError::UnknownEpochId)
}

impl EmulatorClient {
    /// The emulation-group epoch the next operation of this client derives from (its newest
    /// emulation epoch): what a higher-level commit is tagged with for the delivery service's
    /// check ([`derivable_by_siblings`]).
    pub fn derivation_emulation_epoch(&self) -> u64 {
        self.emulation.epoch()
    }

    /// Deletes the emulation epochs no longer needed (row 10, see the module docs).
    pub(super) fn prune_epochs(&mut self) {
        let newest_from = self.epochs.len().saturating_sub(RETAINED_EPOCHS);
        let mut used: Vec<&[u8]> = Vec::new();
        for g in self.groups.values() {
            used.push(&g.leaf.epoch_id);
            if let Some(p) = &g.pending {
                used.push(&p.epoch_id);
            }
            for (_, u) in &g.updates {
                used.push(&u.epoch_id);
            }
        }
        for p in self.pending_external.values() {
            used.push(&p.leaf.epoch_id);
        }
        for k in &self.key_packages {
            used.push(&k.leaf.epoch_id);
        }
        for u in &self.uploaded {
            used.push(&u.epoch_id);
        }
        let keep: Vec<bool> = self
            .epochs
            .iter()
            .enumerate()
            .map(|(i, e)| i >= newest_from || used.contains(&e.epoch_id()))
            .collect();
        let mut keep = keep.into_iter();
        self.epochs.retain(|_| keep.next().unwrap_or(true));
    }

    /// A derivation from (a copy of) the newest epoch; the caller installs the copy on
    /// success.
    pub(super) fn derive_new(
        &self,
        emulation: &dyn SuiteProvider,
    ) -> Result<(EmulationEpochSecrets, SenderDerivation), EmulatorError> {
        self.check_member()?;
        let mut epoch = self
            .epochs
            .last()
            .cloned()
            .ok_or(EmulatorError::UnknownEpochId)?;
        let sent = derive_for_sender(&mut epoch, emulation, self.emulation.own_leaf_index().0)?;
        Ok((epoch, sent))
    }

    pub(super) fn install_newest(&mut self, epoch: EmulationEpochSecrets) {
        if let Some(last) = self.epochs.last_mut() {
            *last = epoch;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mls_engine::codec::{Credential, Lifetime, Proposal};
    use mls_engine::crypto::CipherSuite;
    use mls_engine::crypto::{CryptoProvider as _, RustCrypto};
    use mls_engine::group::{CommitOptions, OwnLeaf, Services};
    use mls_engine::messages::HpkeKeySource;
    use mls_engine::messages::LeafNodeParams;

    static P: RustCrypto = RustCrypto;
    const NOW: u64 = 1_700_000_000;

    fn lifetime() -> Lifetime {
        Lifetime {
            not_before: NOW - 10,
            not_after: NOW + 1000,
        }
    }

    fn client() -> EmulatorClient {
        let cs = CipherSuite(1);
        EmulatorClient::create(
            &Services::new(&P),
            b"emulation".to_vec(),
            cs,
            OwnLeaf {
                params: LeafNodeParams::new(cs, Credential::basic(b"device".to_vec())),
                encryption_key: HpkeKeySource::Generate,
                signature_key: P.suite(cs).unwrap().signature_generate_key_pair().unwrap(),
            },
            lifetime(),
            Credential::basic(b"vc".to_vec()),
        )
        .unwrap()
    }

    fn next_emulation_epoch(c: &mut EmulatorClient) {
        let svc = Services::new(&P);
        c.commit_emulation(&svc, CommitOptions::new().with_path(), NOW)
            .unwrap();
        c.confirm_emulation_commit(&svc).unwrap();
    }

    #[test]
    fn epochs_in_use_are_kept_and_others_deleted() {
        let svc = Services::new(&P);
        let mut c = client();
        c.create_group(&svc, b"g".to_vec(), CipherSuite(1), lifetime())
            .unwrap();
        let first = c.epoch_ids()[0].to_vec();
        for _ in 0..6 {
            next_emulation_epoch(&mut c);
        }
        // The newest RETAINED_EPOCHS, plus the one the group's leaf came from.
        assert_eq!(c.epoch_ids().len(), RETAINED_EPOCHS + 1);
        assert_eq!(c.epoch_ids()[0], first.as_slice());
        // A KeyPackage pins its epoch too.
        c.publish_key_package(&svc, CipherSuite(1), lifetime())
            .unwrap();
        let kp_epoch = c.epoch_ids().last().unwrap().to_vec();
        // A commit moves the leaf to the newest epoch: the first one is deleted.
        c.commit(&svc, b"g", vec![], NOW).unwrap();
        c.confirm_commit(b"g").unwrap();
        assert_eq!(c.epoch_ids().len(), RETAINED_EPOCHS);
        assert!(!c.epoch_ids().contains(&first.as_slice()));
        for _ in 0..6 {
            next_emulation_epoch(&mut c);
        }
        // The group's leaf and the KeyPackage both come from the same old epoch.
        assert_eq!(c.epoch_ids().len(), RETAINED_EPOCHS + 1);
        assert_eq!(c.epoch_ids()[0], kp_epoch.as_slice());
    }

    #[test]
    fn a_failed_commit_punctures_nothing() {
        let svc = Services::new(&P);
        let mut c = client();
        c.create_group(&svc, b"g".to_vec(), CipherSuite(1), lifetime())
            .unwrap();
        let before = c.epochs.clone();
        // Removing a leaf that does not exist is refused by the engine.
        assert!(matches!(
            c.commit(&svc, b"g", vec![Proposal::remove(7)], NOW),
            Err(EmulatorError::Group(_))
        ));
        assert_eq!(c.epochs, before);
        assert!(matches!(
            c.confirm_commit(b"g"),
            Err(EmulatorError::NoPendingCommit)
        ));
        assert!(matches!(
            c.create_group(&svc, b"g".to_vec(), CipherSuite(1), lifetime()),
            Err(EmulatorError::GroupExists)
        ));
        assert_eq!(c.epochs, before);
    }
}
