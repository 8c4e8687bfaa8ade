//! The sibling re-derivation resolver (the engine's own-leaf hook H2, DESIGN §5): a Commit,
//! an Update or an external commit from the virtual client's leaf that this emulator client
//! did not make is a sibling's. Its new leaf carries the `DerivationInfoExtension` (§5.3):
//! the resolver re-derives the leaf's secrets from the named emulation epoch, and the caller
//! punctures the PPRF leaf only once the engine accepted the message.

use std::cell::RefCell;

use mls_engine::codec::LeafNode;
use mls_engine::crypto::{HpkeKeyPair, Secret, SuiteProvider};
use mls_engine::group::{OwnLeafResolver, SiblingCommitSecrets};

use super::retention::find_epoch;
use super::{EmulatorError, LeafState};
use crate::derivation::{derivation_info_of, derive_for_receiver, VirtualClientKeys};
use crate::epoch::EmulationEpochSecrets;

/// A sibling's leaf re-derived by the resolver: the emulation epoch (index and a punctured
/// copy, installed only if the engine accepts the message) and the new leaf's state.
pub(super) struct SiblingLeaf {
    pub(super) index: usize,
    pub(super) punctured: EmulationEpochSecrets,
    pub(super) leaf: LeafState,
}

/// The own-leaf resolver (H2): re-derives a sibling's leaf from its extension and remembers
/// the derivation (or why it failed).
pub(super) struct SiblingLeafResolver<'a> {
    epochs: &'a [EmulationEpochSecrets],
    emulation: &'a dyn SuiteProvider,
    higher: &'a dyn SuiteProvider,
    pub(super) found: RefCell<Option<Result<SiblingLeaf, EmulatorError>>>,
}

impl<'a> SiblingLeafResolver<'a> {
    /// A resolver over the emulation epochs `epochs` (suite `emulation`) for a higher-level
    /// group of suite `higher`.
    pub(super) fn new(
        epochs: &'a [EmulationEpochSecrets],
        emulation: &'a dyn SuiteProvider,
        higher: &'a dyn SuiteProvider,
    ) -> Self {
        Self {
            epochs,
            emulation,
            higher,
            found: RefCell::new(None),
        }
    }

    fn keys(&self, leaf: &LeafNode) -> Option<VirtualClientKeys> {
        let result = (|| {
            let ext = derivation_info_of(leaf)?.ok_or(EmulatorError::MissingDerivationInfo)?;
            let index = find_epoch(self.epochs, ext.epoch_id.as_slice())?;
            let epoch = self
                .epochs
                .get(index)
                .ok_or(EmulatorError::UnknownEpochId)?;
            let received = derive_for_receiver(epoch, self.emulation, &ext)?;
            let keys = received
                .key_secrets
                .key_pairs(self.emulation, self.higher)?;
            let mut punctured = epoch.clone();
            received.puncture(&mut punctured, self.emulation)?;
            let found = SiblingLeaf {
                index,
                leaf: LeafState::derived(&received.key_secrets, &punctured),
                punctured,
            };
            Ok((found, keys))
        })();
        match result {
            Ok((found, keys)) => {
                *self.found.borrow_mut() = Some(Ok(found));
                Some(keys)
            }
            Err(e) => {
                *self.found.borrow_mut() = Some(Err(e));
                None
            }
        }
    }
}

impl OwnLeafResolver for SiblingLeafResolver<'_> {
    fn commit_secrets(&self, new_leaf: &LeafNode) -> Option<SiblingCommitSecrets> {
        let keys = self.keys(new_leaf)?;
        let changed = keys.matches_leaf(new_leaf, true);
        Some(keys.sibling_commit_secrets(changed))
    }

    fn update_leaf_key(&self, new_leaf: &LeafNode) -> Option<HpkeKeyPair> {
        self.keys(new_leaf).map(|k| k.encryption_key)
    }

    fn external_init_seed(&self, new_leaf: &LeafNode) -> Option<Secret> {
        self.keys(new_leaf).map(|k| k.init_key_secret)
    }
}
