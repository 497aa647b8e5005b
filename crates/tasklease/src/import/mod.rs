//! Moving in: reading other trackers' files (exarp-go's `.todo2/`, beads'
//! `issues.jsonl`) and our own export into tasks, and writing them in one transaction.
//!
//! # Why readers and one writer
//!
//! Each source format has a module of its own ([`exarp`], [`beads`], [`tasklease`])
//! that only *reads*: it turns rows into [`ImportTask`]s and says, in an [`Notes`],
//! every source field it did not carry over and how often. Its field mapping is a
//! table of data next to the code ([`exarp::FIELDS`], …), the same table as in
//! `docs/import.md` (a test holds the two together). Everything after reading is
//! shared: dependencies that point outside the file, cycles, the upsert
//! ([`crate::Store::import`], one transaction per import on every store), the report.
//! So "importing twice changes nothing", "a leased task is never overwritten" and "a
//! bad line writes nothing" are one piece of code, not one per format.
//!
//! # Failure cases
//!
//! - A bad line or row refuses the whole import before anything is written
//!   ([`Error::Invalid`], exit 2), naming the file, the line or row, the field and what
//!   is allowed. Ids that break our id rules are all listed at once (refused, not
//!   mapped: a mapped id would break every reference to it outside the file).
//! - A dependency on an id in neither the file nor the database is kept: the
//!   dependant waits on a placeholder task of that id (status `blocked`, tag
//!   `import:missing`), which the report lists and `show` names; finishing the
//!   placeholder (`update ID --status done`) or importing the real task releases it.
//!   `drop_missing_deps` drops such edges instead (reported too).
//! - A dependency cycle is refused, naming its ids: its tasks could never be ready.
//! - The store failing mid-way rolls the one transaction back: nothing is written.
//! - Sources are opened read-only; an exarp-go database is opened with SQLite's
//!   `mode=ro`, so the file is never changed.

pub mod beads;
pub mod exarp;
pub mod tasklease;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use crate::{Error, ImportBatch, ImportTask, Result, Status, Store, Tag, TaskId};

/// A source format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// exarp-go's SQLite database, `.todo2/todo2.db`.
    ExarpDb,
    /// exarp-go's JSON state, `.todo2/state.todo2.json`.
    ExarpJson,
    /// beads' `issues.jsonl`.
    Beads,
    /// Our own export (`tasklease export`).
    Tasklease,
}

/// What `--from` names: a source family, the exact format read from the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum From {
    /// exarp-go (database or JSON state).
    Exarp,
    /// beads.
    Beads,
    /// tasklease.
    Tasklease,
}

impl std::str::FromStr for From {
    type Err = Error;
    fn from_str(s: &str) -> Result<From> {
        match s {
            "exarp" => Ok(From::Exarp),
            "beads" => Ok(From::Beads),
            "tasklease" => Ok(From::Tasklease),
            _ => Err(Error::invalid(
                "from",
                format!("{s:?} is not a source format; allowed: exarp, beads, tasklease"),
            )),
        }
    }
}

/// The names a directory is looked into for, in this order; the first found is read.
pub const DIRECTORY_NAMES: &[&str] = &[
    ".todo2/todo2.db",
    ".todo2/state.todo2.json",
    ".beads/issues.jsonl",
    "issues.jsonl",
];

/// One file to read, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
}

