//! Embedded, transactional schema migrations, tracked in `PRAGMA user_version`.
//!
//! Every pending migration and the new `user_version` commit in one `BEGIN IMMEDIATE`
//! transaction (SQLite DDL is transactional), so a crash leaves the old schema or the
//! new one, never half of each. The version is read again *inside* that transaction:
//! two processes starting at once serialize on the write lock, and the second finds
//! nothing left to do. An existing database is copied aside with the online backup API
//! first.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior};
use tasklease_core::{Error, Result};

/// The migrations, in order; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_history.sql"),
    include_str!("../migrations/0003_retries.sql"),
    include_str!("../migrations/0004_graph.sql"),
];

/// The schema version this build writes.
pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

/// What opening a store did to its schema.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The version found.
    pub from: i64,
    /// The version now.
    pub to: i64,
    /// Where the pre-migration copy went, if one was written.
    pub backup: Option<PathBuf>,
}

fn user_version(conn: &Connection) -> Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| Error::store("read the schema version", e))
}

fn refuse_newer(found: i64) -> Result<()> {
    Error::refuse_newer_schema(found, LATEST_VERSION)
}

pub(crate) fn migrate(conn: &mut Connection, path: &Path, backup_first: bool) -> Result<Migrated> {
    let found = user_version(conn)?;
    refuse_newer(found)?;
    if found == LATEST_VERSION {
        return Ok(Migrated {
            from: found,
            to: found,
            backup: None,
        });
    }
    let backup = if found > 0 && backup_first {
        let dest = backup_path(path, found);
        backup(conn, &dest)?;
        Some(dest)
    } else {
        None
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| Error::store("begin the migration", e))?;
    let from = user_version(&tx)?;
    refuse_newer(from)?;
    for (i, m) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(from).unwrap_or(0))
    {
        tx.execute_batch(m)
            .map_err(|e| Error::store(format!("apply migration {}", i + 1), e))?;
    }
    tx.pragma_update(None, "user_version", LATEST_VERSION)
        .map_err(|e| Error::store("record the schema version", e))?;
    tx.commit()
        .map_err(|e| Error::store("commit the migration", e))?;
    Ok(Migrated {
        from,
        to: LATEST_VERSION,
        backup,
    })
}

/// `<db>.bak-v<version>-<UTC time>` beside the database.
pub fn backup_path(db: &Path, version: i64) -> PathBuf {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ");
    let mut name = db.file_name().unwrap_or_default().to_owned();
    name.push(format!(".bak-v{version}-{stamp}"));
    db.with_file_name(name)
}

/// Copies the live database to `dest` with SQLite's online backup, readable by its
/// owner only.
pub(crate) fn backup(conn: &Connection, dest: &Path) -> Result<()> {
    super::create_private(dest)?;
    conn.backup(
        rusqlite::MAIN_DB,
        dest,
        None::<fn(rusqlite::backup::Progress)>,
    )
    .map_err(|e| Error::store(format!("back up the database to {}", dest.display()), e))
}
