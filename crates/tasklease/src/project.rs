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

/// Creates `<root>/.tasklease/` (owner-only) with a `.gitignore` that keeps its
/// contents — a live database, lock files — out of commits. Idempotent.
///
/// # Errors
/// [`Error::Store`] when the directory cannot be created.
pub fn create_state_dir(root: &Path) -> Result<PathBuf> {
    let dir = state_dir(root);
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(&dir)
        .map_err(|e| Error::store(format!("cannot create {}", dir.display()), e))?;
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(
            &ignore,
            "# tasklease state: never commit the live database\n*\n",
        )
        .map_err(|e| Error::store(format!("cannot write {}", ignore.display()), e))?;
    }
    Ok(dir)
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
    }
}
