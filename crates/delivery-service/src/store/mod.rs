//! Storage of the delivery service: one trait ([`Tx`], a transaction), three backends
//! (in-memory [`memory`], SQLite [`sqlite`], PostgreSQL [`postgres`]).
//!
//! The service's checks run over rows a transaction loads ([`GroupRow`], [`MemberRow`], ...)
//! and write back what they decided; a backend only stores rows and orders transactions: the
//! in-memory one under one lock, SQLite with one writer (`BEGIN IMMEDIATE`), PostgreSQL with a
//! row lock on the group row (`SELECT ... FOR UPDATE`). The tables are the same in all three
//! (docs/decisions.md, "Delivery service"): `devices`, `virtual_clients`, `groups` (the hot
//! row: epoch, next sequence, public view without its tree, GroupInfo), `group_trees` (one
//! ratchet tree per group and epoch, apart from the hot row), `group_members` (membership
//! windows), `vc_sequences`, `group_log`, `welcomes`, `mailbox` (references into the log),
//! `sends` (the first answer per device and message id), `key_packages`.

pub mod memory;
pub mod postgres;
mod schema;
pub mod sqlite;

use std::fmt;
use std::future::Future;

use vmls_protocol::{
    ClientId, Delivered, EmulatorView, GroupId, GroupMessage, MailboxCursor, MailboxItem,
    MessageId, MessageKind, Payload, Sequence, VcSequence, WelcomeDelivery,
};

/// Why storage failed. A failed request changed nothing (its transaction is rolled back) and
/// may be retried.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no backend this build knows.
    #[error("unsupported database URL {url:?}")]
    UnsupportedUrl {
        /// The URL given.
        url: String,
    },
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The database's schema is newer than this build knows.
    #[error("database schema version {found} is newer than this build's {supported}")]
    SchemaTooNew {
        /// The version in the database.
        found: i64,
        /// The newest version this build migrates to.
        supported: i64,
    },
    /// A stored row could not be decoded (the database was written by something else).
    #[error("corrupt stored {what}")]
    Corrupt {
        /// Which row.
        what: &'static str,
    },
    /// Two transactions raced and this one lost (PostgreSQL serialization failure or
    /// deadlock): retried by the service, reported only when retries run out.
    #[error("transaction conflict")]
    Conflict,
}

/// Which backend to open, parsed from a database URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `memory` or `sqlite::memory:`: the in-memory backend (nothing survives the process).
    Memory,
    /// `sqlite://PATH`, `sqlite:PATH` or a plain path: one SQLite file (WAL,
    /// `synchronous=FULL`).
    Sqlite(std::path::PathBuf),
    /// `postgres://...` or `postgresql://...`: PostgreSQL, shared by several instances. The
    /// optional `schema` is the schema the service's tables live in (default `public`).
    Postgres {
        /// The connection string, as tokio-postgres takes it.
        url: String,
        /// The schema of the tables.
        schema: Option<String>,
    },
}

impl DatabaseUrl {
    /// Parses `url` (see the variants).
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if url == "memory" || url == "sqlite::memory:" || url == ":memory:" {
            return Ok(Self::Memory);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres {
                url: url.to_owned(),
                schema: None,
            });
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            return Ok(Self::Sqlite(path.into()));
        }
        if url.contains("://") || url.is_empty() {
            return Err(StoreError::UnsupportedUrl {
                url: url.to_owned(),
            });
        }
        Ok(Self::Sqlite(url.into()))
    }
}

impl fmt::Debug for DatabaseUrl {
    /// Never prints a PostgreSQL connection string (it may hold a password).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            Self::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            Self::Postgres { schema, .. } => f
                .debug_struct("Postgres")
                .field("schema", schema)
                .finish_non_exhaustive(),
        }
    }
}

/// A registered identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRow {
    /// A device: its signature key and the cursor its next mailbox item gets.
    Device {
        /// The MLS signature scheme of `signature_key`.
        signature_scheme: u16,
        /// The signature public key it authenticates with.
        signature_key: Vec<u8>,
    },
    /// A virtual client: its emulator clients are the device members of `emulation_group`.
    Virtual {
        /// Its emulation group.
        emulation_group: GroupId,
    },
}

/// The hot row of a group: everything a Send reads and writes but the log and the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRow {
    /// The group's current epoch (the one the next Commit is made in).
    pub epoch: u64,
    /// The position the next accepted message gets.
    pub next_sequence: Sequence,
    /// The group's handshakes are PrivateMessages: the service follows its epochs by the
    /// cleartext header only, and its public view stopped at the epoch it had then.
    pub handshakes_private: bool,
    /// The public view without its ratchet tree (`PublicGroup::hot_state_to_bytes`); its
    /// tree is in `group_trees` under the view's epoch.
    pub public_state: Vec<u8>,
    /// The epoch of the view in `public_state` (`epoch` unless `handshakes_private`).
    pub view_epoch: u64,
    /// The last GroupInfo published, and its epoch.
    pub group_info: Option<(u64, Payload)>,
}

