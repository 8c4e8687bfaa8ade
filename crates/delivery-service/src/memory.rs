//! The in-process [`DeliveryService`]: one totally ordered log per group, compare-and-append on
//! the group's epoch (Commits) and on each virtual client's own sequence, per-client mailboxes
//! with fan-out to every emulator client. For tests and `vmls demo`; sans-IO.
//!
//! Two faces with separate state: the [`DeliveryService`] trait methods (the old in-process
//! service, which trusts what senders state; kept for its existing callers), and
//! [`InMemoryDeliveryService::handle`], which runs every protocol request through the checking
//! [`crate::Service`] on its in-memory backend, synchronously.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use vmls_protocol::{
    ClientId, Delivered, EmulatorView, GroupId, GroupMessage, GroupStatus, KeyPackageEntry,
    MailboxCursor, MailboxItem, MessageKind, Payload, Request, Response, SendRequest, Sequence,
    ServiceError, Text, VcSequence, VirtualClientSend, WelcomeDelivery,
};

use crate::{DeliveryService, KeyPackageDirectory, Limits, Service};

/// Runs a future of the in-memory [`Service`] to completion on this thread. Its futures never
/// wait on I/O and its one lock is free (the service is owned by one
/// [`InMemoryDeliveryService`], used through `&mut self`), so the first poll completes; the
/// loop only guards the contract. The future runs outside tokio's cooperative budget (which
/// would make a resource pend, to be polled again after the task yielded to its scheduler).
fn run_now<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(tokio::task::unconstrained(future));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = std::future::Future::poll(future.as_mut(), &mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// A device's mailbox: items with strictly increasing cursors, deleted when acknowledged.
#[derive(Debug, Default)]
struct Mailbox {
    items: VecDeque<MailboxItem>,
    next: MailboxCursor,
}

impl Mailbox {
    fn push(&mut self, item: Delivered) {
        let cursor = self.next;
        self.next = cursor.next();
        self.items.push_back(MailboxItem { cursor, item });
    }
}

/// A registered identity.
#[derive(Debug)]
enum Registration {
    /// A device and its mailbox.
    Plain { mailbox: Mailbox },
    /// A virtual client and its emulator clients (devices): the members of its emulation group
    /// when it was registered with one, else the set kept here.
    Virtual {
        emulators: BTreeSet<ClientId>,
        emulation_group: Option<GroupId>,
    },
}

/// A refusal for a request the in-memory service cannot carry out.
fn bad_request(reason: impl std::fmt::Display) -> ServiceError {
    ServiceError::BadRequest {
        reason: Text::new(reason),
    }
}

fn no_emulators(virtual_client: ClientId) -> ServiceError {
    bad_request(format!(
        "virtual client {virtual_client} needs at least one emulator client"
    ))
}

fn emulators_follow_group(virtual_client: &ClientId) -> ServiceError {
    bad_request(format!(
        "the emulator clients of {virtual_client} are the members of its emulation group"
    ))
}

/// One accepted message, as stored.
#[derive(Debug)]
struct LogEntry {
    /// The member identity that sent it (the virtual client, if sent on its behalf).
    sender: ClientId,
    /// For a virtual client's message: the emulator that sent it and its [`VcSequence`].
    emulator: Option<EmulatorView>,
    kind: MessageKind,
    message: Payload,
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
    group_info: Option<(u64, Payload)>,
}

impl GroupLog {
    /// `got` must be the group's current epoch: older is [`ServiceError::StaleEpoch`], newer
    /// [`ServiceError::FutureEpoch`].
    fn check_epoch(&self, got: u64) -> Result<(), ServiceError> {
        let current = self.epoch;
        if got < current {
            return Err(ServiceError::StaleEpoch { current, got });
        }
        if got > current {
            return Err(ServiceError::FutureEpoch { current, got });
        }
        Ok(())
    }

    /// The GroupInfo published for `epoch`, if the last published one is of that epoch.
    fn group_info_of(&self, epoch: u64) -> Option<Payload> {
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
#[derive(Debug)]
pub struct InMemoryDeliveryService {
    /// The checking service behind [`Self::handle`].
    checked: Service,
    clients: BTreeMap<ClientId, Registration>,
    groups: BTreeMap<GroupId, GroupLog>,
    key_packages: KeyPackageDirectory,
    stats: DeliveryStats,
    /// The devices registered through [`Self::handle`], to count the Welcomes it delivers.
    handled_devices: BTreeSet<ClientId>,
}

impl Default for InMemoryDeliveryService {
    fn default() -> Self {
        Self::with_limits(Limits::default())
    }
}

impl InMemoryDeliveryService {
    /// An empty service.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty service whose [`Self::handle`] enforces `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        let checked = Service::in_memory(limits);
        debug_assert!(checked.is_in_memory());
        Self {
            checked,
            clients: BTreeMap::new(),
            groups: BTreeMap::new(),
            key_packages: KeyPackageDirectory::default(),
            stats: DeliveryStats::default(),
            handled_devices: BTreeSet::new(),
        }
    }

    /// The checking service behind [`Self::handle`] (share it, e.g. to subscribe to wake-ups).
    pub fn service(&self) -> &Service {
        &self.checked
    }

    /// What the service carried so far (both faces).
    pub fn stats(&self) -> DeliveryStats {
        self.stats
    }

    /// The KeyPackage directory (read-only).
    pub fn key_packages(&self) -> &KeyPackageDirectory {
        &self.key_packages
    }

    /// How many items wait in a plain client's mailbox (0 for unknown clients): in the old
    /// service's mailboxes and in the checking service's.
    pub fn pending(&self, client: &ClientId) -> usize {
        let old = match self.clients.get(client) {
            Some(Registration::Plain { mailbox }) => mailbox.items.len(),
            _ => 0,
        };
        let checked = run_now(self.checked.mailbox_len(client)).unwrap_or(0);
        old + usize::try_from(checked).unwrap_or(usize::MAX)
    }

    /// The emulator clients of a virtual client.
    pub fn emulators(&self, virtual_client: &ClientId) -> Result<Vec<ClientId>, ServiceError> {
        Ok(self.emulator_set(virtual_client)?.iter().cloned().collect())
    }

    fn plain(&self, client: &ClientId) -> Result<(), ServiceError> {
        match self.clients.get(client) {
            None => Err(ServiceError::UnknownClient {
                client: client.clone(),
            }),
            Some(Registration::Virtual { .. }) => Err(ServiceError::NotADevice {
                client: client.clone(),
            }),
            Some(Registration::Plain { .. }) => Ok(()),
        }
    }

    /// The emulator clients of a virtual client: the current device members of its emulation
    /// group, or the set registered for it.
    fn emulator_set(&self, virtual_client: &ClientId) -> Result<BTreeSet<ClientId>, ServiceError> {
        match self.clients.get(virtual_client) {
            None => Err(ServiceError::UnknownClient {
                client: virtual_client.clone(),
            }),
            Some(Registration::Plain { .. }) => Err(ServiceError::NotAVirtualClient {
                client: virtual_client.clone(),
            }),
            Some(Registration::Virtual {
                emulation_group: Some(group_id),
                ..
            }) => Ok(self.groups.get(group_id).map_or_else(BTreeSet::new, |g| {
                g.members
                    .iter()
                    .filter(|(id, m)| m.is_current() && self.plain(id).is_ok())
                    .map(|(id, _)| id.clone())
                    .collect()
            })),
            Some(Registration::Virtual { emulators, .. }) => Ok(emulators.clone()),
        }
    }

    /// The emulation group a virtual client was registered with.
    fn emulation_group_of(&self, virtual_client: &ClientId) -> Option<&GroupId> {
        match self.clients.get(virtual_client) {
            Some(Registration::Virtual {
                emulation_group, ..
            }) => emulation_group.as_ref(),
            _ => None,
        }
    }

    /// A virtual client's message must come from an emulator at the head of its emulation
    /// group's log, when the virtual client has one (issue 10 hole 2).
    fn check_emulation_head(&self, send: &VirtualClientSend) -> Result<(), ServiceError> {
        let Some(group_id) = self.emulation_group_of(&send.virtual_client) else {
            return Ok(());
        };
        let head = self
            .groups
            .get(group_id)
            .map_or(Sequence(0), GroupLog::next_sequence);
        match send.emulation_head {
            Some(got) if got == head => Ok(()),
            Some(got) => Err(ServiceError::EmulationGroupBehind {
                emulation_group: group_id.clone(),
                head,
                got,
            }),
            None => Err(bad_request(
                "a virtual client with an emulation group must state the emulation head",
            )),
        }
    }

    /// The member identity `client` acts as: `as_virtual_client` (checked) or itself.
    fn acting_identity(
        &self,
        client: &ClientId,
        as_virtual_client: Option<&ClientId>,
    ) -> Result<ClientId, ServiceError> {
        self.plain(client)?;
        match as_virtual_client {
            None => Ok(client.clone()),
            Some(vc) => {
                if self.emulator_set(vc)?.contains(client) {
                    Ok(vc.clone())
                } else {
                    Err(ServiceError::NotAnEmulator {
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
            Some(Registration::Virtual { .. }) => self
                .emulator_set(identity)
                .map(|set| set.into_iter().collect())
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    fn push(&mut self, client: &ClientId, item: Delivered) {
        if let Some(Registration::Plain { mailbox }) = self.clients.get_mut(client) {
            mailbox.push(item);
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
    ) -> Result<(ClientId, Option<VcSequence>), ServiceError> {
        let vc = request.virtual_client.as_ref();
        let identity = self.acting_identity(sender, vc.map(|v| &v.virtual_client))?;
        let external = matches!(request.kind, MessageKind::ExternalCommit { .. });
        if !external && !group.is_current_member(&identity) {
            return Err(ServiceError::NotAMember {
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
            return Err(ServiceError::NotACommit {});
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
                self.check_emulation_head(v)?;
                if v.expected != next {
                    return Err(ServiceError::VirtualClientSequenceMismatch {
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
                    return Err(ServiceError::UnknownClient {
                        client: recipient.clone(),
                    });
                }
            }
        }
        for removed in &request.removed {
            if !group.is_current_member(removed) {
                return Err(ServiceError::NotAMember {
                    group_id: group_id.clone(),
                    member: removed.clone(),
                });
            }
        }
        Ok((identity, vc_sequence))
    }

    fn count_rejection<T>(&mut self, result: Result<T, ServiceError>) -> Result<T, ServiceError> {
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
    ) -> Result<Sequence, ServiceError> {
        let group = self
            .groups
            .get(group_id)
            .ok_or_else(|| ServiceError::UnknownGroup {
                group_id: group_id.clone(),
            })?;
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
        let message: Payload = message;
        let Some(group) = self.groups.get_mut(group_id) else {
            return Err(ServiceError::UnknownGroup {
                group_id: group_id.clone(),
            });
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
            group.group_info = Some((epoch.saturating_add(1), bytes));
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
            let bytes: Payload = w.message;
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
    ) -> Result<Vec<GroupMessage>, ServiceError> {
        self.plain(client)?;
        let group = self
            .groups
            .get(group_id)
            .ok_or_else(|| ServiceError::UnknownGroup {
                group_id: group_id.clone(),
            })?;
        // The member identities `client` reads as: itself, and the virtual clients it emulates.
        let emulates = |id: &ClientId| {
            matches!(self.clients.get(id), Some(Registration::Virtual { .. }))
                && self.emulator_set(id).is_ok_and(|set| set.contains(client))
        };
        let windows: Vec<Membership> = group
            .members
            .iter()
            .filter(|(id, _)| *id == client || emulates(id))
            .map(|(_, m)| *m)
            .collect();
        if windows.is_empty() {
            return Err(ServiceError::NotAMember {
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
    fn register_client(&mut self, client: ClientId) -> Result<(), ServiceError> {
        if self.clients.contains_key(&client) {
            return Err(ServiceError::ClientExists { client });
        }
        self.clients.insert(
            client,
            Registration::Plain {
                mailbox: Mailbox::default(),
            },
        );
        Ok(())
    }

    fn register_virtual_client(
        &mut self,
        virtual_client: ClientId,
        emulators: &[ClientId],
    ) -> Result<(), ServiceError> {
        if self.clients.contains_key(&virtual_client) {
            return Err(ServiceError::ClientExists {
                client: virtual_client,
            });
        }
        if emulators.is_empty() {
            return Err(no_emulators(virtual_client));
        }
        for emulator in emulators {
            self.plain(emulator)?;
        }
        self.clients.insert(
            virtual_client,
            Registration::Virtual {
                emulators: emulators.iter().cloned().collect(),
                emulation_group: None,
            },
        );
        Ok(())
    }

    fn add_emulator(
        &mut self,
        virtual_client: &ClientId,
        emulator: &ClientId,
    ) -> Result<(), ServiceError> {
        self.plain(emulator)?;
        if self.emulator_set(virtual_client)?.contains(emulator) {
            return Err(bad_request(format!(
                "{emulator} already emulates {virtual_client}"
            )));
        }
        match self.clients.get_mut(virtual_client) {
            Some(Registration::Virtual {
                emulators,
                emulation_group: None,
            }) => {
                emulators.insert(emulator.clone());
            }
            _ => return Err(emulators_follow_group(virtual_client)),
        }
        Ok(())
    }

    fn remove_emulator(
        &mut self,
        virtual_client: &ClientId,
        emulator: &ClientId,
    ) -> Result<(), ServiceError> {
        let emulators = self.emulator_set(virtual_client)?;
        if !emulators.contains(emulator) {
            return Err(ServiceError::NotAnEmulator {
                virtual_client: virtual_client.clone(),
                client: emulator.clone(),
            });
        }
        if emulators.len() == 1 {
            return Err(no_emulators(virtual_client.clone()));
        }
        match self.clients.get_mut(virtual_client) {
            Some(Registration::Virtual {
                emulators,
                emulation_group: None,
            }) => {
                emulators.remove(emulator);
            }
            _ => return Err(emulators_follow_group(virtual_client)),
        }
        Ok(())
    }

    fn create_group(
        &mut self,
        creator: &ClientId,
        group_id: GroupId,
        as_virtual_client: Option<&ClientId>,
        epoch: u64,
    ) -> Result<(), ServiceError> {
        let identity = self.acting_identity(creator, as_virtual_client)?;
        if self.groups.contains_key(&group_id) {
            return Err(ServiceError::GroupExists { group_id });
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
    ) -> Result<Sequence, ServiceError> {
        let result = self.send_inner(group_id, sender, request);
        self.count_rejection(result)
    }

    fn fetch(
        &mut self,
        client: &ClientId,
        group_id: &GroupId,
        from: Sequence,
    ) -> Result<Vec<GroupMessage>, ServiceError> {
        self.fetch_inner(client, group_id, from)
    }

    fn drain(&mut self, client: &ClientId) -> Result<Vec<Delivered>, ServiceError> {
        self.plain(client)?;
        match self.clients.get_mut(client) {
            Some(Registration::Plain { mailbox }) => {
                Ok(mailbox.items.drain(..).map(|i| i.item).collect())
            }
            _ => Err(ServiceError::UnknownClient {
                client: client.clone(),
            }),
        }
    }

    fn group_status(&mut self, group_id: &GroupId) -> Result<GroupStatus, ServiceError> {
        let group = self
            .groups
            .get(group_id)
            .ok_or_else(|| ServiceError::UnknownGroup {
                group_id: group_id.clone(),
            })?;
        Ok(GroupStatus {
            epoch: group.epoch,
            next_sequence: group.next_sequence(),
            handshakes: Default::default(),
        })
    }

    fn publish_key_packages(
        &mut self,
        publisher: &ClientId,
        owner: &ClientId,
        key_packages: Vec<KeyPackageEntry>,
    ) -> Result<(), ServiceError> {
        match self.clients.get(owner) {
            None => {
                return Err(ServiceError::UnknownClient {
                    client: owner.clone(),
                })
            }
            Some(Registration::Plain { .. }) => {
                if publisher != owner {
                    self.plain(publisher)?;
                    return Err(ServiceError::NotAnEmulator {
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

    fn consume_key_package(&mut self, owner: &ClientId) -> Result<Payload, ServiceError> {
        if !self.clients.contains_key(owner) {
            return Err(ServiceError::UnknownClient {
                client: owner.clone(),
            });
        }
        self.key_packages.consume(owner)
    }

    fn publish_group_info(
        &mut self,
        publisher: &ClientId,
        as_virtual_client: Option<&ClientId>,
        group_id: &GroupId,
        epoch: u64,
        group_info: Payload,
    ) -> Result<(), ServiceError> {
        let identity = self.acting_identity(publisher, as_virtual_client)?;
        let group = self
            .groups
            .get_mut(group_id)
            .ok_or_else(|| ServiceError::UnknownGroup {
                group_id: group_id.clone(),
            })?;
        if !group.is_current_member(&identity) {
            return Err(ServiceError::NotAMember {
                group_id: group_id.clone(),
                member: identity,
            });
        }
        group.check_epoch(epoch)?;
        group.group_info = Some((epoch, group_info));
        Ok(())
    }

    fn group_info(&mut self, group_id: &GroupId) -> Result<(u64, Payload), ServiceError> {
        let group = self
            .groups
            .get(group_id)
            .ok_or_else(|| ServiceError::UnknownGroup {
                group_id: group_id.clone(),
            })?;
        group
            .group_info_of(group.epoch)
            .map(|bytes| (group.epoch, bytes))
            .ok_or_else(|| ServiceError::NoGroupInfo {
                group_id: group_id.clone(),
            })
    }
}

impl InMemoryDeliveryService {
    /// Carries out one protocol request made by the authenticated `device` at `now` (seconds
    /// since the Unix epoch) and answers it, with every check of the networked service: this
    /// is [`Service::handle`] on the in-memory backend, run to completion here. A refused
    /// request changes nothing. Its state is apart from the [`DeliveryService`] methods'.
    pub fn handle(&mut self, device: &ClientId, request: Request, now: u64) -> Response {
        let size = match &request {
            Request::Send(s) => s.send.message.len() as u64,
            _ => 0,
        };
        let welcome_size = match &request {
            Request::Send(s) => s.send.welcome.as_ref().map(|w| w.message.len() as u64),
            _ => None,
        };
        let registering = match &request {
            Request::RegisterDevice(r) => Some(r.device.clone()),
            _ => None,
        };
        let group_id = match &request {
            Request::Send(s) => Some(s.group_id.clone()),
            _ => None,
        };
        let before = self.checked.counters().fan_out.sum;
        let response = run_now(self.checked.handle(device, request, now));
        match &response {
            Response::Refused(_) => self.stats.rejected += 1,
            Response::Accepted(_) => {
                self.stats.messages_accepted += 1;
                self.stats.bytes_accepted += size;
                // The fan-out counts every mailbox item of the send: the message's and the
                // Welcome's.
                let fan_out = self.checked.counters().fan_out.sum - before;
                let welcomes = match (welcome_size, &group_id, &response) {
                    (Some(_), Some(g), Response::Accepted(a)) => {
                        self.welcomes_delivered_at(g, a.sequence, now)
                    }
                    _ => 0,
                };
                let messages = fan_out.saturating_sub(welcomes);
                self.stats.deliveries += messages;
                self.stats.bytes_delivered += messages * size;
                self.stats.welcomes_delivered += welcomes;
                self.stats.bytes_delivered += welcomes * welcome_size.unwrap_or(0);
            }
            Response::Done(_) => {
                if let Some(registered) = registering {
                    self.handled_devices.insert(registered);
                }
            }
            _ => {}
        }
        response
    }

    /// How many Welcomes of the Commit at `sequence` of `group_id` wait in the mailboxes of the
    /// devices registered through [`Self::handle`] (reading a mailbox changes nothing).
    fn welcomes_delivered_at(&self, group_id: &GroupId, sequence: Sequence, now: u64) -> u64 {
        let read = Request::ReadMailbox(vmls_protocol::ReadMailbox {
            after: None,
            max_items: 0,
        });
        let mut count = 0;
        for device in &self.handled_devices {
            if let Response::Mailbox(items) =
                run_now(self.checked.handle(device, read.clone(), now))
            {
                count += items
                    .iter()
                    .filter(|i| {
                        matches!(&i.item, Delivered::Welcome(w)
                            if &w.group_id == group_id && w.sequence == sequence)
                    })
                    .count() as u64;
            }
        }
        count
    }

    /// Registers a virtual client whose emulator clients are, at any time, the current device
    /// members of `emulation_group`; `device` must be one.
    pub fn register_virtual_client_of_group(
        &mut self,
        device: &ClientId,
        virtual_client: ClientId,
        emulation_group: GroupId,
    ) -> Result<(), ServiceError> {
        self.plain(device)?;
        if self.clients.contains_key(&virtual_client) {
            return Err(ServiceError::ClientExists {
                client: virtual_client,
            });
        }
        let group =
            self.groups
                .get(&emulation_group)
                .ok_or_else(|| ServiceError::UnknownGroup {
                    group_id: emulation_group.clone(),
                })?;
        if !group.is_current_member(device) {
            return Err(ServiceError::NotAMember {
                group_id: emulation_group,
                member: device.clone(),
            });
        }
        self.clients.insert(
            virtual_client,
            Registration::Virtual {
                emulators: BTreeSet::new(),
                emulation_group: Some(emulation_group),
            },
        );
        Ok(())
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
