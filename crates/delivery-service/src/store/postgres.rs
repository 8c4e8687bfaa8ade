//! The PostgreSQL backend, for several service instances on one database: transactions in
//! READ COMMITTED with the group row locked (`SELECT ... FOR UPDATE`; an emulation group's
//! row `FOR SHARE` while a virtual client's message is checked against its head), so the
//! writers of one group are serial and see each other's commits; device rows are locked (by
//! the cursor update) in one order. A transaction that loses a race (serialization failure,
//! deadlock, unique violation of a concurrent insert) is [`StoreError::Conflict`] and run
//! again by the service. Wake-ups cross instances with `NOTIFY` (sent in the transaction, so
//! delivered on commit) and a `LISTEN` connection per instance.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, NoTls, Row, Statement};
use vmls_protocol::{ClientId, GroupId, MailboxCursor, MessageId, Payload, Sequence, VcSequence};

use super::schema::{self, POSTGRES_MIGRATIONS};
use super::{
    client_row, encode_column, from_sql, log_row, to_sql, ClientRow, GroupRow, KeyPackageRow, Lock,
    LogRow, MailboxColumns, MailboxEntry, MailboxRef, MemberRow, Store, StoreError, Tx,
};
use crate::service::wakeups::Wakeups;

/// Connections per instance.
const POOL_SIZE: usize = 8;

/// A pooled connection with its prepared statements.
struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
    /// A transaction was left open (dropped uncommitted): roll back before reuse.
    dirty: bool,
}

struct Pool {
    url: String,
    schema: Option<String>,
    free: Mutex<Vec<Conn>>,
    permits: Arc<Semaphore>,
}

/// The PostgreSQL store (cheap to clone).
#[derive(Clone)]
pub struct PostgresStore {
    pool: Arc<Pool>,
    _listener: Arc<ListenerTask>,
}

struct ListenerTask(JoinHandle<()>);

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for PostgresStore {
    /// Never prints the connection string (it may hold a password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.pool.schema)
            .finish_non_exhaustive()
    }
}

/// A storage error; races are [`StoreError::Conflict`].
fn pg(e: tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::UNIQUE_VIOLATION =>
        {
            StoreError::Conflict
        }
        _ => StoreError::Postgres(e),
    }
}

/// `schema` if it is a plain identifier (it is spliced into statements).
fn checked_schema(schema: Option<&str>) -> Result<Option<String>, StoreError> {
    match schema {
        None => Ok(None),
        Some(s)
            if !s.is_empty()
                && s.len() < 60
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
        {
            Ok(Some(s.to_owned()))
        }
        Some(s) => Err(StoreError::UnsupportedUrl {
            url: format!("schema {s:?} (lowercase letters, digits and _ only)"),
        }),
    }
}

/// The NOTIFY channel of a schema.
fn channel(schema: Option<&str>) -> String {
    format!("vmls_mailbox_{}", schema.unwrap_or("public"))
}

async fn connect(url: &str, schema: Option<&str>) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(pg)?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server closes the connection; the client
        // then reports errors and the pool drops it.
        let _ = connection.await;
    });
    if let Some(s) = schema {
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {s}; SET search_path TO {s}"
            ))
            .await
            .or_else(|e| {
                // Two instances creating the schema at once: one loses; the schema exists.
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(pg)?;
        client
            .batch_execute(&format!("SET search_path TO {s}"))
            .await
            .map_err(pg)?;
    }
    Ok(client)
}

/// Applies the migrations the schema has not had, under an advisory lock (several instances
/// may start at once).
async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7242001); \
         CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
    )
    .await
    .map_err(pg)?;
    let current: Option<i64> = tx
        .query_one("SELECT MAX(version) FROM schema_version", &[])
        .await
        .map_err(pg)?
        .get(0);
    let current = current.unwrap_or(0);
    let supported = POSTGRES_MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    for (i, migration) in POSTGRES_MIGRATIONS
        .iter()
        .enumerate()
        .skip(current as usize)
    {
        tx.batch_execute(migration).await.map_err(pg)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&(i as i64 + 1)],
        )
        .await
        .map_err(pg)?;
    }
    tx.commit().await.map_err(pg)
}

