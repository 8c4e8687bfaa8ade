//! The in-process [`DeliveryService`]: one totally ordered log per group, compare-and-append on
//! the group's epoch (Commits) and on each virtual client's own sequence, per-client mailboxes
//! with fan-out to every emulator client. For tests and `vmls demo`; sans-IO.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::{
    ClientId, Delivered, DeliveryError, DeliveryService, EmulatorView, GroupId, GroupMessage,
    GroupStatus, KeyPackageDirectory, KeyPackageUpload, MessageKind, SendRequest, Sequence,
    VcSequence, WelcomeDelivery,
};

/// A registered identity.
#[derive(Debug)]
enum Registration {
    /// A plain client and its mailbox.
    Plain { mailbox: VecDeque<Delivered> },
    /// A virtual client and its emulator clients (plain clients).
    Virtual { emulators: BTreeSet<ClientId> },
}

/// One accepted message, as stored.
#[derive(Debug)]
struct LogEntry {
    /// The member identity that sent it (the virtual client, if sent on its behalf).
    sender: ClientId,
    /// For a virtual client's message: the emulator that sent it and its [`VcSequence`].
    emulator: Option<EmulatorView>,
    kind: MessageKind,
    message: Arc<[u8]>,
}

/// The log positions an identity may read: from `from` to `until` (inclusive; `None` while it
/// is a member).
#[derive(Clone, Copy, Debug)]
struct Membership {
    from: Sequence,
    until: Option<Sequence>,
}

impl Membership {
    fn is_current(&self) -> bool {
        self.until.is_none()
    }

    fn covers(&self, sequence: Sequence) -> bool {
        sequence >= self.from && self.until.is_none_or(|until| sequence <= until)
    }
}

#[derive(Debug)]
struct GroupLog {
    epoch: u64,
    log: Vec<LogEntry>,
    /// Current and past members (the last membership of each identity).
    members: BTreeMap<ClientId, Membership>,
    /// Per virtual client: the [`VcSequence`] its next message in this group gets.
    vc_next: BTreeMap<ClientId, VcSequence>,
    /// The GroupInfo last published and the epoch it is of.
    group_info: Option<(u64, Arc<[u8]>)>,
}

impl GroupLog {
    /// `got` must be the group's current epoch: older is [`DeliveryError::StaleEpoch`], newer
    /// [`DeliveryError::FutureEpoch`].
    fn check_epoch(&self, got: u64) -> Result<(), DeliveryError> {
        let current = self.epoch;
        if got < current {
            return Err(DeliveryError::StaleEpoch { current, got });
        }
        if got > current {
            return Err(DeliveryError::FutureEpoch { current, got });
        }
        Ok(())
    }

    /// The GroupInfo published for `epoch`, if the last published one is of that epoch.
    fn group_info_of(&self, epoch: u64) -> Option<Arc<[u8]>> {
        match &self.group_info {
            Some((e, bytes)) if *e == epoch => Some(bytes.clone()),
            _ => None,
        }
    }
}

impl GroupLog {
    fn next_sequence(&self) -> Sequence {
        Sequence(self.log.len() as u64)
    }

    fn is_current_member(&self, id: &ClientId) -> bool {
        self.members.get(id).is_some_and(Membership::is_current)
    }
}

/// Counters of what the service carried, for `vmls demo`'s size comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Group messages accepted.
    pub messages_accepted: u64,
    /// Bytes of the group messages accepted (each counted once).
    pub bytes_accepted: u64,
    /// Requests refused.
    pub rejected: u64,
    /// Group messages put into mailboxes (one per receiving client).
    pub deliveries: u64,
    /// Bytes put into mailboxes (group messages and Welcomes).
    pub bytes_delivered: u64,
    /// Welcomes put into mailboxes (one per receiving client).
    pub welcomes_delivered: u64,
}

/// The in-process delivery service.
#[derive(Debug, Default)]
pub struct InMemoryDeliveryService {
    clients: BTreeMap<ClientId, Registration>,
    groups: BTreeMap<GroupId, GroupLog>,
    key_packages: KeyPackageDirectory,
    stats: DeliveryStats,
}

impl InMemoryDeliveryService {
    /// An empty service.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the service carried so far.
    pub fn stats(&self) -> DeliveryStats {
        self.stats
    }

    /// The KeyPackage directory (read-only).
    pub fn key_packages(&self) -> &KeyPackageDirectory {
        &self.key_packages
    }

    /// How many items wait in a plain client's mailbox (0 for unknown clients).
    pub fn pending(&self, client: &ClientId) -> usize {
        match self.clients.get(client) {
            Some(Registration::Plain { mailbox }) => mailbox.len(),
            _ => 0,
        }
    }

