//! Named locks: `task-<id>.lock` and `state.lock` in a project's lock directory, the
//! repository-wide `git.lock`, and any file a caller names — each with a holder
//! record, acquired with a message before waiting, listed with their holders.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tasklease_core::{AgentId, Error, Result, TaskId};

use crate::holder::{self, Holder};
use crate::{LockFile, Mode, Wait, git};

/// Variable through which a command run under a lock learns which locks its
/// ancestors hold, so that asking for one of them again does not wait forever on its
/// own parent. One line per lock: `<mode> <pid> <since_ms> <path>`.
pub const HELD_VAR: &str = "TASKLEASE_LOCKS_HELD";

/// A lock with a name: validated, so no name can leave the lock directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Name {
    /// The repository-wide git lock, shared by every worktree.
    Git,
    /// The project's state lock.
    State,
    /// One task's lock.
    Task(TaskId),
}

impl Name {
    /// The lock of task `id`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `id` is not a valid task id (`../x`, `/abs`, a NUL
    /// byte, empty, …).
    pub fn task(id: &str) -> Result<Name> {
        TaskId::new(id).map(Name::Task)
    }

    /// `git`, `state` or `task`.
    pub fn kind(&self) -> &'static str {
        match self {
            Name::Git => "git",
            Name::State => "state",
            Name::Task(_) => "task",
        }
    }

    /// The lock file's name: `git.lock`, `state.lock`, `task-<id>.lock`.
    pub fn file_name(&self) -> String {
        match self {
            Name::Git => "git.lock".into(),
            Name::State => "state.lock".into(),
            Name::Task(id) => format!("task-{id}.lock"),
        }
    }

    fn from_file_name(s: &str) -> Option<Name> {
        match s {
            "git.lock" => Some(Name::Git),
            "state.lock" => Some(Name::State),
            _ => {
                let id = s.strip_prefix("task-")?.strip_suffix(".lock")?;
                TaskId::new(id).ok().map(Name::Task)
            }
        }
    }
}

/// `git lock`, `state lock`, `task lock T-1`.
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Task(id) => write!(f, "task lock {id}"),
            other => write!(f, "{} lock", other.kind()),
        }
    }
}

/// A project's locks: task and state locks in one directory (tasklease uses
/// `<root>/.tasklease/locks/`), and the git lock of the repository around it.
#[derive(Clone, Debug)]
pub struct Locks {
    /// Where task and state locks live.
    dir: PathBuf,
    /// Where git is asked for the repository's common dir.
    repo: PathBuf,
}

impl Locks {
    /// Locks kept in `dir`, with the git lock of the repository containing `repo`.
    /// Nothing is created until a lock is taken.
    pub fn new(dir: impl Into<PathBuf>, repo: impl Into<PathBuf>) -> Locks {
        Locks {
            dir: dir.into(),
            repo: repo.into(),
        }
    }

    /// The directory holding task and state locks.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lock called `name`.
    ///
    /// # Errors
    /// For [`Name::Git`]: [`Error::Invalid`] outside a git repository, [`Error::Store`]
    /// when git cannot be run.
    pub fn lock(&self, name: &Name) -> Result<Lock> {
        let path = match name {
            Name::Git => git::lock_path(&self.repo)?,
            other => self.dir.join(other.file_name()),
        };
        Ok(Lock {
            label: name.to_string(),
            record: Some(holder::record_path(&path)),
            name: Some(name.clone()),
            path,
        })
    }

