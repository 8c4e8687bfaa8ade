//! The emulator client (draft §5.3, §5.6; DESIGN §5 rows 10-11, §6): one device of a virtual
//! client. It is a member of the emulation group (with the other emulator clients of the same
//! virtual client) and holds, for every higher-level group, that group's state at the
//! virtual client's one leaf.
//!
//! * **Emulation epochs** (row 10). After joining and after every emulation-group commit, the
//!   client computes the epoch's [`EmulationEpochSecrets`]. The newest one derives every new
//!   operation; older ones are kept to re-derive siblings' operations. Retention rule: an
//!   epoch is kept while it is one of the newest [`RETAINED_EPOCHS`], or a current leaf of a
//!   higher-level group, a pending commit of ours or one of our unused KeyPackages was derived
//!   from it; otherwise it is deleted (with its punctured PPRF and `epoch_encryption_key`).
//! * **Leaves** (§5.3). Every leaf this client makes (KeyPackage, new group, Commit with path)
//!   comes from [`derive_for_sender`] and carries the `DerivationInfoExtension`.
//! * **Siblings' leaves**. A Commit from our own leaf that is not our pending commit is a
//!   sibling's: the engine's own-leaf resolver (H2) re-derives its secrets from the new leaf's
//!   extension ([`derive_for_receiver`]) and the PPRF leaf is punctured only after the engine
//!   accepted the commit. A sibling's KeyPackage is re-derived from its leaf's extension to
//!   join from a Welcome sent to it.
//! * **Application messages** (§5.6, row 11). Sent with the FF1 reuse guard
//!   ([`ReuseGuardSender`]) keyed with the `encryption_key_secret` of the virtual client's
//!   current leaf; the higher-level groups keep sent keys until [`EmulatorClient::confirm_sent`]
//!   (H3) so a sibling's message at a generation we used still opens.
//! * **Update proposals** from our leaf: [`EmulatorClient::propose_update`] makes one from
//!   derived secrets; when another member commits it, the sender takes the leaf it kept and
//!   each sibling re-derives the leaf key through H2 (`update_leaf_key`).
//! * **Atomicity** (§6). Every operation works on copies of the emulation epochs it punctures
//!   and installs them only when the engine operation succeeded; the engine leaves a group
//!   unchanged on error (no copy of a group is made). So a rejected message changes nothing of
//!   the client. One exception, harmless: if the reuse guard cannot be computed after the
//!   engine encrypted, the message is discarded and its generation skipped, exactly as for a
//!   send the delivery service refused.
//!
//! * **KeyPackageUpload** (§5.5.1, row 13). The emulation group uses SafeAAD (its GroupContext
//!   has an `app_data_dictionary` with the `safe_aad` component listing [`VC_COMPONENT_ID`]).
//!   [`EmulatorClient::publish_key_packages`] derives KeyPackages and makes an emulation-group
//!   Commit whose SafeAAD item of component [`VC_COMPONENT_ID`] is the `KeyPackageUpload`
//!   action; every sibling processing that Commit records each `KeyPackageRef` with
//!   (`epoch_id`, committer's leaf index, `random`) and can join from a Welcome sent to any of
//!   them ([`EmulatorClient::join_from_welcome_by_ref`]) without being handed the KeyPackage.
//!   A recorded entry pins its emulation epoch until it is used.
//!
//! * **Membership of the emulation group** (§5.4, row 12 (a); `membership.rs`). A new
//!   emulator client joins the emulation group ([`EmulatorClient::add_emulator`],
//!   [`EmulatorClient::join`]); once the add is confirmed the adder sends
//!   [`EmulatorClient::device_state_message`], an emulation-group application message
//!   carrying a [`crate::transfer::DeviceState`] (emulation epochs, unused KeyPackages,
//!   higher-level groups), which the new client merges in
//!   [`EmulatorClient::process_emulation`]. A group created by one emulator client reaches
//!   its siblings the same way ([`EmulatorClient::group_state_message`]). Removal:
//!   [`EmulatorClient::remove_emulator`], then [`EmulatorClient::update_all_groups`] (a
//!   commit with a path from the new emulation epoch in every higher-level group).
//!
//! * **External joins** (§5.5.2, `external.rs`): [`EmulatorClient::announce_external_join`]
//!   (the `ExternalJoin` action), [`EmulatorClient::join_by_external_commit`], and siblings
//!   [`EmulatorClient::follow_external_join`] with the GroupInfo the commit was built from.
//! * **Lagging emulators.** An emulator must process the emulation group before it acts in a
//!   higher-level group: siblings keep only [`RETAINED_EPOCHS`] emulation epochs (plus those
//!   still in use), so a commit derived from an epoch they already deleted is refused by them
//!   with [`EmulatorError::UnknownEpochId`] (their state unchanged) although the delivery
//!   service accepted it; they then lag that group and must resync (external join). See
//!   docs/decisions.md E-vc11. To make that impossible, a runtime refuses to act while it
//!   knows of unprocessed emulation-group messages, and tags each higher-level commit with
//!   [`EmulatorClient::derivation_emulation_epoch`] so that the delivery service can refuse
//!   one its siblings cannot re-derive ([`derivable_by_siblings`]).
//! * **Removal of a device**: [`EmulationOutcome::removed_devices`], then
//!   [`EmulatorClient::retire_key_packages`] on every remaining device and
//!   [`EmulatorClient::update_all_groups`] (new leaf and signature key everywhere) on one.
//!
//! Not done: expiry of unused KeyPackages (they pin their emulation epoch until used).
//! Storage is in [`crate::storage`]: the whole state is one value
//! ([`EmulatorClient::to_bytes`] / [`EmulatorClient::from_bytes`]) that
//! [`crate::storage::PersistentEmulator`] saves once per processed message.

