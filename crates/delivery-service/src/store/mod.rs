//! Storage of the delivery service: one trait, three backends (in-memory, SQLite, PostgreSQL).
//!
//! [`StoreError`] is what a backend reports; [`DatabaseUrl`] says which backend to open.

use std::fmt;

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
