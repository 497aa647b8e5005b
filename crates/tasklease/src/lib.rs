//! tasklease: coordination for several AI coding agents (or any worker processes)
//! working on one project — tasks claimed atomically under fenced leases.
//!
//! This crate is the library the CLI and the MCP server are thin layers over. It
//! re-exports the backend-neutral core ([`Store`], [`TaskId`], [`Lease`], …) and adds
//! what every front end needs and no store should know: where the project's database
//! lives ([`project`]), who the calling agent is ([`identity`]), how to open the
//! right store from a `--db` value ([`open`]). The JSON shapes the front ends print
//! are not part of it: they live in the `tasklease-shape` crate, for tasklease's own
//! front ends.
//!
//! Depend on `tasklease` (not the store crates): it opens either store from one
//! value, and its features `sqlite` and `postgres` (both on by default) choose which
//! backends are built — `default-features = false, features = ["sqlite"]` keeps
//! tokio-postgres out of a SQLite-only program.
//!
//! A worker: open the store, claim the next ready task, keep its lease renewed while
//! working ([`hold()`]), and finish with the token.
//!
//! ```
//! use std::sync::Arc;
//! use tasklease::open::{DbSpec, OpenOptions};
//! use tasklease::{LeaseDuration, NewTask, Store};
//!
//! # fn main() -> tasklease::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let db = format!("sqlite:{}", dir.path().join("tasks.db").display());
//! // `db` is what `--db` takes: a path, `sqlite:PATH`, or a PostgreSQL connection string.
//! let spec = DbSpec::parse(&db);
//! tasklease::open::init(&spec, &OpenOptions::default())?; // once, where the store lives
//! let store: Arc<dyn Store> = tasklease::open::open(&spec, &OpenOptions::default())?.into();
//! store.add(&NewTask { title: "write the changelog".into(), ..Default::default() })?;
//!
//! let me = tasklease::identity::agent_id_for("worker", 1)?;
//! let length = LeaseDuration::from_millis(5 * 60_000)?;
//! while let Some(lease) = store.claim_next(length, &me)? {
//!     let held = tasklease::hold(store.clone(), &lease, length)?;
//!     // ... the work, checking held.is_trusted() between steps ...
//!     held.done()?;
//! }
//! # Ok(()) }
//! ```
//!
//! Errors are [`Error`]; [`Error::is_retryable`] says which may simply be tried again.
//! A store is `Send + Sync`: share one `Arc<dyn Store>` between threads. On PostgreSQL
//! it holds a small pool of connections, so sharing costs nothing; on SQLite it is one
//! connection, and threads that write often go faster with a store each (see
//! `docs/library.md`).
//!
//! Async code (the MCP server, a web board) uses the same stores through
//! [`asynchronous::AsyncStore`], which runs one on a thread of its own.
//!
//! The project's file locks — per task, the state lock, and the repository-wide git
//! lock — and who holds them are in [`locks`].
//!
//! Every type has one path, at the crate root (`tasklease::TaskId`, not also
//! `tasklease::id::TaskId`), and converts the way std types do: ids are
//! `AsRef<str> + Borrow<str>` (a `HashMap<TaskId, _>` looks up by `&str`) and
//! `TryFrom<&str>`/`TryFrom<String>`; `LeaseDuration: TryFrom<Duration>`;
//! `Millis` ↔ `SystemTime`.
//!
//! ```
//! use std::time::Duration;
//! use tasklease::{LeaseDuration, TaskId};
//! let id = TaskId::try_from("parser")?;
//! let lease = LeaseDuration::try_from(Duration::from_secs(600))?;
//! assert_eq!((id.as_ref(), lease.as_millis()), ("parser", 600_000));
//! # Ok::<(), tasklease::Error>(())
//! ```
//!
//! ```compile_fail
//! // The modules the types are defined in are not a second path to them.
//! use tasklease::id::TaskId;
//! ```
//!
//! ```compile_fail
//! // The front ends' JSON shapes are not the library's: they are `tasklease-shape`.
//! use tasklease::json::success;
//! ```

pub mod asynchronous;
pub mod hold;
pub mod identity;
pub mod import;
pub mod keepalive;
pub mod listing;
pub mod locks;
pub mod open;
pub mod project;
pub mod show;
pub mod wait;

pub use hold::{Held, Trust, hold, hold_from};
pub use tasklease_core::*;
