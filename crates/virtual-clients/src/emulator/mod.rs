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
//!   docs/decisions.md E-vc11.
//!
//! Not done: expiry of unused KeyPackages (they pin their emulation epoch until used);
//! retiring the unused KeyPackages a removed emulator client knew (see
//! [`EmulatorClient::update_all_groups`]).
//! Storage is in [`crate::storage`]: the whole state is one value
//! ([`EmulatorClient::to_bytes`] / [`EmulatorClient::from_bytes`]) that
//! [`crate::storage::PersistentEmulator`] saves once per processed message.

use std::cell::RefCell;
use std::collections::BTreeMap;

use mls_engine::codec::LeafSignatureError;
use mls_engine::codec::{
    CodecError, Credential, KeyPackage, LeafNode, Lifetime, MlsMessage, Proposal, Welcome,
};
use mls_engine::crypto::{
    CipherSuite, CryptoError, HpkeKeyPair, Secret, SignatureKeyPair, SuiteProvider,
};
use mls_engine::framing::private::ReuseGuard;
use mls_engine::group::{
    CommitOptions, CommitOutput, Group, GroupConfig, GroupError, GroupStatus, OwnLeaf,
    OwnLeafResolver, ProcessedMessage, Services, SiblingCommitSecrets,
};
use mls_engine::messages::{
    key_package_ref, CreationError, KeyPackageBundle, KeyPackageParams, LeafNodeParams,
};

use crate::derivation::derive_from_parts;
use crate::derivation::{
    derivation_info_of, derive_for_receiver, derive_for_sender, DerivationError, KeySecrets,
    ReceivedDerivation, VirtualClientKeys,
};
use crate::epoch::{EmulationEpochSecrets, EpochError, VC_COMPONENT_ID};
use crate::reuse_guard::{ReuseGuardError, ReuseGuardSender};
use crate::wire::{KeyPackageInfo, KeyPackageUpload, VirtualClientAction, WireError};
use mls_engine::codec::{KeyPackageRef, Sender};
use mls_engine::extensions::{
    AppDataDictionary, AppDataError, ComponentsList, SafeAad, SafeAadError, APP_DATA_DICTIONARY,
    SAFE_AAD,
};
use tls_codec::VLBytes;

mod external;
mod membership;
mod state;
pub use state::EMULATOR_STATE_VERSION;

/// How many of the newest emulation epochs are kept regardless of use (row 10): enough for
/// siblings' commits and KeyPackages derived in recent epochs to be re-derived.
pub const RETAINED_EPOCHS: usize = 4;