impl PostgresStore {
    /// Connects to `url`, with the tables in `schema` (created if missing; default the
    /// connection's search path), migrates, and starts listening for other instances'
    /// wake-ups, which are fed to `wakeups`.
    pub(crate) async fn connect(
        url: &str,
        schema: Option<&str>,
        wakeups: Arc<Wakeups>,
    ) -> Result<Self, StoreError> {
        let schema = checked_schema(schema)?;
        let mut first = connect(url, schema.as_deref()).await?;
        migrate(&mut first).await?;
        let pool = Arc::new(Pool {
            url: url.to_owned(),
            schema: schema.clone(),
            free: Mutex::new(vec![Conn {
                client: first,
                statements: HashMap::new(),
                dirty: false,
            }]),
            permits: Arc::new(Semaphore::new(POOL_SIZE)),
        });
        let listener = tokio::spawn(listen(
            url.to_owned(),
            channel(schema.as_deref()),
            Arc::downgrade(&wakeups),
        ));
        Ok(Self {
            pool,
            _listener: Arc::new(ListenerTask(listener)),
        })
    }
}

/// Listens for wake-ups of other instances until the service is gone; reconnects (waking
/// every subscriber, since notifications may have been missed) when the connection drops.
async fn listen(url: String, channel: String, wakeups: Weak<Wakeups>) {
    loop {
        if let Ok((client, mut connection)) = tokio_postgres::connect(&url, NoTls).await {
            let statement = format!("LISTEN {channel}");
            let mut listening = std::pin::pin!(client.batch_execute(&statement));
            let mut listened = false;
            loop {
                tokio::select! {
                    r = &mut listening, if !listened => {
                        if r.is_err() { break; }
                        listened = true;
                        match wakeups.upgrade() { Some(w) => w.notify_all(), None => return }
                    }
                    m = poll_fn(|cx| connection.poll_message(cx)) => match m {
                        Some(Ok(AsyncMessage::Notification(n))) => {
                            let Some(w) = wakeups.upgrade() else { return };
                            if let Ok(device) = hex::decode(n.payload()) {
                                w.notify(&ClientId(device));
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    }
                }
            }
        }
        if wakeups.upgrade().is_none() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

impl Store for PostgresStore {
    type Tx = PostgresTx;

    async fn begin(&self) -> Result<PostgresTx, StoreError> {
        let permit = self
            .pool
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Conflict)?;
        let pooled = {
            let mut free = self.pool.free.lock().unwrap_or_else(|e| e.into_inner());
            free.pop()
        };
        let mut conn = match pooled {
            Some(c) if !c.client.is_closed() => c,
            _ => Conn {
                client: connect(&self.pool.url, self.pool.schema.as_deref()).await?,
                statements: HashMap::new(),
                dirty: false,
            },
        };
        if conn.dirty {
            conn.client.batch_execute("ROLLBACK").await.map_err(pg)?;
            conn.dirty = false;
        }
        conn.client.batch_execute("BEGIN").await.map_err(pg)?;
        Ok(PostgresTx {
            conn: Some(conn),
            pool: self.pool.clone(),
            _permit: permit,
            open: true,
        })
    }
}

/// A transaction of the PostgreSQL store; rolled back (before the connection's next use)
/// when dropped uncommitted.
pub struct PostgresTx {
    conn: Option<Conn>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
    open: bool,
}

impl Drop for PostgresTx {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.dirty = self.open;
            if !conn.client.is_closed() {
                let mut free = self.pool.free.lock().unwrap_or_else(|e| e.into_inner());
                free.push(conn);
            }
        }
    }
}

impl PostgresTx {
    fn conn(&mut self) -> Result<&mut Conn, StoreError> {
        self.conn.as_mut().ok_or(StoreError::Conflict)
    }

    async fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        let conn = self.conn()?;
        if let Some(s) = conn.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = conn.client.prepare(sql).await.map_err(pg)?;
        conn.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    async fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let st = self.statement(sql).await?;
        self.conn()?.client.query(&st, params).await.map_err(pg)
    }

    async fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let st = self.statement(sql).await?;
        self.conn()?.client.query_opt(&st, params).await.map_err(pg)
    }

    async fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let st = self.statement(sql).await?;
        self.conn()?.client.execute(&st, params).await.map_err(pg)
    }

    async fn count(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let row = self.query_opt(sql, params).await?;
        from_sql(row.map_or(0, |r| r.get::<_, i64>(0)), "count")
    }
}