    /// Every lock file that exists — the git lock, then the state lock, then task
    /// locks by id, then any other `*.lock` file in the directory — with whether it
    /// is held, how, and by whom.
    ///
    /// Finding out whether a lock is held means trying it for an instant (exclusive,
    /// then shared), so an attempt that only *tries* (`--timeout 0`) at that very
    /// instant can find it busy. Waiting attempts are not affected.
    ///
    /// # Errors
    /// [`Error::Store`] when the directory or a lock file cannot be read. A project
    /// outside git, or without git installed, simply has no git lock to list.
    pub fn list(&self) -> Result<Vec<LockInfo>> {
        let mut found: Vec<(Option<Name>, String, PathBuf)> = Vec::new();
        if let Ok(path) = git::lock_path(&self.repo)
            && path.exists()
        {
            found.push((Some(Name::Git), "git".into(), path));
        }
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.probe_all(found),
            Err(e) => {
                return Err(Error::store(
                    format!("cannot list {}", self.dir.display()),
                    e,
                ));
            }
        };
        for entry in entries {
            let entry = entry
                .map_err(|e| Error::store(format!("cannot list {}", self.dir.display()), e))?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let Some(stem) = file_name.strip_suffix(".lock") else {
                continue;
            };
            let name = Name::from_file_name(file_name).filter(|n| *n != Name::Git);
            found.push((name, stem.to_owned(), entry.path()));
        }
        found.sort_by(|a, b| match (&a.0, &b.0) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.1.cmp(&b.1),
        });
        self.probe_all(found)
    }

    fn probe_all(&self, found: Vec<(Option<Name>, String, PathBuf)>) -> Result<Vec<LockInfo>> {
        found
            .into_iter()
            .map(|(name, stem, path)| {
                let lock = Lock {
                    label: name
                        .as_ref()
                        .map_or_else(|| format!("lock {stem}"), Name::to_string),
                    record: Some(holder::record_path(&path)),
                    name: name.clone(),
                    path,
                };
                let mode = lock.probe()?;
                Ok(LockInfo {
                    name: stem,
                    kind: name.as_ref().map_or("other", Name::kind),
                    task: match name {
                        Some(Name::Task(id)) => Some(id),
                        _ => None,
                    },
                    held: mode.is_some(),
                    mode,
                    holder: mode.and_then(|_| lock.holder()),
                    path: lock.path,
                })
            })
            .collect()
    }
}

/// One lock as [`Locks::list`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockInfo {
    /// The file name without `.lock`: `git`, `state`, `task-T-1`.
    pub name: String,
    /// `git`, `state`, `task`, or `other` for a lock file tasklease did not name.
    pub kind: &'static str,
    /// The task, for a task lock.
    pub task: Option<TaskId>,
    /// The lock file.
    pub path: PathBuf,
    /// Whether anyone holds it now (by the OS lock, never by the record).
    pub held: bool,
    /// How it is held, when it is.
    pub mode: Option<Mode>,
    /// Who holds it, when it is held and the holder left a record. With shared
    /// holders, the one that took it last.
    pub holder: Option<Holder>,
}

/// One lock, ready to be taken: a named one ([`Locks::lock`]) or any file
/// ([`Lock::file`]).
#[derive(Clone, Debug)]
pub struct Lock {
    /// For messages: `git lock`, `lock on /tmp/x`.
    label: String,
    /// The lock file.
    path: PathBuf,
    /// The holder record beside it; none for files tasklease does not own.
    record: Option<PathBuf>,
    /// Set for named locks, whose directory tasklease may create.
    name: Option<Name>,
}