/// A membership window of one identity in one group: it may read the log from `from` to
/// `until` (inclusive; `None` while it is a member).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRow {
    /// The member identity (device or virtual client).
    pub member: ClientId,
    /// Its first readable position.
    pub from: Sequence,
    /// Its last readable position, once removed.
    pub until: Option<Sequence>,
}

impl MemberRow {
    /// Whether it is a member now.
    pub fn is_current(&self) -> bool {
        self.until.is_none()
    }

    /// Whether it may read `sequence`.
    pub fn covers(&self, sequence: Sequence) -> bool {
        sequence >= self.from && self.until.is_none_or(|until| sequence <= until)
    }
}

/// One accepted message of a group's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRow {
    /// Its position.
    pub sequence: Sequence,
    /// The member identity that sent it.
    pub sender: ClientId,
    /// What it is.
    pub kind: MessageKind,
    /// For a virtual client's message: what its emulators learn.
    pub emulator_view: Option<EmulatorView>,
    /// The encoded MLSMessage.
    pub message: Payload,
}

impl LogRow {
    /// The message as `recipient` (a member identity) sees it: the emulator view only for the
    /// sending virtual client itself.
    pub fn to_group_message(&self, group_id: &GroupId, recipient: &ClientId) -> GroupMessage {
        GroupMessage {
            group_id: group_id.clone(),
            sequence: self.sequence,
            sender: self.sender.clone(),
            kind: self.kind,
            emulator_view: if *recipient == self.sender {
                self.emulator_view.clone()
            } else {
                None
            },
            message: self.message.clone(),
        }
    }
}

/// What a mailbox item refers to: a log entry, or the Welcome of a Commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxRef {
    /// The group.
    pub group_id: GroupId,
    /// The log position of the message (or of the Commit the Welcome belongs to).
    pub sequence: Sequence,
    /// The member identity it is delivered as.
    pub recipient: ClientId,
    /// A Welcome (else the log message).
    pub welcome: bool,
}

/// A mailbox item as read: the reference and the bytes it refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailboxEntry {
    /// A log message.
    Message {
        /// Its cursor.
        cursor: MailboxCursor,
        /// The group.
        group_id: GroupId,
        /// The member identity it is delivered as.
        recipient: ClientId,
        /// The log entry.
        log: LogRow,
    },
    /// A Welcome.
    Welcome {
        /// Its cursor.
        cursor: MailboxCursor,
        /// The group.
        group_id: GroupId,
        /// The Commit's position.
        sequence: Sequence,
        /// The identity welcomed.
        recipient: ClientId,
        /// The encoded Welcome.
        message: Payload,
    },
}

impl MailboxEntry {
    /// The protocol's mailbox item.
    pub fn into_item(self) -> MailboxItem {
        match self {
            Self::Message {
                cursor,
                group_id,
                recipient,
                log,
            } => MailboxItem {
                cursor,
                item: Delivered::Message {
                    message: log.to_group_message(&group_id, &recipient),
                    recipient,
                },
            },
            Self::Welcome {
                cursor,
                group_id,
                sequence,
                recipient,
                message,
            } => MailboxItem {
                cursor,
                item: Delivered::Welcome(WelcomeDelivery {
                    group_id,
                    sequence,
                    recipient,
                    message,
                }),
            },
        }
    }
}

/// One KeyPackage of the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPackageRow {
    /// Its `KeyPackageRef` (RFC 9420 §5.2).
    pub reference: Vec<u8>,
    /// The encoded MLSMessage.
    pub key_package: Payload,
    /// A last-resort KeyPackage (kept after use; one per owner).
    pub last_resort: bool,
    /// The end of its leaf's lifetime (seconds since the Unix epoch): not handed out after.
    pub not_after: u64,
}

/// How a transaction reads a group row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    /// For writing: other writers of the row wait (PostgreSQL `FOR UPDATE`).
    Update,
    /// For a check that must hold until commit: writers wait (PostgreSQL `FOR SHARE`).
    Share,
    /// A plain read.
    None,
}

/// A storage backend: it begins transactions.
pub trait Store: Send + Sync {
    /// Its transactions.
    type Tx: Tx + 'static;
    /// Begins a transaction (waits while the backend's ordering requires).
    fn begin(&self) -> impl Future<Output = Result<Self::Tx, StoreError>> + Send;
}

