//! Where the repository-wide git lock lives.
//!
//! Every worktree of a repository has its own checkout (and its own `.tasklease/`),
//! but they share one object store, one set of refs and one config — the git
//! *common dir*. That is what concurrent `git` commands race on (`config.lock`,
//! `packed-refs.lock`, ref locks), so that is where the git lock goes:
//! `<common dir>/tasklease/git.lock`. A subdirectory, because "remove the stale
//! `.git/*.lock` files" is common advice after a git crash, and deleting our lock file
//! would let two holders in (see `docs/locking.md`).

use std::path::{Path, PathBuf};
use std::process::Command;

use tasklease_core::{Error, Result};

/// The directory under the git common dir that holds tasklease's repo-wide locks.
pub const GIT_LOCK_DIR: &str = "tasklease";

/// `git rev-parse --git-common-dir`, run in `from`, as an absolute path.
///
/// # Errors
/// [`Error::Invalid`] when `from` is not inside a git repository; [`Error::Store`]
/// when git cannot be run.
pub fn common_dir(from: &Path) -> Result<PathBuf> {
    let out = Command::new("git")
        .args(["rev-parse", "--git-common-dir"])
        .current_dir(from)
        .output()
        .map_err(|e| {
            Error::store(
                "cannot run git, which finds the repository shared by every worktree (the \
                 git lock lives there)",
                e,
            )
        })?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        return Err(Error::invalid(
            "git lock",
            format!(
                "{} is not inside a git repository, so it has no git lock ({})",
                from.display(),
                why.lines().next().unwrap_or("git rev-parse failed").trim()
            ),
        ));
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    let dir = from.join(dir); // git prints it relative to `from`, or absolute
    dir.canonicalize()
        .map_err(|e| Error::store(format!("cannot resolve {}", dir.display()), e))
}

/// `<common dir>/tasklease/git.lock` for the repository containing `from`.
///
/// # Errors
/// As [`common_dir`].
pub fn lock_path(from: &Path) -> Result<PathBuf> {
    Ok(common_dir(from)?.join(GIT_LOCK_DIR).join("git.lock"))
}