impl Lock {
    /// A lock on any file, to share a lock with other tools (`flock(1)` and the
    /// like). The file is created if missing; its directory must exist. No holder
    /// record is written beside it (the directory belongs to someone else, and
    /// records would pile up there), so waiters cannot say who holds it.
    pub fn file(path: impl Into<PathBuf>) -> Lock {
        let path = path.into();
        Lock {
            label: format!("lock on {}", path.display()),
            path,
            record: None,
            name: None,
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The holder record, if there is one. Only meaningful while the lock is held:
    /// a record outlives a holder that died.
    pub fn holder(&self) -> Option<Holder> {
        self.record.as_deref().and_then(holder::read)
    }

    /// Whether the lock is held now, and how; `None` when free. Tries the lock for
    /// an instant (see [`Locks::list`]). A missing lock file is free.
    ///
    /// # Errors
    /// As [`LockFile::acquire`].
    pub fn probe(&self) -> Result<Option<Mode>> {
        if !self.path.exists() {
            return Ok(None);
        }
        let mut f = LockFile::open(&self.path)?;
        if f.take(Mode::Exclusive, Wait::Try)? {
            f.release().ok();
            return Ok(None);
        }
        if f.take(Mode::Shared, Wait::Try)? {
            f.release().ok();
            return Ok(Some(Mode::Shared));
        }
        Ok(Some(Mode::Exclusive))
    }

    /// Takes the lock in `mode` as `agent`, waiting as `wait` says. When the lock is
    /// busy and `wait` allows waiting, `on_wait` is told who holds it before the
    /// wait begins (the CLI prints `waiting for git lock held by …`).
    ///
    /// If this process runs under a command that an ancestor started while holding
    /// this very lock exclusively (see [`HELD_VAR`]) and that ancestor still holds
    /// it, the result is a [`Held`] that borrows the ancestor's lock
    /// ([`Held::inherited`]) rather than a wait that could never end.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a path that cannot be a lock file, or when an ancestor
    /// holds this lock shared and `mode` is exclusive (that would wait forever);
    /// [`Error::Store`] for I/O failures and filesystems that cannot lock.
    pub fn acquire(
        &self,
        mode: Mode,
        wait: Wait,
        agent: &AgentId,
        on_wait: impl FnOnce(&Busy),
    ) -> Result<Acquired> {
        if self.name.is_some()
            && let Some(dir) = self.path.parent()
            && !dir.exists()
        {
            // Its parent (`.tasklease/`) exists; the directory is ours alone.
            crate::private::dir(dir, "the lock directory")?;
        }
        // Task and state locks live in tasklease's own directory: owner-only, never
        // through a symlink. Git's lock and a lock on any file are someone else's files.
        let mut file = match &self.name {
            Some(Name::Task(_) | Name::State) => {
                LockFile::open_private(&self.path, "the lock file")?
            }
            _ => LockFile::open(&self.path)?,
        };
        if !file.take(mode, Wait::Try)? {
            if let Some(held) = self.held_by_ancestor(mode)? {
                return Ok(Acquired::Held(held));
            }
            if wait == Wait::Try {
                return Ok(Acquired::Busy(self.busy()));
            }
            on_wait(&self.busy());
            if !file.take(mode, wait)? {
                return Ok(Acquired::Busy(self.busy()));
            }
        }
        let held = Held {
            file: Some(file),
            record: self.record.clone(),
            holder: Holder::me(agent.clone(), mode),
            label: self.label.clone(),
        };
        if let Some(record) = &self.record {
            holder::write(record, &held.holder)?;
        }
        Ok(Acquired::Held(held))
    }

    fn busy(&self) -> Busy {
        Busy {
            lock: self.label.clone(),
            path: self.path.clone(),
            holder: self.holder(),
        }
    }

    /// The ancestor's hold on this lock, when one of ours holds it exclusively now.
    fn held_by_ancestor(&self, mode: Mode) -> Result<Option<Held>> {
        let Some(record) = &self.record else {
            return Ok(None);
        };
        let Some(entry) = held_by_ancestors()
            .into_iter()
            .find(|e| e.path == self.path)
        else {
            return Ok(None);
        };
        if entry.mode == Mode::Shared {
            if mode == Mode::Exclusive {
                return Err(Error::invalid(
                    "lock",
                    format!(
                        "this process runs under pid {}, which holds the {} shared; asking \
                         for it exclusively would wait forever. Take it exclusively in the \
                         outer command instead",
                        entry.pid, self.label
                    ),
                ));
            }
            return Ok(None);
        }
        // The record names the ancestor only while the ancestor still holds the lock:
        // nobody else can write it until the ancestor lets go.
        Ok(holder::read(record)
            .filter(|h| h.pid == entry.pid && h.since.as_millis() == entry.since_ms)
            .map(|h| Held {
                file: None,
                record: None,
                holder: h,
                label: self.label.clone(),
            }))
    }
}

impl fmt::Display for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

/// What [`Lock::acquire`] came to.
#[derive(Debug)]
#[must_use]
pub enum Acquired {
    /// The lock is held until the [`Held`] is dropped.
    Held(Held),
    /// Still busy when the wait ended.
    Busy(Busy),
}

/// A lock that was busy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Busy {
    /// Which lock: `git lock`, `task lock T-1`, `lock on /tmp/x`.
    pub lock: String,
    /// The lock file.
    pub path: PathBuf,
    /// Who holds it, from the holder record, if there is one.
    pub holder: Option<Holder>,
}

/// `git lock held by alice (pid 42 on h) since …`, `state lock held shared by …`, or
/// what is known when no record says.
impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.holder {
            Some(h) if h.mode == Mode::Shared => write!(f, "{} held shared by {h}", self.lock),
            Some(h) => write!(f, "{} held by {h}", self.lock),
            None => write!(
                f,
                "{} held by another process (it left no holder record)",
                self.lock
            ),
        }
    }
}

