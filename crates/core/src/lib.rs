//! The backend-neutral core of tasklease: tasks, leases and fencing tokens, and the
//! [`Store`] contract that every backend (SQLite, PostgreSQL) implements. No I/O lives
//! here.
//!
//! # The one decision this crate encodes
//!
//! A lease is *time-bounded and fenced*. Time-bounded, so a dead agent's claim lapses on
//! its own and nobody has to decide that an agent is dead. Fenced, because time alone
//! cannot be trusted: an agent paused past its lease (a laptop lid, a GC pause, a
//! debugger) wakes up believing it still holds the task. Every claim of a task hands
//! out a larger [`Token`]; every write a lease protects presents it, and the store
//! refuses any token but the current one. Expiry makes progress possible; the token
//! makes it safe.
//!
//! Results say what happened ([`ClaimOutcome`], [`Refusal`]) rather than collapsing
//! "someone else holds it" into an error string, and errors ([`Error`]) name the
//! situation in task terms, never in SQL terms.

mod error;
mod graph;
mod id;
mod import;
mod lease;
mod store;
mod task;
pub mod text;
mod time;
mod token;
mod version;
mod wait;

pub use error::{DISK_FULL, Error, ErrorKind, READ_ONLY_FS, Result};
pub use graph::{
    Deleted, DepChange, DepState, Deps, Progress, cycle_error, deleted_id_error, find_path,
    parent_cycle_error, rm_allowed, validate_dep_edit, validate_ready_filter, validate_rm,
};
pub use id::{AgentId, MAX_ID_LEN, RequestId, Tag, TaskId};
pub use import::{
    ImportBatch, ImportOutcome, ImportTask, check_batch_parents, validate_batch as validate_import,
};
pub use lease::{
    BatchOutcome, ClaimOutcome, DoneThenNext, Ended, Event, EventKind, Lease, LeaseState, LostWhy,
    Reaped, Refusal, Retention, Unclaimable, retried_grant, validate_batch,
};
pub use store::{Stamp, Store};
pub use task::{
    ListFilter, MAX_DEPS, MAX_REASON_LEN, MAX_TAGS, NewTask, Priority, Reason, ReleaseTo, Status,
    Task, TaskPatch, distinct_tags, validate_description, validate_tags, validate_title,
};
pub use time::{
    Clock, DurationError, LeaseDuration, Millis, human_duration, parse_duration_ms, parse_wait,
};
pub use token::{Secret, TOKEN_FORM, Token, secret_eq};
pub use version::Version;
pub use wait::{Readiness, ReadySignal};
