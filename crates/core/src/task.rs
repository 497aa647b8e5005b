//! Tasks: what they hold and the values their fields may take.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::id::quote;
use crate::{AgentId, Error, Millis, Tag, TaskId, Version};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $s:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name used in SQL, JSON and on the command line.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s,)+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                match s {
                    $($s => Ok($name::$variant),)+
                    _ => Err(Error::invalid($what, format!(
                        "{} is not a {}; allowed: {}",
                        quote(s),
                        $what,
                        [$($s),+].join(", "),
                    ))),
                }
            }
        }
    };
}

string_enum! {
    /// Where a task is in its life.
    Status, "status" {
        /// Ready to be claimed once its dependencies are done.
        #[default]
        Todo = "todo",
        /// Held under a lease by an agent.
        InProgress = "in_progress",
        /// Work finished, awaiting review; claimable by id.
        Review = "review",
        /// Finished. Not claimable; unblocks dependants.
        Done = "done",
        /// Abandoned. Not claimable.
        Cancelled = "cancelled",
        /// Waiting on something outside tasklease; claimable by id.
        Blocked = "blocked",
    }
}

string_enum! {
    /// How urgent a task is. `claim --next` takes `critical` before `high` before
    /// `medium` before `low`, oldest first within one priority.
    Priority, "priority" {
        /// Before everything else.
        Critical = "critical",
        /// Before medium and low.
        High = "high",
        /// The default.
        #[default]
        Medium = "medium",
        /// Last.
        Low = "low",
    }
}

impl Priority {
    /// Sort rank: 0 is claimed first.
    pub fn rank(self) -> i64 {
        match self {
            Priority::Critical => 0,
            Priority::High => 1,
            Priority::Medium => 2,
            Priority::Low => 3,
        }
    }

    /// The priority of a sort rank, if it is one.
    pub fn from_rank(rank: i64) -> Option<Priority> {
        Priority::ALL.get(usize::try_from(rank).ok()?).copied()
    }
}

/// The statuses a lease holder may hand a task back in when releasing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseTo {
    /// Back to the pool (the default).
    #[default]
    Todo,
    /// Finished, for someone to look at.
    Review,
    /// Cannot go on for now.
    Blocked,
}

impl ReleaseTo {
    /// The status the task ends in.
    pub fn status(self) -> Status {
        match self {
            ReleaseTo::Todo => Status::Todo,
            ReleaseTo::Review => Status::Review,
            ReleaseTo::Blocked => Status::Blocked,
        }
    }
}

impl FromStr for ReleaseTo {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "todo" => Ok(ReleaseTo::Todo),
            "review" => Ok(ReleaseTo::Review),
            "blocked" => Ok(ReleaseTo::Blocked),
            _ => Err(Error::invalid(
                "status",
                format!(
                    "{} is not a status a task can be released to; allowed: todo, review, \
                     blocked (use `done` to finish a task)",
                    quote(s)
                ),
            )),
        }
    }
}

/// A task as stored. The fencing token is not part of it: only the holder learns it,
/// from the claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// The id.
    pub id: TaskId,
    /// One line saying what to do.
    pub title: String,
    /// Longer text; may be empty.
    pub description: String,
    /// Where the task is in its life.
    pub status: Status,
    /// How urgent.
    pub priority: Priority,
    /// Free-form labels.
    pub tags: Vec<Tag>,
    /// Tasks that must be done before this one is ready.
    pub deps: Vec<TaskId>,
    /// How many of `deps` are not satisfied yet (neither done nor cancelled).
    pub waiting_on: i64,
    /// The task this one is part of (an epic), if any. Never blocks either way.
    pub parent: Option<TaskId>,
    /// Optimistic-concurrency counter, bumped by every change to the row.
    pub version: Version,
    /// The agent holding the lease, when `status` is `in_progress`.
    pub assignee: Option<AgentId>,
    /// When the current holder first claimed it.
    pub assigned_at: Option<Millis>,
    /// When the current lease runs out (database clock).
    pub lock_until: Option<Millis>,
    /// How many leases have ended without the task being done (released, reaped,
    /// forced).
    pub attempts: i64,
    /// Creation time (database clock).
    pub created_at: Millis,
    /// Time of the last change (database clock).
    pub updated_at: Millis,
}

impl Task {
    /// Whether a lease on this task is live at `now`.
    pub fn is_leased_at(&self, now: Millis) -> bool {
        self.status == Status::InProgress && self.lock_until.is_some_and(|u| now < u)
    }
}

/// A task to create.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct NewTask {
    /// The id; `None` lets the store pick the next free `T-<n>`.
    pub id: Option<TaskId>,
    /// One line saying what to do; must not be empty.
    pub title: String,
    /// Longer text.
    #[serde(default)]
    pub description: String,
    /// How urgent.
    #[serde(default)]
    pub priority: Priority,
    /// Free-form labels.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Tasks that must be done first; each must exist.
    #[serde(default)]
    pub deps: Vec<TaskId>,
    /// The task this one is part of; must exist.
    #[serde(default)]
    pub parent: Option<TaskId>,
}

