//! What the file system under the database says about a failure.
//!
//! SQLite reports a full disk as `SQLITE_FULL` only where it notices the short write
//! itself; growing its shared-memory file or creating the WAL on a full disk comes back
//! as "disk I/O error", and a read-only mount as "unable to open database file". Those
//! name no cause the user can act on, so when opening fails the file system is asked
//! directly (`statvfs`): a mount flagged read-only, or no block left for this user.
//!
//! A read-only mount is also why a store opens read-only at all: reads (`list`,
//! `show`, `status`, `log`) keep working on a project mounted read-only (a snapshot, a
//! container's read-only volume), and every write is refused saying why.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use tasklease_core::{DISK_FULL, READ_ONLY_FS};

/// The directory holding `db` (the current one for a bare file name).
pub(crate) fn dir_of(db: &Path) -> &Path {
    match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether `dir` is on a file system mounted read-only.
pub(crate) fn read_only(dir: &Path) -> bool {
    trouble(dir) == Some(READ_ONLY_FS)
}

/// [`READ_ONLY_FS`] or [`DISK_FULL`] when the file system holding `dir` is mounted
/// read-only or has no space left for this user; `None` when it looks fine or cannot
/// be asked.
#[cfg(unix)]
pub(crate) fn trouble(dir: &Path) -> Option<&'static str> {
    let s = rustix::fs::statvfs(dir).ok()?;
    if s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
        Some(READ_ONLY_FS)
    } else if s.f_bavail == 0 {
        Some(DISK_FULL)
    } else {
        None
    }
}

/// See the Unix version; elsewhere nothing is known.
#[cfg(not(unix))]
pub(crate) fn trouble(_dir: &Path) -> Option<&'static str> {
    None
}

/// Whether the database's `-wal` and `-shm` files exist. SQLite opens a WAL database
/// read-only only if they do or can be created; the last connection to close (SQLite's
/// own shell, say) removes them, and a read-only mount cannot get them back.
pub(crate) fn has_wal_files(db: &Path) -> bool {
    ["-wal", "-shm"].iter().all(|suffix| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        Path::new(&p).exists()
    })
}

/// Opens `db` as immutable (no locks, no WAL index): right when there is no WAL to
/// read — everything is in the main file — and nobody can write, the file system
/// being read-only. (A writer through another, writable mount of the same files
/// could still change it underneath: the one case where such reads may be stale.)
pub(crate) fn open_immutable(db: &Path) -> rusqlite::Result<Connection> {
    let mut uri = String::from("file:");
    for c in db.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// The error for a write refused because the database is on a read-only mount.
pub(crate) fn read_only_error(db: &Path) -> tasklease_core::Error {
    tasklease_core::Error::store(
        format!(
            "{} is on a read-only mount: reads work, but nothing can be created or \
             changed there",
            db.display()
        ),
        std::io::Error::from(std::io::ErrorKind::ReadOnlyFilesystem),
    )
}

/// `e` with the file system's trouble named first, when `e` is a store failure that
/// does not name it already.
pub(crate) fn explain(e: tasklease_core::Error, db: &Path) -> tasklease_core::Error {
    match e {
        tasklease_core::Error::Store { context, source }
            if !context.starts_with(DISK_FULL) && !context.starts_with(READ_ONLY_FS) =>
        {
            match trouble(dir_of(db)) {
                Some(what) => tasklease_core::Error::Store {
                    context: format!("{what}: {context}"),
                    source,
                },
                None => tasklease_core::Error::Store { context, source },
            }
        }
        e => e,
    }
}