/// Finds what to read at `path` (a file, or a directory holding one of
/// [`DIRECTORY_NAMES`]) and its format: `from` if given, else told from the content.
///
/// # Errors
/// [`Error::Invalid`] (field `path`) when nothing importable is there or its format
/// cannot be told.
pub fn detect(path: &Path, from: Option<From>) -> Result<Source> {
    let file = if path.is_dir() {
        DIRECTORY_NAMES
            .iter()
            .map(|n| path.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::invalid(
                    "path",
                    format!(
                        "{} holds nothing to import; looked for {}",
                        path.display(),
                        DIRECTORY_NAMES.join(", ")
                    ),
                )
            })?
    } else if path.is_file() {
        path.to_path_buf()
    } else {
        return Err(Error::invalid(
            "path",
            format!(
                "{} does not exist or is not a file or directory",
                path.display()
            ),
        ));
    };
    let head = read_head(&file)?;
    let sqlite = head.starts_with(b"SQLite format 3\0");
    let format = match (from, sqlite) {
        (Some(From::Exarp) | None, true) => Format::ExarpDb,
        (Some(_), true) => {
            return Err(Error::invalid(
                "from",
                format!(
                    "{} is a SQLite database, which only --from exarp reads",
                    file.display()
                ),
            ));
        }
        (Some(From::Exarp), false) => Format::ExarpJson,
        (Some(From::Beads), false) => Format::Beads,
        (Some(From::Tasklease), false) => Format::Tasklease,
        (None, false) => sniff(&file, &head)?,
    };
    Ok(Source { path: file, format })
}

fn read_head(file: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(file)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .map_err(|e| Error::store(format!("cannot read {}", file.display()), e))?;
    Ok(head)
}

/// Tells a text file's format from its first line.
fn sniff(file: &Path, head: &[u8]) -> Result<Format> {
    let text = String::from_utf8_lossy(head);
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let unknown = |why: &str| {
        Error::invalid(
            "path",
            format!(
                "cannot tell the format of {}: {why}; pass --from exarp|beads|tasklease",
                file.display()
            ),
        )
    };
    if !first.trim_start().starts_with('{') {
        return Err(unknown("it is neither a SQLite database nor JSON"));
    }
    // A whole-file JSON object (exarp-go's state) rarely fits one line; a JSONL line does.
    match serde_json::from_str::<serde_json::Map<String, Value>>(first) {
        Ok(o) if o.contains_key("todos") => Ok(Format::ExarpJson),
        Ok(o) if o.contains_key("tasklease") => Ok(Format::Tasklease),
        Ok(o) if o.contains_key("id") && o.contains_key("title") => Ok(Format::Beads),
        Ok(_) => Err(unknown(
            "its first line is JSON but neither a beads issue (id, title) nor a tasklease \
             export line (tasklease, id)",
        )),
        Err(_) if text.contains("\"todos\"") => Ok(Format::ExarpJson),
        Err(_) => Err(unknown("its first line is not a JSON object")),
    }
}

/// What a reader says besides the tasks: everything it could not carry over.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Notes {
    /// Source field → how many rows had a value there that no task field holds.
    pub not_carried: BTreeMap<String, u64>,
    /// Reason → the source ids not imported for it (e.g. beads tombstones).
    pub skipped: BTreeMap<String, Vec<String>>,
    /// Tasks that were held in the source; imported as `todo`, since the holder has no
    /// token of ours.
    pub leases_dropped: Vec<DroppedLease>,
    /// Values rewritten to fit our rules (e.g. a label with a space, as a tag): what →
    /// how many.
    pub rewritten: BTreeMap<String, u64>,
    /// Anything else worth saying (e.g. a newer source schema, read by column name).
    pub remarks: Vec<String>,
}

impl Notes {
    /// Counts one value of `field` that was not carried over.
    pub fn drop_field(&mut self, field: impl Into<String>) {
        *self.not_carried.entry(field.into()).or_default() += 1;
    }

    /// Counts one value rewritten to fit.
    pub fn rewrite(&mut self, what: &str) {
        *self.rewritten.entry(what.to_owned()).or_default() += 1;
    }

    fn merge(&mut self, o: Notes) {
        for (k, v) in o.not_carried {
            *self.not_carried.entry(k).or_default() += v;
        }
        for (k, v) in o.skipped {
            self.skipped.entry(k).or_default().extend(v);
        }
        for (k, v) in o.rewritten {
            *self.rewritten.entry(k).or_default() += v;
        }
        self.leases_dropped.extend(o.leases_dropped);
        self.remarks.extend(o.remarks);
    }
}

/// A task that was held in its source when imported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DroppedLease {
    /// The task.
    pub id: TaskId,
    /// Who held it, as the source says.
    pub holder: String,
    /// Until when, as the source says (RFC 3339), if it says.
    pub until: Option<String>,
}

