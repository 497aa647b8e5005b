//! What an import hands a store: whole tasks, with their ids, statuses and times, to be
//! written in one transaction ([`crate::Store::import`]).
//!
//! Readers of other trackers' files (`tasklease::import`) turn their rows into
//! [`ImportTask`]s; every store upserts them the same way, so "import twice changes
//! nothing" and "a leased task is never overwritten" hold for every source and store.

use serde::Serialize;

use crate::{Error, Millis, Priority, Status, Tag, TaskId, distinct_tags};

/// One task as an import brings it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportTask {
    /// The id, kept as the source had it.
    pub id: TaskId,
    /// One line.
    pub title: String,
    /// Longer text.
    pub description: String,
    /// Any status but `in_progress`: a lease cannot be imported (nobody holds its token).
    pub status: Status,
    /// How urgent.
    pub priority: Priority,
    /// Labels.
    pub tags: Vec<Tag>,
    /// Tasks that must be done first: each in the batch or already in the store.
    pub deps: Vec<TaskId>,
    /// The version a newly created row starts at (1 unless the source is our export).
    pub version: i64,
    /// Leases that ended without `done`.
    pub attempts: i64,
    /// Creation time; the store's clock when `None`.
    pub created_at: Option<Millis>,
    /// Last change; the creation time when `None`.
    pub updated_at: Option<Millis>,
}

impl ImportTask {
    /// A task with `id` and `title` and everything else at its default.
    pub fn new(id: TaskId, title: impl Into<String>) -> ImportTask {
        ImportTask {
            id,
            title: title.into(),
            description: String::new(),
            status: Status::Todo,
            priority: Priority::Medium,
            tags: Vec::new(),
            deps: Vec::new(),
            version: 1,
            attempts: 0,
            created_at: None,
            updated_at: None,
        }
    }

    /// Checks what the types cannot (the same rules as `add`), plus: no `in_progress`,
    /// a version of at least 1, no negative attempts.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the task and the field.
    pub fn validate(&self) -> Result<(), Error> {
        let new = crate::NewTask {
            id: Some(self.id.clone()),
            title: self.title.clone(),
            description: self.description.clone(),
            priority: self.priority,
            tags: self.tags.clone(),
            deps: self.deps.clone(),
            // Parents are carried as `parent:ID` tags for now (docs/import.md).
            parent: None,
        };
        let named = |e: Error| match e {
            Error::Invalid { field, message } => {
                Error::invalid(field, format!("{}: {message}", self.id))
            }
            e => e,
        };
        new.validate().map_err(named)?;
        if self.status == Status::InProgress {
            return Err(Error::invalid(
                "status",
                format!(
                    "{}: in_progress cannot be imported (a lease needs its holder's token); \
                     allowed: todo, review, done, cancelled, blocked",
                    self.id
                ),
            ));
        }
        if self.version < 1 || self.attempts < 0 {
            return Err(Error::invalid(
                "version",
                format!(
                    "{}: version {} / attempts {}; allowed: version >= 1, attempts >= 0",
                    self.id, self.version, self.attempts
                ),
            ));
        }
        Ok(())
    }

    /// Whether a stored task already says what this one says (title, description,
    /// status, priority, tags, dependencies and attempts; not times or version).
    pub fn same_as(&self, t: &crate::Task) -> bool {
        let mut a = distinct_tags(&self.tags);
        let mut b = t.tags.clone();
        a.sort();
        b.sort();
        let mut da = self.deps.clone();
        let mut db = t.deps.clone();
        da.sort();
        db.sort();
        self.title == t.title
            && self.description == t.description
            && self.status == t.status
            && self.priority == t.priority
            && self.attempts == t.attempts
            && a == b
            && da == db
    }
}

/// What [`crate::Store::import`] writes: every task in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportBatch {
    /// The tasks, created in this order (it becomes their age: "oldest first").
    pub tasks: Vec<ImportTask>,
    /// Work everything out, then roll back: the report says what would happen.
    pub dry_run: bool,
}

/// What an import did, per task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportOutcome {
    /// Tasks that did not exist.
    pub created: u64,
    /// Tasks that existed and differed; each row's version grew by one.
    pub updated: u64,
    /// Tasks that existed and said the same already.
    pub unchanged: u64,
    /// Tasks left alone because a live lease holds them.
    pub leased: Vec<TaskId>,
}

/// Checks a batch before a store opens a transaction: each task valid, no id twice.
///
/// # Errors
/// [`Error::Invalid`] naming the task.
pub fn validate_batch(batch: &ImportBatch) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::with_capacity(batch.tasks.len());
    for t in &batch.tasks {
        t.validate()?;
        if !seen.insert(&t.id) {
            return Err(Error::invalid(
                "task id",
                format!(
                    "{} appears twice in the import; allowed: each id once",
                    t.id
                ),
            ));
        }
    }
    Ok(())
}
