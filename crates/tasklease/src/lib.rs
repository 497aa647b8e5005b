//! tasklease: coordination for several AI coding agents (or any worker processes)
//! working on one project — tasks claimed atomically under fenced leases.
//!
//! This crate is the library the CLI and the MCP server are thin layers over. It
//! re-exports the backend-neutral core ([`Store`], [`TaskId`], [`Lease`], …) and adds
//! what every front end needs and no store should know: where the project's database
//! lives ([`project`]), who the calling agent is ([`identity`]), how to open the
//! right store from a `--db` value ([`open`]), and the JSON object of every result
//! ([`json`]), so the CLI's `--json` and the MCP server's tool results are one shape.
//!
//! ```no_run
//! use tasklease::{LeaseDuration, open::{DbSpec, OpenOptions}};
//!
//! # fn main() -> tasklease::Result<()> {
//! let spec = DbSpec::discover(None, &std::env::current_dir().unwrap())?;
//! let store = tasklease::open::open(&spec, &OpenOptions::default())?;
//! let me = tasklease::identity::agent_id(None)?;
//! if let Some(lease) = store.claim_next(&me, LeaseDuration::DEFAULT)? {
//!     // ... work, renewing with lease.token before lease.lock_until ...
//!     store.done(&lease.task, lease.token, &me)?;
//! }
//! # Ok(()) }
//! ```
//!
//! Async code (the MCP server, a web board) uses the same stores through
//! [`asynchronous::AsyncStore`], which runs one on a thread of its own.
//!
//! The project's file locks — per task, the state lock, and the repository-wide git
//! lock — and who holds them are in [`locks`].

pub mod asynchronous;
pub mod bench;
pub mod identity;
pub mod import;
pub mod json;
pub mod keepalive;
pub mod locks;
pub mod open;
pub mod project;
pub mod stats;

pub use tasklease_core::*;