use mls_engine::codec::{Credential, Lifetime, Welcome};
use mls_engine::crypto::{CipherSuite, SignatureKeyPair, SuiteProvider};
use mls_engine::extensions::{AppDataDictionary, ComponentsList, APP_DATA_DICTIONARY, SAFE_AAD};
use mls_engine::group::{Group, GroupConfig, OwnLeaf, Services};
use mls_engine::messages::{KeyPackageBundle, LeafNodeParams};
use std::collections::BTreeMap;

use crate::epoch::EmulationEpochSecrets;
use crate::wire::VC_COMPONENT_ID;

mod application;
mod emulation;
mod error;
mod external;
mod higher_group;
mod key_packages;
mod membership;
mod retention;
mod sibling_leaf;
mod state;
mod state_codec;

pub use application::SENT_KEY_MAX_AGE;
pub use emulation::EmulationOutcome;
pub use error::{EmulatorError, Recovery};
pub use retention::{derivable_by_siblings, RETAINED_EPOCHS};
pub use state::EmulatorClient;
use state::{
    HigherGroup, LeafState, OwnKeyPackage, PendingExternalJoin, SentKeyRecord, UploadedKeyPackage,
};
pub use state_codec::EMULATOR_STATE_VERSION;

impl EmulatorClient {
    /// The first emulator client of a virtual client: creates the emulation group
    /// `emulation_group_id` with `own` as this device's leaf. `credential` is the virtual
    /// client's credential in higher-level groups.
    pub fn create(
        services: &Services<'_>,
        emulation_group_id: Vec<u8>,
        cipher_suite: CipherSuite,
        own: OwnLeaf,
        lifetime: Lifetime,
        credential: Credential,
    ) -> Result<Self, EmulatorError> {
        let mut own = own;
        if !own
            .params
            .capabilities
            .extensions
            .contains(&APP_DATA_DICTIONARY)
        {
            own.params.capabilities.extensions.push(APP_DATA_DICTIONARY);
        }
        let mut dictionary = AppDataDictionary::default();
        dictionary.insert(
            SAFE_AAD,
            ComponentsList::new(vec![VC_COMPONENT_ID]).to_bytes()?,
        );
        let mut emulation = Group::create(
            services,
            GroupConfig::default(),
            emulation_group_id,
            cipher_suite,
            own,
            lifetime,
            vec![dictionary.to_extension()?],
        )?;
        let epoch = EmulationEpochSecrets::from_group(&mut emulation, services)?;
        Ok(Self::with_emulation(emulation, epoch, credential))
    }

