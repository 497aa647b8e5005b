//! The one error type every store translates its failures into.

use std::fmt;

use crate::{AgentId, LostWhy, Millis, TaskId, Token};

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
    #[error("lease lost on {task}: token {token} {}", lost_detail(why))]
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
        "{task} is held by {holder} until {until}; only the lease holder may change it \
         (pass its --token)"
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
         re-read it (tasklease show {task}) and retry"
    )]
    VersionConflict {
        /// The task.
        task: TaskId,
        /// The version the caller read.
        expected: i64,
        /// The version stored now.
        current: i64,
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

    /// The database failed (I/O, corruption, connection). Not the caller's fault.
    #[error("{context}: {source}")]
    Store {
        /// What we were doing.
        context: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
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

    /// An [`Error::Store`] with context.
    pub fn store(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Store {
            context: context.into(),
            source: source.into(),
        }
    }

    /// Refuses a database whose schema version `found` is newer than `supported`, the
    /// newest this build writes: an older tasklease must not touch a newer schema.
    ///
    /// # Errors
    /// [`Error::SchemaTooNew`].
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
            Error::SchemaTooNew { .. } | Error::Store { .. } => ErrorKind::Runtime,
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
            Error::Store { .. } => "store",
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
