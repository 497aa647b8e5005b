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
    include_str!("../migrations/0005_secrets.sql"),
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

/// How [`migrate`] may treat the database it is given.
pub(crate) struct How {
    /// Copy an existing database aside before changing its schema.
    pub backup_first: bool,
    /// A database without the schema (version 0) gets it; otherwise it is refused.
    pub create: bool,
    /// The file system is read-only: nothing can be written, so a pending migration
    /// is refused rather than attempted.
    pub read_only: bool,
}

pub(crate) fn migrate(conn: &mut Connection, path: &Path, how: &How) -> Result<Migrated> {
    let found = user_version(conn)?;
    refuse_newer(found)?;
    if found == LATEST_VERSION {
        return Ok(Migrated {
            from: found,
            to: found,
            backup: None,
        });
    }
    if found == 0 && !how.create {
        return Err(Error::invalid(
            "store",
            format!(
                "{} holds no tasklease database (no tasklease schema in it)",
                path.display()
            ),
        ));
    }
    if how.read_only {
        return Err(Error::store(
            format!(
                "{} is at schema version {found} and needs migrating to {LATEST_VERSION}, \
                 but its file system is mounted read-only",
                path.display()
            ),
            std::io::Error::from(std::io::ErrorKind::ReadOnlyFilesystem),
        ));
    }
    let backup = if found > 0 && how.backup_first {
        // One copy of each old version is enough: a migration that keeps failing must
        // not fill the disk with a new full copy on every call.
        match existing_backup(path, found) {
            Some(old) => Some(old),
            None => {
                let dest = backup_path(path, found);
                backup(conn, &dest)?;
                Some(dest)
            }
        }
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
            .map_err(|e| failed(&format!("apply migration {}", i + 1), e))?;
    }
    tx.pragma_update(None, "user_version", LATEST_VERSION)
        .map_err(|e| failed("record the schema version", e))?;
    tx.commit().map_err(|e| failed("commit the migration", e))?;
    Ok(Migrated {
        from,
        to: LATEST_VERSION,
        backup,
    })
}

/// A migration's failure in one line: rusqlite's error for a failed script carries
/// the whole script (thousands of characters); SQLite's own message names the cause.
fn failed(context: &str, e: rusqlite::Error) -> Error {
    let e = match e {
        rusqlite::Error::SqlInputError { error, msg, .. } => {
            rusqlite::Error::SqliteFailure(error, Some(msg))
        }
        e => e,
    };
    crate::db(context, e)
}

/// A finished backup of `version` beside `db` that is still current — written after
/// the database and its WAL last changed (a failed migration rolls back without
/// writing either) — if there is one. An older copy, such as a `migrate --backup`
/// taken weeks before, does not count: the migration gets a fresh one.
fn existing_backup(db: &Path, version: i64) -> Option<PathBuf> {
    let mut prefix = db.file_name()?.to_owned();
    prefix.push(format!(".bak-v{version}-"));
    let prefix = prefix.to_str()?.to_owned();
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let changed = [modified(db), modified(Path::new(&wal))]
        .into_iter()
        .flatten()
        .max()?;
    std::fs::read_dir(crate::fs::dir_of(db))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix) && !n.ends_with(TMP))
        })
        .map(|e| db.with_file_name(e.file_name()))
        .find(|b| modified(b).is_some_and(|t| t >= changed))
}

/// The suffix of a backup being written; renamed away once it is complete.
const TMP: &str = ".tmp";

/// `<db>.bak-v<version>-<UTC time>` beside the database.
pub fn backup_path(db: &Path, version: i64) -> PathBuf {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ");
    let mut name = db.file_name().unwrap_or_default().to_owned();
    name.push(format!(".bak-v{version}-{stamp}"));
    db.with_file_name(name)
}

/// Copies the live database to `dest` with SQLite's online backup, readable by its
/// owner only. The copy is written under a temporary name and renamed when complete,
/// so a failed backup (a full disk) leaves no partial or empty file named like one.
pub(crate) fn backup(conn: &Connection, dest: &Path) -> Result<()> {
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(TMP);
    let tmp = PathBuf::from(tmp);
    let copy = || {
        super::create_private(&tmp)?;
        conn.backup(
            rusqlite::MAIN_DB,
            &tmp,
            None::<fn(rusqlite::backup::Progress)>,
        )
        .map_err(|e| crate::db(&format!("back up the database to {}", dest.display()), e))?;
        std::fs::rename(&tmp, dest)
            .map_err(|e| Error::store(format!("finish the backup {}", dest.display()), e))
    };
    copy().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
