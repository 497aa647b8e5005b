//! The one error type every store translates its failures into.

use std::fmt;

use crate::{AgentId, LostWhy, Millis, TaskId, Token, Version};

/// What went wrong, in terms of the task model rather than any database.
///
/// Backends translate their own errors into these once, at their edge; the CLI maps
/// each kind to a stable exit code ([`Error::kind`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input: the message names what was wrong and what is allowed.
    #[error("{message}")]
    Invalid {
        /// The field or argument at fault, e.g. `task id`.
        field: &'static str,
        /// What was wrong and what is allowed.
        message: String,
    },

    /// No task has this id.
    #[error("no task {0}")]
    NotFound(TaskId),

    /// The token presented does not hold the task's lease any more.
    #[error("lease lost on {task}: token {} {}", token.redacted(), lost_detail(why))]
    LeaseLost {
        /// The task.
        task: TaskId,
        /// The token presented.
        token: Token,
        /// What happened to the lease.
        why: LostWhy,
    },

    /// The task is under another live lease, and the change needs its token.
    #[error(
        "{task} is held by {holder} until {until}; only the lease holder may change it, \
         with its token"
    )]
    NotHolder {
        /// The task.
        task: TaskId,
        /// Who holds it.
        holder: AgentId,
        /// Until when.
        until: Millis,
    },

    /// The task is under another live lease, and the operation (deleting it) needs
    /// force.
    #[error(
        "{task} is held by {holder} until {until}; deleting it needs force, which ends \
         that lease (its token stops working)"
    )]
    Held {
        /// The task.
        task: TaskId,
        /// Who holds it.
        holder: AgentId,
        /// Until when.
        until: Millis,
    },

    /// An optimistic update presented an old version.
    #[error(
        "{task} has changed: you expected version {expected} but it is at version {current}; \
         re-read it and retry"
    )]
    VersionConflict {
        /// The task.
        task: TaskId,
        /// The version the caller read.
        expected: Version,
        /// The version stored now.
        current: Version,
    },

    /// A task with this id exists already.
    #[error("a task {0} exists already; pick another id")]
    Exists(TaskId),

    /// The database was written by a newer tasklease.
    #[error(
        "the database is at schema version {found}, newer than this tasklease supports \
         ({supported}); upgrade tasklease"
    )]
    SchemaTooNew {
        /// The version found.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },

    /// A wait for a shared resource (the SQLite writer queue's turn; on PostgreSQL, rows
    /// another session holds, ended by the server's statement timeout) ran past its
    /// bound, the busy timeout. Nothing was applied. Not the caller's fault: the holder
    /// is stuck or slow.
    #[error(
        "gave up after {} waiting for {what}, {}",
        crate::time::human_duration(*waited),
        held_by(holder.as_deref())
    )]
    Busy {
        /// What was waited for, e.g. `the database's writer turn`.
        what: String,
        /// How long it was waited for.
        waited: std::time::Duration,
        /// Who held it when the wait ended, as the holder's record describes it
        /// (`alice (pid 42 on h) since …`); `None` when it left no record.
        holder: Option<String>,
    },

    /// A write was sent but its answer never came (no answer within the bound, or the
    /// connection broke mid-way): it may or may not have been applied, and it is never
    /// re-sent, because a re-sent claim or `done` that had already committed would act
    /// twice. The caller must look before retrying.
    #[error(
        "{context} ({source}); whether it took effect is unknown: look first (show the \
         task, or list your leases) before retrying"
    )]
    OutcomeUnknown {
        /// What was being written, and where.
        context: String,
        /// Why the answer was lost.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The store could not be reached, and nothing of the operation was sent: the
    /// server refused the connection, did not answer while connecting, or had closed
    /// the connection before the call (a restart). Retryable as is.
    #[error("{context}: {source}")]
    Unavailable {
        /// What we were doing, and where.
        context: String,
        /// Why the store could not be reached.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The database failed (I/O, corruption, a statement the server refused). Not the
    /// caller's fault, and not known to be passing: not retryable as such.
    #[error("{context}: {source}")]
    Store {
        /// What we were doing.
        context: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn held_by(holder: Option<&str>) -> String {
    match holder {
        Some(h) => format!("held by {h}; if that process is stopped or hung, resume or kill it"),
        None => "held by another process that left no record of itself; if a tasklease \
                 process is stopped or hung, resume or kill it"
            .to_owned(),
    }
}

fn lost_detail(why: &LostWhy) -> String {
    match why {
        LostWhy::Stale { holder: Some(h) } => {
            format!("is stale: the task was claimed again and is now held by {h}")
        }
        LostWhy::Stale { holder: None } => "is stale: the task was claimed again since".to_owned(),
        LostWhy::Ended { status } => {
            format!(
                "no longer holds it: the lease was ended (reaped, force-released, or by another \
                 operation with this token) and the task is {status}"
            )
        }
        LostWhy::Unknown => "was never issued for this task".to_owned(),
    }
}

/// What a full or read-only file system is called in messages.
pub const DISK_FULL: &str = "disk full";
/// See [`DISK_FULL`].
pub const READ_ONLY_FS: &str = "read-only file system";

/// [`DISK_FULL`] or [`READ_ONLY_FS`] when an I/O error in `e`'s chain says so.
fn fs_trouble(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::StorageFull => return Some(DISK_FULL),
                std::io::ErrorKind::ReadOnlyFilesystem => return Some(READ_ONLY_FS),
                _ => {}
            }
        }
        cur = e.source();
    }
    None
}

