//! [`LockFile`]: one open lock file that can be locked and unlocked many times, and
//! the [`Guard`] that holds it.
//!
//! This is the only module in the workspace that calls the OS lock functions (std's
//! `File::lock*`: `flock` on Unix, `LockFileEx` on Windows); `clippy.toml` forbids them
//! everywhere else, so every lock in tasklease has the semantics written down here and
//! in `docs/locking.md`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tasklease_core::{Error, Result};

/// Shared (many holders) or exclusive (one holder).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Any number of shared holders at once, and no exclusive one.
    Shared,
    /// One holder, and nobody else in either mode.
    Exclusive,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Shared => "shared",
            Mode::Exclusive => "exclusive",
        })
    }
}

/// How long to wait for a busy lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Try once; busy is `Ok(None)`.
    Try,
    /// Try until this much time has passed (polling with backoff: std has no timed
    /// lock); then `Ok(None)`.
    For(Duration),
    /// Block in the OS until the lock is free.
    Forever,
}

impl Wait {
    /// `None` waits forever, zero tries once, anything else waits that long — the
    /// meaning of `--timeout`.
    pub fn from_timeout(timeout: Option<Duration>) -> Wait {
        match timeout {
            None => Wait::Forever,
            Some(d) if d.is_zero() => Wait::Try,
            Some(d) => Wait::For(d),
        }
    }
}

/// The longest pause between two tries of a timed wait. Short enough that a waiter
/// notices a release quickly; long enough that a waiter costs nothing measurable.
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// An open lock file.
///
/// Keep one open and lock it as often as needed: locking and unlocking are one system
/// call each, with no allocation and no other file I/O, so this type suits hot paths
/// (a writer queue taken thousands of times a second).
///
/// The lock belongs to this open file — not to the process or the thread. A second
/// `LockFile` on the same path, even in the same process, is a different holder and
/// waits like any other process would. The lock methods take `&mut self`, so one
/// `LockFile` can hold at most one [`Guard`] at a time; threads that want to exclude
/// each other each open their own `LockFile` (or share one behind a mutex).
///
/// The file's contents are never read or written: on Windows a locked file cannot be
/// read by anyone else, and nothing about a lock may depend on what a file says.
#[derive(Debug)]
pub struct LockFile {
    /// Kept open for as long as the value lives: the OS lock lives on this handle.
    file: File,
    /// For error messages only.
    path: PathBuf,
}