    /// The emulator clients of a virtual client.
    pub fn emulators(&self, virtual_client: &ClientId) -> Result<Vec<ClientId>, DeliveryError> {
        Ok(self.emulator_set(virtual_client)?.iter().cloned().collect())
    }

    fn plain(&self, client: &ClientId) -> Result<(), DeliveryError> {
        match self.clients.get(client) {
            None => Err(DeliveryError::UnknownClient(client.clone())),
            Some(Registration::Virtual { .. }) => {
                Err(DeliveryError::NotAPlainClient(client.clone()))
            }
            Some(Registration::Plain { .. }) => Ok(()),
        }
    }

    fn emulator_set(
        &self,
        virtual_client: &ClientId,
    ) -> Result<&BTreeSet<ClientId>, DeliveryError> {
        match self.clients.get(virtual_client) {
            None => Err(DeliveryError::UnknownClient(virtual_client.clone())),
            Some(Registration::Plain { .. }) => {
                Err(DeliveryError::NotAVirtualClient(virtual_client.clone()))
            }
            Some(Registration::Virtual { emulators }) => Ok(emulators),
        }
    }

    /// The member identity `client` acts as: `as_virtual_client` (checked) or itself.
    fn acting_identity(
        &self,
        client: &ClientId,
        as_virtual_client: Option<&ClientId>,
    ) -> Result<ClientId, DeliveryError> {
        self.plain(client)?;
        match as_virtual_client {
            None => Ok(client.clone()),
            Some(vc) => {
                if self.emulator_set(vc)?.contains(client) {
                    Ok(vc.clone())
                } else {
                    Err(DeliveryError::NotAnEmulator {
                        virtual_client: vc.clone(),
                        client: client.clone(),
                    })
                }
            }
        }
    }

    /// The plain clients whose mailboxes serve `identity`.
    fn mailboxes_of(&self, identity: &ClientId) -> Vec<ClientId> {
        match self.clients.get(identity) {
            Some(Registration::Plain { .. }) => vec![identity.clone()],
            Some(Registration::Virtual { emulators }) => emulators.iter().cloned().collect(),
            None => Vec::new(),
        }
    }

    fn push(&mut self, client: &ClientId, item: Delivered) {
        if let Some(Registration::Plain { mailbox }) = self.clients.get_mut(client) {
            mailbox.push_back(item);
        }
    }

    /// Checks a send request completely; returns the sending identity and, for a virtual
    /// client's message, the [`VcSequence`] it gets. Changes nothing.
    fn check_send(
        &self,
        group: &GroupLog,
        group_id: &GroupId,
        sender: &ClientId,
        request: &SendRequest,
    ) -> Result<(ClientId, Option<VcSequence>), DeliveryError> {
        let vc = request.virtual_client.as_ref();
        let identity = self.acting_identity(sender, vc.map(|v| &v.virtual_client))?;
        let external = matches!(request.kind, MessageKind::ExternalCommit { .. });
        if !external && !group.is_current_member(&identity) {
            return Err(DeliveryError::NotAMember {
                group_id: group_id.clone(),
                member: identity,
            });
        }
        let commit_epoch = request.kind.commit_epoch();
        if commit_epoch.is_none()
            && (request.welcome.is_some()
                || !request.removed.is_empty()
                || request.group_info.is_some())
        {
            return Err(DeliveryError::NotACommit);
        }
        // The epoch first: of two emulators racing one epoch, the loser learns that the epoch
        // is gone (its Commit can never be accepted), not merely that it is behind.
        if let Some(got) = commit_epoch {
            group.check_epoch(got)?;
        }
        let vc_sequence = match vc {
            None => None,
            Some(v) => {
                let next = group
                    .vc_next
                    .get(&v.virtual_client)
                    .copied()
                    .unwrap_or_default();
                if v.expected != next {
                    return Err(DeliveryError::VirtualClientSequenceMismatch {
                        expected: next,
                        got: v.expected,
                    });
                }
                Some(next)
            }
        };
        if let Some(welcome) = &request.welcome {
            for recipient in &welcome.recipients {
                if !self.clients.contains_key(recipient) {
                    return Err(DeliveryError::UnknownClient(recipient.clone()));
                }
            }
        }
        for removed in &request.removed {
            if !group.is_current_member(removed) {
                return Err(DeliveryError::NotAMember {
                    group_id: group_id.clone(),
                    member: removed.clone(),
                });
            }
        }
        Ok((identity, vc_sequence))
    }