/// What one reader produced.
#[derive(Clone, Debug, Default)]
pub struct Read {
    /// The tasks, in the source's order.
    pub tasks: Vec<ImportTask>,
    /// What was not carried over.
    pub notes: Notes,
}

/// Reads one source.
///
/// # Errors
/// [`Error::Invalid`] naming the line or row, field and what is allowed;
/// [`Error::Store`] when the file cannot be read.
pub fn read(source: &Source) -> Result<Read> {
    match source.format {
        Format::ExarpDb => exarp::read_db(&source.path),
        Format::ExarpJson => exarp::read_json(&source.path),
        Format::Beads => beads::read(&source.path),
        Format::Tasklease => tasklease::read(&source.path),
    }
}

/// How to import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Report only; write nothing.
    pub dry_run: bool,
    /// Drop dependencies on ids in neither the sources nor the database, instead of
    /// waiting on placeholders.
    pub drop_missing_deps: bool,
}

/// What an import did (or, dry, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// What was read.
    pub sources: Vec<Source>,
    /// Nothing was written.
    pub dry_run: bool,
    /// Tasks read (placeholders not included).
    pub read: u64,
    /// Tasks created (placeholders included).
    pub created: u64,
    /// Tasks overwritten.
    pub updated: u64,
    /// Tasks that said the same already.
    pub unchanged: u64,
    /// Reason → ids not imported: the readers' reasons, and `leased` (a live lease
    /// holds the task here).
    pub skipped: BTreeMap<String, Vec<String>>,
    /// Source field → how many values were not carried over.
    pub not_carried: BTreeMap<String, u64>,
    /// What was rewritten to fit, with counts.
    pub rewritten: BTreeMap<String, u64>,
    /// Tasks held in their source, imported as `todo`.
    pub leases_dropped: Vec<DroppedLease>,
    /// Task → the ids it depends on that are in neither the sources nor the database.
    pub missing_deps: BTreeMap<String, Vec<String>>,
    /// The placeholder tasks made for missing ids (none with `drop_missing_deps`).
    pub placeholders: Vec<String>,
    /// Missing dependencies dropped (`drop_missing_deps`).
    pub dropped_deps: u64,
    /// Task → its parent, in neither the sources nor the database: imported without a
    /// parent, the id kept as a tag `parent:ID`.
    pub missing_parents: BTreeMap<String, String>,
    /// Remarks.
    pub remarks: Vec<String>,
}

impl Report {
    /// The report as one JSON object (`--json`).
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        if let Value::Object(o) = &mut v {
            o.insert("ok".into(), json!(true));
            o.insert("outcome".into(), json!("imported"));
        }
        v
    }

    /// The report for people, one fact a line.
    pub fn human(&self) -> String {
        let mut out = Vec::new();
        let from: Vec<String> = self
            .sources
            .iter()
            .map(|s| format!("{} ({})", s.path.display(), format_name(s.format)))
            .collect();
        out.push(format!(
            "{}{} tasks read from {}",
            if self.dry_run {
                "dry run, nothing written: "
            } else {
                ""
            },
            self.read,
            from.join(", ")
        ));
        out.push(format!(
            "created {}, updated {}, unchanged {}",
            self.created, self.updated, self.unchanged
        ));
        for (why, ids) in &self.skipped {
            out.push(format!("skipped {} ({why}): {}", ids.len(), list(ids)));
        }
        for l in &self.leases_dropped {
            out.push(format!(
                "{} was held by {}{} in the source; imported as todo (a lease needs its \
                 holder's token)",
                l.id,
                l.holder,
                l.until
                    .as_deref()
                    .map(|u| format!(" until {u}"))
                    .unwrap_or_default()
            ));
        }
        for (task, deps) in &self.missing_deps {
            out.push(format!(
                "{task} depends on {}, in neither the import nor the database: {}",
                deps.join(", "),
                if self.dropped_deps > 0 && self.placeholders.is_empty() {
                    "dropped"
                } else {
                    "waiting on a blocked placeholder of that id"
                }
            ));
        }
        for (task, parent) in &self.missing_parents {
            out.push(format!(
                "{task}'s parent {parent} is in neither the import nor the database: \
                 imported without a parent, tagged parent:{parent}"
            ));
        }
        if self.not_carried.is_empty() {
            out.push(if self.leases_dropped.is_empty() {
                "every source field was carried over".into()
            } else {
                "every other source field was carried over".into()
            });
        } else {
            out.push("not carried over (field: values):".into());
            for (f, n) in &self.not_carried {
                out.push(format!("  {f}: {n}"));
            }
        }
        for (w, n) in &self.rewritten {
            out.push(format!("rewritten to fit: {w}: {n}"));
        }
        out.extend(self.remarks.iter().cloned());
        out.join("\n")
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::ExarpDb => "exarp-go database",
        Format::ExarpJson => "exarp-go JSON state",
        Format::Beads => "beads JSONL",
        Format::Tasklease => "tasklease export",
    }
}