/// The broad kind of an [`Error`], which decides the CLI's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input or usage (exit 2).
    Invalid,
    /// A conflicting holder or version (exit 3).
    Conflict,
    /// Lease lost, stale token, or not the holder (exit 5).
    LeaseLost,
    /// Anything else (exit 1).
    Runtime,
}

impl Error {
    /// An [`Error::Invalid`] for `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }

    /// An [`Error::Store`] with context. A full disk or a read-only file system
    /// anywhere in `source`'s chain is named first ("disk full: …"), because "I/O
    /// error" or "cannot open lock file" does not tell the user what to fix.
    pub fn store(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        let source = source.into();
        let mut context = context.into();
        if let Some(what) = fs_trouble(&*source)
            && !context.starts_with(what)
        {
            context = format!("{what}: {context}");
        }
        Error::Store { context, source }
    }

    /// An [`Error::Unavailable`]: `context` names what was being done and where.
    pub fn unavailable(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Unavailable {
            context: context.into(),
            source: source.into(),
        }
    }

    /// Whether running the same call again, unchanged, may succeed and cannot do harm.
    ///
    /// | variant | retryable | why |
    /// |---|---|---|
    /// | [`Error::Busy`] | yes | a wait ran out; the call was not applied |
    /// | [`Error::Unavailable`] | yes | nothing was sent |
    /// | [`Error::OutcomeUnknown`] | **no** | it may have been applied: look first (`show`, `list`), or retry a claim with the same request id ([`crate::Store::claim_keyed`]); `done` and `release` by the same token answer a repeat as such |
    /// | [`Error::VersionConflict`] | not as is | re-read the task, then update from the new version |
    /// | [`Error::Store`] | no | an unexplained failure: retrying blindly may loop |
    /// | every other variant | no | the answer will not change by asking again |
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Busy { .. } | Error::Unavailable { .. })
    }

    /// An [`Error::OutcomeUnknown`]: `context` names the write and the server.
    pub fn outcome_unknown(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::OutcomeUnknown {
            context: context.into(),
            source: source.into(),
        }
    }

    /// Refuses a database whose schema version `found` is newer than `supported`, the
    /// newest this build writes: an older tasklease must not touch a newer schema.
    ///
    /// # Errors
    /// [`Error::SchemaTooNew`].
    #[doc(hidden)] // for the stores and front ends, not a program (docs/library.md)
    pub fn refuse_newer_schema(found: i64, supported: i64) -> Result<()> {
        if found > supported {
            return Err(Error::SchemaTooNew { found, supported });
        }
        Ok(())
    }

    /// The broad kind, for exit codes and tool errors.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid { .. } | Error::NotFound(_) | Error::Exists(_) => ErrorKind::Invalid,
            Error::VersionConflict { .. } | Error::Held { .. } => ErrorKind::Conflict,
            Error::LeaseLost { .. } | Error::NotHolder { .. } => ErrorKind::LeaseLost,
            Error::SchemaTooNew { .. }
            | Error::Busy { .. }
            | Error::Unavailable { .. }
            | Error::Store { .. }
            | Error::OutcomeUnknown { .. } => ErrorKind::Runtime,
        }
    }

    /// A short stable name for JSON output, e.g. `lease_lost`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid",
            Error::NotFound(_) => "not_found",
            Error::LeaseLost { .. } => "lease_lost",
            Error::NotHolder { .. } => "not_holder",
            Error::VersionConflict { .. } => "version_conflict",
            Error::Held { .. } => "held",
            Error::Exists(_) => "exists",
            Error::SchemaTooNew { .. } => "schema_too_new",
            Error::Busy { .. } => "busy",
            Error::Unavailable { .. } => "unavailable",
            Error::Store { .. } => "store",
            Error::OutcomeUnknown { .. } => "outcome_unknown",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::Conflict => "conflict",
            ErrorKind::LeaseLost => "lease_lost",
            ErrorKind::Runtime => "runtime",
        })
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_waits_and_unsent_calls_are_retryable() {
        let busy = Error::Busy {
            what: "the turn".into(),
            waited: std::time::Duration::from_secs(1),
            holder: None,
        };
        assert!(busy.is_retryable());
        assert!(Error::unavailable("connect", "refused").is_retryable());
        assert!(!Error::outcome_unknown("claim", "reset").is_retryable());
        assert!(!Error::store("read", "corrupt").is_retryable());
        assert!(!Error::invalid("id", "bad").is_retryable());
        let conflict = Error::VersionConflict {
            task: TaskId::new("t").unwrap(),
            expected: Version::new(1),
            current: Version::new(2),
        };
        assert!(!conflict.is_retryable());
        assert_eq!(Error::unavailable("c", "s").kind(), ErrorKind::Runtime);
        assert_eq!(Error::unavailable("c", "s").code(), "unavailable");
    }
}