    fn count_rejection<T>(&mut self, result: Result<T, DeliveryError>) -> Result<T, DeliveryError> {
        if result.is_err() {
            self.stats.rejected += 1;
        }
        result
    }

    fn send_inner(
        &mut self,
        group_id: &GroupId,
        sender: &ClientId,
        request: SendRequest,
    ) -> Result<Sequence, DeliveryError> {
        let group = self
            .groups
            .get(group_id)
            .ok_or_else(|| DeliveryError::UnknownGroup(group_id.clone()))?;
        let (identity, vc_sequence) = self.check_send(group, group_id, sender, &request)?;

        // Everything is checked: from here on nothing fails.
        let SendRequest {
            message,
            kind,
            welcome,
            removed,
            group_info,
            ..
        } = request;
        let message: Arc<[u8]> = message.into();
        let Some(group) = self.groups.get_mut(group_id) else {
            return Err(DeliveryError::UnknownGroup(group_id.clone()));
        };
        let built_from = match kind {
            MessageKind::ExternalCommit { epoch } => group.group_info_of(epoch),
            _ => None,
        };
        let emulator = vc_sequence.map(|vc_sequence| EmulatorView {
            emulator: sender.clone(),
            vc_sequence,
            group_info: built_from,
        });
        if let (Some(epoch), Some(bytes)) = (kind.commit_epoch(), group_info) {
            group.group_info = Some((epoch.saturating_add(1), bytes.into()));
        }
        let sequence = group.next_sequence();
        if let Some(v) = &emulator {
            group.vc_next.insert(identity.clone(), v.vc_sequence.next());
        }
        if kind.commit_epoch().is_some() {
            group.epoch = group.epoch.saturating_add(1);
        }
        if matches!(kind, MessageKind::ExternalCommit { .. }) && !group.is_current_member(&identity)
        {
            group.members.insert(
                identity.clone(),
                Membership {
                    from: sequence,
                    until: None,
                },
            );
        }
        group.log.push(LogEntry {
            sender: identity.clone(),
            emulator: emulator.clone(),
            kind,
            message: message.clone(),
        });
        // Fan-out to every current member (removed ones included: they get this Commit).
        let recipients: Vec<ClientId> = group
            .members
            .iter()
            .filter(|(_, m)| m.is_current())
            .map(|(id, _)| id.clone())
            .collect();
        for id in &removed {
            if let Some(m) = group.members.get_mut(id) {
                m.until = Some(sequence);
            }
        }
        if let Some(w) = &welcome {
            for recipient in &w.recipients {
                if group.is_current_member(recipient) {
                    // Already a member (say, a second leaf of the same identity): keep its window.
                    continue;
                }
                group.members.insert(
                    recipient.clone(),
                    Membership {
                        from: sequence.next(),
                        until: None,
                    },
                );
            }
        }
        self.stats.messages_accepted += 1;
        self.stats.bytes_accepted += message.len() as u64;

        for member in recipients {
            let view = GroupMessage {
                group_id: group_id.clone(),
                sequence,
                sender: identity.clone(),
                kind,
                // Only the virtual client's own emulators learn which of them sent it.
                emulator_view: if member == identity {
                    emulator.clone()
                } else {
                    None
                },
                message: message.clone(),
            };
            for client in self.mailboxes_of(&member) {
                self.stats.deliveries += 1;
                self.stats.bytes_delivered += message.len() as u64;
                self.push(
                    &client,
                    Delivered::Message {
                        recipient: member.clone(),
                        message: view.clone(),
                    },
                );
            }
        }
        if let Some(w) = welcome {
            let bytes: Arc<[u8]> = w.message.into();
            for recipient in w.recipients {
                for client in self.mailboxes_of(&recipient) {
                    self.stats.welcomes_delivered += 1;
                    self.stats.bytes_delivered += bytes.len() as u64;
                    self.push(
                        &client,
                        Delivered::Welcome(WelcomeDelivery {
                            group_id: group_id.clone(),
                            sequence,
                            recipient: recipient.clone(),
                            message: bytes.clone(),
                        }),
                    );
                }
            }
        }
        Ok(sequence)
    }