fn list(ids: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut s = ids
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        s.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    s
}

/// The tag every placeholder for a missing dependency carries.
pub const MISSING_TAG: &str = "import:missing";

/// Reads `sources` and writes their tasks to `store` in one transaction.
///
/// `progress` hears what is happening, for imports that take a while.
///
/// # Errors
/// [`Error::Invalid`] for a bad line or row, an id in two sources, or a dependency
/// cycle — nothing is written then; store failures.
pub fn import(
    store: &dyn Store,
    sources: &[Source],
    opts: &Options,
    progress: &dyn Fn(&str),
) -> Result<Report> {
    let mut tasks = Vec::new();
    let mut notes = Notes::default();
    let mut origin: HashMap<TaskId, usize> = HashMap::new();
    for (i, s) in sources.iter().enumerate() {
        let r = read(s)?;
        progress(&format!(
            "read {} tasks from {}",
            r.tasks.len(),
            s.path.display()
        ));
        for t in &r.tasks {
            if let Some(j) = origin.insert(t.id.clone(), i)
                && j != i
            {
                return Err(Error::invalid(
                    "task id",
                    format!(
                        "{} is in both {} and {}; allowed: each id in one source",
                        t.id,
                        sources[j].path.display(),
                        s.path.display()
                    ),
                ));
            }
        }
        tasks.extend(r.tasks);
        notes.merge(r.notes);
    }
    let mut report = Report {
        sources: sources.to_vec(),
        dry_run: opts.dry_run,
        read: tasks.len() as u64,
        ..Report::default()
    };
    resolve_missing(store, &mut tasks, opts, &mut report)?;
    refuse_cycles(&tasks)?;
    // Oldest first, as `claim --next` takes them: creation order is the store's age.
    tasks.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    progress(&format!("writing {} tasks", tasks.len()));
    let out = store.import(&ImportBatch {
        tasks,
        dry_run: opts.dry_run,
    })?;
    report.created = out.created;
    report.updated = out.updated;
    report.unchanged = out.unchanged;
    report.skipped = notes.skipped;
    if !out.leased.is_empty() {
        report.skipped.insert(
            "leased: a live lease holds it here".into(),
            out.leased.iter().map(ToString::to_string).collect(),
        );
    }
    report.not_carried = notes.not_carried;
    report.rewritten = notes.rewritten;
    report.leases_dropped = notes.leases_dropped;
    report.remarks = notes.remarks;
    Ok(report)
}

