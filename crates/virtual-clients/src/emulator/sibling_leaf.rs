//! The sibling re-derivation resolver (the engine's own-leaf hook H2, DESIGN §5): a Commit,
//! an Update or an external commit from the virtual client's leaf that this emulator client
//! did not make is a sibling's. Its new leaf carries the `DerivationInfoExtension` (§5.3):
//! the resolver re-derives the leaf's secrets from the named emulation epoch. It changes
//! nothing of the client: the caller installs the punctured copy of the epoch
//! ([`SiblingLeafResolver::into_derived`]) only once the engine accepted the message. A
//! failure reaches the caller as the engine's `GroupError::OwnLeafResolver` with the
//! [`EmulatorError`] inside (unpacked by `From<GroupError> for EmulatorError`).

use std::cell::RefCell;

use mls_engine::codec::LeafNode;
use mls_engine::crypto::{HpkeKeyPair, Secret, SuiteProvider};
use mls_engine::group::{OwnLeafResolver, SiblingCommitSecrets};
use mls_engine::hook::HookError;

use super::retention::find_epoch;
use super::{EmulatorError, LeafState};
use crate::derivation::{derivation_info_of, derive_for_receiver, VirtualClientKeys};
use crate::epoch::EmulationEpochSecrets;

/// A sibling's leaf re-derived by the resolver: the emulation epoch (index and a punctured
/// copy, installed only if the engine accepts the message) and the new leaf's state.
pub(super) struct SiblingLeaf {
    /// The position of the leaf's emulation epoch in the client's epochs.
    pub(super) index: usize,
    /// A copy of that epoch with the leaf's PPRF leaf punctured.
    pub(super) punctured: EmulationEpochSecrets,
    /// The key material of the new leaf.
    pub(super) leaf: LeafState,
}

/// The own-leaf resolver (H2) over the emulation epochs of one emulator client.
pub(super) struct SiblingLeafResolver<'a> {
    epochs: &'a [EmulationEpochSecrets],
    emulation: &'a dyn SuiteProvider,
    higher: &'a dyn SuiteProvider,
    /// The last successful re-derivation, for the caller to install once the engine accepted
    /// the message (a memo of a result, not a channel for errors: those go back through the
    /// engine as `HookError`s).
    derived: RefCell<Option<SiblingLeaf>>,
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
            derived: RefCell::new(None),
        }
    }

    /// The sibling leaf the engine accepted the message with, if one was re-derived.
    pub(super) fn into_derived(self) -> Option<SiblingLeaf> {
        self.derived.into_inner()
    }

    /// Re-derives the keys of the sibling's `leaf` from its `DerivationInfoExtension`.
    fn rederive(&self, leaf: &LeafNode) -> Result<(SiblingLeaf, VirtualClientKeys), EmulatorError> {
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
        let sibling = SiblingLeaf {
            index,
            leaf: LeafState::derived(&received.key_secrets, &punctured),
            punctured,
        };
        Ok((sibling, keys))
    }

    /// [`SiblingLeafResolver::rederive`] as the hook's answer, remembering the derivation.
    fn keys(&self, leaf: &LeafNode) -> Result<VirtualClientKeys, HookError> {
        let (sibling, keys) = self.rederive(leaf).map_err(HookError::failed)?;
        *self.derived.borrow_mut() = Some(sibling);
        Ok(keys)
    }
}

impl OwnLeafResolver for SiblingLeafResolver<'_> {
    fn commit_secrets(&self, new_leaf: &LeafNode) -> Result<SiblingCommitSecrets, HookError> {
        let keys = self.keys(new_leaf)?;
        let changed = keys.matches_leaf(new_leaf, true);
        Ok(keys.sibling_commit_secrets(changed))
    }

    fn update_leaf_key(&self, new_leaf: &LeafNode) -> Result<HpkeKeyPair, HookError> {
        self.keys(new_leaf).map(|k| k.encryption_key)
    }

    fn external_init_seed(&self, new_leaf: &LeafNode) -> Result<Secret, HookError> {
        self.keys(new_leaf).map(|k| k.init_key_secret)
    }
}