impl NewTask {
    /// Checks what the types cannot: a title, and no repeated or self dependencies.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        validate_title(&self.title)?;
        validate_description(&self.description)?;
        validate_tags(&self.tags)?;
        if self.deps.len() > MAX_DEPS {
            return Err(Error::invalid(
                "dependency",
                format!(
                    "{} dependencies given; a task may have at most {MAX_DEPS}",
                    self.deps.len()
                ),
            ));
        }
        // A set, not a scan of the ones before: the check stays linear in the count.
        let mut seen = std::collections::HashSet::with_capacity(self.deps.len());
        for d in &self.deps {
            if !seen.insert(d) {
                return Err(Error::invalid(
                    "dependency",
                    format!("dependency {d} is given twice"),
                ));
            }
            if self.id.as_ref() == Some(d) {
                return Err(Error::invalid(
                    "dependency",
                    format!("task {d} cannot depend on itself"),
                ));
            }
        }
        if let Some(p) = &self.parent
            && self.id.as_ref() == Some(p)
        {
            return Err(Error::invalid(
                "parent",
                format!("task {p} cannot be its own parent"),
            ));
        }
        Ok(())
    }
}

/// The most distinct tags a task may carry; repeated tags count once.
pub const MAX_TAGS: usize = 64;

/// The most dependencies a task may have (each is a row the store writes and checks
/// in the one transaction that adds the task).
pub const MAX_DEPS: usize = 1000;

/// `tags` without repeats, in the order first given: what the stores write.
pub fn distinct_tags(tags: &[Tag]) -> Vec<Tag> {
    let mut seen = std::collections::HashSet::with_capacity(tags.len());
    tags.iter().filter(|t| seen.insert(*t)).cloned().collect()
}

/// Checks a tag list: at most [`MAX_TAGS`] distinct tags.
///
/// # Errors
/// [`Error::Invalid`] naming the cap.
pub fn validate_tags(tags: &[Tag]) -> Result<(), Error> {
    if tags.len() <= MAX_TAGS {
        return Ok(());
    }
    let n = distinct_tags(tags).len();
    if n > MAX_TAGS {
        return Err(Error::invalid(
            "tag",
            format!("{n} distinct tags given; a task may have at most {MAX_TAGS}"),
        ));
    }
    Ok(())
}

/// The longest title or description we store, in bytes.
pub const MAX_TEXT_LEN: usize = 64 * 1024;

/// Checks a title: not blank, at most 64 KiB, one line, and none of the
/// characters a terminal acts on ([`crate::text::forbidden`]).
///
/// # Errors
/// [`Error::Invalid`].
pub fn validate_title(title: &str) -> Result<(), Error> {
    if title.trim().is_empty() {
        return Err(Error::invalid(
            "title",
            "the title is empty; give a one-line summary of the task",
        ));
    }
    if title.contains(['\n', '\r']) {
        return Err(Error::invalid(
            "title",
            "the title has a line break; put longer text in the description",
        ));
    }
    validate_text("title", title, &[])
}

/// The longest reason `release` or `done` may give, in bytes.
pub const MAX_REASON_LEN: usize = 280;

/// Why a lease was released or a task done, in a few words (`--reason`): one line of
/// printable text, at most [`MAX_REASON_LEN`] bytes, recorded in the history.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Reason(String);

impl Reason {
    /// A checked reason.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming what is wrong: empty, longer than
    /// [`MAX_REASON_LEN`] bytes, a line break or a control character.
    pub fn new(s: &str) -> Result<Reason, Error> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::invalid(
                "reason",
                "the reason is empty; say in a few words why, or leave it out",
            ));
        }
        if s.len() > MAX_REASON_LEN {
            return Err(Error::invalid(
                "reason",
                format!(
                    "the reason is {} bytes long; allowed: at most {MAX_REASON_LEN} (a few \
                     words; put more in the task's description)",
                    s.len()
                ),
            ));
        }
        if s.contains(['\n', '\r']) {
            return Err(Error::invalid(
                "reason",
                "the reason has a line break; allowed: one line",
            ));
        }
        validate_text("reason", s, &[])?;
        Ok(Reason(s.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Reason {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Reason::new(s)
    }
}

/// Checks a description: as a title, but several lines and tabs are fine.
///
/// # Errors
/// [`Error::Invalid`].
pub fn validate_description(description: &str) -> Result<(), Error> {
    validate_text("description", description, &['\n', '\t'])
}

fn validate_text(what: &'static str, s: &str, allowed: &[char]) -> Result<(), Error> {
    if s.len() > MAX_TEXT_LEN {
        return Err(Error::invalid(
            what,
            format!(
                "the {what} is {} bytes long; allowed: at most {MAX_TEXT_LEN}",
                s.len()
            ),
        ));
    }
    if let Some(c) = crate::text::forbidden(s, allowed) {
        let also = if allowed.is_empty() {
            ""
        } else {
            " (line feeds and tabs are fine; end lines with \\n alone)"
        };
        return Err(Error::invalid(
            what,
            format!(
                "the {what} contains {}; allowed: printable text without control \
                 characters or bidirectional overrides and isolates{also}",
                crate::text::describe(c)
            ),
        ));
    }
    Ok(())
}

/// Changes to a task made under optimistic concurrency: fields left `None` stay.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct TaskPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New priority.
    pub priority: Option<Priority>,
    /// New status. `in_progress` is refused: claim instead. Leaving `in_progress`
    /// ends the lease.
    pub status: Option<Status>,
    /// Replaces every tag.
    pub tags: Option<Vec<Tag>>,
    /// `Some(Some(p))` makes `p` the parent, `Some(None)` removes the parent.
    #[serde(default)]
    pub parent: Option<Option<TaskId>>,
}