impl Tx for PostgresTx {
    async fn client(&mut self, id: &ClientId) -> Result<Option<ClientRow>, StoreError> {
        let row = self.query_opt(schema::CLIENT, &[&id.as_bytes()]).await?;
        row.map(|r| {
            client_row(
                i64::from(r.get::<_, i16>(0)),
                r.get::<_, Option<i32>>(1).map(i64::from),
                r.get(2),
                r.get(3),
            )
        })
        .transpose()
    }

    async fn insert_client(&mut self, id: &ClientId, row: &ClientRow) -> Result<(), StoreError> {
        match row {
            ClientRow::Device {
                signature_scheme,
                signature_key,
            } => {
                self.execute(
                    schema::INSERT_CLIENT,
                    &[
                        &id.as_bytes(),
                        &schema::KIND_DEVICE,
                        &Some(i32::from(*signature_scheme)),
                        &Some(signature_key.as_slice()),
                        &Option::<&[u8]>::None,
                    ],
                )
                .await?
            }
            ClientRow::Virtual { emulation_group } => {
                self.execute(
                    schema::INSERT_CLIENT,
                    &[
                        &id.as_bytes(),
                        &schema::KIND_VIRTUAL,
                        &Option::<i32>::None,
                        &Option::<&[u8]>::None,
                        &Some(emulation_group.as_bytes()),
                    ],
                )
                .await?
            }
        };
        Ok(())
    }

