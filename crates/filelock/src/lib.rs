//! File locks for tasklease: the OS's advisory locks, and nothing pretending to be one.
//!
//! Agents are processes, and two kinds of work need them to take turns outside the
//! task database: commands that must not overlap (two `git commit`s in one repository
//! fight over `index.lock`; two worktrees race on `config.lock`), and short critical
//! sections around shared files. A lease is the wrong tool there — it expires on a
//! timer, so a slow holder loses it while still working. An OS lock is the right one:
//! it is held exactly as long as the holding process keeps it, and the kernel frees it
//! the instant that process dies, however it dies. Nothing stale is ever left behind,
//! so nothing has to guess whether a holder is alive.
//!
//! # The one decision this crate encodes
//!
//! **The OS lock is the only truth.** A lock file's existence means nothing (lock
//! files are created once and never deleted — deleting one lets two holders in, see
//! `docs/locking.md`). The holder record beside a lock ([`Holder`]: agent, pid, host,
//! since) is for people: a waiter prints it, `tasklease locks` lists it, and a record
//! left by a dead holder is ignored because its lock is free. A filesystem that cannot
//! lock (some NFS mounts) is an error that says so — never a lock silently not held.
//!
//! # Layers
//!
//! - [`LockFile`] keeps one file open and locks it as often as asked: try
//!   (`Ok(None)` when busy — contention is a value, not an error), blocking, or
//!   blocking with a timeout ([`Wait`]); [`Mode::Shared`] or [`Mode::Exclusive`];
//!   released when its [`Guard`] drops. One system call per lock or unlock, no
//!   allocation: fit for hot paths.
//! - [`Locks`] and [`Lock`]: named locks — `task-<id>.lock` (the id validated through
//!   [`tasklease_core::TaskId`], so no name escapes the directory), `state.lock`, and
//!   the repository-wide `git.lock` in git's common dir ([`git`]) — and locks on any
//!   file. Taking one writes a holder record, tells the caller who it waits for
//!   before waiting, and hands back a [`Held`]. [`Locks::list`] reports every lock
//!   and its holder.
//!
//! - [`private`]: creating (and checking) the files and directories that must be
//!   their owner's alone — lock files, the writer queue's, the database's.
//!
//! Only the private `file::os` module calls std's `File::lock*`; `clippy.toml` forbids
//! them everywhere else.
//!
//! # Re-entrancy
//!
//! Locks belong to an open file, not to a process or a thread: a second `LockFile` on
//! the same path in the same process waits like any other holder would — so a
//! function that takes a lock must not call one that takes it again. Across
//! processes, a command run under a named lock that asks for the same lock again is
//! recognised ([`HELD_VAR`]) instead of waiting forever on its own parent.
//!
//! ```no_run
//! use tasklease_filelock::{LockFile, Mode, Wait};
//!
//! # fn main() -> tasklease_core::Result<()> {
//! let mut queue = LockFile::open("/tmp/writers.lock")?;
//! for _ in 0..1000 {
//!     let turn = queue.lock_exclusive()?; // blocks until it is our turn
//!     // ... the critical section ...
//!     drop(turn);
//! }
//! if let Some(_g) = queue.acquire(Mode::Shared, Wait::Try)? {
//!     // nobody held it exclusively
//! }
//! # Ok(()) }
//! ```

mod file;
pub mod git;
mod holder;
mod named;
pub mod private;

pub use file::{Guard, LockFile, Mode, Wait};
pub use holder::Holder;
pub use named::{Acquired, Busy, HELD_VAR, Held, Lock, LockInfo, Locks, Name};
