//! Processing what the service delivers, in log order per group: Welcomes, the emulation
//! group's messages, higher-level groups' messages; echoes, duplicates and gaps.

use mls_engine::codec::{Credential, GroupInfo, MlsMessage, MlsMessageBody};
use mls_engine::group::ProcessedMessage;
use vmls_protocol::{
    Ack, Delivered, Fetch, GroupId, GroupMessage, MailboxItem, MessageId, MessageKind, Response,
    Sequence, WelcomeDelivery,
};

use super::api::Event;
use super::member::{decode_welcome, message_epoch, roster, Member};
use super::operation_types::Step;
use super::Recovery;
use super::{Device, Purpose, RuntimeError, MAX_HELD};
use crate::emulator::EmulatorClient;

impl Device {
    /// The answer to a mailbox read.
    pub(super) fn mailbox_answered(&mut self, response: Response, now: u64) {
        self.reading = false;
        match response {
            Response::Mailbox(items) => {
                let full = items.len() >= self.config.mailbox_batch as usize;
                self.process_mailbox(items, now);
                if full || self.read_again {
                    self.read_again = false;
                    self.read_mailbox();
                }
            }
            Response::Refused(e) => self.emit(Event::Fatal {
                reason: format!("the mailbox cannot be read: {e}"),
            }),
            _ => self.emit(Event::Fatal {
                reason: "the service answered a mailbox read with something else".into(),
            }),
        }
    }

    /// Processes mailbox items in order and acknowledges them.
    pub(super) fn process_mailbox(&mut self, items: Vec<MailboxItem>, now: u64) {
        let mut last = None;
        for MailboxItem { cursor, item } in items {
            if self.mailbox_after.is_some_and(|after| cursor <= after) {
                continue;
            }
            self.mailbox_after = Some(cursor);
            last = Some(cursor);
            self.deliver(item, now);
        }
        if let Some(up_to) = last {
            self.transmit(vmls_protocol::Request::Ack(Ack { up_to }), Purpose::Ack);
        }
    }

    /// The answer to a fetch of `group_id`'s log.
    pub(super) fn fetch_answered(&mut self, group_id: GroupId, response: Response, now: u64) {
        self.fetching.remove(&group_id);
        match response {
            Response::Messages(messages) => {
                // What the service returns from the group's log is authoritative: a message
                // that cannot be processed there means this device lags the group.
                self.from_log = true;
                for m in messages {
                    if m.group_id == group_id {
                        self.message(m, now);
                    }
                }
                self.from_log = false;
            }
            Response::Refused(e) => self.emit(Event::NeedsResync {
                group_id,
                reason: format!("its log cannot be fetched: {e}"),
            }),
            _ => self.emit(Event::NeedsResync {
                group_id,
                reason: "the service answered a fetch with something else".into(),
            }),
        }
    }

    /// Asks for `group_id`'s log from `from` on (once at a time).
    pub(super) fn fetch(&mut self, group_id: GroupId, from: Sequence) {
        if self.fetching.insert(group_id.clone()) {
            self.transmit(
                vmls_protocol::Request::Fetch(Fetch {
                    group_id: group_id.clone(),
                    from,
                }),
                Purpose::Fetch(group_id),
            );
        }
    }

    fn deliver(&mut self, item: Delivered, now: u64) {
        match item {
            Delivered::Welcome(w) => self.welcome(w, now),
            Delivered::Message { message, .. } => self.message(message, now),
        }
    }

    /// Whether the device holds `group_id` (the emulation group once joined).
    fn knows(&self, group_id: &GroupId) -> bool {
        if self.member.emulation_group() == Some(group_id) {
            return self.member.emulator().is_some();
        }
        self.member.group(group_id).is_some()
    }

    /// A group message: held, dropped (duplicate), a gap (fetched) or processed.
    pub(super) fn message(&mut self, m: GroupMessage, now: u64) {
        // A sibling's external join into a group we do not hold yet is followed at once.
        let sibling_join = matches!(m.kind, MessageKind::ExternalCommit { .. })
            && m.emulator_view
                .as_ref()
                .is_some_and(|v| v.group_info.is_some());
        if self.holds(&m.group_id) || !(self.knows(&m.group_id) || sibling_join) {
            let held = self.held.entry(m.group_id.clone()).or_default();
            if held.len() >= MAX_HELD {
                let group_id = m.group_id.clone();
                self.emit(Event::Rejected {
                    group_id,
                    sequence: Some(m.sequence),
                    reason: "too many messages held for the group".into(),
                });
            } else if !held.iter().any(|h| h.sequence == m.sequence) {
                held.push(m);
                held.sort_by_key(|h| h.sequence);
            }
            return;
        }
        self.message_unheld(m, now);
    }