/// Dependencies on ids in neither the batch nor the store: placeholders, or dropped;
/// parents in neither: dropped, kept as a tag.
fn resolve_missing(
    store: &dyn Store,
    tasks: &mut Vec<ImportTask>,
    opts: &Options,
    report: &mut Report,
) -> Result<()> {
    let inside: HashSet<TaskId> = tasks.iter().map(|t| t.id.clone()).collect();
    let mut known: HashMap<TaskId, bool> = HashMap::new();
    let mut missing: BTreeMap<TaskId, TaskId> = BTreeMap::new();
    for t in tasks.iter_mut() {
        if let Some(p) = t.parent.clone().filter(|p| !inside.contains(p)) {
            let exists = match known.get(&p) {
                Some(e) => *e,
                None => {
                    let e = store.show(&p)?.is_some();
                    known.insert(p.clone(), e);
                    e
                }
            };
            if !exists {
                // Kept visible when it fits a tag; the report names it either way.
                if let Ok(tag) = Tag::new(&format!("parent:{p}")) {
                    t.tags.push(tag);
                    t.tags = crate::distinct_tags(&t.tags);
                }
                t.parent = None;
                report
                    .missing_parents
                    .insert(t.id.to_string(), p.to_string());
            }
        }
        let mut gone = Vec::new();
        for d in &t.deps {
            if inside.contains(d) {
                continue;
            }
            let exists = match known.get(d) {
                Some(e) => *e,
                None => {
                    let e = store.show(d)?.is_some();
                    known.insert(d.clone(), e);
                    e
                }
            };
            if !exists {
                gone.push(d.clone());
                missing.entry(d.clone()).or_insert_with(|| t.id.clone());
            }
        }
        if gone.is_empty() {
            continue;
        }
        report.missing_deps.insert(
            t.id.to_string(),
            gone.iter().map(ToString::to_string).collect(),
        );
        if opts.drop_missing_deps {
            report.dropped_deps += gone.len() as u64;
            t.deps.retain(|d| !gone.contains(d));
        }
    }
    if opts.drop_missing_deps {
        return Ok(());
    }
    for (id, by) in missing {
        report.placeholders.push(id.to_string());
        let mut p = ImportTask::new(
            id.clone(),
            format!("missing: {id} (a dependency of {by}, not in the import)"),
        );
        p.status = Status::Blocked;
        p.description = format!(
            "Made by `tasklease import`: {by} depends on {id}, which was in neither the \
             import nor the database. Mark this done (tasklease update {id} --status done) \
             to release its dependants, or import the real task."
        );
        p.tags = vec![Tag::new(MISSING_TAG)?];
        tasks.push(p);
    }
    Ok(())
}

