//! The project's file locks: `<root>/.tasklease/locks/task-<id>.lock` and
//! `state.lock`, and the repository-wide git lock in git's common dir (shared by
//! every worktree). The machinery is [`tasklease_filelock`], re-exported here; this
//! module only knows where a project keeps its locks and who "we" are.
//!
//! File locks are independent of the task database: taking one never opens it, and
//! a database write transaction is never held while waiting on one (see
//! `docs/locking.md` for the lock order).

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use tasklease_filelock::{
    Acquired, Busy, Guard, HELD_VAR, Held, Holder, Lock, LockFile, LockInfo, Locks, Mode, Name,
    Wait, git,
};

use crate::{Result, identity, project};

/// The lock directory's name inside the state directory.
pub const LOCKS_DIR: &str = "locks";

/// `<root>/.tasklease/locks`.
pub fn locks_dir(root: &Path) -> PathBuf {
    project::state_dir(root).join(LOCKS_DIR)
}

/// The locks of the project at `root`. Creates nothing.
pub fn project(root: &Path) -> Locks {
    Locks::new(locks_dir(root), root)
}

/// The lock called `name` in the project at `root`, ready to take. For task and
/// state locks this creates `.tasklease/` (with its `.gitignore`) if the project has
/// none yet, so lock files never show up as untracked files.
///
/// # Errors
/// [`crate::Error::Invalid`] for the git lock outside a git repository;
/// [`crate::Error::Store`] when the state directory cannot be created or git cannot
/// be run.
pub fn lock(root: &Path, name: &Name) -> Result<Lock> {
    if *name != Name::Git {
        project::create_state_dir(root)?;
    }
    project(root).lock(name)
}

/// Every lock of the project at `root` — the git lock, the state lock, task locks —
/// with whether it is held, how, and by whom (the `tasklease locks` verb and the MCP
/// `locks` tool).
///
/// # Errors
/// As [`Locks::list`].
pub fn list(root: &Path) -> Result<Vec<LockInfo>> {
    project(root).list()
}

/// Runs `f` holding the repository-wide git lock exclusively, as this process's agent
/// ([`identity::agent_id`]). Waits as `timeout` says: `None` forever, zero not at
/// all. Before waiting it prints `tasklease: waiting for git lock held by …` on
/// stderr. `Ok(Err(busy))` when the lock was still held at the end — contention is
/// a value, naming the holder.
///
/// `f` gets the [`Held`] lock: its [`Held::child_env`] lets commands `f` starts run
/// `tasklease git` without waiting on their own parent.
///
/// # Errors
/// [`crate::Error::Invalid`] outside a git repository or with an invalid
/// `$TASKLEASE_AGENT`; [`crate::Error::Store`] when git cannot be run, or the lock
/// cannot be taken (including filesystems without lock support).
pub fn with_git_lock<R>(
    root: &Path,
    timeout: Option<Duration>,
    f: impl FnOnce(&Held) -> R,
) -> Result<Result<R, Busy>> {
    let agent = identity::agent_id(None)?;
    let lock = lock(root, &Name::Git)?;
    let got = lock.acquire(Mode::Exclusive, Wait::from_timeout(timeout), &agent, |b| {
        eprintln!(
            "tasklease: waiting for {}",
            crate::text::escape(&b.to_string())
        );
    })?;
    Ok(match got {
        Acquired::Held(held) => Ok(f(&held)),
        Acquired::Busy(busy) => Err(busy),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    #[test]
    fn worktrees_share_one_git_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let main = tmp.path().join("main");
        std::fs::create_dir(&main).unwrap();
        git(&main, &["init", "-q"]);
        git(
            &main,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "0",
            ],
        );
        git(&main, &["worktree", "add", "-q", "../wt", "-b", "wt"]);
        let wt = tmp.path().join("wt");

        let a = lock(&main, &Name::Git).unwrap();
        let b = lock(&wt, &Name::Git).unwrap();
        assert_eq!(a.path(), b.path());
        assert_eq!(
            a.path(),
            main.canonicalize().unwrap().join(".git/tasklease/git.lock")
        );
        let inside = with_git_lock(&main, Some(Duration::ZERO), |_| {
            with_git_lock(&wt, Some(Duration::ZERO), |_| ()).unwrap()
        })
        .unwrap()
        .unwrap();
        let busy = inside.expect_err("the other worktree must find it held");
        assert!(busy.to_string().starts_with("git lock held by "), "{busy}");
        // Listing from the other worktree shows the shared git lock.
        assert!(list(&wt).unwrap().iter().any(|l| l.kind == "git"));
    }

    #[test]
    fn outside_git_there_is_no_git_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let e = lock(tmp.path(), &Name::Git).unwrap_err();
        assert!(e.to_string().contains("not inside a git repository"), "{e}");
        assert_eq!(list(tmp.path()).unwrap(), vec![]);
    }
}