impl LockFile {
    /// Opens `path` for locking, creating it (empty) if it does not exist. Its parent
    /// directory must exist. An existing file we may not write (or a directory, on
    /// Unix) is opened read-only, which `flock` accepts for both modes.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the path cannot name a lock file (empty, a NUL byte, a
    /// missing parent directory); [`Error::Store`] for other I/O failures.
    pub fn open(path: impl Into<PathBuf>) -> Result<LockFile> {
        let path = path.into();
        if path.as_os_str().is_empty() {
            return Err(Error::invalid(
                "lock file",
                "the lock file path is empty; name a file",
            ));
        }
        // Write access: Windows refuses to lock a handle opened for appending only,
        // and creating needs it anyway. Never truncate: another holder's file.
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
        {
            Ok(f) => f,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::PermissionDenied | io::ErrorKind::IsADirectory
                ) =>
            {
                File::open(&path).map_err(|e2| open_error(&path, e2))?
            }
            Err(e) => return Err(open_error(&path, e)),
        };
        Ok(LockFile { file, path })
    }

    /// Opens `path` for locking as a file of its owner's alone: created `0600` if
    /// missing, never through a symlink, refused unless it is the current user's, and
    /// made `0600` if others may write it (see [`crate::private::file_within`]). For lock
    /// files in directories that are tasklease's own and private (the writer queue's,
    /// `.tasklease/locks/`); `what` names it in messages.
    ///
    /// # Errors
    /// [`Error::Store`] when it cannot be created or opened, or is not private.
    pub fn open_private(path: impl Into<PathBuf>, what: &str) -> Result<LockFile> {
        let path = path.into();
        let file = crate::private::file_within(&path, what)?;
        Ok(LockFile { file, path })
    }

    /// The path this was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Blocks until the lock is held exclusively.
    ///
    /// # Errors
    /// [`Error::Store`] when the OS refuses, naming the filesystem when it cannot lock
    /// at all (see [`LockFile::acquire`]).
    pub fn lock_exclusive(&mut self) -> Result<Guard<'_>> {
        self.lock(Mode::Exclusive)
    }

    /// Blocks until the lock is held shared.
    ///
    /// # Errors
    /// As [`LockFile::lock_exclusive`].
    pub fn lock_shared(&mut self) -> Result<Guard<'_>> {
        self.lock(Mode::Shared)
    }

    /// Takes the lock exclusively if nobody holds it; `Ok(None)` if someone does.
    ///
    /// # Errors
    /// As [`LockFile::lock_exclusive`].
    pub fn try_lock_exclusive(&mut self) -> Result<Option<Guard<'_>>> {
        self.try_lock(Mode::Exclusive)
    }

    /// Takes the lock shared unless someone holds it exclusively; `Ok(None)` if so.
    ///
    /// # Errors
    /// As [`LockFile::lock_exclusive`].
    pub fn try_lock_shared(&mut self) -> Result<Option<Guard<'_>>> {
        self.try_lock(Mode::Shared)
    }

    /// Blocks until the lock is held in `mode`.
    ///
    /// # Errors
    /// As [`LockFile::lock_exclusive`].
    pub fn lock(&mut self, mode: Mode) -> Result<Guard<'_>> {
        self.take(mode, Wait::Forever)?;
        Ok(Guard { lock: self })
    }

    /// Takes the lock in `mode` if it is free for that mode; `Ok(None)` if not.
    ///
    /// # Errors
    /// As [`LockFile::lock_exclusive`].
    pub fn try_lock(&mut self, mode: Mode) -> Result<Option<Guard<'_>>> {
        self.acquire(mode, Wait::Try)
    }

    /// Takes the lock in `mode`, waiting as `wait` says; `Ok(None)` when it is still
    /// busy at the end.
    ///
    /// A timed wait polls with a growing, jittered pause (at most 100 ms, and never
    /// past the deadline), so it can return up to one system call after the
    /// deadline, and it can lose a race to a waiter that blocks in the OS.
    ///
    /// # Errors
    /// [`Error::Store`] when the OS refuses. A filesystem without lock support (some
    /// NFS mounts, some FUSE filesystems: `ENOLCK`, `ENOTSUP`, `ENOSYS`) is an error
    /// that says so; it is never reported as a held lock.
    pub fn acquire(&mut self, mode: Mode, wait: Wait) -> Result<Option<Guard<'_>>> {
        Ok(self.take(mode, wait)?.then(|| Guard { lock: self }))
    }

    /// Takes the lock in `mode`, blocking in the OS for at most `timeout`; `Ok(None)`
    /// when it is still busy then. If it is still busy after `notice`, `on_slow` runs
    /// once (to tell the user who holds it) and the wait goes on.
    ///
    /// Unlike [`Wait::For`], which polls, this wakes the instant the lock is released,
    /// so it suits a hot path with a bound (the writer queue's turn). The OS has no
    /// timed lock: a helper thread blocks on a second open of the file while this one
    /// waits with a deadline. On success that open becomes this `LockFile`'s file. On
    /// timeout the thread stays blocked until the holder lets go, then drops its open
    /// file at once, releasing the lock it just got: an abandoned wait costs the
    /// next holder nothing but that instant.
    ///
    /// # Errors
    /// As [`LockFile::acquire`]; [`Error::Store`] when no thread can be started.
    pub fn lock_within(
        &mut self,
        mode: Mode,
        timeout: Duration,
        notice: Duration,
        on_slow: impl FnOnce(),
    ) -> Result<Option<Guard<'_>>> {
        if os::try_lock(&self.file, mode).map_err(|e| lock_error(&self.path, e))? {
            return Ok(Some(Guard { lock: self }));
        }
        if timeout.is_zero() {
            return Ok(None);
        }
        let start = Instant::now();
        let file = LockFile::open(&self.path)?.file;
        let shared = Arc::new((Mutex::new(Waiter::Waiting), Condvar::new()));
        let theirs = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("tasklease-lock-wait".into())
            .spawn(move || {
                let got = os::lock(&file, mode).map(|()| file);
                let (state, cv) = &*theirs;
                let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                if matches!(*state, Waiter::Waiting) {
                    *state = Waiter::Done(got);
                    cv.notify_one();
                }
                // Abandoned: `got` drops here, closing the file and releasing the lock.
            })
            .map_err(|e| Error::store(format!("cannot wait for {}", self.path.display()), e))?;
        let (state, cv) = &*shared;
        let mut on_slow = Some(on_slow);
        let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Waiter::Done(_) = &*st {
                let Waiter::Done(got) = std::mem::replace(&mut *st, Waiter::Abandoned) else {
                    unreachable!("matched above")
                };
                drop(st);
                // The old open held no lock: closing it releases nothing.
                self.file = got.map_err(|e| lock_error(&self.path, e))?;
                return Ok(Some(Guard { lock: self }));
            }
            let waited = start.elapsed();
            if waited >= timeout {
                *st = Waiter::Abandoned;
                return Ok(None);
            }
            if waited >= notice
                && let Some(tell) = on_slow.take()
            {
                drop(st);
                tell();
                st = state.lock().unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let until = if on_slow.is_some() {
                notice.min(timeout)
            } else {
                timeout
            };
            st = cv
                .wait_timeout(st, until.saturating_sub(waited))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// [`LockFile::acquire`] without a guard: `true` when the lock is now held, and
    /// the caller owns releasing it.
    pub(crate) fn take(&mut self, mode: Mode, wait: Wait) -> Result<bool> {
        let fail = |e| lock_error(&self.path, e);
        let deadline = match wait {
            Wait::Try => return os::try_lock(&self.file, mode).map_err(fail),
            Wait::Forever => return os::lock(&self.file, mode).map(|()| true).map_err(fail),
            Wait::For(d) => Instant::now().checked_add(d),
        };
        let Some(deadline) = deadline else {
            return os::lock(&self.file, mode).map(|()| true).map_err(fail);
        };
        let mut backoff = Duration::from_millis(1);
        loop {
            if os::try_lock(&self.file, mode).map_err(fail)? {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            std::thread::sleep(jitter(backoff).min(deadline - now));
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Releases a lock held through this file. The guards call this; it is never
    /// public so that a lock can only be released by whoever holds its guard.
    pub(crate) fn release(&self) -> io::Result<()> {
        os::unlock(&self.file)
    }
}

/// Where a [`LockFile::lock_within`] helper thread's wait stands; guarded by a mutex
/// shared with the waiting caller.
enum Waiter {
    /// Still blocked in the OS.
    Waiting,
    /// The OS answered: the open file now holding the lock, or the failure.
    Done(io::Result<File>),
    /// The caller gave up (or took the answer): whatever the thread gets, it drops.
    Abandoned,
}

/// Between half and one and a half times `d`, so waiters that started together do
/// not keep retrying in step.
fn jitter(d: Duration) -> Duration {
    let r = RandomState::new().hash_one(Instant::now());
    d / 2 + d.mul_f64((r % 1024) as f64 / 1024.0)
}

/// A held lock: released when dropped (or by the OS when the process dies).
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct Guard<'a> {
    lock: &'a mut LockFile,
}

impl Guard<'_> {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        self.lock.path()
    }

    /// Releases the lock now, reporting a failure (dropping releases too, silently).
    ///
    /// # Errors
    /// [`Error::Store`] when the OS refuses to unlock. The lock is released when the
    /// [`LockFile`] is closed in any case.
    pub fn unlock(self) -> Result<()> {
        let r = self
            .lock
            .release()
            .map_err(|e| Error::store(format!("cannot unlock {}", self.path().display()), e));
        std::mem::forget(self);
        r
    }
}