/// One storage transaction. Reads see the transaction's own writes; nothing is visible to
/// others before [`Tx::commit`]; a transaction dropped without commit changes nothing
/// (the in-memory backend's transactions write only after the service's checks passed, so
/// they never need to roll back). Every method may fail with a [`StoreError`].
pub trait Tx: Send {
    /// The registration of `id`.
    fn client(
        &mut self,
        id: &ClientId,
    ) -> impl Future<Output = Result<Option<ClientRow>, StoreError>> + Send;
    /// Registers `id` (which must not be registered).
    fn insert_client(
        &mut self,
        id: &ClientId,
        row: &ClientRow,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The hot row of a group.
    fn group(
        &mut self,
        id: &GroupId,
        lock: Lock,
    ) -> impl Future<Output = Result<Option<GroupRow>, StoreError>> + Send;
    /// Creates (`insert`) or replaces the hot row of a group.
    fn put_group(
        &mut self,
        id: &GroupId,
        row: &GroupRow,
        insert: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The ratchet tree of a group in an epoch.
    fn tree(
        &mut self,
        id: &GroupId,
        epoch: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// Stores the ratchet tree of a group in an epoch.
    fn put_tree(
        &mut self,
        id: &GroupId,
        epoch: u64,
        tree: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every membership window of a group (current and past members).
    fn members(
        &mut self,
        id: &GroupId,
    ) -> impl Future<Output = Result<Vec<MemberRow>, StoreError>> + Send;
    /// Creates or replaces the membership window of `row.member`.
    fn put_member(
        &mut self,
        id: &GroupId,
        row: &MemberRow,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The [`VcSequence`] the next message of `vc` in the group gets.
    fn vc_next(
        &mut self,
        id: &GroupId,
        vc: &ClientId,
    ) -> impl Future<Output = Result<VcSequence, StoreError>> + Send;
    /// Sets it.
    fn set_vc_next(
        &mut self,
        id: &GroupId,
        vc: &ClientId,
        next: VcSequence,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Appends to the group's log.
    fn append_log(
        &mut self,
        id: &GroupId,
        row: &LogRow,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Up to `limit` log entries from `from` on, in order.
    fn log(
        &mut self,
        id: &GroupId,
        from: Sequence,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<LogRow>, StoreError>> + Send;
    /// Stores the Welcome of the Commit at `sequence`.
    fn put_welcome(
        &mut self,
        id: &GroupId,
        sequence: Sequence,
        message: &Payload,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Appends an item to a device's mailbox; returns its cursor (the device's next, which
    /// then moves on by one).
    fn push_mailbox(
        &mut self,
        device: &ClientId,
        item: &MailboxRef,
    ) -> impl Future<Output = Result<MailboxCursor, StoreError>> + Send;
    /// How many items wait in a device's mailbox.
    fn mailbox_len(
        &mut self,
        device: &ClientId,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The cursor the device's next mailbox item gets.
    fn next_cursor(
        &mut self,
        device: &ClientId,
    ) -> impl Future<Output = Result<MailboxCursor, StoreError>> + Send;
    /// Up to `limit` mailbox items after `after` (from the first when `None`), oldest first.
    fn read_mailbox(
        &mut self,
        device: &ClientId,
        after: Option<MailboxCursor>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<MailboxEntry>, StoreError>> + Send;
    /// Deletes a device's mailbox items up to and including `up_to`.
    fn ack(
        &mut self,
        device: &ClientId,
        up_to: MailboxCursor,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The encoded first answer to the send `message_id` of `device`, if it was accepted.
    fn sent(
        &mut self,
        device: &ClientId,
        message_id: &MessageId,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// Records the answer to an accepted send.
    fn record_sent(
        &mut self,
        device: &ClientId,
        message_id: &MessageId,
        response: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// How many ordinary KeyPackages `owner` has in the directory.
    fn key_package_count(
        &mut self,
        owner: &ClientId,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Adds a KeyPackage (a last-resort one replaces the owner's previous last-resort one; a
    /// reference already present is replaced).
    fn insert_key_package(
        &mut self,
        owner: &ClientId,
        row: &KeyPackageRow,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Takes a KeyPackage of `owner` valid at `now`: the oldest ordinary one (deleted), else
    /// the last-resort one (kept). Expired ones are deleted on the way.
    fn take_key_package(
        &mut self,
        owner: &ClientId,
        now: u64,
    ) -> impl Future<Output = Result<Option<Payload>, StoreError>> + Send;
    /// Deletes the KeyPackages of `owner` with these references.
    fn retire_key_packages(
        &mut self,
        owner: &ClientId,
        references: &[Vec<u8>],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Queue depths over all mailboxes: (items, largest backlog).
    fn queue_depths(&mut self) -> impl Future<Output = Result<(u64, u64), StoreError>> + Send;
    /// Makes the transaction's writes durable and visible; `woken` are the devices whose
    /// mailboxes got items (PostgreSQL notifies other instances).
    fn commit(self, woken: &[ClientId]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A `u64` as the `BIGINT` the SQL backends store (positions and epochs stay below 2^63).
pub(crate) fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored `BIGINT` as `u64`.
pub(crate) fn from_sql(n: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt { what })
}

/// Encodes a protocol structure for a column.
pub(crate) fn encode_column<T: tls_codec::Serialize>(value: &T) -> Vec<u8> {
    // The structures stored (MessageKind, EmulatorView) were decoded or built within the
    // codec's limits, so they encode.
    vmls_protocol::encode(value).unwrap_or_default()
}

/// Decodes a protocol structure from a column.
pub(crate) fn decode_column<T: tls_codec::DeserializeBytes>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, StoreError> {
    vmls_protocol::decode(bytes).map_err(|_| StoreError::Corrupt { what })
}

/// A client row from its columns (kind, scheme, key, emulation group).
pub(crate) fn client_row(
    kind: i64,
    scheme: Option<i64>,
    key: Option<Vec<u8>>,
    emulation_group: Option<Vec<u8>>,
) -> Result<ClientRow, StoreError> {
    let corrupt = StoreError::Corrupt { what: "client" };
    match i16::try_from(kind) {
        Ok(schema::KIND_DEVICE) => Ok(ClientRow::Device {
            signature_scheme: scheme.and_then(|s| u16::try_from(s).ok()).ok_or(corrupt)?,
            signature_key: key.unwrap_or_default(),
        }),
        Ok(schema::KIND_VIRTUAL) => Ok(ClientRow::Virtual {
            emulation_group: GroupId(emulation_group.ok_or(corrupt)?),
        }),
        _ => Err(corrupt),
    }
}

/// The columns of a log row read: (sequence, sender, kind, emulator view, message).
pub(crate) fn log_row(
    sequence: i64,
    sender: Vec<u8>,
    kind: &[u8],
    emulator_view: Option<&[u8]>,
    message: Vec<u8>,
) -> Result<LogRow, StoreError> {
    Ok(LogRow {
        sequence: Sequence(from_sql(sequence, "log sequence")?),
        sender: ClientId(sender),
        kind: decode_column(kind, "log kind")?,
        emulator_view: emulator_view
            .map(|v| decode_column(v, "emulator view"))
            .transpose()?,
        message: Payload::from(message),
    })
}

/// The columns of a mailbox row read with what it refers to.
pub(crate) struct MailboxColumns {
    pub cursor: i64,
    pub group_id: Vec<u8>,
    pub sequence: i64,
    pub recipient: Vec<u8>,
    pub welcome: bool,
    pub sender: Option<Vec<u8>>,
    pub kind: Option<Vec<u8>>,
    pub emulator_view: Option<Vec<u8>>,
    pub message: Option<Vec<u8>>,
    pub welcome_message: Option<Vec<u8>>,
}

impl MailboxColumns {
    pub(crate) fn into_entry(self) -> Result<MailboxEntry, StoreError> {
        let cursor = MailboxCursor(from_sql(self.cursor, "mailbox cursor")?);
        let group_id = GroupId(self.group_id);
        let recipient = ClientId(self.recipient);
        if self.welcome {
            return Ok(MailboxEntry::Welcome {
                cursor,
                group_id,
                sequence: Sequence(from_sql(self.sequence, "mailbox sequence")?),
                recipient,
                message: Payload::from(
                    self.welcome_message
                        .ok_or(StoreError::Corrupt { what: "welcome" })?,
                ),
            });
        }
        let corrupt = || StoreError::Corrupt { what: "log entry" };
        let log = log_row(
            self.sequence,
            self.sender.ok_or_else(corrupt)?,
            &self.kind.ok_or_else(corrupt)?,
            self.emulator_view.as_deref(),
            self.message.ok_or_else(corrupt)?,
        )?;
        Ok(MailboxEntry::Message {
            cursor,
            group_id,
            recipient,
            log,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(DatabaseUrl::parse("memory").unwrap(), DatabaseUrl::Memory);
        assert_eq!(
            DatabaseUrl::parse("sqlite::memory:").unwrap(),
            DatabaseUrl::Memory
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://a/b.db").unwrap(),
            DatabaseUrl::Sqlite("a/b.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("vmls.db").unwrap(),
            DatabaseUrl::Sqlite("vmls.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap(),
            DatabaseUrl::Postgres { .. }
        ));
        assert!(DatabaseUrl::parse("mysql://x").is_err());
    }
}