    fn fetch_inner(
        &self,
        client: &ClientId,
        group_id: &GroupId,
        from: Sequence,
    ) -> Result<Vec<GroupMessage>, DeliveryError> {
        self.plain(client)?;
        let group = self
            .groups
            .get(group_id)
            .ok_or_else(|| DeliveryError::UnknownGroup(group_id.clone()))?;
        // The member identities `client` reads as: itself, and the virtual clients it emulates.
        let emulates = |id: &ClientId| matches!(self.clients.get(id), Some(Registration::Virtual { emulators }) if emulators.contains(client));
        let windows: Vec<Membership> = group
            .members
            .iter()
            .filter(|(id, _)| *id == client || emulates(id))
            .map(|(_, m)| *m)
            .collect();
        if windows.is_empty() {
            return Err(DeliveryError::NotAMember {
                group_id: group_id.clone(),
                member: client.clone(),
            });
        }
        let start = usize::try_from(from.0).unwrap_or(usize::MAX);
        let entries = group.log.get(start..).unwrap_or_default();
        Ok(entries
            .iter()
            .zip(from.0..)
            .map(|(entry, n)| (entry, Sequence(n)))
            .filter(|(_, sequence)| windows.iter().any(|w| w.covers(*sequence)))
            .map(|(entry, sequence)| GroupMessage {
                group_id: group_id.clone(),
                sequence,
                sender: entry.sender.clone(),
                kind: entry.kind,
                emulator_view: if emulates(&entry.sender) {
                    entry.emulator.clone()
                } else {
                    None
                },
                message: entry.message.clone(),
            })
            .collect())
    }
}

impl DeliveryService for InMemoryDeliveryService {
    fn register_client(&mut self, client: ClientId) -> Result<(), DeliveryError> {
        if self.clients.contains_key(&client) {
            return Err(DeliveryError::ClientExists(client));
        }
        self.clients.insert(
            client,
            Registration::Plain {
                mailbox: VecDeque::new(),
            },
        );
        Ok(())
    }

    fn register_virtual_client(
        &mut self,
        virtual_client: ClientId,
        emulators: &[ClientId],
    ) -> Result<(), DeliveryError> {
        if self.clients.contains_key(&virtual_client) {
            return Err(DeliveryError::ClientExists(virtual_client));
        }
        if emulators.is_empty() {
            return Err(DeliveryError::NoEmulators(virtual_client));
        }
        for emulator in emulators {
            self.plain(emulator)?;
        }
        self.clients.insert(
            virtual_client,
            Registration::Virtual {
                emulators: emulators.iter().cloned().collect(),
            },
        );
        Ok(())
    }

    fn add_emulator(
        &mut self,
        virtual_client: &ClientId,
        emulator: &ClientId,
    ) -> Result<(), DeliveryError> {
        self.plain(emulator)?;
        if self.emulator_set(virtual_client)?.contains(emulator) {
            return Err(DeliveryError::AlreadyAnEmulator {
                virtual_client: virtual_client.clone(),
                client: emulator.clone(),
            });
        }
        if let Some(Registration::Virtual { emulators }) = self.clients.get_mut(virtual_client) {
            emulators.insert(emulator.clone());
        }
        Ok(())
    }

    fn remove_emulator(
        &mut self,
        virtual_client: &ClientId,
        emulator: &ClientId,
    ) -> Result<(), DeliveryError> {
        let emulators = self.emulator_set(virtual_client)?;
        if !emulators.contains(emulator) {
            return Err(DeliveryError::NotAnEmulator {
                virtual_client: virtual_client.clone(),
                client: emulator.clone(),
            });
        }
        if emulators.len() == 1 {
            return Err(DeliveryError::NoEmulators(virtual_client.clone()));
        }
        if let Some(Registration::Virtual { emulators }) = self.clients.get_mut(virtual_client) {
            emulators.remove(emulator);
        }
        Ok(())
    }

    fn create_group(
        &mut self,
        creator: &ClientId,
        group_id: GroupId,
        as_virtual_client: Option<&ClientId>,
        epoch: u64,
    ) -> Result<(), DeliveryError> {
        let identity = self.acting_identity(creator, as_virtual_client)?;
        if self.groups.contains_key(&group_id) {
            return Err(DeliveryError::GroupExists(group_id));
        }
        let mut members = BTreeMap::new();
        members.insert(
            identity,
            Membership {
                from: Sequence(0),
                until: None,
            },
        );
        self.groups.insert(
            group_id,
            GroupLog {
                epoch,
                log: Vec::new(),
                members,
                vc_next: BTreeMap::new(),
                group_info: None,
            },
        );
        Ok(())
    }

    fn send(
        &mut self,
        group_id: &GroupId,
        sender: &ClientId,
        request: SendRequest,
    ) -> Result<Sequence, DeliveryError> {
        let result = self.send_inner(group_id, sender, request);
        self.count_rejection(result)
    }

    fn fetch(
        &mut self,
        client: &ClientId,
        group_id: &GroupId,
        from: Sequence,
    ) -> Result<Vec<GroupMessage>, DeliveryError> {
        self.fetch_inner(client, group_id, from)
    }