impl Guard<'_> {
    /// Keeps the lock until its [`LockFile`] is closed (dropped), instead of until this
    /// guard is dropped: for a lock held for the life of an object that owns the file.
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // Nothing to do with a failure here: closing the file releases the lock anyway.
        let _ = self.lock.release();
    }
}

/// The name of the error if `e` says the filesystem cannot lock at all.
pub(crate) fn unsupported(e: &io::Error) -> Option<&'static str> {
    let named = e.raw_os_error().and_then(os_error_name);
    match named {
        Some(name) => Some(name),
        None if e.kind() == io::ErrorKind::Unsupported => Some("unsupported"),
        None => None,
    }
}

#[cfg(unix)]
fn os_error_name(code: i32) -> Option<&'static str> {
    // An if-chain, not a match: ENOTSUP and EOPNOTSUPP are one value on Linux and two
    // on macOS.
    [
        (libc::ENOLCK, "ENOLCK"),
        (libc::ENOTSUP, "ENOTSUP"),
        (libc::EOPNOTSUPP, "EOPNOTSUPP"),
        (libc::ENOSYS, "ENOSYS"),
    ]
    .into_iter()
    .find_map(|(c, name)| (c == code).then_some(name))
}

#[cfg(windows)]
fn os_error_name(code: i32) -> Option<&'static str> {
    match code {
        1 => Some("ERROR_INVALID_FUNCTION"),
        50 => Some("ERROR_NOT_SUPPORTED"),
        _ => None,
    }
}

