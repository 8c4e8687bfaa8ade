//! The in-memory backend: the tables as ordered maps under one lock (a transaction holds it
//! from begin to commit, so transactions are serial). Nothing survives the process; for tests
//! and the in-process service of the device runtime's tests.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};
use vmls_protocol::{ClientId, GroupId, MailboxCursor, MessageId, Payload, Sequence, VcSequence};

use super::{
    ClientRow, GroupRow, KeyPackageRow, Lock, LogRow, MailboxEntry, MailboxRef, MemberRow, Store,
    StoreError, Tx,
};

#[derive(Debug, Default)]
struct Mailbox {
    next: MailboxCursor,
    items: VecDeque<(MailboxCursor, MailboxRef)>,
}

#[derive(Debug, Default)]
struct GroupTables {
    row: Option<GroupRow>,
    trees: BTreeMap<u64, Vec<u8>>,
    members: BTreeMap<ClientId, MemberRow>,
    vc_next: BTreeMap<ClientId, VcSequence>,
    log: Vec<LogRow>,
    welcomes: BTreeMap<Sequence, Payload>,
}

#[derive(Debug, Default)]
struct OwnerKeyPackages {
    ordinary: VecDeque<KeyPackageRow>,
    last_resort: Option<KeyPackageRow>,
}

/// All tables.
#[derive(Debug, Default)]
pub struct MemoryState {
    clients: BTreeMap<ClientId, ClientRow>,
    mailboxes: BTreeMap<ClientId, Mailbox>,
    groups: BTreeMap<GroupId, GroupTables>,
    sends: BTreeMap<(ClientId, MessageId), Vec<u8>>,
    key_packages: BTreeMap<ClientId, OwnerKeyPackages>,
}

/// The in-memory store (cheap to clone; clones share the tables).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<MemoryState>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    type Tx = MemoryTx;

    /// Begins a transaction (waits for the running one to end).
    async fn begin(&self) -> Result<MemoryTx, StoreError> {
        // An uncontended lock is taken without touching tokio's cooperative budget (so that
        // the synchronous `InMemoryDeliveryService::handle` never sees it pend).
        let state = match self.state.clone().try_lock_owned() {
            Ok(state) => state,
            Err(_) => self.state.clone().lock_owned().await,
        };
        Ok(MemoryTx { state })
    }
}

/// A transaction of the in-memory store: the lock on all tables.
#[derive(Debug)]
pub struct MemoryTx {
    state: OwnedMutexGuard<MemoryState>,
}

impl MemoryTx {
    fn group_tables(&mut self, id: &GroupId) -> &mut GroupTables {
        self.state.groups.entry(id.clone()).or_default()
    }
}

impl Tx for MemoryTx {
    async fn client(&mut self, id: &ClientId) -> Result<Option<ClientRow>, StoreError> {
        Ok(self.state.clients.get(id).cloned())
    }

    async fn insert_client(&mut self, id: &ClientId, row: &ClientRow) -> Result<(), StoreError> {
        if matches!(row, ClientRow::Device { .. }) {
            self.state.mailboxes.insert(id.clone(), Mailbox::default());
        }
        self.state.clients.insert(id.clone(), row.clone());
        Ok(())
    }

    async fn group(&mut self, id: &GroupId, _lock: Lock) -> Result<Option<GroupRow>, StoreError> {
        Ok(self.state.groups.get(id).and_then(|g| g.row.clone()))
    }

    async fn put_group(
        &mut self,
        id: &GroupId,
        row: &GroupRow,
        _insert: bool,
    ) -> Result<(), StoreError> {
        self.group_tables(id).row = Some(row.clone());
        Ok(())
    }

