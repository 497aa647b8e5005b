//! exarp-go's `.todo2/` (github.com/davidl71/exarp-go): the SQLite database
//! `todo2.db` and the older JSON state `state.todo2.json`.
//!
//! The database's schema is whatever `migrations/` made of it, and a user's file may be
//! at any of those versions (columns added by 002–008; later versions recreate the
//! table with `''`/`0` instead of NULL). So columns are read **by name**, `''` and `0`
//! count as absent, and every column this reader does not know is counted as not
//! carried over rather than refused. The file is opened with SQLite's `mode=ro`: it is
//! never changed. Both files go through one mapping ([`todo`]), row by row.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::types::Value as Sql;
use serde_json::{Map, Value};

use super::{DroppedLease, Notes, Read, bad, is_empty, parse_time, tag_from, title_from};
use crate::{ImportTask, Millis, Priority, Result, Status, TaskId};

/// How each field of a task is imported: (exarp-go field, what becomes of it). The
/// same table is in `docs/import.md`.
pub const FIELDS: &[(&str, &str)] = &[
    ("id", "id (refused, listed, if it breaks our id rules)"),
    (
        "content",
        "title (first line; further lines go to the description)",
    ),
    (
        "name",
        "title when content is empty; otherwise not carried over if different",
    ),
    ("long_description", "description"),
    ("status Todo (pending, not started, new)", "todo"),
    (
        "status In Progress (in-progress, working, active)",
        "todo; the holder is reported as a dropped lease",
    ),
    ("status Review (needs review, awaiting review)", "review"),
    ("status Done (completed, finished, closed)", "done"),
    ("status Blocked (waiting)", "blocked"),
    ("status Cancelled (canceled, abandoned)", "cancelled"),
    (
        "priority low, medium, high, critical (any case; empty = medium)",
        "the same priority",
    ),
    (
        "tags / task_tags",
        "tags (characters outside our tag rules become -, counted)",
    ),
    ("dependencies / task_dependencies", "dependencies"),
    (
        "parent_id",
        "parent (one that is not a task id, or the task itself, is counted)",
    ),
    (
        "created (RFC 3339), else created_at or created_ts (epoch seconds)",
        "created_at",
    ),
    (
        "last_modified (RFC 3339), else updated_at or last_modified_ts (epoch seconds)",
        "updated_at",
    ),
    (
        "status_enum, priority_enum, priority_rank (later schemas)",
        "implied by status and priority",
    ),
    ("completed", "implied by status"),
    (
        "assignee, assigned_to, agent, host, assigned_at, lock_until",
        "the holder of an In Progress task, reported; otherwise not carried over",
    ),
    (
        "task_comments, task_changes, task_activities rows",
        "not carried over, counted",
    ),
    (
        "every other column or key",
        "not carried over, counted per field",
    ),
];

/// The newest exarp-go schema version this reader was written against.
pub const KNOWN_SCHEMA: i64 = 18;

/// Fields [`todo`] reads; other non-empty ones are counted as not carried over.
const READ: &[&str] = &[
    "id",
    "content",
    "name",
    "long_description",
    "status",
    "priority",
    "tags",
    "dependencies",
    "parent_id",
    "created",
    "created_at",
    "last_modified",
    "updated_at",
    "created_ts",
    "last_modified_ts",
    "status_enum",
    "priority_enum",
    "priority_rank",
    "completed",
    "assignee",
    "assigned_to",
    "agent",
    "host",
    "assigned_at",
    "lock_until",
];