/// Refuses a dependency cycle among the batch's tasks, naming it.
fn refuse_cycles(tasks: &[ImportTask]) -> Result<()> {
    let index: HashMap<&TaskId, usize> =
        tasks.iter().enumerate().map(|(i, t)| (&t.id, i)).collect();
    // 0 unvisited, 1 on the current path, 2 done. Iterative: real graphs are deep.
    let mut state = vec![0u8; tasks.len()];
    for start in 0..tasks.len() {
        if state[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let deps = &tasks[node].deps;
            if *next == deps.len() {
                state[node] = 2;
                stack.pop();
                continue;
            }
            let d = &deps[*next];
            *next += 1;
            let Some(&j) = index.get(d) else { continue };
            match state[j] {
                0 => {
                    state[j] = 1;
                    stack.push((j, 0));
                }
                1 => {
                    let from = stack.iter().position(|&(n, _)| n == j).unwrap_or(0);
                    let mut ids: Vec<String> = stack[from..]
                        .iter()
                        .map(|&(n, _)| tasks[n].id.to_string())
                        .collect();
                    ids.push(tasks[j].id.to_string());
                    return Err(Error::invalid(
                        "dependency",
                        format!(
                            "the source has a dependency cycle: {} (each depends on the \
                             next); tasks in a cycle could never be ready; allowed: \
                             dependencies without cycles",
                            ids.join(" → ")
                        ),
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A tag from a source's label: kept as it is when it fits our tag rules, otherwise
/// every character outside them becomes `-` and it is cut to 64 bytes (counted in
/// `notes` under `what`). `None` when nothing is left.
pub(crate) fn tag_from(s: &str, what: &str, notes: &mut Notes) -> Option<Tag> {
    if let Ok(t) = Tag::new(s) {
        return Some(t);
    }
    let fixed: String = s
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let t = Tag::new(&fixed).ok()?;
    notes.rewrite(what);
    Some(t)
}

/// A title from a source's text: its first line, trimmed; the rest goes in front of
/// the description.
pub(crate) fn title_from(text: &str, description: &mut String) -> Option<String> {
    let text = text.trim();
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let first = first.trim();
    if first.is_empty() {
        return None;
    }
    let rest = rest.trim();
    if !rest.is_empty() {
        *description = if description.is_empty() {
            rest.to_owned()
        } else {
            format!("{rest}\n\n{description}")
        };
    }
    Some(first.to_owned())
}

/// Whether a JSON value says nothing (absent, null, "", 0, false, [] or {}), so not
/// carrying it over loses nothing.
pub(crate) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// An RFC 3339 time as epoch milliseconds; Go's zero time counts as absent.
pub(crate) fn parse_time(s: &str) -> std::result::Result<Option<crate::Millis>, String> {
    let s = s.trim();
    if s.is_empty() || s.starts_with("0001-01-01") {
        return Ok(None);
    }
    s.parse::<jiff::Timestamp>()
        .map(|t| Some(crate::Millis::from_millis(t.as_millisecond())))
        .map_err(|_| format!("{s:?} is not a time; allowed: RFC 3339, e.g. 2026-01-09T12:00:00Z"))
}

/// The error for a bad value: where, which field, what is allowed.
pub(crate) fn bad(at: &str, field: &'static str, what: impl std::fmt::Display) -> Error {
    Error::invalid(field, format!("{at}: field `{field}`: {what}"))
}

/// Refuses ids that break our rules, listing every one with where it was.
pub(crate) fn refuse_bad_ids(path: &Path, bad: &[(String, String)]) -> Result<()> {
    if bad.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = bad
        .iter()
        .take(50)
        .map(|(at, id)| format!("{id:?} ({at})"))
        .collect();
    let more = if bad.len() > 50 {
        format!(" and {} more", bad.len() - 50)
    } else {
        String::new()
    };
    Err(Error::invalid(
        "task id",
        format!(
            "{}: {} ids break tasklease's id rules: {}{more}; allowed: 1-128 of A-Z a-z 0-9 \
             . _ -, not starting with . or -, no ..; nothing was imported",
            path.display(),
            bad.len(),
            shown.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/import.md holds each format's mapping table exactly as the code has it.
    #[test]
    fn docs_hold_every_field_table() {
        let doc = include_str!("../../../../docs/import.md");
        for (name, table) in [
            ("exarp", exarp::FIELDS),
            ("beads", beads::FIELDS),
            ("tasklease", tasklease::FIELDS),
        ] {
            for (from, to) in table {
                let row = format!("| {from} | {to} |");
                assert!(
                    doc.contains(&row),
                    "docs/import.md lacks the {name} row {row}"
                );
            }
        }
    }

    #[test]
    fn cycles_are_named() {
        let t = |id: &str, deps: &[&str]| ImportTask {
            deps: deps.iter().map(|d| TaskId::new(d).unwrap()).collect(),
            ..ImportTask::new(TaskId::new(id).unwrap(), "x")
        };
        assert!(refuse_cycles(&[t("a", &[]), t("b", &["a"]), t("c", &["a", "b"])]).is_ok());
        let e = refuse_cycles(&[
            t("a", &["c"]),
            t("b", &["a"]),
            t("c", &["b"]),
            t("d", &["a"]),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("a → c → b → a"), "{e}");
    }

    #[test]
    fn labels_become_tags() {
        let mut n = Notes::default();
        assert_eq!(tag_from("ok:1", "x", &mut n).unwrap().as_str(), "ok:1");
        assert_eq!(
            tag_from("needs review", "x", &mut n).unwrap().as_str(),
            "needs-review"
        );
        assert_eq!(n.rewritten["x"], 1);
        let mut d = String::from("body");
        assert_eq!(title_from("  one\ntwo\n", &mut d).as_deref(), Some("one"));
        assert_eq!(d, "two\n\nbody");
    }
}