    /// A message of a group the device holds and is not waiting on.
    fn message_unheld(&mut self, m: GroupMessage, now: u64) {
        let group_id = m.group_id.clone();
        match self.next.get(&group_id).copied() {
            Some(next) if m.sequence < next => return,
            Some(next) if m.sequence > next => {
                self.fetch(group_id, next);
                return;
            }
            _ => {}
        }
        self.in_order(m, now);
    }

    /// Processes the next message of a group's log.
    fn in_order(&mut self, m: GroupMessage, now: u64) {
        let group_id = m.group_id.clone();
        let sequence = m.sequence;
        if let Some(view) = &m.emulator_view {
            let next = self.vc_next.entry(group_id.clone()).or_default();
            *next = (*next).max(view.vc_sequence.next());
        }
        let message_id = MessageId::of_message(&m.message);
        if self.is_own_pending(&group_id, &message_id) {
            self.next.insert(group_id.clone(), sequence.next());
            return self.own_echo(&group_id, &m, now);
        }
        let emulation = self.member.emulation_group() == Some(&group_id);
        let learning = !self.next.contains_key(&group_id);
        let own = match &m.emulator_view {
            Some(view) => view.emulator == self.id,
            None => m.sender == self.id,
        };
        let previous = self.next.insert(group_id.clone(), sequence.next());
        if own {
            // Our own message whose acceptance we handled already.
            return;
        }
        if m.kind.commit_epoch().is_some() {
            self.rival_commit(&group_id);
        }
        let processed = if emulation {
            self.emulation_message(&m, now)
        } else if learning && self.reflected(&m) {
            // A group from a state transfer: the sibling's state already holds this message.
            true
        } else {
            self.group_message(&m, now)
        };
        if !processed && !self.from_log {
            // A mailbox item that cannot be used changes nothing, not even the log position:
            // the genuine message there (if any) is fetched when the gap shows.
            match previous {
                Some(p) => self.next.insert(group_id, p),
                None => self.next.remove(&group_id),
            };
        }
    }

    /// Whether a message is of an epoch before the group's (so the state it came with holds
    /// it already).
    fn reflected(&self, m: &GroupMessage) -> bool {
        let epoch = self.member.group(&m.group_id).map(|g| g.epoch());
        matches!((message_epoch(&m.message), epoch), (Some(e), Some(now)) if e < now)
    }

    /// Our pending request's message came back in log order: it was accepted.
    fn own_echo(&mut self, group_id: &GroupId, m: &GroupMessage, now: u64) {
        let Some((request, step)) = self.pending_step() else {
            return;
        };
        let services = self.services();
        let result = match &step {
            Step::Commit(_) => {
                self.group_message(m, now);
                Ok(())
            }
            Step::EmulationCommit => {
                let before = self.emulation_roster_now();
                let r = self.member.emulator_mut().and_then(|c| {
                    Ok(c.process_emulation(&services, &m.message, now)
                        .map(|_| ())?)
                });
                let after = self.emulation_roster_now();
                self.device_events(&before, &after);
                r
            }
            Step::ExternalCommit(g) => self.member.confirm_external_join(g),
            Step::Application(g) => match &request {
                vmls_protocol::Request::Send(s) => {
                    self.member.confirm_sent(&services, g, &s.send.message)
                }
                _ => Ok(()),
            },
            _ => Ok(()),
        };
        self.release_held(group_id, now);
        match result {
            Ok(()) => self.step_completed(step),
            Err(e) => self.emit_error(group_id, Some(m.sequence), e),
        }
    }

    fn emulation_roster_now(&self) -> Vec<(u32, vmls_protocol::ClientId, Vec<u8>)> {
        self.member
            .emulator()
            .map(|c| roster(c.emulation_group()))
            .unwrap_or_default()
    }