    fn drain(&mut self, client: &ClientId) -> Result<Vec<Delivered>, DeliveryError> {
        self.plain(client)?;
        match self.clients.get_mut(client) {
            Some(Registration::Plain { mailbox }) => Ok(mailbox.drain(..).collect()),
            _ => Err(DeliveryError::UnknownClient(client.clone())),
        }
    }

    fn group_status(&mut self, group_id: &GroupId) -> Result<GroupStatus, DeliveryError> {
        let group = self
            .groups
            .get(group_id)
            .ok_or_else(|| DeliveryError::UnknownGroup(group_id.clone()))?;
        Ok(GroupStatus {
            epoch: group.epoch,
            next_sequence: group.next_sequence(),
        })
    }

    fn publish_key_packages(
        &mut self,
        publisher: &ClientId,
        owner: &ClientId,
        key_packages: Vec<KeyPackageUpload>,
    ) -> Result<(), DeliveryError> {
        match self.clients.get(owner) {
            None => return Err(DeliveryError::UnknownClient(owner.clone())),
            Some(Registration::Plain { .. }) => {
                if publisher != owner {
                    self.plain(publisher)?;
                    return Err(DeliveryError::NotAnEmulator {
                        virtual_client: owner.clone(),
                        client: publisher.clone(),
                    });
                }
            }
            Some(Registration::Virtual { .. }) => {
                self.acting_identity(publisher, Some(owner))?;
            }
        }
        self.key_packages.publish(owner, key_packages);
        Ok(())
    }

    fn consume_key_package(&mut self, owner: &ClientId) -> Result<Arc<[u8]>, DeliveryError> {
        if !self.clients.contains_key(owner) {
            return Err(DeliveryError::UnknownClient(owner.clone()));
        }
        self.key_packages.consume(owner)
    }

    fn publish_group_info(
        &mut self,
        publisher: &ClientId,
        as_virtual_client: Option<&ClientId>,
        group_id: &GroupId,
        epoch: u64,
        group_info: Vec<u8>,
    ) -> Result<(), DeliveryError> {
        let identity = self.acting_identity(publisher, as_virtual_client)?;
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or_else(|| DeliveryError::UnknownGroup(group_id.clone()))?;
        if !group.is_current_member(&identity) {
            return Err(DeliveryError::NotAMember {
                group_id: group_id.clone(),
                member: identity,
            });
        }
        group.check_epoch(epoch)?;
        group.group_info = Some((epoch, group_info.into()));
        Ok(())
    }

    fn group_info(&mut self, group_id: &GroupId) -> Result<(u64, Arc<[u8]>), DeliveryError> {
        let group = self
            .groups
            .get(group_id)
            .ok_or_else(|| DeliveryError::UnknownGroup(group_id.clone()))?;
        group
            .group_info_of(group.epoch)
            .map(|bytes| (group.epoch, bytes))
            .ok_or_else(|| DeliveryError::NoGroupInfo(group_id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_window() {
        let m = Membership {
            from: Sequence(2),
            until: Some(Sequence(4)),
        };
        assert!(!m.covers(Sequence(1)));
        assert!(m.covers(Sequence(2)) && m.covers(Sequence(4)));
        assert!(!m.covers(Sequence(5)));
        assert!(!m.is_current());
    }

    #[test]
    fn stats_count_fan_out() {
        let mut ds = InMemoryDeliveryService::new();
        for c in ["v1", "v2", "p"] {
            ds.register_client(ClientId::new(c)).unwrap();
        }
        let v = ClientId::new("v");
        ds.register_virtual_client(v.clone(), &[ClientId::new("v1"), ClientId::new("v2")])
            .unwrap();
        let g = GroupId::new("g");
        ds.create_group(&ClientId::new("p"), g.clone(), None, 0)
            .unwrap();
        ds.send(
            &g,
            &ClientId::new("p"),
            SendRequest::commit(0, vec![0; 10]).with_welcome(vec![v], vec![0; 5]),
        )
        .unwrap();
        ds.send(
            &g,
            &ClientId::new("p"),
            SendRequest::application(vec![0; 3]),
        )
        .unwrap();
        let s = ds.stats();
        assert_eq!((s.messages_accepted, s.bytes_accepted), (2, 13));
        // Commit to p; Welcome to v1, v2; application to p, v1, v2.
        assert_eq!((s.deliveries, s.welcomes_delivered), (4, 2));
        assert_eq!(s.bytes_delivered, 10 + 5 * 2 + 3 * 3);
    }
}
