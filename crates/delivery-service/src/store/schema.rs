//! The tables (versioned migrations) and the statements the SQL backends share. Statements
//! use PostgreSQL's `$n` placeholders; the SQLite backend turns them into `?n`.

/// SQLite migrations: entry `i` takes the schema from version `i` to `i + 1`.
pub(crate) const SQLITE_MIGRATIONS: &[&str] = &[r#"
CREATE TABLE clients (id BLOB PRIMARY KEY, kind INTEGER NOT NULL, signature_scheme INTEGER,
    signature_key BLOB, emulation_group BLOB, next_cursor INTEGER NOT NULL DEFAULT 0);
CREATE TABLE groups (id BLOB PRIMARY KEY, epoch INTEGER NOT NULL, next_sequence INTEGER NOT NULL,
    handshakes_private BOOLEAN NOT NULL, public_state BLOB NOT NULL, view_epoch INTEGER NOT NULL,
    group_info_epoch INTEGER, group_info BLOB);
CREATE TABLE group_trees (group_id BLOB NOT NULL, epoch INTEGER NOT NULL, tree BLOB NOT NULL,
    PRIMARY KEY (group_id, epoch));
CREATE TABLE group_members (group_id BLOB NOT NULL, member BLOB NOT NULL,
    from_seq INTEGER NOT NULL, until_seq INTEGER, PRIMARY KEY (group_id, member));
CREATE TABLE vc_sequences (group_id BLOB NOT NULL, vc BLOB NOT NULL, next INTEGER NOT NULL,
    PRIMARY KEY (group_id, vc));
CREATE TABLE group_log (group_id BLOB NOT NULL, sequence INTEGER NOT NULL, sender BLOB NOT NULL,
    kind BLOB NOT NULL, emulator_view BLOB, message BLOB NOT NULL,
    PRIMARY KEY (group_id, sequence));
CREATE TABLE welcomes (group_id BLOB NOT NULL, sequence INTEGER NOT NULL, message BLOB NOT NULL,
    PRIMARY KEY (group_id, sequence));
CREATE TABLE mailbox (device BLOB NOT NULL, cursor INTEGER NOT NULL, group_id BLOB NOT NULL,
    sequence INTEGER NOT NULL, recipient BLOB NOT NULL, welcome BOOLEAN NOT NULL,
    PRIMARY KEY (device, cursor));
CREATE TABLE sends (device BLOB NOT NULL, message_id BLOB NOT NULL, response BLOB NOT NULL,
    PRIMARY KEY (device, message_id));
CREATE TABLE key_packages (position INTEGER PRIMARY KEY AUTOINCREMENT, owner BLOB NOT NULL,
    reference BLOB NOT NULL, key_package BLOB NOT NULL, last_resort BOOLEAN NOT NULL,
    not_after INTEGER NOT NULL, UNIQUE (owner, reference));
"#];

/// PostgreSQL migrations, as [`SQLITE_MIGRATIONS`].
pub(crate) const POSTGRES_MIGRATIONS: &[&str] = &[r#"
CREATE TABLE clients (id BYTEA PRIMARY KEY, kind SMALLINT NOT NULL, signature_scheme INTEGER,
    signature_key BYTEA, emulation_group BYTEA, next_cursor BIGINT NOT NULL DEFAULT 0);
CREATE TABLE groups (id BYTEA PRIMARY KEY, epoch BIGINT NOT NULL, next_sequence BIGINT NOT NULL,
    handshakes_private BOOLEAN NOT NULL, public_state BYTEA NOT NULL, view_epoch BIGINT NOT NULL,
    group_info_epoch BIGINT, group_info BYTEA);
CREATE TABLE group_trees (group_id BYTEA NOT NULL, epoch BIGINT NOT NULL, tree BYTEA NOT NULL,
    PRIMARY KEY (group_id, epoch));
CREATE TABLE group_members (group_id BYTEA NOT NULL, member BYTEA NOT NULL,
    from_seq BIGINT NOT NULL, until_seq BIGINT, PRIMARY KEY (group_id, member));
CREATE TABLE vc_sequences (group_id BYTEA NOT NULL, vc BYTEA NOT NULL, next BIGINT NOT NULL,
    PRIMARY KEY (group_id, vc));
CREATE TABLE group_log (group_id BYTEA NOT NULL, sequence BIGINT NOT NULL, sender BYTEA NOT NULL,
    kind BYTEA NOT NULL, emulator_view BYTEA, message BYTEA NOT NULL,
    PRIMARY KEY (group_id, sequence));
CREATE TABLE welcomes (group_id BYTEA NOT NULL, sequence BIGINT NOT NULL, message BYTEA NOT NULL,
    PRIMARY KEY (group_id, sequence));
CREATE TABLE mailbox (device BYTEA NOT NULL, cursor BIGINT NOT NULL, group_id BYTEA NOT NULL,
    sequence BIGINT NOT NULL, recipient BYTEA NOT NULL, welcome BOOLEAN NOT NULL,
    PRIMARY KEY (device, cursor));
CREATE TABLE sends (device BYTEA NOT NULL, message_id BYTEA NOT NULL, response BYTEA NOT NULL,
    PRIMARY KEY (device, message_id));
CREATE TABLE key_packages (position BIGSERIAL PRIMARY KEY, owner BYTEA NOT NULL,
    reference BYTEA NOT NULL, key_package BYTEA NOT NULL, last_resort BOOLEAN NOT NULL,
    not_after BIGINT NOT NULL, UNIQUE (owner, reference));
"#];

/// `clients.kind` of a device.
pub(crate) const KIND_DEVICE: i16 = 1;
/// `clients.kind` of a virtual client.
pub(crate) const KIND_VIRTUAL: i16 = 2;

pub(crate) const CLIENT: &str =
    "SELECT kind, signature_scheme, signature_key, emulation_group FROM clients WHERE id = $1";
pub(crate) const INSERT_CLIENT: &str = "INSERT INTO clients (id, kind, signature_scheme, \
    signature_key, emulation_group, next_cursor) VALUES ($1, $2, $3, $4, $5, 0)";
pub(crate) const GROUP: &str = "SELECT epoch, next_sequence, handshakes_private, public_state, \
    view_epoch, group_info_epoch, group_info FROM groups WHERE id = $1";
pub(crate) const INSERT_GROUP: &str = "INSERT INTO groups (id, epoch, next_sequence, \
    handshakes_private, public_state, view_epoch, group_info_epoch, group_info) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub(crate) const UPDATE_GROUP: &str = "UPDATE groups SET epoch = $2, next_sequence = $3, \
    handshakes_private = $4, public_state = $5, view_epoch = $6, group_info_epoch = $7, \
    group_info = $8 WHERE id = $1";
pub(crate) const TREE: &str = "SELECT tree FROM group_trees WHERE group_id = $1 AND epoch = $2";
pub(crate) const PUT_TREE: &str = "INSERT INTO group_trees (group_id, epoch, tree) \
    VALUES ($1, $2, $3) ON CONFLICT (group_id, epoch) DO UPDATE SET tree = excluded.tree";
pub(crate) const MEMBERS: &str = "SELECT member, from_seq, until_seq FROM group_members \
    WHERE group_id = $1 ORDER BY member";
pub(crate) const PUT_MEMBER: &str = "INSERT INTO group_members (group_id, member, from_seq, \
    until_seq) VALUES ($1, $2, $3, $4) ON CONFLICT (group_id, member) DO UPDATE SET \
    from_seq = excluded.from_seq, until_seq = excluded.until_seq";
pub(crate) const VC_NEXT: &str = "SELECT next FROM vc_sequences WHERE group_id = $1 AND vc = $2";
pub(crate) const SET_VC_NEXT: &str = "INSERT INTO vc_sequences (group_id, vc, next) \
    VALUES ($1, $2, $3) ON CONFLICT (group_id, vc) DO UPDATE SET next = excluded.next";
pub(crate) const APPEND_LOG: &str = "INSERT INTO group_log (group_id, sequence, sender, kind, \
    emulator_view, message) VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const LOG: &str = "SELECT sequence, sender, kind, emulator_view, message FROM \
    group_log WHERE group_id = $1 AND sequence >= $2 ORDER BY sequence LIMIT $3";
pub(crate) const PUT_WELCOME: &str =
    "INSERT INTO welcomes (group_id, sequence, message) VALUES ($1, $2, $3)";
pub(crate) const BUMP_CURSOR: &str = "UPDATE clients SET next_cursor = next_cursor + 1 \
    WHERE id = $1 RETURNING next_cursor - 1";
pub(crate) const PUSH_MAILBOX: &str = "INSERT INTO mailbox (device, cursor, group_id, sequence, \
    recipient, welcome) VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const MAILBOX_LEN: &str = "SELECT COUNT(*) FROM mailbox WHERE device = $1";
pub(crate) const NEXT_CURSOR: &str = "SELECT next_cursor FROM clients WHERE id = $1";
pub(crate) const READ_MAILBOX: &str = "SELECT m.cursor, m.group_id, m.sequence, m.recipient, \
    m.welcome, l.sender, l.kind, l.emulator_view, l.message, w.message FROM mailbox m \
    LEFT JOIN group_log l ON NOT m.welcome AND l.group_id = m.group_id AND l.sequence = m.sequence \
    LEFT JOIN welcomes w ON m.welcome AND w.group_id = m.group_id AND w.sequence = m.sequence \
    WHERE m.device = $1 AND m.cursor > $2 ORDER BY m.cursor LIMIT $3";
pub(crate) const ACK: &str = "DELETE FROM mailbox WHERE device = $1 AND cursor <= $2";
pub(crate) const SENT: &str = "SELECT response FROM sends WHERE device = $1 AND message_id = $2";
pub(crate) const RECORD_SENT: &str =
    "INSERT INTO sends (device, message_id, response) VALUES ($1, $2, $3)";
pub(crate) const KP_COUNT: &str =
    "SELECT COUNT(*) FROM key_packages WHERE owner = $1 AND NOT last_resort";
pub(crate) const KP_DELETE_REF: &str =
    "DELETE FROM key_packages WHERE owner = $1 AND reference = $2";
pub(crate) const KP_DELETE_LAST_RESORT: &str =
    "DELETE FROM key_packages WHERE owner = $1 AND last_resort";
pub(crate) const KP_INSERT: &str = "INSERT INTO key_packages (owner, reference, key_package, \
    last_resort, not_after) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const KP_DELETE_EXPIRED: &str =
    "DELETE FROM key_packages WHERE owner = $1 AND not_after < $2";
pub(crate) const KP_OLDEST: &str = "SELECT reference, key_package FROM key_packages \
    WHERE owner = $1 AND NOT last_resort ORDER BY position LIMIT 1";
pub(crate) const KP_LAST_RESORT: &str =
    "SELECT key_package FROM key_packages WHERE owner = $1 AND last_resort";
pub(crate) const QUEUE_DEPTHS: &str = "SELECT CAST(COALESCE(SUM(c), 0) AS BIGINT), \
    CAST(COALESCE(MAX(c), 0) AS BIGINT) FROM (SELECT COUNT(*) AS c FROM mailbox GROUP BY device) t";
