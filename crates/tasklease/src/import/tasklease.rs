//! Our own format: `tasklease export` writes it, `tasklease import` reads it back.
//!
//! JSON Lines, one task a line, sorted by id, keys always in the order of
//! [`Line`]'s fields, times as RFC 3339 with milliseconds: a project can keep the file
//! in git and diff it, and `export | import` into a fresh database then `export` again
//! gives the same bytes. What cannot come back is a live lease (its holder's token is
//! not ours to hand out): an `in_progress` line is imported as `todo` and reported.
//! `history` (written by `--with-history`) is read and not carried over, counted.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{DroppedLease, Notes, Read, bad, parse_time};
use crate::{Event, ImportTask, ListFilter, Millis, Priority, Result, Status, Store, Tag, TaskId};

/// The format's version, the first key of every line. A reader refuses a larger one.
/// Version 2 added `parent`; a version 1 line (no `parent`) reads as a task without one.
pub const FORMAT_VERSION: u32 = 2;

/// How each field of a line is imported: (field, what becomes of it).
pub const FIELDS: &[(&str, &str)] = &[
    ("tasklease", "format version; a newer one is refused"),
    ("id", "id"),
    ("title", "title"),
    ("description", "description"),
    (
        "status",
        "status; in_progress becomes todo (the lease is reported, not kept)",
    ),
    ("priority", "priority"),
    ("tags", "tags"),
    ("deps", "dependencies"),
    ("parent", "parent (absent before format version 2)"),
    ("version", "version of a created task"),
    ("attempts", "attempts"),
    ("waiting_on", "recomputed from the dependencies"),
    (
        "assignee, assigned_at, lock_until",
        "the lease: reported, not kept",
    ),
    ("created_at, updated_at", "times of a created task"),
    ("history", "not carried over (counted)"),
];

/// One line of the export. The field order is the key order on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// [`FORMAT_VERSION`].
    pub tasklease: u32,
    /// The id.
    pub id: String,
    /// The title.
    pub title: String,
    /// The description.
    pub description: String,
    /// The status.
    pub status: String,
    /// The priority.
    pub priority: String,
    /// The tags, as stored.
    pub tags: Vec<String>,
    /// The dependencies, oldest first.
    pub deps: Vec<String>,
    /// The parent (format version 2; absent in version 1).
    #[serde(default)]
    pub parent: Option<String>,
    /// How many dependencies are not done.
    pub waiting_on: i64,
    /// The row's version.
    pub version: crate::Version,
    /// Leases that ended without `done`.
    pub attempts: i64,
    /// The lease holder, when in progress.
    pub assignee: Option<String>,
    /// When the holder first claimed it.
    pub assigned_at: Option<String>,
    /// When the lease runs out.
    pub lock_until: Option<String>,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
    /// The lease events (`--with-history`), oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<serde_json::Value>>,
}

fn time(m: Millis) -> String {
    m.to_rfc3339()
}

impl Line {
    fn of(t: &crate::Task, history: Option<Vec<serde_json::Value>>) -> Line {
        Line {
            tasklease: FORMAT_VERSION,
            id: t.id.to_string(),
            title: t.title.clone(),
            description: t.description.clone(),
            status: t.status.to_string(),
            priority: t.priority.to_string(),
            tags: t.tags.iter().map(|g| g.as_str().to_owned()).collect(),
            deps: t.deps.iter().map(ToString::to_string).collect(),
            parent: t.parent.as_ref().map(ToString::to_string),
            waiting_on: t.waiting_on,
            version: t.version,
            attempts: t.attempts,
            assignee: t.assignee.as_ref().map(ToString::to_string),
            assigned_at: t.assigned_at.map(time),
            lock_until: t.lock_until.map(time),
            created_at: time(t.created_at),
            updated_at: time(t.updated_at),
            history,
        }
    }
}

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Exported {
    /// Tasks written.
    pub tasks: u64,
}

/// Writes every task of `store` to `out`, one JSON line each, sorted by id; with
/// `with_history`, each line carries the task's lease events.
///
/// # Errors
/// Store failures; [`crate::Error::Store`] when `out` cannot be written.
pub fn export(store: &dyn Store, out: &mut dyn Write, with_history: bool) -> Result<Exported> {
    let mut tasks = store.list(&ListFilter::default())?;
    tasks.sort_by(|a, b| a.id.cmp(&b.id));
    let mut history: std::collections::HashMap<TaskId, Vec<serde_json::Value>> =
        std::collections::HashMap::new();
    if with_history {
        for e in store.log(None, u32::MAX)? {
            history.entry(e.task.clone()).or_default().push(event(&e));
        }
    }
    let write = |e: std::io::Error| crate::Error::store("cannot write the export", e);
    let mut buf = std::io::BufWriter::new(out);
    for t in &tasks {
        let h = with_history.then(|| history.remove(&t.id).unwrap_or_default());
        serde_json::to_writer(&mut buf, &Line::of(t, h))
            .map_err(|e| crate::Error::store("cannot write the export", e))?;
        buf.write_all(b"\n").map_err(write)?;
    }
    buf.flush().map_err(write)?;
    Ok(Exported {
        tasks: tasks.len() as u64,
    })
}