    async fn group(&mut self, id: &GroupId, lock: Lock) -> Result<Option<GroupRow>, StoreError> {
        let sql = match lock {
            Lock::Update => format!("{} FOR UPDATE", schema::GROUP),
            Lock::Share => format!("{} FOR SHARE", schema::GROUP),
            Lock::None => schema::GROUP.to_owned(),
        };
        let row = self.query_opt(&sql, &[&id.as_bytes()]).await?;
        row.map(|r| {
            Ok(GroupRow {
                epoch: from_sql(r.get(0), "epoch")?,
                next_sequence: Sequence(from_sql(r.get(1), "next sequence")?),
                handshakes_private: r.get(2),
                public_state: r.get(3),
                view_epoch: from_sql(r.get(4), "view epoch")?,
                group_info: match (r.get::<_, Option<i64>>(5), r.get::<_, Option<Vec<u8>>>(6)) {
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
        let gi_epoch = row.group_info.as_ref().map(|(e, _)| to_sql(*e));
        let gi = row.group_info.as_ref().map(|(_, g)| g.as_bytes());
        self.execute(
            statement,
            &[
                &id.as_bytes(),
                &to_sql(row.epoch),
                &to_sql(row.next_sequence.0),
                &row.handshakes_private,
                &row.public_state.as_slice(),
                &to_sql(row.view_epoch),
                &gi_epoch,
                &gi,
            ],
        )
        .await?;
        Ok(())
    }

    async fn tree(&mut self, id: &GroupId, epoch: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .query_opt(schema::TREE, &[&id.as_bytes(), &to_sql(epoch)])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn put_tree(&mut self, id: &GroupId, epoch: u64, tree: &[u8]) -> Result<(), StoreError> {
        self.execute(schema::PUT_TREE, &[&id.as_bytes(), &to_sql(epoch), &tree])
            .await?;
        Ok(())
    }

    async fn members(&mut self, id: &GroupId) -> Result<Vec<MemberRow>, StoreError> {
        let rows = self.query(schema::MEMBERS, &[&id.as_bytes()]).await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRow {
                    member: ClientId(r.get(0)),
                    from: Sequence(from_sql(r.get(1), "membership")?),
                    until: r
                        .get::<_, Option<i64>>(2)
                        .map(|u| from_sql(u, "membership").map(Sequence))
                        .transpose()?,
                })
            })
            .collect()
    }

    async fn put_member(&mut self, id: &GroupId, row: &MemberRow) -> Result<(), StoreError> {
        let until = row.until.map(|u| to_sql(u.0));
        self.execute(
            schema::PUT_MEMBER,
            &[
                &id.as_bytes(),
                &row.member.as_bytes(),
                &to_sql(row.from.0),
                &until,
            ],
        )
        .await?;
        Ok(())
    }

    async fn vc_next(&mut self, id: &GroupId, vc: &ClientId) -> Result<VcSequence, StoreError> {
        let row = self
            .query_opt(schema::VC_NEXT, &[&id.as_bytes(), &vc.as_bytes()])
            .await?;
        Ok(VcSequence(
            row.map_or(Ok(0), |r| from_sql(r.get(0), "vc sequence"))?,
        ))
    }

    async fn set_vc_next(
        &mut self,
        id: &GroupId,
        vc: &ClientId,
        next: VcSequence,
    ) -> Result<(), StoreError> {
        self.execute(
            schema::SET_VC_NEXT,
            &[&id.as_bytes(), &vc.as_bytes(), &to_sql(next.0)],
        )
        .await?;
        Ok(())
    }

    async fn append_log(&mut self, id: &GroupId, row: &LogRow) -> Result<(), StoreError> {
        let kind = encode_column(&row.kind);
        let view = row.emulator_view.as_ref().map(encode_column);
        self.execute(
            schema::APPEND_LOG,
            &[
                &id.as_bytes(),
                &to_sql(row.sequence.0),
                &row.sender.as_bytes(),
                &kind,
                &view,
                &row.message.as_bytes(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn log(
        &mut self,
        id: &GroupId,
        from: Sequence,
        limit: u32,
    ) -> Result<Vec<LogRow>, StoreError> {
        let rows = self
            .query(
                schema::LOG,
                &[&id.as_bytes(), &to_sql(from.0), &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                log_row(
                    r.get(0),
                    r.get(1),
                    r.get::<_, &[u8]>(2),
                    r.get::<_, Option<&[u8]>>(3),
                    r.get(4),
                )
            })
            .collect()
    }

    async fn put_welcome(
        &mut self,
        id: &GroupId,
        sequence: Sequence,
        message: &Payload,
    ) -> Result<(), StoreError> {
        self.execute(
            schema::PUT_WELCOME,
            &[&id.as_bytes(), &to_sql(sequence.0), &message.as_bytes()],
        )
        .await?;
        Ok(())
    }

    async fn push_mailbox(
        &mut self,
        device: &ClientId,
        item: &MailboxRef,
    ) -> Result<MailboxCursor, StoreError> {
        let row = self
            .query_opt(schema::BUMP_CURSOR, &[&device.as_bytes()])
            .await?
            .ok_or(StoreError::Corrupt { what: "device" })?;
        let cursor: i64 = row.get(0);
        self.execute(
            schema::PUSH_MAILBOX,
            &[
                &device.as_bytes(),
                &cursor,
                &item.group_id.as_bytes(),
                &to_sql(item.sequence.0),
                &item.recipient.as_bytes(),
                &item.welcome,
            ],
        )
        .await?;
        Ok(MailboxCursor(from_sql(cursor, "mailbox cursor")?))
    }

    async fn mailbox_len(&mut self, device: &ClientId) -> Result<u64, StoreError> {
        self.count(schema::MAILBOX_LEN, &[&device.as_bytes()]).await
    }

    async fn next_cursor(&mut self, device: &ClientId) -> Result<MailboxCursor, StoreError> {
        self.count(schema::NEXT_CURSOR, &[&device.as_bytes()])
            .await
            .map(MailboxCursor)
    }

    async fn read_mailbox(
        &mut self,
        device: &ClientId,
        after: Option<MailboxCursor>,
        limit: u32,
    ) -> Result<Vec<MailboxEntry>, StoreError> {
        let after = after.map_or(-1, |a| to_sql(a.0));
        let rows = self
            .query(
                schema::READ_MAILBOX,
                &[&device.as_bytes(), &after, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                MailboxColumns {
                    cursor: r.get(0),
                    group_id: r.get(1),
                    sequence: r.get(2),
                    recipient: r.get(3),
                    welcome: r.get(4),
                    sender: r.get(5),
                    kind: r.get(6),
                    emulator_view: r.get(7),
                    message: r.get(8),
                    welcome_message: r.get(9),
                }
                .into_entry()
            })
            .collect()
    }

    async fn ack(&mut self, device: &ClientId, up_to: MailboxCursor) -> Result<(), StoreError> {
        self.execute(schema::ACK, &[&device.as_bytes(), &to_sql(up_to.0)])
            .await?;
        Ok(())
    }

    async fn sent(
        &mut self,
        device: &ClientId,
        message_id: &MessageId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row = self
            .query_opt(schema::SENT, &[&device.as_bytes(), &&message_id.0[..]])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn record_sent(
        &mut self,
        device: &ClientId,
        message_id: &MessageId,
        response: &[u8],
    ) -> Result<(), StoreError> {
        self.execute(
            schema::RECORD_SENT,
            &[&device.as_bytes(), &&message_id.0[..], &response],
        )
        .await?;
        Ok(())
    }

    async fn key_package_count(&mut self, owner: &ClientId) -> Result<u64, StoreError> {
        self.count(schema::KP_COUNT, &[&owner.as_bytes()]).await
    }

    async fn insert_key_package(
        &mut self,
        owner: &ClientId,
        row: &KeyPackageRow,
    ) -> Result<(), StoreError> {
        self.execute(
            schema::KP_DELETE_REF,
            &[&owner.as_bytes(), &row.reference.as_slice()],
        )
        .await?;
        if row.last_resort {
            self.execute(schema::KP_DELETE_LAST_RESORT, &[&owner.as_bytes()])
                .await?;
        }
        self.execute(
            schema::KP_INSERT,
            &[
                &owner.as_bytes(),
                &row.reference.as_slice(),
                &row.key_package.as_bytes(),
                &row.last_resort,
                &to_sql(row.not_after),
            ],
        )
        .await?;
        Ok(())
    }

    async fn take_key_package(
        &mut self,
        owner: &ClientId,
        now: u64,
    ) -> Result<Option<Payload>, StoreError> {
        self.execute(
            schema::KP_DELETE_EXPIRED,
            &[&owner.as_bytes(), &to_sql(now)],
        )
        .await?;
        if let Some(r) = self
            .query_opt(schema::KP_OLDEST, &[&owner.as_bytes()])
            .await?
        {
            let reference: Vec<u8> = r.get(0);
            let key_package: Vec<u8> = r.get(1);
            // Another instance may take the same one at once: the delete decides.
            let deleted = self
                .execute(schema::KP_DELETE_REF, &[&owner.as_bytes(), &reference])
                .await?;
            if deleted != 1 {
                return Err(StoreError::Conflict);
            }
            return Ok(Some(key_package.into()));
        }
        let last = self
            .query_opt(schema::KP_LAST_RESORT, &[&owner.as_bytes()])
            .await?;
        Ok(last.map(|r| Payload::from(r.get::<_, Vec<u8>>(0))))
    }

    async fn retire_key_packages(
        &mut self,
        owner: &ClientId,
        references: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        for reference in references {
            self.execute(schema::KP_DELETE_REF, &[&owner.as_bytes(), reference])
                .await?;
        }
        Ok(())
    }

    async fn queue_depths(&mut self) -> Result<(u64, u64), StoreError> {
        let rows = self.query(schema::QUEUE_DEPTHS, &[]).await?;
        let r = rows.first().ok_or(StoreError::Corrupt { what: "count" })?;
        Ok((from_sql(r.get(0), "count")?, from_sql(r.get(1), "count")?))
    }

    async fn commit(mut self, woken: &[ClientId]) -> Result<(), StoreError> {
        let channel = channel(self.pool.schema.as_deref());
        for device in woken {
            let payload = hex::encode(device.as_bytes());
            self.execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
                .await?;
        }
        self.conn()?
            .client
            .batch_execute("COMMIT")
            .await
            .map_err(pg)?;
        self.open = false;
        Ok(())
    }
}
