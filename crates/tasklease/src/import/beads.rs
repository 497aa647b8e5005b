//! beads' `issues.jsonl` (github.com/steveyegge/beads, `internal/types/types.go`:
//! `Issue`, `Dependency`, the `Status*` and `Dep*` constants): one issue a line.
//!
//! beads' "ready" is: status `open`, and no blocking dependency (`blocks`,
//! `conditional-blocks`, `waits-for`) on an issue that is not closed. Those three link
//! types therefore become dependencies and `closed` becomes `done`, so `list` of ready
//! work after an import is what `bd ready` listed. Statuses beads keeps out of ready
//! work but that are not finished (`blocked`, `deferred`, `pinned`) become `blocked`
//! (claimable by id, never by `claim --next`), the original kept as a tag. Every other
//! link type stays visible on the task as a tag `link:TYPE:ID`. `parent-child` (the
//! issue is a child of `depends_on_id`, its epic) becomes the task's parent; beads
//! allows several, tasklease one: the first is the parent, any further one stays a tag
//! `parent:ID`, counted.

use std::io::BufRead;
use std::path::Path;

use serde_json::{Map, Value};

use super::{DroppedLease, Notes, Read, bad, is_empty, parse_time, tag_from, title_from};
use crate::{ImportTask, Priority, Result, Status, TaskId};

/// How each field of an issue is imported: (beads field, what becomes of it). The same
/// table is in `docs/import.md`.
pub const FIELDS: &[(&str, &str)] = &[
    ("id", "id (refused, listed, if it breaks our id rules)"),
    (
        "title",
        "title (first line; further lines go to the description)",
    ),
    ("description", "description"),
    ("design", "description, under a \"## Design\" heading"),
    (
        "acceptance_criteria",
        "description, under a \"## Acceptance criteria\" heading",
    ),
    ("notes", "description, under a \"## Notes\" heading"),
    ("status open", "todo"),
    (
        "status in_progress, hooked",
        "todo; the holder (assignee) is reported as a dropped lease",
    ),
    ("status blocked", "blocked"),
    (
        "status deferred, pinned",
        "blocked, with tag status:deferred / status:pinned",
    ),
    ("status closed", "done"),
    ("status tombstone", "not imported: skipped as deleted"),
    ("priority 0, 1, 2, 3", "critical, high, medium, low"),
    ("priority 4", "low, with tag priority:4"),
    ("issue_type", "tag type:TYPE"),
    (
        "labels",
        "tags (characters outside our tag rules become -, counted)",
    ),
    (
        "dependencies blocks, conditional-blocks, waits-for",
        "dependencies",
    ),
    (
        "dependencies parent-child",
        "parent (the first; any further one a tag parent:ID, counted)",
    ),
    (
        "dependencies of any other type",
        "tag link:TYPE:ID (not carried when over 64 bytes)",
    ),
    ("created_at", "created_at"),
    ("updated_at", "updated_at"),
    ("every other field", "not carried over, counted per field"),
];

/// The statuses a line may have.
const STATUSES: &str = "open, in_progress, hooked, blocked, deferred, pinned, closed, tombstone";

/// The fields read (the rest are counted as not carried over).
const READ: &[&str] = &[
    "id",
    "title",
    "description",
    "design",
    "acceptance_criteria",
    "notes",
    "status",
    "priority",
    "issue_type",
    "labels",
    "dependencies",
    "created_at",
    "updated_at",
];

/// Reads an `issues.jsonl`.
///
/// # Errors
/// [`crate::Error::Invalid`] naming the line, field and what is allowed; every id
/// that breaks our rules listed at once.
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
        let o: Map<String, Value> = serde_json::from_str(&line).map_err(|e| {
            crate::Error::invalid(
                "line",
                format!("{at}: not a JSON object ({e}); allowed: one beads issue per line"),
            )
        })?;
        let id = text(&at, &o, "id")?;
        if id.is_empty() {
            return Err(bad(&at, "id", "missing; every beads issue has an id"));
        }
        if TaskId::new(&id).is_err() {
            bad_ids.push((format!("line {}", i + 1), id));
            continue;
        }
        if let Some(t) = issue(&at, &o, &mut r.notes)? {
            r.tasks.push(t);
        }
    }
    super::refuse_bad_ids(path, &bad_ids)?;
    Ok(r)
}

fn text(at: &str, o: &Map<String, Value>, field: &'static str) -> Result<String> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(bad(
            at,
            field,
            format!("{v} is not a string; allowed: a string"),
        )),
    }
}