    /// A message of the emulation group (a sibling's Commit or state transfer).
    fn emulation_message(&mut self, m: &GroupMessage, now: u64) -> bool {
        let services = self.services();
        let before = self.emulation_roster_now();
        let groups_before = self.member.group_ids();
        let result = self
            .member
            .emulator_mut()
            .and_then(|c| Ok(c.process_emulation_outcome(&services, &m.message, now)?));
        let result = result.map(|outcome| {
            if let Some(ignored) = outcome.ignored_action {
                self.emit(Event::Rejected {
                    group_id: m.group_id.clone(),
                    sequence: Some(m.sequence),
                    reason: format!("the Commit's VirtualClientAction was ignored: {ignored}"),
                });
            }
            outcome.processed
        });
        match result {
            Ok(ProcessedMessage::Commit { removed_us, .. }) => {
                let after = self.emulation_roster_now();
                self.device_events(&before, &after);
                if removed_us {
                    let device = self.id.clone();
                    self.emit(Event::DeviceRemoved { device });
                    self.emit(Event::Fatal {
                        reason: "removed from the emulation group: the device holds nothing of the virtual client".into(),
                    });
                }
            }
            Ok(ProcessedMessage::Application { .. }) => {
                for group_id in self.member.group_ids() {
                    if groups_before.contains(&group_id) {
                        continue;
                    }
                    let members = self
                        .member
                        .group(&group_id)
                        .map(|g| roster(g).into_iter().map(|(_, id, _)| id).collect())
                        .unwrap_or_default();
                    self.vc_next.entry(group_id.clone()).or_default();
                    self.emit(Event::Joined {
                        group_id: group_id.clone(),
                        members,
                    });
                    self.release_held(&group_id, now);
                }
            }
            Ok(ProcessedMessage::Proposal { .. }) => {}
            Err(e) => {
                let reason = e.to_string();
                if self.from_log && m.kind.commit_epoch().is_some() {
                    self.emit(Event::Fatal {
                        reason: format!("cannot follow the emulation group: {reason}"),
                    });
                } else {
                    self.emit(Event::Rejected {
                        group_id: m.group_id.clone(),
                        sequence: Some(m.sequence),
                        reason,
                    });
                }
                return false;
            }
        }
        true
    }

    /// A message of a higher-level group.
    fn group_message(&mut self, m: &GroupMessage, now: u64) -> bool {
        let group_id = m.group_id.clone();
        let services = self.services();
        let before = self.member.group(&group_id).map(roster).unwrap_or_default();
        if let (MessageKind::ExternalCommit { .. }, Some(info), Member::Emulator(_)) = (
            m.kind,
            m.emulator_view.as_ref().and_then(|v| v.group_info.clone()),
            &self.member,
        ) {
            return self.follow_external_join(m, &info, before, now);
        }
        match self.member.process(&services, &group_id, &m.message, now) {
            Ok(ProcessedMessage::Application { sender, data, .. }) => {
                let sender = before
                    .iter()
                    .find(|(i, _, _)| *i == sender.0)
                    .map(|(_, id, _)| id.clone())
                    .unwrap_or_else(|| m.sender.clone());
                self.emit(Event::MessageReceived {
                    group_id,
                    sender,
                    data,
                });
            }
            Ok(ProcessedMessage::Proposal { .. }) => {}
            Ok(ProcessedMessage::Commit { removed_us, .. }) => {
                self.commit_event(&group_id, before, m.sender.clone());
                if removed_us {
                    self.member.forget(&group_id);
                    self.next.remove(&group_id);
                    self.emit(Event::Removed {
                        group_id: group_id.clone(),
                    });
                }
            }
            Err(e) => {
                if self.from_log && m.kind.commit_epoch().is_some() {
                    self.emit_error(&group_id, Some(m.sequence), e);
                } else {
                    self.emit(Event::Rejected {
                        group_id,
                        sequence: Some(m.sequence),
                        reason: e.to_string(),
                    });
                }
                return false;
            }
        }
        true
    }

