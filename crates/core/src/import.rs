//! What an import hands a store: whole tasks, with their ids, statuses and times, to be
//! written in one transaction ([`crate::Store::import`]).
//!
//! Readers of other trackers' files (`tasklease::import`) turn their rows into
//! [`ImportTask`]s; every store upserts them the same way, so "import twice changes
//! nothing" and "a leased task is never overwritten" hold for every source and store.

use serde::{Deserialize, Serialize};

use crate::{Error, Millis, Priority, Status, Tag, TaskId, Version, distinct_tags};

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
    /// The parent (epic): in the batch or already in the store. An import sets the
    /// parent of every task it creates or overwrites, so `None` clears one.
    pub parent: Option<TaskId>,
    /// The version a newly created row starts at (1 unless the source is our export).
    pub version: Version,
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
            parent: None,
            version: Version::FIRST,
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
            parent: self.parent.clone(),
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
        if self.version < Version::FIRST || self.attempts < 0 {
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
    /// status, priority, tags, dependencies, parent and attempts; not times or version).
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
            && self.parent == t.parent
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// Checks the parents a batch sets, before a store writes them: each parent is in the
/// batch or the store, and no task becomes its own ancestor once the batch's parents
/// replace the stored ones (a cycle may mix the batch's edges with stored ones).
///
/// `stored` answers for an id outside the batch: `None` when there is no such task,
/// else its stored parent. It is called at most once per id; a store calls this inside
/// its write transaction, so the answers cannot change before the batch is written.
/// Linear in the batch: each task's chain is walked once, shared tails remembered.
///
/// A task a live lease holds keeps its stored row, parent included, but is judged here
/// with the batch's parent: such a batch may be refused for a cycle it would not have
/// closed. That errs on the safe side and needs a lease, a cycle and an import at once.
///
/// # Errors
/// [`Error::Invalid`] (`parent`) naming the missing parent, or the cycle.
pub fn check_batch_parents(
    batch: &ImportBatch,
    mut stored: impl FnMut(&TaskId) -> Result<Option<Option<TaskId>>, Error>,
) -> Result<(), Error> {
    use std::collections::{HashMap, HashSet};
    let inside: HashMap<&TaskId, Option<&TaskId>> = batch
        .tasks
        .iter()
        .map(|t| (&t.id, t.parent.as_ref()))
        .collect();
    let mut outside: HashMap<TaskId, Option<TaskId>> = HashMap::new();
    // Tasks whose chain of parents is known to end at a root.
    let mut rooted: HashSet<TaskId> = HashSet::new();
    for t in &batch.tasks {
        let Some(first) = &t.parent else { continue };
        if first == &t.id {
            return Err(crate::graph::parent_cycle_error(
                &t.id,
                std::slice::from_ref(&t.id),
            ));
        }
        let mut path: Vec<TaskId> = vec![t.id.clone()];
        let mut on_path: HashSet<TaskId> = HashSet::from([t.id.clone()]);
        let mut cur = first.clone();
        loop {
            if rooted.contains(&cur) {
                break;
            }
            if !on_path.insert(cur.clone()) {
                // `cur` is its own ancestor: name the cycle from it.
                let at = path.iter().position(|p| p == &cur).unwrap_or(0);
                let mut chain: Vec<TaskId> = path[at + 1..].to_vec();
                chain.push(cur.clone());
                return Err(crate::graph::parent_cycle_error(&path[at], &chain));
            }
            path.push(cur.clone());
            let next = match inside.get(&cur) {
                Some(p) => p.cloned(),
                None => {
                    if !outside.contains_key(&cur) {
                        let got = stored(&cur)?;
                        let Some(p) = got else {
                            let child = &path[path.len() - 2];
                            return Err(Error::invalid(
                                "parent",
                                format!(
                                    "{child}: parent {cur} is neither in the import nor in \
                                     the database"
                                ),
                            ));
                        };
                        outside.insert(cur.clone(), p);
                    }
                    outside[&cur].clone()
                }
            };
            match next {
                Some(n) => cur = n,
                None => break,
            }
        }
        rooted.extend(path);
    }
    Ok(())
}

#[cfg(test)]
mod parent_tests {
    use super::*;

    fn id(s: &str) -> TaskId {
        TaskId::new(s).unwrap()
    }

    fn batch(edges: &[(&str, Option<&str>)]) -> ImportBatch {
        ImportBatch {
            tasks: edges
                .iter()
                .map(|(t, p)| ImportTask {
                    parent: p.map(id),
                    ..ImportTask::new(id(t), "t")
                })
                .collect(),
            dry_run: false,
        }
    }

    /// The store holds `root`, and `mid` under it.
    fn stored(t: &TaskId) -> Result<Option<Option<TaskId>>, Error> {
        Ok(match t.as_str() {
            "root" => Some(None),
            "mid" => Some(Some(id("root"))),
            "x" => Some(Some(id("a"))),
            _ => None,
        })
    }

    fn refusal(edges: &[(&str, Option<&str>)]) -> String {
        match check_batch_parents(&batch(edges), stored) {
            Err(Error::Invalid { field, message }) => {
                assert_eq!(field, "parent");
                message
            }
            other => panic!("{edges:?}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn parents_in_the_batch_or_the_store_pass() {
        let edges = [
            ("a", Some("b")),
            ("b", Some("mid")),
            ("c", Some("b")),
            ("d", None),
        ];
        check_batch_parents(&batch(&edges), stored).unwrap();
    }

    #[test]
    fn a_missing_parent_is_named() {
        let m = refusal(&[("a", Some("b")), ("b", Some("ghost"))]);
        assert!(m.contains("b: parent ghost is neither"), "{m}");
    }

    #[test]
    fn cycles_are_spelled_out_within_the_batch_and_through_the_store() {
        let m = refusal(&[("a", Some("a"))]);
        assert!(m.contains("a → a"), "{m}");
        let m = refusal(&[("a", Some("b")), ("b", Some("c")), ("c", Some("a"))]);
        assert!(m.contains("a → b → c → a"), "{m}");
        // A walk that starts outside the cycle still names the cycle itself.
        let m = refusal(&[("z", Some("a")), ("a", Some("b")), ("b", Some("a"))]);
        assert!(m.contains("a → b → a"), "{m}");
        // x is stored under a; the batch puts a under x.
        let m = refusal(&[("a", Some("x"))]);
        assert!(m.contains("a → x → a"), "{m}");
    }
}