fn issue(at: &str, o: &Map<String, Value>, notes: &mut Notes) -> Result<Option<ImportTask>> {
    let id = TaskId::new(&text(at, o, "id")?)?;
    let status = text(at, o, "status")?;
    if status == "tombstone" {
        notes
            .skipped
            .entry("tombstone: deleted in beads".into())
            .or_default()
            .push(id.to_string());
        return Ok(None);
    }
    for (k, v) in o {
        if !READ.contains(&k.as_str()) && !is_empty(v) {
            notes.drop_field(format!("beads.{k}"));
        }
    }
    let mut description = text(at, o, "description")?;
    for (field, head) in [
        ("design", "Design"),
        ("acceptance_criteria", "Acceptance criteria"),
        ("notes", "Notes"),
    ] {
        let v = text(at, o, field)?;
        if !v.is_empty() {
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(&format!("## {head}\n\n{v}"));
        }
    }
    let title = title_from(&text(at, o, "title")?, &mut description)
        .ok_or_else(|| bad(at, "title", "empty; allowed: a one-line summary"))?;
    let mut t = ImportTask::new(id.clone(), title);
    t.description = description;
    let mut tags = Vec::new();
    t.status = match status.as_str() {
        "" | "open" => Status::Todo,
        "in_progress" | "hooked" => {
            notes.leases_dropped.push(DroppedLease {
                id: id.clone(),
                holder: text(at, o, "assignee")?,
                until: None,
            });
            Status::Todo
        }
        "blocked" => Status::Blocked,
        "deferred" | "pinned" => {
            tags.push(format!("status:{status}"));
            Status::Blocked
        }
        "closed" => Status::Done,
        s => {
            return Err(bad(
                at,
                "status",
                format!("{s:?} is not a beads status; allowed: {STATUSES}"),
            ));
        }
    };
    t.priority = match o.get("priority") {
        None | Some(Value::Null) => Priority::Medium,
        Some(v) => match v.as_i64() {
            Some(0) => Priority::Critical,
            Some(1) => Priority::High,
            Some(2) => Priority::Medium,
            Some(3) => Priority::Low,
            Some(4) => {
                tags.push("priority:4".into());
                Priority::Low
            }
            _ => {
                return Err(bad(
                    at,
                    "priority",
                    format!("{v} is not a beads priority; allowed: 0, 1, 2, 3, 4"),
                ));
            }
        },
    };
    let kind = text(at, o, "issue_type")?;
    if !kind.is_empty() {
        tags.push(format!("type:{kind}"));
    }
    match o.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for l in a {
                let Value::String(l) = l else {
                    return Err(bad(
                        at,
                        "labels",
                        format!("{l} is not a string; allowed: a list of strings"),
                    ));
                };
                tags.push(l.clone());
            }
        }
        Some(v) => {
            return Err(bad(
                at,
                "labels",
                format!("{v} is not a list; allowed: a list of strings"),
            ));
        }
    }
    match o.get("dependencies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for d in a {
                link(at, &id, d, &mut t, &mut tags, notes)?;
            }
        }
        Some(v) => {
            return Err(bad(
                at,
                "dependencies",
                format!("{v} is not a list; allowed: a list of {{issue_id, depends_on_id, type}}"),
            ));
        }
    }
    t.tags = tags
        .iter()
        .filter_map(|s| tag_from(s, "beads labels as tags", notes))
        .collect();
    t.tags = crate::distinct_tags(&t.tags);
    if t.tags.len() > crate::MAX_TAGS {
        return Err(bad(
            at,
            "labels",
            format!(
                "{} tags; allowed: at most {}",
                t.tags.len(),
                crate::MAX_TAGS
            ),
        ));
    }
    t.created_at = parse_time(&text(at, o, "created_at")?).map_err(|e| bad(at, "created_at", e))?;
    t.updated_at = parse_time(&text(at, o, "updated_at")?).map_err(|e| bad(at, "updated_at", e))?;
    t.validate()
        .map_err(|e| crate::Error::invalid("line", format!("{at}: {e}")))?;
    Ok(Some(t))
}

/// One entry of `dependencies`: a dependency, the parent, or a tag.
fn link(
    at: &str,
    id: &TaskId,
    d: &Value,
    t: &mut ImportTask,
    tags: &mut Vec<String>,
    notes: &mut Notes,
) -> Result<()> {
    let Value::Object(d) = d else {
        return Err(bad(
            at,
            "dependencies",
            format!("{d} is not an object; allowed: {{issue_id, depends_on_id, type}}"),
        ));
    };
    let from = text(at, d, "issue_id")?;
    if !from.is_empty() && from != id.as_str() {
        return Err(bad(
            at,
            "dependencies",
            format!("issue_id {from:?} is not this issue ({id}); allowed: this issue's id"),
        ));
    }
    let on = text(at, d, "depends_on_id")?;
    let on_id = TaskId::new(&on).map_err(|e| bad(at, "dependencies", e))?;
    let kind = text(at, d, "type")?;
    match kind.as_str() {
        "" | "blocks" | "conditional-blocks" | "waits-for" => {
            if on_id == *id {
                return Err(bad(
                    at,
                    "dependencies",
                    format!("{id} depends on itself; allowed: other issues"),
                ));
            }
            if !t.deps.contains(&on_id) {
                t.deps.push(on_id);
            }
        }
        "parent-child" if on_id == *id => {
            return Err(bad(
                at,
                "dependencies",
                format!("{id} is its own parent; allowed: another issue"),
            ));
        }
        "parent-child" => match &t.parent {
            None => t.parent = Some(on_id),
            Some(p) if *p == on_id => {}
            Some(_) => {
                tags.push(format!("parent:{on}"));
                notes.drop_field("beads.dependencies parent-child after the first (tag parent:ID)");
            }
        },
        k => {
            let tag = format!("link:{k}:{on}");
            if crate::Tag::new(&tag).is_ok() {
                tags.push(tag);
            } else {
                notes.drop_field(format!("beads.dependencies {k} (does not fit a tag)"));
            }
        }
    }
    Ok(())
}
