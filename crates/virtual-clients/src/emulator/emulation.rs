//! The emulation group itself (draft §5.2, §5.5): commits, their confirmation, and the
//! processing of its messages (new emulation epochs, `VirtualClientAction`s in SafeAAD, state
//! transfers).

use mls_engine::codec::{KeyPackage, MlsMessage, Proposal, Sender};
use mls_engine::extensions::SafeAad;
use mls_engine::group::{
    CommitOptions, CommitOutput, Group, GroupError, ProcessedMessage, Services,
};

use super::{EmulatorClient, EmulatorError, UploadedKeyPackage};
use crate::epoch::EmulationEpochSecrets;
use crate::wire::{VirtualClientAction, VC_COMPONENT_ID};

/// What processing an emulation-group message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulationOutcome {
    /// The engine's result (a state transfer's `data` is emptied: the secrets stay inside).
    pub processed: ProcessedMessage,
    /// A sibling's Commit was applied but its `VirtualClientAction` was not: it was malformed
    /// (undecodable, an upload listing no KeyPackage or one ref twice) or named what this
    /// client does not hold (an emulation epoch it deleted). The application reports it; the
    /// announced KeyPackages are then unknown to this client (a Welcome to them is
    /// [`EmulatorError::UnknownKeyPackageRef`]), an announced external join cannot be
    /// followed ([`EmulatorError::NoExternalJoin`]).
    pub ignored_action: Option<EmulatorError>,
    /// The emulation-group leaf indices of the emulator clients (devices) the Commit removed
    /// (not us: a Commit removing us is `removed_us`). After a removal, every remaining
    /// device calls [`EmulatorClient::retire_key_packages`] and one of them
    /// [`EmulatorClient::update_all_groups`].
    pub removed_devices: Vec<u32>,
}

/// The leaves of `before` that are blank in `after` or hold a member of another credential
/// (a Remove and an Add at one index).
fn removed_leaves(before: &Group, after: &Group) -> Vec<u32> {
    let now = after.members();
    before
        .members()
        .into_iter()
        .filter(|m| {
            !now.iter()
                .any(|n| n.index == m.index && n.credential == m.credential)
        })
        .map(|m| m.index.0)
        .collect()
}

/// The effects of a sibling's `VirtualClientAction`.
#[derive(Default)]
struct ActionEffects {
    uploaded: Vec<UploadedKeyPackage>,
    external_join: Option<Vec<u8>>,
}

/// The `VirtualClientAction` of a SafeAAD (its item of component [`VC_COMPONENT_ID`]), if
/// it has one.
pub(super) fn action_of(safe_aad: &SafeAad) -> Result<Option<VirtualClientAction>, EmulatorError> {
    safe_aad
        .aad_items
        .iter()
        .find(|i| i.component_id == VC_COMPONENT_ID)
        .map(VirtualClientAction::from_safe_aad_item)
        .transpose()
        .map_err(EmulatorError::from)
}

/// `options` with `action` added as the SafeAAD item of component [`VC_COMPONENT_ID`] (§5.5).
pub(super) fn with_action(
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

impl EmulatorClient {
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

    /// Drops our pending emulation-group commit (the delivery service refused it).
    pub fn abandon_emulation_commit(&mut self) {
        self.emulation.clear_pending_commit();
        self.pending_external_join = None;
    }

    /// Processes a message of the emulation group; a commit moves to a new emulation epoch.
    /// [`EmulatorClient::process_emulation_outcome`] without the report of an ignored
    /// `VirtualClientAction`.
    pub fn process_emulation(
        &mut self,
        services: &Services<'_>,
        bytes: &[u8],
        now: u64,
    ) -> Result<ProcessedMessage, EmulatorError> {
        self.process_emulation_outcome(services, bytes, now)
            .map(|o| o.processed)
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
    /// A sibling's commit the engine accepts is always applied (the delivery service
    /// accepted it, so every sibling must follow it or be forked off). Its
    /// `VirtualClientAction` (SafeAAD) is applied if it is well-formed and consistent with
    /// what this client holds; otherwise it is ignored and returned as
    /// [`EmulationOutcome::ignored_action`] (issue 10 hole 1, docs/decisions.md E-vc14).
    ///
    /// A commit that removes this client returns `Commit { removed_us: true, .. }`: the client
    /// deletes its emulation epochs, higher-level groups and KeyPackages, derives nothing
    /// more, and every later operation is [`EmulatorError::Removed`].
    pub fn process_emulation_outcome(
        &mut self,
        services: &Services<'_>,
        bytes: &[u8],
        now: u64,
    ) -> Result<EmulationOutcome, EmulatorError> {
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
        let mut outcome = EmulationOutcome {
            processed: processed.clone(),
            ignored_action: None,
            removed_devices: Vec::new(),
        };
        match processed {
            ProcessedMessage::Commit {
                removed_us: true, ..
            } => self.enter_removed(emulation),
            ProcessedMessage::Application {
                sender,
                data,
                authenticated_data,
            } => {
                // An `EmulationMessage` (state transfer): merged into a copy, installed whole.
                let data = zeroize::Zeroizing::new(data);
                self.process_emulation_message(services, emulation, &data)?;
                outcome.processed = ProcessedMessage::Application {
                    sender,
                    data: Vec::new(),
                    authenticated_data,
                };
            }
            ProcessedMessage::Commit { sender, own, .. } => {
                let mut effects = ActionEffects::default();
                if own {
                    effects.external_join = self.pending_external_join.take();
                } else {
                    match self.action_effects(sender, received.safe_aad.as_ref()) {
                        Ok(e) => effects = e,
                        Err(e) => outcome.ignored_action = Some(e),
                    }
                }
                outcome.removed_devices = removed_leaves(&self.emulation, &emulation);
                self.enter_emulation_epoch(services, emulation)?;
                self.uploaded.extend(effects.uploaded);
                self.external_joins.extend(effects.external_join);
                self.prune_epochs();
            }
            ProcessedMessage::Proposal { .. } => self.emulation = emulation,
        }
        Ok(outcome)
    }

    /// What a sibling's Commit from `sender` with `safe_aad` does besides the new epoch: the
    /// KeyPackages its `KeyPackageUpload` announces, or the group of its `ExternalJoin`.
    fn action_effects(
        &self,
        sender: Sender,
        safe_aad: Option<&SafeAad>,
    ) -> Result<ActionEffects, EmulatorError> {
        let action = match safe_aad {
            Some(safe_aad) => action_of(safe_aad)?,
            None => None,
        };
        let mut effects = ActionEffects::default();
        if let Some(VirtualClientAction::ExternalJoin(join)) = &action {
            effects.external_join = Some(join.group_id.as_slice().to_vec());
        }
        effects.uploaded = self.uploaded_by(sender, action)?;
        Ok(effects)
    }

    pub(super) fn enter_emulation_epoch(
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
}