/// Reads exarp-go's database, read-only.
///
/// # Errors
/// [`crate::Error::Invalid`] when it is not an exarp-go database or a row is bad
/// (naming the row's id, the column and what is allowed); [`crate::Error::Store`] when
/// it cannot be read.
pub fn read_db(path: &Path) -> Result<Read> {
    let failed = |e: rusqlite::Error| {
        crate::Error::store(
            format!("cannot read the exarp-go database {}", path.display()),
            e,
        )
    };
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(failed)?;
    let has = |t: &str| tables.iter().any(|n| n == t);
    if !has("tasks") {
        return Err(crate::Error::invalid(
            "path",
            format!(
                "{} is a SQLite database without exarp-go's tasks table; allowed: a \
                 .todo2/todo2.db, or pass --from",
                path.display()
            ),
        ));
    }
    let mut notes = Notes::default();
    if has("schema_migrations") {
        let v: Option<i64> = conn
            .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
                r.get(0)
            })
            .map_err(failed)?;
        if let Some(v) = v.filter(|v| *v > KNOWN_SCHEMA) {
            notes.remarks.push(format!(
                "the exarp-go database is at schema version {v}, newer than the newest this \
                 importer knows ({KNOWN_SCHEMA}); its columns were read by name and any new \
                 ones are listed as not carried over"
            ));
        }
    }
    let mut tags: HashMap<String, Vec<Value>> = HashMap::new();
    if has("task_tags") {
        let rows: Vec<(String, String)> = conn
            .prepare("SELECT task_id, tag FROM task_tags ORDER BY rowid")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(failed)?;
        for (t, g) in rows {
            tags.entry(t).or_default().push(Value::String(g));
        }
    }
    let mut deps: HashMap<String, Vec<Value>> = HashMap::new();
    if has("task_dependencies") {
        let rows: Vec<(String, String)> = conn
            .prepare("SELECT task_id, depends_on_id FROM task_dependencies ORDER BY rowid")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(failed)?;
        for (t, d) in rows {
            deps.entry(t).or_default().push(Value::String(d));
        }
    }
    for t in ["task_comments", "task_changes", "task_activities"] {
        if has(t) {
            let n: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                .map_err(failed)?;
            if n > 0 {
                *notes
                    .not_carried
                    .entry(format!("exarp.{t} rows"))
                    .or_default() += n as u64;
            }
        }
    }
    let mut stmt = conn
        .prepare("SELECT * FROM tasks ORDER BY rowid")
        .map_err(failed)?;
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let rows: Vec<Map<String, Value>> = stmt
        .query_map([], |r| {
            let mut m = Map::new();
            for (i, n) in names.iter().enumerate() {
                m.insert(n.clone(), json_of(r.get::<_, Sql>(i)?));
            }
            Ok(m)
        })
        .and_then(|rows| rows.collect())
        .map_err(failed)?;
    let mut r = Read {
        tasks: Vec::new(),
        notes,
    };
    let mut bad_ids = Vec::new();
    for (i, mut row) in rows.into_iter().enumerate() {
        let id = string(row.get("id"));
        let at = format!("{} task {id:?} (row {})", path.display(), i + 1);
        if TaskId::new(&id).is_err() {
            bad_ids.push((format!("row {}", i + 1), id));
            continue;
        }
        row.insert(
            "tags".into(),
            Value::Array(tags.remove(&id).unwrap_or_default()),
        );
        row.insert(
            "dependencies".into(),
            Value::Array(deps.remove(&id).unwrap_or_default()),
        );
        // The format's own default, not a value.
        if row.get("metadata_format").and_then(Value::as_str) == Some("json") {
            row.remove("metadata_format");
        }
        r.tasks.push(todo(&at, &row, true, &mut r.notes)?);
    }
    super::refuse_bad_ids(path, &bad_ids)?;
    Ok(r)
}

fn json_of(v: Sql) -> Value {
    match v {
        Sql::Null => Value::Null,
        Sql::Integer(i) => Value::from(i),
        Sql::Real(f) => Value::from(f),
        Sql::Text(s) => Value::String(s),
        Sql::Blob(b) => Value::Bool(!b.is_empty()),
    }
}

/// Reads exarp-go's JSON state: `{"todos": [...]}`.
///
/// # Errors
/// [`crate::Error::Invalid`] naming the todo and field.
pub fn read_json(path: &Path) -> Result<Read> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::Error::store(format!("cannot read {}", path.display()), e))?;
    let doc: Map<String, Value> = serde_json::from_str(&text).map_err(|e| {
        crate::Error::invalid(
            "path",
            format!(
                "{}: not a JSON object ({e}); allowed: exarp-go's {{\"todos\": [...]}}",
                path.display()
            ),
        )
    })?;
    let Some(Value::Array(todos)) = doc.get("todos") else {
        return Err(crate::Error::invalid(
            "todos",
            format!(
                "{}: no \"todos\" list; allowed: exarp-go's {{\"todos\": [...]}}",
                path.display()
            ),
        ));
    };
    let mut r = Read::default();
    for (k, v) in &doc {
        if k != "todos" && !is_empty(v) {
            r.notes.drop_field(format!("exarp.state.{k}"));
        }
    }
    let mut bad_ids = Vec::new();
    for (i, t) in todos.iter().enumerate() {
        let Value::Object(o) = t else {
            return Err(crate::Error::invalid(
                "todos",
                format!(
                    "{} todo {}: not an object; allowed: one object per todo",
                    path.display(),
                    i + 1
                ),
            ));
        };
        let id = string(o.get("id"));
        if TaskId::new(&id).is_err() {
            bad_ids.push((format!("todo {}", i + 1), id));
            continue;
        }
        let at = format!("{} todo {id:?} (number {})", path.display(), i + 1);
        r.tasks.push(todo(&at, o, false, &mut r.notes)?);
    }
    super::refuse_bad_ids(path, &bad_ids)?;
    Ok(r)
}