#[cfg(not(any(unix, windows)))]
fn os_error_name(_: i32) -> Option<&'static str> {
    None
}

fn lock_error(path: &Path, e: io::Error) -> Error {
    match unsupported(&e) {
        Some(name) => Error::store(
            format!(
                "cannot lock {}: its filesystem does not support file locks ({name}; e.g. an \
                 NFS mount without a lock daemon). tasklease never pretends to hold a lock: put \
                 the project on a local filesystem (see docs/locking.md)",
                path.display()
            ),
            e,
        ),
        None => Error::store(format!("cannot lock {}", path.display()), e),
    }
}

fn open_error(path: &Path, e: io::Error) -> Error {
    let shown = path.display();
    match e.kind() {
        io::ErrorKind::NotFound => Error::invalid(
            "lock file",
            format!("cannot open lock file {shown}: its directory does not exist"),
        ),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidFilename => {
            Error::invalid("lock file", format!("{shown} cannot be a lock file: {e}"))
        }
        io::ErrorKind::NotADirectory => Error::invalid(
            "lock file",
            format!("cannot open lock file {shown}: a parent is not a directory"),
        ),
        io::ErrorKind::IsADirectory => {
            Error::invalid("lock file", format!("{shown} is a directory; name a file"))
        }
        _ => Error::store(format!("cannot open lock file {shown}"), e),
    }
}

/// The OS calls, and nothing else.
#[allow(clippy::disallowed_methods)]
mod os {
    use std::fs::{File, TryLockError};
    use std::io;

    use super::Mode;