    async fn tree(&mut self, id: &GroupId, epoch: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .state
            .groups
            .get(id)
            .and_then(|g| g.trees.get(&epoch).cloned()))
    }

    async fn put_tree(&mut self, id: &GroupId, epoch: u64, tree: &[u8]) -> Result<(), StoreError> {
        self.group_tables(id).trees.insert(epoch, tree.to_vec());
        Ok(())
    }

    async fn members(&mut self, id: &GroupId) -> Result<Vec<MemberRow>, StoreError> {
        Ok(self
            .state
            .groups
            .get(id)
            .map(|g| g.members.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn put_member(&mut self, id: &GroupId, row: &MemberRow) -> Result<(), StoreError> {
        self.group_tables(id)
            .members
            .insert(row.member.clone(), row.clone());
        Ok(())
    }

    async fn vc_next(&mut self, id: &GroupId, vc: &ClientId) -> Result<VcSequence, StoreError> {
        Ok(self
            .state
            .groups
            .get(id)
            .and_then(|g| g.vc_next.get(vc).copied())
            .unwrap_or_default())
    }

    async fn set_vc_next(
        &mut self,
        id: &GroupId,
        vc: &ClientId,
        next: VcSequence,
    ) -> Result<(), StoreError> {
        self.group_tables(id).vc_next.insert(vc.clone(), next);
        Ok(())
    }

    async fn append_log(&mut self, id: &GroupId, row: &LogRow) -> Result<(), StoreError> {
        self.group_tables(id).log.push(row.clone());
        Ok(())
    }

    async fn log(
        &mut self,
        id: &GroupId,
        from: Sequence,
        limit: u32,
    ) -> Result<Vec<LogRow>, StoreError> {
        let Some(g) = self.state.groups.get(id) else {
            return Ok(Vec::new());
        };
        let start = usize::try_from(from.0).unwrap_or(usize::MAX);
        Ok(g.log
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn put_welcome(
        &mut self,
        id: &GroupId,
        sequence: Sequence,
        message: &Payload,
    ) -> Result<(), StoreError> {
        self.group_tables(id)
            .welcomes
            .insert(sequence, message.clone());
        Ok(())
    }

    async fn push_mailbox(
        &mut self,
        device: &ClientId,
        item: &MailboxRef,
    ) -> Result<MailboxCursor, StoreError> {
        let mailbox = self.state.mailboxes.entry(device.clone()).or_default();
        let cursor = mailbox.next;
        mailbox.next = cursor.next();
        mailbox.items.push_back((cursor, item.clone()));
        Ok(cursor)
    }

    async fn mailbox_len(&mut self, device: &ClientId) -> Result<u64, StoreError> {
        Ok(self
            .state
            .mailboxes
            .get(device)
            .map_or(0, |m| m.items.len() as u64))
    }

    async fn next_cursor(&mut self, device: &ClientId) -> Result<MailboxCursor, StoreError> {
        Ok(self
            .state
            .mailboxes
            .get(device)
            .map_or(MailboxCursor(0), |m| m.next))
    }

    async fn read_mailbox(
        &mut self,
        device: &ClientId,
        after: Option<MailboxCursor>,
        limit: u32,
    ) -> Result<Vec<MailboxEntry>, StoreError> {
        let Some(mailbox) = self.state.mailboxes.get(device) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (cursor, r) in mailbox
            .items
            .iter()
            .filter(|(c, _)| after.is_none_or(|a| *c > a))
            .take(limit as usize)
        {
            let group = self
                .state
                .groups
                .get(&r.group_id)
                .ok_or(StoreError::Corrupt {
                    what: "mailbox item",
                })?;
            out.push(if r.welcome {
                MailboxEntry::Welcome {
                    cursor: *cursor,
                    group_id: r.group_id.clone(),
                    sequence: r.sequence,
                    recipient: r.recipient.clone(),
                    message: group
                        .welcomes
                        .get(&r.sequence)
                        .cloned()
                        .ok_or(StoreError::Corrupt { what: "welcome" })?,
                }
            } else {
                let log = usize::try_from(r.sequence.0)
                    .ok()
                    .and_then(|i| group.log.get(i))
                    .ok_or(StoreError::Corrupt { what: "log entry" })?;
                MailboxEntry::Message {
                    cursor: *cursor,
                    group_id: r.group_id.clone(),
                    recipient: r.recipient.clone(),
                    log: log.clone(),
                }
            });
        }
        Ok(out)
    }

    async fn ack(&mut self, device: &ClientId, up_to: MailboxCursor) -> Result<(), StoreError> {
        if let Some(mailbox) = self.state.mailboxes.get_mut(device) {
            while mailbox.items.front().is_some_and(|(c, _)| *c <= up_to) {
                mailbox.items.pop_front();
            }
        }
        Ok(())
    }

    async fn sent(
        &mut self,
        device: &ClientId,
        message_id: &MessageId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .state
            .sends
            .get(&(device.clone(), *message_id))
            .cloned())
    }

    async fn record_sent(
        &mut self,
        device: &ClientId,
        message_id: &MessageId,
        response: &[u8],
    ) -> Result<(), StoreError> {
        self.state
            .sends
            .insert((device.clone(), *message_id), response.to_vec());
        Ok(())
    }

    async fn key_package_count(&mut self, owner: &ClientId) -> Result<u64, StoreError> {
        Ok(self
            .state
            .key_packages
            .get(owner)
            .map_or(0, |k| k.ordinary.len() as u64))
    }

    async fn insert_key_package(
        &mut self,
        owner: &ClientId,
        row: &KeyPackageRow,
    ) -> Result<(), StoreError> {
        let entry = self.state.key_packages.entry(owner.clone()).or_default();
        entry.ordinary.retain(|k| k.reference != row.reference);
        if entry
            .last_resort
            .as_ref()
            .is_some_and(|k| k.reference == row.reference)
        {
            entry.last_resort = None;
        }
        if row.last_resort {
            entry.last_resort = Some(row.clone());
        } else {
            entry.ordinary.push_back(row.clone());
        }
        Ok(())
    }

    async fn take_key_package(
        &mut self,
        owner: &ClientId,
        now: u64,
    ) -> Result<Option<Payload>, StoreError> {
        let Some(entry) = self.state.key_packages.get_mut(owner) else {
            return Ok(None);
        };
        entry.ordinary.retain(|k| k.not_after >= now);
        if let Some(k) = entry.ordinary.pop_front() {
            return Ok(Some(k.key_package));
        }
        if entry
            .last_resort
            .as_ref()
            .is_some_and(|k| k.not_after < now)
        {
            entry.last_resort = None;
        }
        Ok(entry.last_resort.as_ref().map(|k| k.key_package.clone()))
    }

    async fn retire_key_packages(
        &mut self,
        owner: &ClientId,
        references: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        if let Some(entry) = self.state.key_packages.get_mut(owner) {
            entry
                .ordinary
                .retain(|k| !references.contains(&k.reference));
            if entry
                .last_resort
                .as_ref()
                .is_some_and(|k| references.contains(&k.reference))
            {
                entry.last_resort = None;
            }
        }
        Ok(())
    }

    async fn queue_depths(&mut self) -> Result<(u64, u64), StoreError> {
        Ok(self
            .state
            .mailboxes
            .values()
            .map(|m| m.items.len() as u64)
            .fold((0, 0), |(sum, max), n| (sum + n, max.max(n))))
    }

    async fn commit(self, _woken: &[ClientId]) -> Result<(), StoreError> {
        Ok(())
    }
}