/// Why an emulator client operation failed. Nothing of the client changed.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The engine refused the operation or message.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// Emulation-epoch secrets could not be derived.
    #[error(transparent)]
    Epoch(#[from] EpochError),
    /// Virtual-client secrets could not be derived (tampered extension, punctured input...).
    #[error(transparent)]
    Derivation(#[from] DerivationError),
    /// A wire struct was malformed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The reuse guard could not be computed (the message was discarded).
    #[error(transparent)]
    ReuseGuard(#[from] ReuseGuardError),
    /// A suite is not available.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A KeyPackage could not be built.
    #[error(transparent)]
    Creation(#[from] CreationError),
    /// A KeyPackageRef could not be computed.
    #[error(transparent)]
    LeafSignature(#[from] LeafSignatureError),
    /// A message could not be decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A `DerivationInfoExtension` names an emulation epoch this client does not have.
    #[error("unknown emulation epoch_id")]
    UnknownEpochId,
    /// A leaf of the virtual client carries no `DerivationInfoExtension`.
    #[error("leaf without DerivationInfoExtension")]
    MissingDerivationInfo,
    /// No higher-level group with this ID.
    #[error("unknown higher-level group")]
    UnknownGroup,
    /// A higher-level group with this ID already exists.
    #[error("higher-level group already exists")]
    GroupExists,
    /// No pending commit to confirm.
    #[error("no pending commit")]
    NoPendingCommit,
    /// A stored state has a version we do not read.
    #[error("emulator client state version {0} is not supported")]
    UnsupportedStateVersion(u16),
    /// No KeyPackage of the Welcome is one this client published or learned from a
    /// sibling's `KeyPackageUpload`.
    #[error("the Welcome is for no KeyPackageRef this emulator client knows")]
    UnknownKeyPackageRef,
    /// A `KeyPackageUpload` lists no KeyPackage or the same `KeyPackageRef` twice.
    #[error("malformed KeyPackageUpload: {0}")]
    MalformedUpload(&'static str),
    /// The emulation group's SafeAAD could not be built or read.
    #[error(transparent)]
    SafeAad(#[from] SafeAadError),
    /// The emulation group's `app_data_dictionary` could not be built.
    #[error(transparent)]
    AppData(#[from] AppDataError),
    /// A stored state is inconsistent.
    #[error("malformed emulator client state: {0}")]
    MalformedState(&'static str),
    /// An external join (or following one) into a group no accepted `ExternalJoin` action
    /// announced (§5.5.2).
    #[error("no ExternalJoin action announced this group")]
    NoExternalJoin,
    /// An emulation-group application message (state transfer) was malformed or
    /// inconsistent; nothing was installed.
    #[error(transparent)]
    Transfer(#[from] crate::transfer::TransferError),
    /// A commit of the emulation group removed this emulator client: it holds nothing of the
    /// virtual client any more and does nothing further.
    #[error("this emulator client was removed from the emulation group")]
    Removed,
}

/// Key material of the virtual client's leaf in one higher-level group.
#[derive(Debug, Clone)]
struct LeafState {
    /// `encryption_key_secret` of the leaf (the reuse guard's `leaf_secret`, row 11).
    encryption_key_secret: Secret,
    /// The emulation epoch the leaf was derived from.
    epoch_id: Vec<u8>,
}

impl LeafState {
    /// The state of a leaf derived with `key_secrets` from emulation epoch `epoch`.
    fn derived(key_secrets: &KeySecrets, epoch: &EmulationEpochSecrets) -> Self {
        Self {
            encryption_key_secret: key_secrets.encryption_key_secret.clone(),
            epoch_id: epoch.epoch_id().to_vec(),
        }
    }
}

/// One higher-level group as the virtual client.
#[derive(Debug, Clone)]
struct HigherGroup {
    group: Group,
    leaf: LeafState,
    /// The leaf of our pending commit, installed when it is confirmed or comes back.
    pending: Option<LeafState>,
    /// Leaves of Update proposals from our leaf in this epoch (ours), by `encryption_key`.
    updates: Vec<(Vec<u8>, LeafState)>,
}

/// A KeyPackage this client derived and published, not yet used.
#[derive(Debug, Clone)]
struct OwnKeyPackage {
    bundle: KeyPackageBundle,
    signature_key: SignatureKeyPair,
    leaf: LeafState,
}

/// A KeyPackage a sibling announced in a `KeyPackageUpload` (§5.5.1): enough to re-derive its
/// keys from emulation epoch `epoch_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UploadedKeyPackage {
    reference: KeyPackageRef,
    epoch_id: Vec<u8>,
    /// The emulation-group leaf index of the Commit's sender (the deriving emulator client).
    leaf_index: u32,
    random: Vec<u8>,
}

/// One emulator client of a virtual client: its emulation group, the emulation epochs it
/// keeps, and its higher-level groups (all at the virtual client's leaf).
#[derive(Debug, Clone)]
pub struct EmulatorClient {
    emulation: Group,
    /// Oldest first; the last is the newest (used for new derivations).
    epochs: Vec<EmulationEpochSecrets>,
    groups: BTreeMap<Vec<u8>, HigherGroup>,
    key_packages: Vec<OwnKeyPackage>,
    /// KeyPackages siblings announced with a `KeyPackageUpload`, not yet used.
    uploaded: Vec<UploadedKeyPackage>,
    /// Group IDs announced with an accepted `ExternalJoin` action, not yet joined/followed.
    external_joins: Vec<Vec<u8>>,
    /// The group ID of our own `ExternalJoin` action in our pending emulation commit.
    pending_external_join: Option<Vec<u8>>,
    credential: Credential,
    config: GroupConfig,
}

/// A sibling's leaf re-derived by the resolver: the emulation epoch (index and a punctured
/// copy, installed only if the engine accepts the message) and the new leaf's state.
struct Found {
    index: usize,
    punctured: EmulationEpochSecrets,
    leaf: LeafState,
}

/// The own-leaf resolver (H2): re-derives a sibling's leaf from its extension and remembers
/// the derivation (or why it failed).
struct Rederive<'a> {
    epochs: &'a [EmulationEpochSecrets],
    emulation: &'a dyn SuiteProvider,
    higher: &'a dyn SuiteProvider,
    found: RefCell<Option<Result<Found, EmulatorError>>>,
}

impl<'a> Rederive<'a> {
    /// A resolver over the emulation epochs `epochs` (suite `emulation`) for a higher-level
    /// group of suite `higher`.
    fn new(
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
            let found = Found {
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

impl OwnLeafResolver for Rederive<'_> {
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

/// The `VirtualClientAction` of a SafeAAD (its item of component [`VC_COMPONENT_ID`]), if
/// it has one.
fn action_of(safe_aad: &SafeAad) -> Result<Option<VirtualClientAction>, EmulatorError> {
    safe_aad
        .aad_items
        .iter()
        .find(|i| i.component_id == VC_COMPONENT_ID)
        .map(VirtualClientAction::from_safe_aad_item)
        .transpose()
        .map_err(EmulatorError::from)
}

/// `options` with `action` added as the SafeAAD item of component [`VC_COMPONENT_ID`] (§5.5).
fn with_action(
    mut options: CommitOptions,
    action: &VirtualClientAction,
) -> Result<CommitOptions, EmulatorError> {
    let mut items = options
        .safe_aad
        .take()
        .map(|a| a.aad_items)
        .unwrap_or_default();
    items.push(action.to_safe_aad_item()?);
    options.safe_aad = Some(SafeAad::new(items)?);
    Ok(options)
}

fn find_epoch(epochs: &[EmulationEpochSecrets], epoch_id: &[u8]) -> Result<usize, EmulatorError> {
    epochs
        .iter()
        .position(|e| e.epoch_id() == epoch_id)
        .ok_or(EmulatorError::UnknownEpochId)
}

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

    fn with_emulation(
        emulation: Group,
        epoch: EmulationEpochSecrets,
        credential: Credential,
    ) -> Self {
        Self::with_emulation_epochs(emulation, vec![epoch], credential)
    }

    fn with_emulation_epochs(
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

    /// Adds another emulator client (its ordinary KeyPackage) to the emulation group. The
    /// commit is pending: call [`EmulatorClient::confirm_emulation_commit`] once it was
    /// accepted (or process it when it comes back).
    pub fn add_emulator(
        &mut self,
        services: &Services<'_>,
        key_package: KeyPackage,
        now: u64,
    ) -> Result<CommitOutput, EmulatorError> {
        Ok(self.emulation.commit(
            services,
            CommitOptions::new().proposal(Proposal::add(key_package)),
            now,
        )?)
    }

    /// A commit in the emulation group (e.g. an empty one, for a new emulation epoch), pending
    /// like [`EmulatorClient::add_emulator`]'s.
    pub fn commit_emulation(
        &mut self,
        services: &Services<'_>,
        options: CommitOptions,
        now: u64,
    ) -> Result<CommitOutput, EmulatorError> {
        Ok(self.emulation.commit(services, options, now)?)
    }

    /// Merges our pending emulation-group commit and derives the new epoch's secrets.
    pub fn confirm_emulation_commit(
        &mut self,
        services: &Services<'_>,
    ) -> Result<(), EmulatorError> {
        let mut emulation = self.emulation.clone();
        emulation.merge_pending_commit()?;
        self.enter_emulation_epoch(services, emulation)?;
        self.external_joins
            .extend(self.pending_external_join.take());
        Ok(())
    }

    /// Processes a message of the emulation group; a commit moves to a new emulation epoch.
    ///
    /// An application message is an [`crate::transfer::EmulationMessage`]: a `DeviceState`
    /// (state transfer, row 12 (a)) is merged ([`EmulatorClient::device_state_message`]) and
    /// returned as `ProcessedMessage::Application` with empty `data` (the secrets are not
    /// handed out); a malformed or inconsistent one is [`EmulatorError::Transfer`], an
    /// unknown type `TransferError::UnknownMessageType`, and nothing changes. Our own
    /// application message coming back from the delivery service cannot be opened (its key
    /// was used up when sending): drop it, do not process it.
    ///
    /// A commit that removes this client returns `Commit { removed_us: true, .. }`: the client
    /// deletes its emulation epochs, higher-level groups and KeyPackages, derives nothing
    /// more, and every later operation is [`EmulatorError::Removed`].
    pub fn process_emulation(
        &mut self,
        services: &Services<'_>,
        bytes: &[u8],
        now: u64,
    ) -> Result<ProcessedMessage, EmulatorError> {
        self.check_member()?;
        // The size check `Group::process_bytes` makes, before decoding.
        let max = self.emulation.config().max_message_size;
        if bytes.len() > max as usize {
            return Err(GroupError::MessageTooLarge {
                size: bytes.len(),
                max,
            }
            .into());
        }
        let message = MlsMessage::decode(bytes).map_err(GroupError::from)?;
        let mut emulation = self.emulation.clone();
        let received = emulation.process_message(services, &message, now)?;
        let processed = received.processed;
        if let ProcessedMessage::Commit {
            removed_us: true, ..
        } = &processed
        {
            self.enter_removed(emulation);
            return Ok(processed);
        }
        if let ProcessedMessage::Application {
            sender,
            data,
            authenticated_data,
        } = processed
        {
            // An `EmulationMessage` (state transfer): merged into a copy, installed whole.
            let data = zeroize::Zeroizing::new(data);
            self.process_emulation_message(services, emulation, &data)?;
            return Ok(ProcessedMessage::Application {
                sender,
                data: Vec::new(),
                authenticated_data,
            });
        }
        if let ProcessedMessage::Commit { sender, own, .. } = &processed {
            let mut uploaded = Vec::new();
            let mut external_join = None;
            if *own {
                external_join = self.pending_external_join.take();
            } else {
                let action = match &received.safe_aad {
                    Some(safe_aad) => action_of(safe_aad)?,
                    None => None,
                };
                if let Some(VirtualClientAction::ExternalJoin(join)) = &action {
                    external_join = Some(join.group_id.as_slice().to_vec());
                }
                uploaded = self.uploaded_by(*sender, action)?;
            }
            self.enter_emulation_epoch(services, emulation)?;
            self.uploaded.extend(uploaded);
            self.external_joins.extend(external_join);
            self.prune_epochs();
        } else {
            self.emulation = emulation;
        }
        Ok(processed)
    }

    /// The entries a sibling's Commit from `sender` announces with `action` (none unless it
    /// is a `KeyPackageUpload`). Its `epoch_id` must be one we keep; a ref we already know is
    /// refused.
    fn uploaded_by(
        &self,
        sender: Sender,
        action: Option<VirtualClientAction>,
    ) -> Result<Vec<UploadedKeyPackage>, EmulatorError> {
        let Some(VirtualClientAction::KeyPackageUpload(upload)) = action else {
            return Ok(Vec::new());
        };
        let Sender::Member(leaf_index) = sender else {
            return Err(EmulatorError::MalformedUpload("not sent by a member"));
        };
        let epoch_id = upload.epoch_id.as_slice().to_vec();
        if !self
            .epochs
            .iter()
            .any(|e| e.epoch_id() == epoch_id.as_slice())
        {
            return Err(EmulatorError::UnknownEpochId);
        }
        if upload.key_package_info.is_empty() {
            return Err(EmulatorError::MalformedUpload("no KeyPackage"));
        }
        let mut out: Vec<UploadedKeyPackage> = Vec::with_capacity(upload.key_package_info.len());
        for info in upload.key_package_info {
            let known = out.iter().any(|u| u.reference == info.key_package_ref)
                || self
                    .uploaded
                    .iter()
                    .any(|u| u.reference == info.key_package_ref);
            if known {
                return Err(EmulatorError::MalformedUpload("KeyPackageRef listed twice"));
            }
            out.push(UploadedKeyPackage {
                reference: info.key_package_ref,
                epoch_id: epoch_id.clone(),
                leaf_index,
                random: info.random.as_slice().to_vec(),
            });
        }
        Ok(out)
    }

    fn enter_emulation_epoch(
        &mut self,
        services: &Services<'_>,
        mut emulation: Group,
    ) -> Result<(), EmulatorError> {
        let epoch = EmulationEpochSecrets::from_group(&mut emulation, services)?;
        self.emulation = emulation;
        self.epochs.push(epoch);
        self.prune_epochs();
        Ok(())
    }

    /// Deletes the emulation epochs no longer needed (row 10, see the module docs).
    fn prune_epochs(&mut self) {
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

    fn emulation_suite<'s>(
        &self,
        services: &Services<'s>,
    ) -> Result<&'s dyn SuiteProvider, EmulatorError> {
        Ok(services.crypto.suite(self.emulation.cipher_suite())?)
    }

    /// A derivation from (a copy of) the newest epoch; the caller installs the copy on
    /// success.
    fn derive_new(
        &self,
        emulation: &dyn SuiteProvider,
    ) -> Result<(EmulationEpochSecrets, crate::derivation::SenderDerivation), EmulatorError> {
        self.check_member()?;
        let mut epoch = self
            .epochs
            .last()
            .cloned()
            .ok_or(EmulatorError::UnknownEpochId)?;
        let sent = derive_for_sender(&mut epoch, emulation, self.emulation.own_leaf_index().0)?;
        Ok((epoch, sent))
    }

    fn install_newest(&mut self, epoch: EmulationEpochSecrets) {
        if let Some(last) = self.epochs.last_mut() {
            *last = epoch;
        }
    }

    fn leaf_params(&self, cipher_suite: CipherSuite) -> LeafNodeParams {
        LeafNodeParams::new(cipher_suite, self.credential.clone())
    }

    /// A KeyPackage of the virtual client for a higher-level group of `cipher_suite`, from
    /// derived secrets (its leaf carries the `DerivationInfoExtension`). Publish it; a
    /// Welcome sent to it can be joined by this client and by every sibling given it.
    pub fn publish_key_package(
        &mut self,
        services: &Services<'_>,
        cipher_suite: CipherSuite,
        lifetime: Lifetime,
    ) -> Result<KeyPackage, EmulatorError> {
        let emu = self.emulation_suite(services)?;
        let higher = services.crypto.suite(cipher_suite)?;
        let (epoch, sent) = self.derive_new(emu)?;
        let secrets = sent.leaf_secrets(emu, higher)?;
        let bundle = secrets.key_package(
            higher,
            KeyPackageParams::new(cipher_suite, self.credential.clone(), lifetime)
                .with_leaf(self.leaf_params(cipher_suite)),
        )?;
        let key_package = bundle.key_package.clone();
        self.key_packages.push(OwnKeyPackage {
            bundle,
            signature_key: secrets.signature_key.clone(),
            leaf: LeafState::derived(&sent.key_secrets, &epoch),
        });
        self.install_newest(epoch);
        Ok(key_package)
    }

    /// `count` KeyPackages of the virtual client for higher-level groups of `cipher_suite`
    /// (§5.5.1), derived from the newest emulation epoch, and the emulation-group Commit
    /// (`options`, e.g. empty) carrying the `KeyPackageUpload` action as the SafeAAD item of
    /// component [`VC_COMPONENT_ID`]. Send the Commit first; once it was accepted
    /// ([`EmulatorClient::confirm_emulation_commit`]) publish the KeyPackages: every sibling
    /// that processed the Commit can join from a Welcome sent to any of them
    /// ([`EmulatorClient::join_from_welcome_by_ref`]). If the Commit is refused, call
    /// [`EmulatorClient::abandon_emulation_commit`] and do not publish them.
    pub fn publish_key_packages(
        &mut self,
        services: &Services<'_>,
        cipher_suite: CipherSuite,
        lifetime: Lifetime,
        count: usize,
        options: CommitOptions,
        now: u64,
    ) -> Result<(CommitOutput, Vec<KeyPackage>), EmulatorError> {
        self.check_member()?;
        if count == 0 {
            return Err(EmulatorError::MalformedUpload("no KeyPackage"));
        }
        let emu = self.emulation_suite(services)?;
        let higher = services.crypto.suite(cipher_suite)?;
        let mut epoch = self
            .epochs
            .last()
            .cloned()
            .ok_or(EmulatorError::UnknownEpochId)?;
        let own_index = self.emulation.own_leaf_index().0;
        let mut made = Vec::with_capacity(count);
        let mut infos = Vec::with_capacity(count);
        for _ in 0..count {
            let sent = derive_for_sender(&mut epoch, emu, own_index)?;
            let secrets = sent.leaf_secrets(emu, higher)?;
            let bundle = secrets.key_package(
                higher,
                KeyPackageParams::new(cipher_suite, self.credential.clone(), lifetime)
                    .with_leaf(self.leaf_params(cipher_suite)),
            )?;
            infos.push(KeyPackageInfo {
                key_package_ref: bundle.reference.clone(),
                random: sent.epoch_info.random.clone(),
            });
            made.push(OwnKeyPackage {
                bundle,
                signature_key: secrets.signature_key.clone(),
                leaf: LeafState::derived(&sent.key_secrets, &epoch),
            });
        }
        let action = VirtualClientAction::KeyPackageUpload(KeyPackageUpload {
            epoch_id: VLBytes::new(epoch.epoch_id().to_vec()),
            key_package_info: infos,
        });
        let out = self
            .emulation
            .commit(services, with_action(options, &action)?, now)?;
        let key_packages = made.iter().map(|k| k.bundle.key_package.clone()).collect();
        self.key_packages.extend(made);
        self.install_newest(epoch);
        Ok((out, key_packages))
    }

    /// Drops our pending emulation-group commit (the delivery service refused it).
    pub fn abandon_emulation_commit(&mut self) {
        self.emulation.clear_pending_commit();
        self.pending_external_join = None;
    }

    /// Joins a higher-level group from `welcome` sent to a KeyPackage of the virtual client
    /// this client knows by its `KeyPackageRef` alone: one it published, or one a sibling
    /// announced in a `KeyPackageUpload` (§5.5.1) whose keys are re-derived from (`epoch_id`,
    /// sender leaf index, `random`); its PPRF leaf is then punctured. A Welcome for no known
    /// ref is [`EmulatorError::UnknownKeyPackageRef`]. Returns the group ID. On error nothing
    /// changes.
    pub fn join_from_welcome_by_ref(
        &mut self,
        services: &Services<'_>,
        welcome: &Welcome,
        now: u64,
    ) -> Result<Vec<u8>, EmulatorError> {
        self.check_member()?;
        if let Some(own) = self
            .key_packages
            .iter()
            .find(|k| welcome.secrets_for(&k.bundle.reference).is_some())
        {
            let key_package = own.bundle.key_package.clone();
            return self.join_from_welcome(services, welcome, &key_package, now);
        }
        let pos = self
            .uploaded
            .iter()
            .position(|u| welcome.secrets_for(&u.reference).is_some())
            .ok_or(EmulatorError::UnknownKeyPackageRef)?;
        let entry = self
            .uploaded
            .get(pos)
            .cloned()
            .ok_or(EmulatorError::UnknownKeyPackageRef)?;
        let emu = self.emulation_suite(services)?;
        let higher = services.crypto.suite(welcome.cipher_suite)?;
        let index = find_epoch(&self.epochs, &entry.epoch_id)?;
        let epoch = self
            .epochs
            .get(index)
            .cloned()
            .ok_or(EmulatorError::UnknownEpochId)?;
        let received = derive_from_parts(&epoch, emu, entry.leaf_index, &entry.random)?;
        let keys = received.key_secrets.key_pairs(emu, higher)?;
        let group = Group::join_from_welcome_by_ref(
            services,
            self.config,
            welcome,
            &entry.reference,
            &keys.init_key.private_key,
            keys.encryption_key.clone(),
            keys.signature_key.clone(),
            None,
            now,
        )?;
        let group_id = self.install_derived_join(emu, group, received, epoch, index)?;
        self.uploaded.remove(pos);
        self.prune_epochs();
        Ok(group_id)
    }

    /// Joins a higher-level group from `welcome`, sent to `key_package` of the virtual client:
    /// one this client published, or a sibling's (its keys are re-derived from the leaf's
    /// `DerivationInfoExtension` and its PPRF leaf punctured). Returns the group ID.
    pub fn join_from_welcome(
        &mut self,
        services: &Services<'_>,
        welcome: &Welcome,
        key_package: &KeyPackage,
        now: u64,
    ) -> Result<Vec<u8>, EmulatorError> {
        self.check_member()?;
        let higher = services.crypto.suite(key_package.cipher_suite)?;
        let reference = key_package_ref(higher, key_package)?;
        if let Some(pos) = self
            .key_packages
            .iter()
            .position(|k| k.bundle.reference == reference)
        {
            let own = self
                .key_packages
                .get(pos)
                .ok_or(EmulatorError::UnknownGroup)?;
            let group = Group::join_from_welcome(
                services,
                self.config,
                welcome,
                &own.bundle,
                own.signature_key.clone(),
                None,
                now,
            )?;
            let leaf = own.leaf.clone();
            let group_id = self.insert_group(group, leaf)?;
            self.key_packages.remove(pos);
            self.prune_epochs();
            return Ok(group_id);
        }
        let emu = self.emulation_suite(services)?;
        let ext = derivation_info_of(&key_package.leaf_node)?
            .ok_or(EmulatorError::MissingDerivationInfo)?;
        let index = find_epoch(&self.epochs, ext.epoch_id.as_slice())?;
        let epoch = self
            .epochs
            .get(index)
            .cloned()
            .ok_or(EmulatorError::UnknownEpochId)?;
        let received = derive_for_receiver(&epoch, emu, &ext)?;
        let keys = received.key_secrets.key_pairs(emu, higher)?;
        let bundle = keys.key_package_bundle(higher, key_package.clone())?;
        let group = Group::join_from_welcome(
            services,
            self.config,
            welcome,
            &bundle,
            keys.signature_key.clone(),
            None,
            now,
        )?;
        self.install_derived_join(emu, group, received, epoch, index)
    }

    /// Stores a higher-level group joined with keys re-derived from emulation epoch `index`:
    /// punctures their PPRF leaf in `epoch` (a copy of that epoch) and installs both.
    fn install_derived_join(
        &mut self,
        emu: &dyn SuiteProvider,
        group: Group,
        received: ReceivedDerivation,
        mut epoch: EmulationEpochSecrets,
        index: usize,
    ) -> Result<Vec<u8>, EmulatorError> {
        received.puncture(&mut epoch, emu)?;
        let leaf = LeafState::derived(&received.key_secrets, &epoch);
        let group_id = self.insert_group(group, leaf)?;
        if let Some(slot) = self.epochs.get_mut(index) {
            *slot = epoch;
        }
        Ok(group_id)
    }

    /// Installs a joined group. A group of that ID the virtual client was removed from (or
    /// that was reinitialised) is replaced: the virtual client is being added back.
    fn insert_group(&mut self, group: Group, leaf: LeafState) -> Result<Vec<u8>, EmulatorError> {
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
    /// from derived secrets. The commit is pending: call [`EmulatorClient::confirm_commit`]
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
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        let higher = services.crypto.suite(cipher_suite)?;
        let secrets = sent.leaf_secrets(emu, higher)?;
        let mut options = CommitOptions::new();
        options.proposals = proposals;
        let out = entry
            .group
            .commit(services, secrets.commit_options(params, options), now)?;
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

    /// An application message in `group_id` as the virtual client, with the FF1 reuse guard
    /// of this emulator client (§5.6, row 11). Call [`EmulatorClient::confirm_sent`] once the
    /// delivery service accepted it.
    pub fn send_application(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
        data: &[u8],
    ) -> Result<MlsMessage, EmulatorError> {
        self.check_member()?;
        let emu = self.emulation_suite(services)?;
        let leaf_index = self.emulation.own_leaf_index().0;
        let leaves = self.emulation.ratchet_tree().n_leaves();
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        let sender = ReuseGuardSender::with_random(
            emu,
            &entry.leaf.encryption_key_secret,
            leaf_index,
            leaves,
        )?;
        let guard = |nonce: &Secret| sender.guard_for(nonce);
        let message = entry.group.encrypt_application_with(
            services,
            data,
            &[],
            ReuseGuard::FromNonce(&guard),
        )?;
        // On error the message is discarded: like a send the delivery service refused, its
        // generation is skipped (its key stays until a sibling's message consumes it, H3).
        sender.finish()?;
        Ok(message)
    }

    /// The delivery service accepted `message`, an application message we sent in
    /// `group_id`: its generation's key is deleted (H3).
    pub fn confirm_sent(
        &mut self,
        services: &Services<'_>,
        group_id: &[u8],
        message: &MlsMessage,
    ) -> Result<bool, EmulatorError> {
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        Ok(entry.group.confirm_sent(services, message)?)
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
        let emu = self.emulation_suite(services)?;
        let entry = self
            .groups
            .get_mut(group_id)
            .ok_or(EmulatorError::UnknownGroup)?;
        let higher = services.crypto.suite(entry.group.cipher_suite())?;
        let resolver = Rederive::new(&self.epochs, emu, higher);
        let with_resolver = services.with_own_leaf_resolver(&resolver);
        // The engine leaves the group unchanged on error; the punctured epoch is installed
        // only on success.
        let result = entry.group.process_bytes(&with_resolver, bytes, now);
        let found = resolver.found.into_inner();
        let processed = match result {
            Ok(p) => p,
            Err(e) => {
                return Err(match found {
                    Some(Err(derivation)) => derivation,
                    _ => e.into(),
                })
            }
        };
        let mut new_leaf = None;
        let mut punctured = None;
        if let Some(Ok(found)) = found {
            new_leaf = Some(found.leaf);
            punctured = Some((found.index, found.punctured));
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
        self.prune_epochs();
        Ok(processed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mls_engine::crypto::{CryptoProvider as _, RustCrypto};
    use mls_engine::messages::HpkeKeySource;

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