    /// Blocks until held. A signal handler can interrupt `flock`; retry then, since
    /// the caller asked to wait.
    pub(super) fn lock(f: &File, mode: Mode) -> io::Result<()> {
        loop {
            let r = match mode {
                Mode::Shared => f.lock_shared(),
                Mode::Exclusive => f.lock(),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// `Ok(false)` when busy.
    pub(super) fn try_lock(f: &File, mode: Mode) -> io::Result<bool> {
        let r = match mode {
            Mode::Shared => f.try_lock_shared(),
            Mode::Exclusive => f.try_lock(),
        };
        match r {
            Ok(()) => Ok(true),
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    pub(super) fn unlock(f: &File) -> io::Result<()> {
        f.unlock()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;

    use super::*;

    fn tmp_lock() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        (dir, path)
    }

    /// A bounded wait gives up at its bound, says once that it is slow, and leaves
    /// nothing held behind; a release during the wait is taken at once.
    #[test]
    fn lock_within_gives_up_at_its_bound_and_wakes_on_release() {
        let (_d, path) = tmp_lock();
        let mut holder = LockFile::open(&path).unwrap();
        let mut waiter = LockFile::open(&path).unwrap();
        let held = holder.try_lock_exclusive().unwrap().expect("free at first");
        let mut told = 0;
        let start = Instant::now();
        let got = waiter
            .lock_within(
                Mode::Exclusive,
                Duration::from_millis(300),
                Duration::from_millis(100),
                || told += 1,
            )
            .unwrap();
        assert!(got.is_none(), "still held");
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert_eq!(told, 1);
        // The abandoned helper takes the lock when it is released and lets go of it.
        drop(held);
        let mut third = LockFile::open(&path).unwrap();
        let free = third
            .acquire(Mode::Exclusive, Wait::For(Duration::from_secs(20)))
            .unwrap();
        assert!(free.is_some(), "the abandoned wait left the lock held");
        let released = {
            let (tx, rx) = mpsc::channel();
            let path = path.clone();
            thread::spawn(move || {
                let mut w = LockFile::open(&path).unwrap();
                let got = w
                    .lock_within(
                        Mode::Exclusive,
                        Duration::from_secs(60),
                        Duration::from_secs(60),
                        || {},
                    )
                    .unwrap()
                    .is_some();
                tx.send(got).unwrap();
            });
            thread::sleep(Duration::from_millis(100));
            drop(free);
            rx.recv_timeout(Duration::from_secs(20))
                .expect("the wait did not wake on release")
        };
        assert!(released);
    }

    #[test]
    fn try_is_none_while_held_and_some_after() {
        let (_d, path) = tmp_lock();
        let mut a = LockFile::open(&path).unwrap();
        let mut b = LockFile::open(&path).unwrap();
        let g = a.try_lock_exclusive().unwrap().expect("free at first");
        assert!(b.try_lock_exclusive().unwrap().is_none());
        assert!(b.try_lock_shared().unwrap().is_none());
        drop(g);
        assert!(b.try_lock_exclusive().unwrap().is_some());
    }

    #[test]
    fn relock_many_times_on_one_file() {
        let (_d, path) = tmp_lock();
        let mut a = LockFile::open(&path).unwrap();
        let mut b = LockFile::open(&path).unwrap();
        for _ in 0..1000 {
            let g = a.lock_exclusive().unwrap();
            assert!(b.try_lock_shared().unwrap().is_none());
            g.unlock().unwrap();
            drop(b.try_lock_shared().unwrap().expect("released"));
        }
    }

    #[test]
    fn shared_holders_coexist_and_exclude_exclusive() {
        let (_d, path) = tmp_lock();
        let mut a = LockFile::open(&path).unwrap();
        let mut b = LockFile::open(&path).unwrap();
        let mut c = LockFile::open(&path).unwrap();
        let ga = a.lock_shared().unwrap();
        let gb = b.try_lock_shared().unwrap().expect("shared with shared");
        assert!(c.try_lock_exclusive().unwrap().is_none());
        drop(ga);
        assert!(c.try_lock_exclusive().unwrap().is_none(), "b still holds");
        drop(gb);
        assert!(c.try_lock_exclusive().unwrap().is_some());
    }

    #[test]
    fn blocking_lock_waits_for_release() {
        let (_d, path) = tmp_lock();
        let mut a = LockFile::open(&path).unwrap();
        let g = a.lock_exclusive().unwrap();
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        let waiter = thread::spawn(move || {
            let mut b = LockFile::open(&p).unwrap();
            let _g = b.lock_exclusive().unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the second open of the same file, even in this process, must wait"
        );
        drop(g);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("acquired after release");
        waiter.join().unwrap();
    }

    #[test]
    fn timed_wait_gives_up_after_the_timeout() {
        let (_d, path) = tmp_lock();
        let mut a = LockFile::open(&path).unwrap();
        let mut b = LockFile::open(&path).unwrap();
        let _g = a.lock_exclusive().unwrap();
        let t = Instant::now();
        let got = b
            .acquire(Mode::Exclusive, Wait::For(Duration::from_millis(300)))
            .unwrap();
        let took = t.elapsed();
        assert!(got.is_none());
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(2300), "{took:?}");
    }

    #[test]
    fn timed_wait_succeeds_when_released_meanwhile() {
        let (_d, path) = tmp_lock();
        let mut a = LockFile::open(&path).unwrap();
        let g = a.lock_exclusive().unwrap();
        let p = path.clone();
        let waiter = thread::spawn(move || {
            let mut b = LockFile::open(&p).unwrap();
            b.acquire(Mode::Exclusive, Wait::For(Duration::from_secs(20)))
                .unwrap()
                .is_some()
        });
        thread::sleep(Duration::from_millis(100));
        drop(g);
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn wait_from_timeout() {
        assert_eq!(Wait::from_timeout(None), Wait::Forever);
        assert_eq!(Wait::from_timeout(Some(Duration::ZERO)), Wait::Try);
        let d = Duration::from_secs(3);
        assert_eq!(Wait::from_timeout(Some(d)), Wait::For(d));
    }

    #[test]
    fn bad_paths_are_invalid() {
        let dir = tempfile::tempdir().unwrap();
        for p in [
            PathBuf::new(),
            dir.path().join("missing/x.lock"),
            dir.path().join("a\0b"),
        ] {
            let e = LockFile::open(&p).unwrap_err();
            assert!(matches!(e, Error::Invalid { .. }), "{p:?}: {e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn degraded_filesystems_are_named() {
        for (code, name) in [
            (libc::ENOLCK, "ENOLCK"),
            (libc::ENOTSUP, "ENOTSUP"),
            (libc::ENOSYS, "ENOSYS"),
        ] {
            let e = lock_error(Path::new("/x.lock"), io::Error::from_raw_os_error(code));
            let msg = e.to_string();
            assert!(msg.contains(name), "{msg}");
            assert!(msg.contains("does not support file locks"), "{msg}");
        }
        let other = lock_error(
            Path::new("/x.lock"),
            io::Error::from_raw_os_error(libc::EIO),
        );
        assert!(!other.to_string().contains("does not support"));
    }

    #[test]
    fn jitter_stays_in_range() {
        let d = Duration::from_millis(100);
        for _ in 0..100 {
            let j = jitter(d);
            assert!(j >= d / 2 && j < d * 3 / 2, "{j:?}");
        }
    }
}
