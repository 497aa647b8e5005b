//! Where a project's tasklease state lives: `<root>/.tasklease/`.
//!
//! The root is the nearest directory, from the current one upwards, that holds a
//! `.tasklease` or a `.git` entry — so every agent working anywhere in a checkout finds
//! the same database.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The state directory's name inside the project root.
pub const STATE_DIR: &str = ".tasklease";
/// The SQLite database's file name inside the state directory.
pub const DB_FILE: &str = "tasklease.db";

/// The nearest directory at or above `start` holding `.tasklease` or `.git`.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join(STATE_DIR).exists() || d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// `<root>/.tasklease`.
pub fn state_dir(root: &Path) -> PathBuf {
    root.join(STATE_DIR)
}

/// `<root>/.tasklease/tasklease.db`.
pub fn db_path(root: &Path) -> PathBuf {
    state_dir(root).join(DB_FILE)
}

/// What `.tasklease/.gitignore` holds: everything in the directory is ignored.
const GITIGNORE: &str = "# tasklease state: never commit the live database\n*\n";

/// Creates `<root>/.tasklease/` (owner-only) with a `.gitignore` that keeps its
/// contents — a live database, lock files — out of commits. Idempotent; a `.gitignore`
/// that is empty or does not ignore everything (say, left empty by a write that failed
/// on a full disk) is written again.
///
/// # Errors
/// [`Error::Store`] when the directory or the `.gitignore` cannot be written.
pub fn create_state_dir(root: &Path) -> Result<PathBuf> {
    let dir = state_dir(root);
    if !dir.exists() {
        // 0700 whatever the umask (an existing one is the owner's choice; the database
        // inside is checked on every open).
        std::fs::create_dir_all(root)
            .map_err(|e| Error::store(format!("cannot create {}", root.display()), e))?;
        tasklease_filelock::private::dir(&dir, "the project's state directory")?;
    }
    let ignore = dir.join(".gitignore");
    let ignores_all =
        std::fs::read_to_string(&ignore).is_ok_and(|text| text.lines().any(|l| l.trim() == "*"));
    if !ignores_all {
        write_atomically(&ignore, GITIGNORE)
            .map_err(|e| Error::store(format!("cannot write {}", ignore.display()), e))?;
    }
    Ok(dir)
}

/// Writes `text` to a temporary file beside `path`, flushes it, and renames it over
/// `path`: a reader sees the old file or the whole new one, never an empty or partial
/// one, and a failure leaves no temporary file behind.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_nearest_marker() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        let deep = repo.join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir(repo.join(".git")).unwrap();
        assert_eq!(find_root(&deep), Some(repo.clone()));
        create_state_dir(&repo.join("a")).unwrap();
        assert_eq!(find_root(&deep), Some(repo.join("a")));
        assert!(repo.join("a/.tasklease/.gitignore").exists());
        std::fs::write(repo.join("a/.tasklease/.gitignore"), "").unwrap();
        create_state_dir(&repo.join("a")).unwrap();
        let text = std::fs::read_to_string(repo.join("a/.tasklease/.gitignore")).unwrap();
        assert_eq!(text, GITIGNORE);
    }
}