fn event(e: &Event) -> serde_json::Value {
    serde_json::json!({
        "seq": e.seq,
        "at": e.at.to_rfc3339(),
        "kind": e.kind,
        "agent": e.agent.as_str(),
        // The history keeps fence numbers only; the key predates secrets.
        "token": e.fence,
        "detail": e.detail,
        "lease_ms": e.lease_ms,
    })
}

/// Reads an export.
///
/// # Errors
/// [`crate::Error::Invalid`] naming the line and field for anything that is not a
/// line of our format (or is from a newer one); nothing is read then.
pub fn read(path: &Path) -> Result<Read> {
    let file = std::fs::File::open(path)
        .map_err(|e| crate::Error::store(format!("cannot read {}", path.display()), e))?;
    let mut r = Read::default();
    let mut bad_ids = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let at = format!("{} line {}", path.display(), i + 1);
        let line = line.map_err(|e| crate::Error::store(format!("cannot read {at}"), e))?;
        if line.trim().is_empty() {
            continue;
        }
        // The version first: a newer file must say so, not fail on a key it added.
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| {
            crate::Error::invalid(
                "line",
                format!("{at}: not JSON ({e}); allowed: one task per line"),
            )
        })?;
        if let Some(n) = v.get("tasklease").and_then(serde_json::Value::as_u64)
            && n > u64::from(FORMAT_VERSION)
        {
            return Err(bad(
                &at,
                "tasklease",
                format!(
                    "format version {n} is newer than this tasklease reads \
                         ({FORMAT_VERSION}); upgrade tasklease"
                ),
            ));
        }
        let l: Line = serde_json::from_value(v).map_err(|e| {
            crate::Error::invalid(
                "line",
                format!(
                    "{at}: not a tasklease export line: {e}; allowed: the keys {}",
                    FIELDS.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        match TaskId::new(&l.id) {
            Ok(_) => {}
            Err(_) => {
                bad_ids.push((format!("line {}", i + 1), l.id));
                continue;
            }
        }
        r.tasks.push(task(&at, l, &mut r.notes)?);
    }
    super::refuse_bad_ids(path, &bad_ids)?;
    Ok(r)
}

fn task(at: &str, l: Line, notes: &mut Notes) -> Result<ImportTask> {
    let id = TaskId::new(&l.id)?;
    let mut status: Status = l.status.parse().map_err(|e| bad(at, "status", e))?;
    if status == Status::InProgress {
        status = Status::Todo;
        notes.leases_dropped.push(DroppedLease {
            id: id.clone(),
            holder: l.assignee.clone().unwrap_or_default(),
            until: l.lock_until.clone(),
        });
    }
    let priority: Priority = l.priority.parse().map_err(|e| bad(at, "priority", e))?;
    let tags = l
        .tags
        .iter()
        .map(|t| Tag::new(t).map_err(|e| bad(at, "tags", e)))
        .collect::<Result<_>>()?;
    let deps = l
        .deps
        .iter()
        .map(|d| TaskId::new(d).map_err(|e| bad(at, "deps", e)))
        .collect::<Result<_>>()?;
    let parent = l
        .parent
        .as_deref()
        .map(|p| TaskId::new(p).map_err(|e| bad(at, "parent", e)))
        .transpose()?;
    let when = |field: &'static str, s: &str| -> Result<Option<Millis>> {
        parse_time(s).map_err(|e| bad(at, field, e))
    };
    if let Some(h) = &l.history {
        for _ in h {
            notes.drop_field("history (lease events)");
        }
    }
    let t = ImportTask {
        id,
        title: l.title,
        description: l.description,
        status,
        priority,
        tags,
        deps,
        parent,
        version: l.version,
        attempts: l.attempts,
        created_at: when("created_at", &l.created_at)?,
        updated_at: when("updated_at", &l.updated_at)?,
    };
    t.validate()
        .map_err(|e| crate::Error::invalid("line", format!("{at}: {e}")))?;
    Ok(t)
}