impl TaskPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == TaskPatch::default()
    }

    /// Checks what the types cannot.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.is_empty() {
            return Err(Error::invalid(
                "update",
                "nothing to change; give at least one of title, description, priority, \
                 status, tags, parent",
            ));
        }
        if let Some(t) = &self.title {
            validate_title(t)?;
        }
        if let Some(d) = &self.description {
            validate_description(d)?;
        }
        if let Some(t) = &self.tags {
            validate_tags(t)?;
        }
        if self.status == Some(Status::InProgress) {
            return Err(Error::invalid(
                "status",
                "a task is put in_progress only by claiming it; allowed here: todo, review, \
                 done, cancelled, blocked",
            ));
        }
        Ok(())
    }
}

/// Which tasks `list` returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only tasks in one of these statuses (all when empty).
    pub statuses: Vec<Status>,
    /// Only tasks held by this agent.
    pub assignee: Option<AgentId>,
    /// Only tasks with this tag.
    pub tag: Option<Tag>,
    /// At most this many (all when `None`).
    pub limit: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_priorities_parse() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), *s);
        }
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>().unwrap(), *p);
            assert_eq!(Priority::from_rank(p.rank()), Some(*p));
        }
        let msg = "urgent".parse::<Priority>().unwrap_err().to_string();
        assert!(msg.contains("critical, high, medium, low"), "{msg}");
        let msg = "doing".parse::<Status>().unwrap_err().to_string();
        assert!(msg.contains("todo, in_progress"), "{msg}");
        assert!("done".parse::<ReleaseTo>().is_err());
    }

    #[test]
    fn new_task_validation() {
        let mut t = NewTask {
            title: "x".into(),
            ..Default::default()
        };
        assert!(t.validate().is_ok());
        t.title = " ".into();
        assert!(t.validate().is_err());
        t.title = "a\nb".into();
        assert!(t.validate().is_err());
        t.title = "ok".into();
        let a = TaskId::new("A").unwrap();
        t.deps = vec![a.clone(), a.clone()];
        assert!(t.validate().is_err());
        t.deps = vec![a.clone()];
        t.id = Some(a);
        assert!(t.validate().is_err());
    }

    #[test]
    fn tags_and_deps_are_capped() {
        let tag = |i: usize| crate::Tag::new(&format!("t{i}")).unwrap();
        let mut t = NewTask {
            title: "x".into(),
            tags: (0..MAX_TAGS).map(tag).collect(),
            ..Default::default()
        };
        assert!(t.validate().is_ok());
        // Repeats count once.
        t.tags.push(tag(0));
        assert!(t.validate().is_ok());
        assert_eq!(distinct_tags(&t.tags).len(), MAX_TAGS);
        t.tags.push(tag(MAX_TAGS));
        let e = t.validate().unwrap_err().to_string();
        assert!(e.contains("at most 64"), "{e}");
        t.tags.clear();
        t.deps = (0..MAX_DEPS)
            .map(|i| TaskId::new(&format!("d{i}")).unwrap())
            .collect();
        assert!(t.validate().is_ok());
        t.deps.push(TaskId::new("d0").unwrap());
        let e = t.validate().unwrap_err().to_string();
        assert!(e.contains("at most 1000"), "{e}");
        t.deps.pop();
        t.deps[MAX_DEPS - 1] = TaskId::new("d0").unwrap();
        let e = t.validate().unwrap_err().to_string();
        assert!(e.contains("d0 is given twice"), "{e}");
        let p = TaskPatch {
            tags: Some((0..=MAX_TAGS).map(tag).collect()),
            ..Default::default()
        };
        assert!(p.validate().is_err());
    }

    #[test]
    fn patch_validation() {
        assert!(TaskPatch::default().validate().is_err());
        let p = TaskPatch {
            status: Some(Status::InProgress),
            ..Default::default()
        };
        assert!(p.validate().is_err());
        let p = TaskPatch {
            priority: Some(Priority::High),
            ..Default::default()
        };
        assert!(p.validate().is_ok());
    }
}