    /// A sibling's external join of the virtual client, with the GroupInfo it was built from.
    fn follow_external_join(
        &mut self,
        m: &GroupMessage,
        info: &[u8],
        before: Vec<(u32, vmls_protocol::ClientId, Vec<u8>)>,
        now: u64,
    ) -> bool {
        let services = self.services();
        let group_id = m.group_id.clone();
        let result = (|| -> Result<(), RuntimeError> {
            let info: GroupInfo = match MlsMessage::decode(info)?.body {
                MlsMessageBody::GroupInfo(i) => i,
                _ => return Err(RuntimeError::UnexpectedMessage("a GroupInfo")),
            };
            let commit = MlsMessage::decode(&m.message)?;
            self.member
                .emulator_mut()?
                .follow_external_join(&services, &info, None, &commit, now)?;
            Ok(())
        })();
        match result {
            Ok(()) if before.is_empty() => {
                let members = self
                    .member
                    .group(&group_id)
                    .map(|g| roster(g).into_iter().map(|(_, id, _)| id).collect())
                    .unwrap_or_default();
                self.emit(Event::Joined {
                    group_id: group_id.clone(),
                    members,
                });
                self.release_held(&group_id, now);
            }
            Ok(()) => self.commit_event(&group_id, before, m.sender.clone()),
            Err(e) if self.from_log => {
                self.emit_error(&group_id, Some(m.sequence), e);
                return false;
            }
            Err(e) => {
                self.emit(Event::Rejected {
                    group_id,
                    sequence: Some(m.sequence),
                    reason: e.to_string(),
                });
                return false;
            }
        }
        true
    }

    /// A Welcome: into the emulation group (a joining emulator client) or a higher-level group.
    fn welcome(&mut self, w: WelcomeDelivery, now: u64) {
        let services = self.services();
        let group_id = w.group_id.clone();
        let result = (|| -> Result<GroupId, RuntimeError> {
            let welcome = decode_welcome(&w.message)?;
            if let Member::Emulator(e) = &mut self.member {
                if e.client.is_none() && e.emulation_group == group_id && w.recipient == self.id {
                    let (bundle, key) = e.joining.clone().ok_or(RuntimeError::NotJoined)?;
                    let credential = Credential::basic(e.virtual_client.as_bytes().to_vec());
                    let client =
                        EmulatorClient::join(&services, &welcome, &bundle, key, credential, now)?;
                    e.client = Some(client);
                    e.joining = None;
                    return Ok(group_id.clone());
                }
            }
            self.member.join(&services, &welcome, now)
        })();
        match result {
            Ok(joined) => {
                self.next.insert(joined.clone(), w.sequence.next());
                if self.member.emulation_group() == Some(&joined) {
                    self.emit(Event::Ready);
                } else {
                    self.vc_next.entry(joined.clone()).or_default();
                    let members = self
                        .member
                        .group(&joined)
                        .map(|g| roster(g).into_iter().map(|(_, id, _)| id).collect())
                        .unwrap_or_default();
                    self.emit(Event::Joined {
                        group_id: joined.clone(),
                        members,
                    });
                }
                self.release_held(&joined, now);
            }
            Err(e) => self.emit(Event::Rejected {
                group_id,
                sequence: Some(w.sequence),
                reason: e.to_string(),
            }),
        }
    }

    /// Processes the held messages of `group_id` (the device now holds it, or stopped waiting).
    pub(super) fn release_held(&mut self, group_id: &GroupId, now: u64) {
        if let Some(held) = self.held.remove(group_id) {
            for m in held {
                self.message(m, now);
            }
        }
    }

    /// Processes the held messages of `group_id` before `sequence` (they precede our accepted
    /// message in the log).
    pub(super) fn release_held_before(&mut self, group_id: &GroupId, sequence: Sequence, now: u64) {
        let Some(held) = self.held.remove(group_id) else {
            return;
        };
        let (before, after): (Vec<_>, Vec<_>) =
            held.into_iter().partition(|m| m.sequence < sequence);
        if !after.is_empty() {
            self.held.insert(group_id.clone(), after);
        }
        for m in before {
            self.message_unheld(m, now);
        }
    }

    /// Reports an error about `group_id` by its recovery.
    pub(super) fn emit_error(
        &mut self,
        group_id: &GroupId,
        sequence: Option<Sequence>,
        e: RuntimeError,
    ) {
        let reason = e.to_string();
        // The message is in the group's log: a refused one means we lag the group (E-vc16).
        match e.recovery() {
            Recovery::Resync | Recovery::RetryAfterProcessing | Recovery::Refused => {
                self.emit(Event::NeedsResync {
                    group_id: group_id.clone(),
                    reason,
                })
            }
            Recovery::Fatal => self.emit(Event::Fatal { reason }),
        }
        let _ = sequence;
    }
}
