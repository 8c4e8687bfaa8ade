//! The SQLite backend: one database file in WAL mode with `synchronous=FULL` (a committed
//! transaction is on disk before the answer), one connection and so one writer; a
//! transaction is `BEGIN IMMEDIATE` ... `COMMIT` under the connection's lock. Statements run
//! on the calling task (SQLite calls are short; the lock orders them).

use std::path::Path;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{Mutex, OwnedMutexGuard};
use vmls_protocol::{ClientId, GroupId, MailboxCursor, MessageId, Payload, Sequence, VcSequence};

use super::schema::{self, SQLITE_MIGRATIONS};
use super::{
    client_row, encode_column, from_sql, log_row, to_sql, ClientRow, GroupRow, KeyPackageRow, Lock,
    LogRow, MailboxColumns, MailboxEntry, MailboxRef, MemberRow, Store, StoreError, Tx,
};

/// The SQLite store (cheap to clone; clones share the connection).
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// `$n` placeholders as SQLite's `?n`.
fn sql(statement: &str) -> String {
    statement.replace('$', "?")
}

impl SqliteStore {
    /// Opens (creating) the database file at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.busy_timeout(std::time::Duration::from_secs(30))?;
        migrate(&connection)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }
}

/// Applies the migrations the database has not had, each in its own transaction.
fn migrate(connection: &Connection) -> Result<(), StoreError> {
    connection
        .execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: i64 = connection
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| {
            r.get::<_, Option<i64>>(0)
        })?
        .unwrap_or(0);
    let supported = SQLITE_MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    for (i, migration) in SQLITE_MIGRATIONS.iter().enumerate().skip(current as usize) {
        connection.execute_batch(&format!(
            "BEGIN IMMEDIATE; {migration}; INSERT INTO schema_version (version) VALUES ({}); COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}

impl Store for SqliteStore {
    type Tx = SqliteTx;

    async fn begin(&self) -> Result<SqliteTx, StoreError> {
        let connection = self.connection.clone().lock_owned().await;
        connection.execute_batch("BEGIN IMMEDIATE")?;
        Ok(SqliteTx {
            connection,
            open: true,
        })
    }
}

/// A transaction of the SQLite store; rolled back when dropped uncommitted.
pub struct SqliteTx {
    connection: OwnedMutexGuard<Connection>,
    open: bool,
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open {
            // Nothing of the transaction is kept; a failed rollback leaves it to SQLite's
            // recovery (the next BEGIN fails and is reported).
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}

impl SqliteTx {
    fn count(&self, statement: &str, p: impl rusqlite::Params) -> Result<u64, StoreError> {
        let n: i64 = self
            .connection
            .prepare_cached(&sql(statement))?
            .query_row(p, |r| r.get(0))?;
        from_sql(n, "count")
    }
}

impl Tx for SqliteTx {
    async fn client(&mut self, id: &ClientId) -> Result<Option<ClientRow>, StoreError> {
        let row = self
            .connection
            .prepare_cached(&sql(schema::CLIENT))?
            .query_row(params![id.as_bytes()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        row.map(|(k, s, key, e)| client_row(k, s, key, e))
            .transpose()
    }

    async fn insert_client(&mut self, id: &ClientId, row: &ClientRow) -> Result<(), StoreError> {
        let mut st = self
            .connection
            .prepare_cached(&sql(schema::INSERT_CLIENT))?;
        match row {
            ClientRow::Device {
                signature_scheme,
                signature_key,
            } => st.execute(params![
                id.as_bytes(),
                schema::KIND_DEVICE,
                i64::from(*signature_scheme),
                signature_key,
                Option::<Vec<u8>>::None
            ])?,
            ClientRow::Virtual { emulation_group } => st.execute(params![
                id.as_bytes(),
                schema::KIND_VIRTUAL,
                Option::<i64>::None,
                Option::<Vec<u8>>::None,
                emulation_group.as_bytes()
            ])?,
        };
        Ok(())
    }

    async fn group(&mut self, id: &GroupId, _lock: Lock) -> Result<Option<GroupRow>, StoreError> {
        let row = self
            .connection
            .prepare_cached(&sql(schema::GROUP))?
            .query_row(params![id.as_bytes()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, Option<Vec<u8>>>(6)?,
                ))
            })
            .optional()?;
        row.map(|(epoch, next, private, state, view_epoch, gi_epoch, gi)| {
            Ok(GroupRow {
                epoch: from_sql(epoch, "epoch")?,
                next_sequence: Sequence(from_sql(next, "next sequence")?),
                handshakes_private: private,
                public_state: state,
                view_epoch: from_sql(view_epoch, "view epoch")?,
                group_info: match (gi_epoch, gi) {
                    (Some(e), Some(g)) => Some((from_sql(e, "GroupInfo epoch")?, g.into())),
                    _ => None,
                },
            })
        })
        .transpose()
    }

    async fn put_group(
        &mut self,
        id: &GroupId,
        row: &GroupRow,
        insert: bool,
    ) -> Result<(), StoreError> {
        let statement = if insert {
            schema::INSERT_GROUP
        } else {
            schema::UPDATE_GROUP
        };
        self.connection
            .prepare_cached(&sql(statement))?
            .execute(params![
                id.as_bytes(),
                to_sql(row.epoch),
                to_sql(row.next_sequence.0),
                row.handshakes_private,
                row.public_state,
                to_sql(row.view_epoch),
                row.group_info.as_ref().map(|(e, _)| to_sql(*e)),
                row.group_info.as_ref().map(|(_, g)| g.as_bytes()),
            ])?;
        Ok(())
    }

    async fn tree(&mut self, id: &GroupId, epoch: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .connection
            .prepare_cached(&sql(schema::TREE))?
            .query_row(params![id.as_bytes(), to_sql(epoch)], |r| r.get(0))
            .optional()?)
    }

    async fn put_tree(&mut self, id: &GroupId, epoch: u64, tree: &[u8]) -> Result<(), StoreError> {
        self.connection
            .prepare_cached(&sql(schema::PUT_TREE))?
            .execute(params![id.as_bytes(), to_sql(epoch), tree])?;
        Ok(())
    }

    async fn members(&mut self, id: &GroupId) -> Result<Vec<MemberRow>, StoreError> {
        let mut st = self.connection.prepare_cached(&sql(schema::MEMBERS))?;
        let rows = st.query_map(params![id.as_bytes()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (member, from, until) = row?;
            out.push(MemberRow {
                member: ClientId(member),
                from: Sequence(from_sql(from, "membership")?),
                until: until
                    .map(|u| from_sql(u, "membership").map(Sequence))
                    .transpose()?,
            });
        }
        Ok(out)
    }

    async fn put_member(&mut self, id: &GroupId, row: &MemberRow) -> Result<(), StoreError> {
        self.connection
            .prepare_cached(&sql(schema::PUT_MEMBER))?
            .execute(params![
                id.as_bytes(),
                row.member.as_bytes(),
                to_sql(row.from.0),
                row.until.map(|u| to_sql(u.0)),
            ])?;
        Ok(())
    }

    async fn vc_next(&mut self, id: &GroupId, vc: &ClientId) -> Result<VcSequence, StoreError> {
        let next: Option<i64> = self
            .connection
            .prepare_cached(&sql(schema::VC_NEXT))?
            .query_row(params![id.as_bytes(), vc.as_bytes()], |r| r.get(0))
            .optional()?;
        Ok(VcSequence(
            next.map_or(Ok(0), |n| from_sql(n, "vc sequence"))?,
        ))
    }

    async fn set_vc_next(
        &mut self,
        id: &GroupId,
        vc: &ClientId,
        next: VcSequence,
    ) -> Result<(), StoreError> {
        self.connection
            .prepare_cached(&sql(schema::SET_VC_NEXT))?
            .execute(params![id.as_bytes(), vc.as_bytes(), to_sql(next.0)])?;
        Ok(())
    }

    async fn append_log(&mut self, id: &GroupId, row: &LogRow) -> Result<(), StoreError> {
        self.connection
            .prepare_cached(&sql(schema::APPEND_LOG))?
            .execute(params![
                id.as_bytes(),
                to_sql(row.sequence.0),
                row.sender.as_bytes(),
                encode_column(&row.kind),
                row.emulator_view.as_ref().map(encode_column),
                row.message.as_bytes(),
            ])?;
        Ok(())
    }

    async fn log(
        &mut self,
        id: &GroupId,
        from: Sequence,
        limit: u32,
    ) -> Result<Vec<LogRow>, StoreError> {
        let mut st = self.connection.prepare_cached(&sql(schema::LOG))?;
        let rows = st.query_map(
            params![id.as_bytes(), to_sql(from.0), i64::from(limit)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Option<Vec<u8>>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (sequence, sender, kind, view, message) = row?;
            out.push(log_row(sequence, sender, &kind, view.as_deref(), message)?);
        }
        Ok(out)
    }

    async fn put_welcome(
        &mut self,
        id: &GroupId,
        sequence: Sequence,
        message: &Payload,
    ) -> Result<(), StoreError> {
        self.connection
            .prepare_cached(&sql(schema::PUT_WELCOME))?
            .execute(params![
                id.as_bytes(),
                to_sql(sequence.0),
                message.as_bytes()
            ])?;
        Ok(())
    }

    async fn push_mailbox(
        &mut self,
        device: &ClientId,
        item: &MailboxRef,
    ) -> Result<MailboxCursor, StoreError> {
        let cursor: i64 = self
            .connection
            .prepare_cached(&sql(schema::BUMP_CURSOR))?
            .query_row(params![device.as_bytes()], |r| r.get(0))?;
        self.connection
            .prepare_cached(&sql(schema::PUSH_MAILBOX))?
            .execute(params![
                device.as_bytes(),
                cursor,
                item.group_id.as_bytes(),
                to_sql(item.sequence.0),
                item.recipient.as_bytes(),
                item.welcome,
            ])?;
        Ok(MailboxCursor(from_sql(cursor, "mailbox cursor")?))
    }

    async fn mailbox_len(&mut self, device: &ClientId) -> Result<u64, StoreError> {
        self.count(schema::MAILBOX_LEN, params![device.as_bytes()])
    }

    async fn next_cursor(&mut self, device: &ClientId) -> Result<MailboxCursor, StoreError> {
        let n: Option<i64> = self
            .connection
            .prepare_cached(&sql(schema::NEXT_CURSOR))?
            .query_row(params![device.as_bytes()], |r| r.get(0))
            .optional()?;
        Ok(MailboxCursor(
            n.map_or(Ok(0), |n| from_sql(n, "mailbox cursor"))?,
        ))
    }

    async fn read_mailbox(
        &mut self,
        device: &ClientId,
        after: Option<MailboxCursor>,
        limit: u32,
    ) -> Result<Vec<MailboxEntry>, StoreError> {
        let after = after.map_or(-1, |a| to_sql(a.0));
        let mut st = self.connection.prepare_cached(&sql(schema::READ_MAILBOX))?;
        let rows = st.query_map(params![device.as_bytes(), after, i64::from(limit)], |r| {
            Ok(MailboxColumns {
                cursor: r.get(0)?,
                group_id: r.get(1)?,
                sequence: r.get(2)?,
                recipient: r.get(3)?,
                welcome: r.get(4)?,
                sender: r.get(5)?,
                kind: r.get(6)?,
                emulator_view: r.get(7)?,
                message: r.get(8)?,
                welcome_message: r.get(9)?,
            })
        })?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.into_entry()?);
        }
        Ok(out)
    }

    async fn ack(&mut self, device: &ClientId, up_to: MailboxCursor) -> Result<(), StoreError> {
        self.connection
            .prepare_cached(&sql(schema::ACK))?
            .execute(params![device.as_bytes(), to_sql(up_to.0)])?;
        Ok(())
    }

    async fn sent(
        &mut self,
        device: &ClientId,
        message_id: &MessageId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .connection
            .prepare_cached(&sql(schema::SENT))?
            .query_row(params![device.as_bytes(), &message_id.0[..]], |r| r.get(0))
            .optional()?)
    }

    async fn record_sent(
        &mut self,
        device: &ClientId,
        message_id: &MessageId,
        response: &[u8],
    ) -> Result<(), StoreError> {
        self.connection
            .prepare_cached(&sql(schema::RECORD_SENT))?
            .execute(params![device.as_bytes(), &message_id.0[..], response])?;
        Ok(())
    }

    async fn key_package_count(&mut self, owner: &ClientId) -> Result<u64, StoreError> {
        self.count(schema::KP_COUNT, params![owner.as_bytes()])
    }

    async fn insert_key_package(
        &mut self,
        owner: &ClientId,
        row: &KeyPackageRow,
    ) -> Result<(), StoreError> {
        let c = &self.connection;
        c.prepare_cached(&sql(schema::KP_DELETE_REF))?
            .execute(params![owner.as_bytes(), row.reference])?;
        if row.last_resort {
            c.prepare_cached(&sql(schema::KP_DELETE_LAST_RESORT))?
                .execute(params![owner.as_bytes()])?;
        }
        c.prepare_cached(&sql(schema::KP_INSERT))?.execute(params![
            owner.as_bytes(),
            row.reference,
            row.key_package.as_bytes(),
            row.last_resort,
            to_sql(row.not_after),
        ])?;
        Ok(())
    }

    async fn take_key_package(
        &mut self,
        owner: &ClientId,
        now: u64,
    ) -> Result<Option<Payload>, StoreError> {
        let c = &self.connection;
        c.prepare_cached(&sql(schema::KP_DELETE_EXPIRED))?
            .execute(params![owner.as_bytes(), to_sql(now)])?;
        let oldest: Option<(Vec<u8>, Vec<u8>)> = c
            .prepare_cached(&sql(schema::KP_OLDEST))?
            .query_row(params![owner.as_bytes()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((reference, key_package)) = oldest {
            c.prepare_cached(&sql(schema::KP_DELETE_REF))?
                .execute(params![owner.as_bytes(), reference])?;
            return Ok(Some(key_package.into()));
        }
        let last: Option<Vec<u8>> = c
            .prepare_cached(&sql(schema::KP_LAST_RESORT))?
            .query_row(params![owner.as_bytes()], |r| r.get(0))
            .optional()?;
        Ok(last.map(Payload::from))
    }

    async fn retire_key_packages(
        &mut self,
        owner: &ClientId,
        references: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let mut st = self
            .connection
            .prepare_cached(&sql(schema::KP_DELETE_REF))?;
        for reference in references {
            st.execute(params![owner.as_bytes(), reference])?;
        }
        Ok(())
    }

    async fn queue_depths(&mut self) -> Result<(u64, u64), StoreError> {
        let (sum, max): (i64, i64) = self
            .connection
            .prepare_cached(&sql(schema::QUEUE_DEPTHS))?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((from_sql(sum, "count")?, from_sql(max, "count")?))
    }

    async fn commit(mut self, _woken: &[ClientId]) -> Result<(), StoreError> {
        self.connection.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}