/// A held named lock (or file lock): released when dropped, or by the OS when the
/// process dies.
#[derive(Debug)]
#[must_use = "the lock is released as soon as it is dropped"]
pub struct Held {
    /// The locked file; `None` when an ancestor process holds the lock for us.
    file: Option<LockFile>,
    /// Our holder record, to clear on release.
    record: Option<PathBuf>,
    /// Who holds it: this process, or the ancestor.
    holder: Holder,
    /// For messages.
    label: String,
}

impl Held {
    /// Who holds the lock (this process, unless [`Held::inherited`]).
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The mode it is held in.
    pub fn mode(&self) -> Mode {
        self.holder.mode
    }

    /// True when an ancestor process holds the lock and this process runs under it:
    /// nothing is released on drop.
    pub fn inherited(&self) -> bool {
        self.file.is_none()
    }

    /// `git lock`, `task lock T-1`, `lock on /tmp/x`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The variable ([`HELD_VAR`]) and value to give a child process, so that the
    /// child asking for this lock again runs under ours instead of waiting forever.
    pub fn child_env(&self) -> (&'static str, OsString) {
        let mut v = std::env::var_os(HELD_VAR).unwrap_or_default();
        // Only named locks: the record is how a child checks that we still hold it.
        if let Some(file) = &self.file
            && self.record.is_some()
        {
            if !v.is_empty() {
                v.push("\n");
            }
            let h = &self.holder;
            v.push(format!("{} {} {} ", h.mode, h.pid, h.since.as_millis()));
            v.push(file.path());
        }
        (HELD_VAR, v)
    }

    /// Releases the lock now.
    ///
    /// # Errors
    /// [`Error::Store`] when the OS refuses to unlock (closing the file, which
    /// follows, releases it anyway).
    pub fn release(mut self) -> Result<()> {
        self.unlock()
    }

