//! `Store::import` on PostgreSQL: one transaction and a fixed number of statements,
//! whatever the size of the batch — rows travel as arrays and are `unnest`ed on the
//! server, so 100,000 tasks are a handful of round trips, not 100,000.
//!
//! The existing rows are locked `FOR UPDATE` and read first; which to create, overwrite
//! or leave is decided here from those locked rows, so no claim can slip in between.
//! Dependencies outside the batch are locked `FOR SHARE` (as `add` does), so their
//! statuses cannot change before the import commits.
//!
//! The edges go in with the per-edge counting trigger off (`import_counting_off.sql`):
//! it updates the dependant's row once per edge, which for 100,000 edges took 8 s.
//! Created tasks are inserted with `waiting_on` already counted here against the final
//! statuses; overwritten tasks lose their old edges (which no trigger uncounts anyway)
//! and are recounted from scratch at the end. Turning the trigger off takes `task_deps`
//! exclusively until the import commits, so no other edge can go in uncounted; it is
//! transactional, so a failed import turns it back on. A role that may not alter the
//! table (not its owner) imports with the trigger on instead: slower, as correct.

use std::collections::{HashMap, HashSet};

use tasklease_core::{
    Error, ImportBatch, ImportOutcome, ImportTask, Millis, Result, Status, Tag, TaskId,
};

use crate::conn::{Conn, Failure, Retry};
use crate::{PgStore, sql, task};

impl PgStore {
    pub(crate) fn import_batch(&self, batch: &ImportBatch) -> Result<ImportOutcome> {
        tasklease_core::validate_import(batch)?;
        let injected = self.now_param();
        self.run("import the tasks", Retry::Write, |c| {
            c.transaction(|c| {
                let now: i64 = c.query_one(sql::NOW, &[&injected])?.try_get(0)?;
                if batch.dry_run {
                    c.batch_execute("SAVEPOINT import_dry_run")?;
                }
                let out = import_in(c, now, batch);
                if !batch.dry_run && out.is_ok() {
                    c.query_one(sql::NOTIFY, &[])?;
                }
                if batch.dry_run && out.is_ok() {
                    c.batch_execute("ROLLBACK TO import_dry_run; RELEASE import_dry_run")?;
                }
                out
            })
        })
    }
}

fn import_in(c: &mut Conn, now: i64, batch: &ImportBatch) -> Result<ImportOutcome, Failure> {
    // First, before any row lock: the table lock is the one others queue on.
    let counting_off = batch.tasks.iter().any(|t| !t.deps.is_empty()) && counting_off(c)?;
    let ids: Vec<&str> = batch.tasks.iter().map(|t| t.id.as_str()).collect();
    check_parents(c, batch)?;
    let mut existing = HashMap::new();
    for r in c.query(sql::IMPORT_ROWS, &[&ids])? {
        let t = task(&r)?;
        existing.insert(t.id.clone(), t);
    }
    let mut out = ImportOutcome::default();
    let mut create: Vec<&ImportTask> = Vec::new();
    let mut update: Vec<&ImportTask> = Vec::new();
    for t in &batch.tasks {
        match existing.get(&t.id) {
            None => create.push(t),
            Some(old) if old.is_leased_at(Millis::from_millis(now)) => {
                out.leased.push(t.id.clone())
            }
            Some(old) if t.same_as(old) => out.unchanged += 1,
            Some(_) => update.push(t),
        }
    }
    // Ids are never reused: a token of a deleted task must stay stale.
    let fresh: Vec<&str> = create.iter().map(|t| t.id.as_str()).collect();
    if let Some(r) = c
        .query(
            "SELECT id FROM deleted_ids WHERE id = ANY($1) ORDER BY id LIMIT 1",
            &[&fresh],
        )?
        .first()
    {
        let gone = crate::task_id(r.try_get(0)?)?;
        return Err(tasklease_core::deleted_id_error(&gone).into());
    }
    // Dependencies outside the batch must exist already.
    let inside: HashSet<&str> = ids.iter().copied().collect();
    let outside: Vec<&str> = create
        .iter()
        .chain(&update)
        .flat_map(|t| t.deps.iter().map(|d| d.as_str()))
        .filter(|d| !inside.contains(d))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut present: HashMap<String, String> = HashMap::new();
    if !outside.is_empty() {
        for r in c.query(sql::IMPORT_DEPS_PRESENT, &[&outside])? {
            present.insert(r.try_get(0)?, r.try_get(1)?);
        }
        for t in create.iter().chain(&update) {
            if let Some(d) = t
                .deps
                .iter()
                .find(|d| !inside.contains(d.as_str()) && !present.contains_key(d.as_str()))
            {
                return Err(Error::invalid(
                    "dependency",
                    format!(
                        "{}: dependency {d} is neither in the import nor in the database",
                        t.id
                    ),
                )
                .into());
            }
        }
    }
    if !create.is_empty() {
        let cols = Columns::of(&create);
        let versions: Vec<i64> = create.iter().map(|t| t.version.get()).collect();
        let created: Vec<Option<i64>> = create
            .iter()
            .map(|t| t.created_at.map(|m| m.as_millis()))
            .collect();
        let updated: Vec<Option<i64>> = create
            .iter()
            .map(|t| t.updated_at.map(|m| m.as_millis()))
            .collect();
        // Each dependency's status once this import commits.
        let written: HashMap<&str, Status> = create
            .iter()
            .chain(&update)
            .map(|t| (t.id.as_str(), t.status))
            .collect();
        // A dependency done or cancelled is satisfied (design.md, "The task graph").
        let satisfied = |s: Status| matches!(s, Status::Done | Status::Cancelled);
        let done = |d: &TaskId| match written.get(d.as_str()) {
            Some(s) => satisfied(*s),
            None => existing
                .get(d)
                .map(|t: &tasklease_core::Task| t.status)
                .or_else(|| present.get(d.as_str()).and_then(|s| s.parse().ok()))
                .is_some_and(satisfied),
        };
        let waiting: Vec<i64> = create
            .iter()
            .map(|t| {
                if counting_off {
                    t.deps.iter().filter(|d| !done(d)).count() as i64
                } else {
                    0
                }
            })
            .collect();
        out.created = c.execute(
            sql::IMPORT_INSERT,
            &[
                &cols.ids,
                &cols.titles,
                &cols.descriptions,
                &cols.statuses,
                &cols.priorities,
                &cols.tags,
                &versions,
                &cols.attempts,
                &created,
                &updated,
                &now,
                &waiting,
            ],
        )?;
    }
    if !update.is_empty() {
        let cols = Columns::of(&update);
        out.updated = c.execute(
            sql::IMPORT_UPDATE,
            &[
                &cols.ids,
                &cols.titles,
                &cols.descriptions,
                &cols.statuses,
                &cols.priorities,
                &cols.tags,
                &cols.attempts,
                &now,
            ],
        )?;
        c.execute(sql::IMPORT_CLEAR_DEPS, &[&cols.ids])?;
    }
    let (mut from, mut to) = (Vec::new(), Vec::new());
    for t in create.iter().chain(&update) {
        for d in &t.deps {
            from.push(t.id.as_str());
            to.push(d.as_str());
        }
    }
    if !from.is_empty() {
        c.execute(sql::IMPORT_DEPS, &[&from, &to])?;
    }
    // Parents once every row exists: a created task's when it has one, an overwritten
    // task's always (`None` clears it).
    let (mut kids, mut parents) = (Vec::new(), Vec::new());
    for t in create.iter().filter(|t| t.parent.is_some()).chain(&update) {
        kids.push(t.id.as_str());
        parents.push(t.parent.as_ref().map(TaskId::as_str));
    }
    if !kids.is_empty() {
        c.execute(sql::IMPORT_PARENTS, &[&kids, &parents])?;
    }
    if counting_off {
        c.batch_execute(sql::IMPORT_COUNTING_ON)?;
    }
    if out.created + out.updated >= ANALYZE_AFTER {
        c.batch_execute(sql::IMPORT_ANALYZE)?;
    }
    if !update.is_empty() {
        let ids: Vec<&str> = update.iter().map(|t| t.id.as_str()).collect();
        c.execute(sql::IMPORT_RECOUNT, &[&ids])?;
    }
    Ok(out)
}