fn string(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// Epoch seconds from an integer column; `0` is absent.
fn seconds(v: Option<&Value>) -> Option<Millis> {
    v.and_then(Value::as_i64)
        .filter(|s| *s > 0)
        .map(|s| Millis::from_millis(s * 1000))
}

/// One task, from a database row (`db`) or a JSON todo: the one mapping both share.
fn todo(at: &str, o: &Map<String, Value>, db: bool, notes: &mut Notes) -> Result<ImportTask> {
    let prefix = if db { "exarp.tasks." } else { "exarp.todos." };
    for (k, v) in o {
        if !READ.contains(&k.as_str()) && !is_empty(v) {
            notes.drop_field(format!("{prefix}{k}"));
        }
    }
    let id = TaskId::new(&string(o.get("id")))?;
    let mut description = string(o.get("long_description"));
    let content = string(o.get("content"));
    let name = string(o.get("name"));
    let title = match title_from(&content, &mut description) {
        Some(t) => {
            if !name.trim().is_empty() && name.trim() != t {
                notes.drop_field(format!("{prefix}name"));
            }
            t
        }
        None => title_from(&name, &mut description)
            .ok_or_else(|| bad(at, "content", "empty, and so is name; allowed: a title"))?,
    };
    let mut t = ImportTask::new(id.clone(), title);
    t.description = description;
    let raw = string(o.get("status"));
    let (status, held) = status(&raw).ok_or_else(|| {
        bad(
            at,
            "status",
            format!(
                "{raw:?} is not an exarp-go status; allowed (any case): Todo, In Progress, \
                 Review, Done, Cancelled, Blocked, and the older pending, not started, new, \
                 in-progress, working, active, needs review, awaiting review, completed, \
                 finished, closed, waiting, canceled, abandoned"
            ),
        )
    })?;
    t.status = status;
    let holder = ["agent", "assignee", "assigned_to", "host"]
        .iter()
        .map(|f| string(o.get(*f)))
        .find(|s| !s.is_empty() && s != "0");
    if held {
        let until = seconds(o.get("lock_until")).map(|m| m.to_rfc3339());
        notes.leases_dropped.push(DroppedLease {
            id: id.clone(),
            holder: holder.unwrap_or_else(|| "(nobody named)".into()),
            until,
        });
    } else {
        for f in [
            "assignee",
            "assigned_to",
            "agent",
            "host",
            "assigned_at",
            "lock_until",
        ] {
            if o.get(f)
                .is_some_and(|v| !is_empty(v) && v.as_str() != Some("0"))
            {
                notes.drop_field(format!("{prefix}{f}"));
            }
        }
    }
    let p = string(o.get("priority"));
    t.priority = match p.trim().to_ascii_lowercase().as_str() {
        "" | "medium" => Priority::Medium,
        "low" => Priority::Low,
        "high" => Priority::High,
        "critical" => Priority::Critical,
        _ => {
            return Err(bad(
                at,
                "priority",
                format!(
                    "{p:?} is not an exarp-go priority; allowed (any case): low, medium, high, critical"
                ),
            ));
        }
    };
    let mut tags = Vec::new();
    if let Some(Value::Array(a)) = o.get("tags") {
        for g in a {
            let g = string(Some(g));
            if let Some(tag) = tag_from(&g, "exarp tags", notes) {
                tags.push(tag);
            }
        }
    }
    let parent = string(o.get("parent_id"));
    if !parent.is_empty() && parent != "0" {
        match TaskId::new(&parent) {
            Ok(p) if p != t.id => t.parent = Some(p),
            _ => notes.drop_field(format!("{prefix}parent_id (not a task id, or its own)")),
        }
    }
    t.tags = crate::distinct_tags(&tags);
    if let Some(Value::Array(a)) = o.get("dependencies") {
        for d in a {
            let d = string(Some(d));
            let d = TaskId::new(&d).map_err(|e| bad(at, "dependencies", e))?;
            if d == id {
                return Err(bad(
                    at,
                    "dependencies",
                    format!("{id} depends on itself; allowed: other tasks"),
                ));
            }
            if !t.deps.contains(&d) {
                t.deps.push(d);
            }
        }
    }
    // Text first, then epoch seconds: `created_at`/`updated_at` (002–008), then the
    // `*_ts` columns later schemas recreate the table with.
    let time = |text: &str, secs: &str, field: &'static str| -> Result<Option<Millis>> {
        match parse_time(&string(o.get(text))).map_err(|e| bad(at, field, e))? {
            Some(m) => Ok(Some(m)),
            None => Ok(seconds(o.get(secs)).or_else(|| seconds(o.get(&format!("{text}_ts"))))),
        }
    };
    // The JSON state spells creation `created` or `created_at` (RFC 3339 either way).
    t.created_at = if db {
        time("created", "created_at", "created")?
    } else {
        match time("created", "", "created")? {
            Some(m) => Some(m),
            None => {
                parse_time(&string(o.get("created_at"))).map_err(|e| bad(at, "created_at", e))?
            }
        }
    };
    t.updated_at = if db {
        time("last_modified", "updated_at", "last_modified")?
    } else {
        time("last_modified", "", "last_modified")?
    };
    t.validate()
        .map_err(|e| crate::Error::invalid("line", format!("{at}: {e}")))?;
    Ok(t)
}

/// exarp-go's status spellings (its `NormalizeStatus`), and whether the task was held.
fn status(s: &str) -> Option<(Status, bool)> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "" | "todo" | "pending" | "not started" | "new" => (Status::Todo, false),
        "in progress" | "in-progress" | "in_progress" | "inprogress" | "working" | "active" => {
            (Status::Todo, true)
        }
        "review" | "needs review" | "awaiting review" => (Status::Review, false),
        "done" | "completed" | "finished" | "closed" => (Status::Done, false),
        "blocked" | "waiting" => (Status::Blocked, false),
        "cancelled" | "canceled" | "abandoned" => (Status::Cancelled, false),
        _ => return None,
    })
}
