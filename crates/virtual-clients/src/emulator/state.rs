//! The state of an emulator client: its emulation group and epochs, its higher-level groups
//! (the virtual client's leaf in each), its KeyPackages and announcements. Serialised by
//! [`super::state_codec`].

use std::collections::BTreeMap;

use mls_engine::codec::{Credential, KeyPackageRef};
use mls_engine::crypto::{Secret, SignatureKeyPair};
use mls_engine::group::{Group, GroupConfig, SentKey};
use mls_engine::messages::KeyPackageBundle;

use crate::derivation::KeySecrets;
use crate::epoch::EmulationEpochSecrets;

/// Key material of the virtual client's leaf in one higher-level group.
#[derive(Debug, Clone)]
pub(super) struct LeafState {
    /// `encryption_key_secret` of the leaf (the reuse guard's `leaf_secret`, row 11).
    pub(super) encryption_key_secret: Secret,
    /// The emulation epoch the leaf was derived from.
    pub(super) epoch_id: Vec<u8>,
}

impl LeafState {
    /// The state of a leaf derived with `key_secrets` from emulation epoch `epoch`.
    pub(super) fn derived(key_secrets: &KeySecrets, epoch: &EmulationEpochSecrets) -> Self {
        Self {
            encryption_key_secret: key_secrets.encryption_key_secret.clone(),
            epoch_id: epoch.epoch_id().to_vec(),
        }
    }
}

/// One higher-level group as the virtual client.
#[derive(Debug, Clone)]
pub(super) struct HigherGroup {
    pub(super) group: Group,
    pub(super) leaf: LeafState,
    /// The leaf of our pending commit, installed when it is confirmed or comes back.
    pub(super) pending: Option<LeafState>,
    /// Leaves of Update proposals from our leaf in this epoch (ours), by `encryption_key`.
    pub(super) updates: Vec<(Vec<u8>, LeafState)>,
}

/// Our external commit into a group (§5.5.2), sent and not yet accepted: the group in the
/// epoch it creates, the new leaf, and the commit as sent (to recognise its echo).
#[derive(Debug, Clone)]
pub(super) struct PendingExternalJoin {
    pub(super) group: Group,
    pub(super) leaf: LeafState,
    pub(super) commit: Vec<u8>,
}

/// A retained key of an application message we sent (H3), with when it was sent (`None`:
/// sent without a time, stamped by the next [`super::EmulatorClient::expire_sent_keys`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SentKeyRecord {
    pub(super) group_id: Vec<u8>,
    pub(super) key: SentKey,
    pub(super) sent_at: Option<u64>,
}

/// A KeyPackage this client derived and published, not yet used.
#[derive(Debug, Clone)]
pub(super) struct OwnKeyPackage {
    pub(super) bundle: KeyPackageBundle,
    pub(super) signature_key: SignatureKeyPair,
    pub(super) leaf: LeafState,
}

/// A KeyPackage a sibling announced in a `KeyPackageUpload` (§5.5.1): enough to re-derive its
/// keys from emulation epoch `epoch_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UploadedKeyPackage {
    pub(super) reference: KeyPackageRef,
    pub(super) epoch_id: Vec<u8>,
    /// The emulation-group leaf index of the Commit's sender (the deriving emulator client).
    pub(super) leaf_index: u32,
    pub(super) random: Vec<u8>,
}

/// One emulator client of a virtual client: its emulation group, the emulation epochs it
/// keeps, and its higher-level groups (all at the virtual client's leaf).
#[derive(Debug, Clone)]
pub struct EmulatorClient {
    pub(super) emulation: Group,
    /// Oldest first; the last is the newest (used for new derivations).
    pub(super) epochs: Vec<EmulationEpochSecrets>,
    pub(super) groups: BTreeMap<Vec<u8>, HigherGroup>,
    pub(super) key_packages: Vec<OwnKeyPackage>,
    /// KeyPackages siblings announced with a `KeyPackageUpload`, not yet used.
    pub(super) uploaded: Vec<UploadedKeyPackage>,
    /// Group IDs announced with an accepted `ExternalJoin` action, not yet joined/followed.
    pub(super) external_joins: Vec<Vec<u8>>,
    /// The group ID of our own `ExternalJoin` action in our pending emulation commit.
    pub(super) pending_external_join: Option<Vec<u8>>,
    /// The retained keys of our application messages not yet confirmed (hole 7).
    pub(super) sent_keys: Vec<SentKeyRecord>,
    /// Our external commits not yet accepted, by group ID.
    pub(super) pending_external: BTreeMap<Vec<u8>, PendingExternalJoin>,
    pub(super) credential: Credential,
    pub(super) config: GroupConfig,
}