    fn unlock(&mut self) -> Result<()> {
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        // Before unlocking: once unlocked, the record may already be the next holder's.
        if let (Some(record), Mode::Exclusive) = (&self.record, self.holder.mode) {
            holder::clear(record);
        }
        file.release()
            .map_err(|e| Error::store(format!("cannot unlock {}", file.path().display()), e))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}

/// One line of [`HELD_VAR`].
struct Entry {
    mode: Mode,
    pid: u32,
    since_ms: i64,
    path: PathBuf,
}

fn held_by_ancestors() -> Vec<Entry> {
    let Some(v) = std::env::var_os(HELD_VAR) else {
        return Vec::new();
    };
    v.to_string_lossy()
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(4, ' ');
            let mode = match parts.next()? {
                "shared" => Mode::Shared,
                "exclusive" => Mode::Exclusive,
                _ => return None,
            };
            Some(Entry {
                mode,
                pid: parts.next()?.parse().ok()?,
                since_ms: parts.next()?.parse().ok()?,
                path: PathBuf::from(parts.next()?),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_directory() {
        for bad in ["../x", "/etc/passwd", "a/b", "a\0b", "", "..", ".x", "a\\b"] {
            let e = Name::task(bad).unwrap_err();
            assert!(matches!(e, Error::Invalid { .. }), "{bad:?}");
        }
        let n = Name::task("T-1").unwrap();
        assert_eq!(n.file_name(), "task-T-1.lock");
        assert_eq!(n.to_string(), "task lock T-1");
        assert_eq!(Name::from_file_name("task-T-1.lock"), Some(n));
        assert_eq!(Name::from_file_name("git.lock"), Some(Name::Git));
        assert_eq!(Name::from_file_name("task-..lock"), None);
        assert_eq!(Name::from_file_name("other.lock"), None);
    }

    fn agent(s: &str) -> AgentId {
        AgentId::new(s).unwrap()
    }

    fn take(lock: &Lock, who: &str, mode: Mode, wait: Wait) -> Acquired {
        lock.acquire(mode, wait, &agent(who), |_| {}).unwrap()
    }

    fn held(a: Acquired) -> Held {
        match a {
            Acquired::Held(h) => h,
            Acquired::Busy(b) => panic!("busy: {b}"),
        }
    }

    #[test]
    fn waiter_is_told_who_holds_it_and_gets_it_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::new(dir.path().join("locks"), dir.path());
        let lock = locks.lock(&Name::task("T-1").unwrap()).unwrap();
        let a = held(take(&lock, "alice", Mode::Exclusive, Wait::Try));
        assert_eq!(a.holder().agent.as_str(), "alice");
        assert!(dir.path().join("locks/task-T-1.holder.json").exists());

        let Acquired::Busy(busy) = take(&lock, "bob", Mode::Exclusive, Wait::Try) else {
            panic!("must be busy")
        };
        let h = busy.holder.as_ref().expect("the record names the holder");
        assert_eq!((h.agent.as_str(), h.pid), ("alice", std::process::id()));
        assert!(
            busy.to_string()
                .starts_with("task lock T-1 held by alice (pid ")
        );

        let waiter = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                let mut told = None;
                let got = lock
                    .acquire(Mode::Exclusive, Wait::Forever, &agent("bob"), |b| {
                        told = Some(b.to_string());
                    })
                    .unwrap();
                (held(got).holder().agent.to_string(), told)
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        a.release().unwrap();
        let (now, told) = waiter.join().unwrap();
        assert_eq!(now, "bob");
        assert!(told.unwrap().contains("held by alice"));
        // Bob's hold ended with the thread: the exclusive holder's record went with it.
        assert!(!dir.path().join("locks/task-T-1.holder.json").exists());
    }

    #[test]
    fn a_dead_holders_record_blocks_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::new(dir.path(), dir.path());
        let lock = locks.lock(&Name::State).unwrap();
        let ghost = Holder {
            agent: agent("ghost"),
            pid: 999_999,
            host: "gone".into(),
            since: tasklease_core::Millis::from_millis(0),
            mode: Mode::Exclusive,
        };
        std::fs::write(
            lock.record.as_ref().unwrap(),
            serde_json::to_vec(&ghost).unwrap(),
        )
        .unwrap();
        let me = held(take(&lock, "me", Mode::Exclusive, Wait::Try));
        assert_eq!(lock.holder().unwrap().agent.as_str(), "me");
        let listed = locks.list().unwrap();
        assert_eq!(listed[0].holder.as_ref().unwrap().agent.as_str(), "me");
        drop(me);
        let listed = locks.list().unwrap();
        assert!(!listed[0].held && listed[0].holder.is_none());
    }

    #[test]
    fn list_reports_every_lock_and_how_it_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::new(dir.path().join("locks"), dir.path());
        assert_eq!(locks.list().unwrap(), vec![], "no directory yet: no locks");
        let t2 = locks.lock(&Name::task("b").unwrap()).unwrap();
        let t1 = locks.lock(&Name::task("a").unwrap()).unwrap();
        let st = locks.lock(&Name::State).unwrap();
        let _s1 = held(take(&t2, "r1", Mode::Shared, Wait::Try));
        let _s2 = held(take(&t2, "r2", Mode::Shared, Wait::Try));
        drop(held(take(&t1, "gone", Mode::Exclusive, Wait::Try)));
        let _x = held(take(&st, "w", Mode::Exclusive, Wait::Try));
        std::fs::write(dir.path().join("locks/other.lock"), "").unwrap();

        let listed = locks.list().unwrap();
        let view: Vec<_> = listed
            .iter()
            .map(|l| {
                (
                    l.name.as_str(),
                    l.kind,
                    l.mode,
                    l.holder.as_ref().map(|h| h.agent.to_string()),
                )
            })
            .collect();
        assert_eq!(
            view,
            vec![
                ("state", "state", Some(Mode::Exclusive), Some("w".into())),
                ("task-a", "task", None, None),
                ("task-b", "task", Some(Mode::Shared), Some("r2".into())),
                ("other", "other", None, None),
            ]
        );
        assert_eq!(listed[2].task.as_ref().unwrap().as_str(), "b");
        let json = serde_json::to_value(&listed[0]).unwrap();
        assert_eq!(json["held"], true);
        assert_eq!(json["holder"]["agent"], "w");
        // Listing took nothing: the exclusive holder still excludes.
        assert!(matches!(
            take(&st, "x", Mode::Shared, Wait::Try),
            Acquired::Busy(_)
        ));
    }

    #[test]
    fn file_locks_keep_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let lock = Lock::file(dir.path().join("tool.lock"));
        let _h = held(take(&lock, "me", Mode::Exclusive, Wait::Try));
        let Acquired::Busy(b) = take(&lock, "you", Mode::Exclusive, Wait::Try) else {
            panic!("must be busy")
        };
        assert_eq!(b.holder, None);
        assert!(b.to_string().contains("no holder record"));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the lock file itself");
    }
}