    /// The LeafNode parameters of an emulator client's own leaf in the emulation group
    /// (creator's leaf or a further device's KeyPackage): `credential`, default capabilities
    /// plus the `app_data_dictionary` extension the emulation group's GroupContext carries
    /// (SafeAAD, row 13), which every member must support.
    pub fn emulation_leaf_params(
        cipher_suite: CipherSuite,
        credential: Credential,
    ) -> LeafNodeParams {
        let mut params = LeafNodeParams::new(cipher_suite, credential);
        params.capabilities.extensions.push(APP_DATA_DICTIONARY);
        params
    }

    /// A further emulator client: joins the emulation group from `welcome` (sent to this
    /// device's `key_package`, whose leaf supports the `app_data_dictionary` extension: see
    /// [`EmulatorClient::emulation_leaf_params`]).
    pub fn join(
        services: &Services<'_>,
        welcome: &Welcome,
        key_package: &KeyPackageBundle,
        signature_key: SignatureKeyPair,
        credential: Credential,
        now: u64,
    ) -> Result<Self, EmulatorError> {
        let mut emulation = Group::join_from_welcome(
            services,
            GroupConfig::default(),
            welcome,
            key_package,
            signature_key,
            None,
            now,
        )?;
        let epoch = EmulationEpochSecrets::from_group(&mut emulation, services)?;
        Ok(Self::with_emulation(emulation, epoch, credential))
    }

    pub(super) fn with_emulation(
        emulation: Group,
        epoch: EmulationEpochSecrets,
        credential: Credential,
    ) -> Self {
        Self::with_emulation_epochs(emulation, vec![epoch], credential)
    }

    pub(super) fn with_emulation_epochs(
        emulation: Group,
        epochs: Vec<EmulationEpochSecrets>,
        credential: Credential,
    ) -> Self {
        Self {
            emulation,
            epochs,
            groups: BTreeMap::new(),
            key_packages: Vec::new(),
            uploaded: Vec::new(),
            external_joins: Vec::new(),
            pending_external_join: None,
            pending_external: BTreeMap::new(),
            sent_keys: Vec::new(),
            credential,
            config: GroupConfig {
                retain_sent_keys: true,
                ..GroupConfig::default()
            },
        }
    }

    /// The emulation group.
    pub fn emulation_group(&self) -> &Group {
        &self.emulation
    }

    /// The `epoch_id`s of the emulation epochs kept, oldest first.
    pub fn epoch_ids(&self) -> Vec<&[u8]> {
        self.epochs.iter().map(|e| e.epoch_id()).collect()
    }

    /// The higher-level group `group_id`, as the virtual client.
    pub fn group(&self, group_id: &[u8]) -> Option<&Group> {
        self.groups.get(group_id).map(|g| &g.group)
    }

    /// Whether the key material this client keeps for its leaf in `group_id` (the
    /// `encryption_key_secret` the reuse guard uses) is that of the leaf now in the tree: an
    /// invariant, checked by the tests after every step.
    pub fn leaf_is_consistent(
        &self,
        services: &Services<'_>,
        group_id: &[u8],
    ) -> Result<bool, EmulatorError> {
        let entry = self
            .groups
            .get(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        let higher = services.crypto.suite(entry.group.cipher_suite())?;
        let derived = higher.hpke_derive_key_pair(entry.leaf.encryption_key_secret.as_bytes())?;
        Ok(entry
            .group
            .own_leaf_node()
            .is_some_and(|l| l.encryption_key.as_slice() == derived.public_key.as_slice()))
    }

    /// The IDs of the higher-level groups.
    pub fn group_ids(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.groups.keys().map(|k| k.as_slice())
    }

    pub(super) fn emulation_suite<'s>(
        &self,
        services: &Services<'s>,
    ) -> Result<&'s dyn SuiteProvider, EmulatorError> {
        Ok(services.crypto.suite(self.emulation.cipher_suite())?)
    }

    pub(super) fn leaf_params(&self, cipher_suite: CipherSuite) -> LeafNodeParams {
        LeafNodeParams::new(cipher_suite, self.credential.clone())
    }
}