/// Checks the batch's parents (each exists, no cycle) against the rows as this
/// transaction sees them. Stored parents outside the batch are read one level at a
/// time, only along chains that leave the batch: usually none or a few.
fn check_parents(c: &mut Conn, batch: &ImportBatch) -> Result<(), Failure> {
    if batch.tasks.iter().all(|t| t.parent.is_none()) {
        return Ok(());
    }
    let mut failure = None;
    let checked = tasklease_core::check_batch_parents(batch, |id| {
        let row = c.query_opt(
            "SELECT parent FROM tasks WHERE id = $1 FOR SHARE",
            &[&id.as_str()],
        );
        match row {
            Ok(None) => Ok(None),
            Ok(Some(r)) => {
                let p: Option<String> = r.try_get(0).map_err(|e| {
                    failure = Some(Failure::from(e));
                    Error::invalid("parent", "unreadable")
                })?;
                p.map(crate::task_id).transpose().map(Some)
            }
            Err(e) => {
                failure = Some(e);
                Err(Error::invalid("parent", "unreadable"))
            }
        }
    });
    if let Some(f) = failure {
        return Err(f);
    }
    checked.map_err(Failure::from)
}

/// How many rows written make an import big enough to refresh the planner's
/// statistics (autovacuum would, but only after the import's first readers).
const ANALYZE_AFTER: u64 = 1_000;

/// Turns the per-edge counting trigger off for this transaction, if this role may;
/// `false` (trigger left on) when it may not.
fn counting_off(c: &mut Conn) -> Result<bool, Failure> {
    c.batch_execute("SAVEPOINT import_counting")?;
    match c.batch_execute(sql::IMPORT_COUNTING_OFF) {
        Ok(()) => {
            c.batch_execute("RELEASE import_counting")?;
            Ok(true)
        }
        Err(Failure::Db(e))
            if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) =>
        {
            c.batch_execute("ROLLBACK TO import_counting; RELEASE import_counting")?;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The columns both the insert and the update send, one array each.
struct Columns<'a> {
    ids: Vec<&'a str>,
    titles: Vec<&'a str>,
    descriptions: Vec<&'a str>,
    statuses: Vec<&'static str>,
    priorities: Vec<i64>,
    tags: Vec<String>,
    attempts: Vec<i64>,
}

impl<'a> Columns<'a> {
    fn of(tasks: &[&'a ImportTask]) -> Columns<'a> {
        Columns {
            ids: tasks.iter().map(|t| t.id.as_str()).collect(),
            titles: tasks.iter().map(|t| t.title.as_str()).collect(),
            descriptions: tasks.iter().map(|t| t.description.as_str()).collect(),
            statuses: tasks.iter().map(|t| t.status.as_str()).collect(),
            priorities: tasks.iter().map(|t| t.priority.rank()).collect(),
            tags: tasks
                .iter()
                .map(|t| {
                    let tags = tasklease_core::distinct_tags(&t.tags);
                    let tags: Vec<&str> = tags.iter().map(Tag::as_str).collect();
                    tags.join(" ")
                })
                .collect(),
            attempts: tasks.iter().map(|t| t.attempts).collect(),
        }
    }
}
