//! The verbs on tasks themselves: `init`, `add`, `list`, `show`, `update`, `migrate`,
//! `agent-id`.

use serde_json::json;
use tasklease::listing::ListView;
use tasklease::open::{self, DbSpec};
use tasklease::show::Shown;
use tasklease::text::escape;
use tasklease::{
    AgentId, DepState, Error, ListFilter, Millis, NewTask, Result, Store, Task, TaskId, TaskPatch,
    Version,
};
use tasklease_shape::json::{dep_state_json, one_task_json, shown_json, success, tasks_json};

use super::Ctx;
use crate::args::{AddArgs, ListArgs, UpdateArgs};

use crate::output::{Report, time_left};

pub fn init(cx: &Ctx<'_>, here: bool) -> Result<Report> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::store("cannot read the current directory", e))?;
    let spec = DbSpec::for_init(cx.cli.db.as_deref(), &cwd, here)?;
    let r = open::init(&spec, &cx.options())?;
    let (existed, db) = (!r.created, r.db);
    let human = if existed {
        format!("tasklease database already at {db}")
    } else {
        format!("created tasklease database at {db}")
    };
    Ok(Report::ok(
        success(
            if existed { "exists" } else { "created" },
            json!({"db": db, "created": !existed}),
        ),
        human,
    ))
}

pub fn add(cx: &Ctx<'_>, a: &AddArgs) -> Result<Report> {
    let new = NewTask {
        id: a.id.clone(),
        title: a.title.clone(),
        description: a.description.clone(),
        priority: a.priority,
        tags: a.tags.clone(),
        deps: a.deps.clone(),
        parent: a.parent.clone(),
    };
    new.validate()?;
    let store = cx.store()?;
    let task = store.add(&new)?;
    let now = store.now()?;
    Ok(Report::ok(
        one_task_json("added", &task, now),
        format!("added {}: {}", task.id, task.title),
    ))
}

pub fn list(cx: &Ctx<'_>, a: &ListArgs) -> Result<Report> {
    let assignee = match (&a.assignee, a.mine) {
        (Some(s), _) => Some(AgentId::new(s)?),
        (None, true) => Some(cx.named_agent("--mine")?),
        (None, false) => None,
    };
    let filter = ListFilter {
        statuses: a.statuses.clone(),
        assignee,
        tag: a.tag.clone(),
        limit: a.limit,
    };
    let store = cx.store()?;
    let view = if let Some(p) = &a.parent {
        ListView::Children(p.clone())
    } else if a.ready {
        ListView::Ready
    } else if a.blocked {
        ListView::Blocked
    } else {
        ListView::All
    };
    let page = tasklease::listing::page(&*store, &view, &filter)?;
    let tasks = &page.tasks;
    let now = store.now()?;
    // What each waiting task waits on: people see the ids in the table; `--blocked`
    // adds them, with why, to the JSON. One read per waiting task.
    let waits = if a.blocked || !cx.cli.json {
        waits_of(&*store, tasks)?
    } else {
        Vec::new()
    };
    let mut json = tasks_json(tasks, now);
    if page.more > 0 {
        json["truncated"] = true.into();
        json["more"] = page.more.into();
    }
    if a.blocked {
        for (j, w) in json["tasks"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .zip(&waits)
        {
            j["waiting"] = w.iter().map(dep_state_json).collect();
        }
    }
    let mut human = table(tasks, &waits, now);
    if page.more > 0 {
        let at_least = if page.more_at_least { "at least " } else { "" };
        human.push_str(&format!(
            "\n… {at_least}{} more (raise --limit, or filter)",
            page.more
        ));
    }
    Ok(Report::ok(json, human))
}

/// The unsatisfied dependencies of each task (empty for tasks that wait on nothing).
fn waits_of(store: &dyn Store, tasks: &[Task]) -> Result<Vec<Vec<DepState>>> {
    tasks
        .iter()
        .map(|t| {
            if t.waiting_on == 0 {
                return Ok(Vec::new());
            }
            let on = store.deps(&t.id)?.map(|d| d.on).unwrap_or_default();
            Ok(on.into_iter().filter(|d| !d.satisfied()).collect())
        })
        .collect()
}

fn table(tasks: &[Task], waits: &[Vec<DepState>], now: Millis) -> String {
    if tasks.is_empty() {
        return "no tasks".into();
    }
    let rows: Vec<[String; 5]> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let on = waits.get(i).filter(|w| !w.is_empty());
            let holder = match (&t.assignee, t.lock_until, on) {
                (Some(a), Some(u), _) => format!("{a} ({})", time_left(u, now)),
                (_, _, Some(on)) => {
                    let why: Vec<String> = on
                        .iter()
                        .map(|d| match &d.holder {
                            Some(h) => format!("{} (held by {h})", d.id),
                            None => format!("{} ({})", d.id, d.status),
                        })
                        .collect();
                    format!("waiting on {}", why.join(", "))
                }
                _ if t.waiting_on > 0 => format!("waiting on {}", t.waiting_on),
                _ => String::new(),
            };
            [
                t.id.to_string(),
                t.status.to_string(),
                t.priority.to_string(),
                holder,
                // A title another client stored with a newline must not forge a row.
                escape(&t.title).into_owned(),
            ]
        })
        .collect();
    let rows = rows.into_iter().map(Vec::from).collect();
    crate::table::render(&["ID", "STATUS", "PRIORITY", "HOLDER", "TITLE"], rows, 4)
}

pub fn show(cx: &Ctx<'_>, id: &TaskId) -> Result<Report> {
    let store = cx.store()?;
    let shown = Shown::read(&*store, id)?;
    let mut human = describe(&shown.task, &shown.cancelled(), shown.now);
    if let Some(e) = &shown.reason {
        human.push_str(&format!(
            "\n  reason    {} by {} at {}: {}",
            e.kind.as_str(),
            e.agent,
            e.at,
            e.reason.as_deref().unwrap_or_default()
        ));
    }
    if !shown.children.is_empty() {
        let list: Vec<String> = shown
            .children
            .iter()
            .map(|c| format!("{} ({})", c.id, c.status))
            .collect();
        human.push_str(&format!(
            "\n  children  {}: {}",
            shown.progress(),
            list.join(", ")
        ));
    }
    Ok(Report::ok(shown_json(&shown), human))
}

fn describe(t: &Task, cancelled: &[&TaskId], now: Millis) -> String {
    let mut s = format!(
        "{}: {}\n  status    {}\n  priority  {}\n  version   {}",
        t.id,
        escape(&t.title),
        t.status,
        t.priority,
        t.version
    );
    if let (Some(a), Some(u)) = (&t.assignee, t.lock_until) {
        s.push_str(&format!(
            "\n  holder    {a} until {u} ({})",
            time_left(u, now)
        ));
    }
    if !t.deps.is_empty() {
        let deps: Vec<&str> = t.deps.iter().map(TaskId::as_str).collect();
        s.push_str(&format!(
            "\n  deps      {} ({} still open)",
            deps.join(", "),
            t.waiting_on
        ));
        if !cancelled.is_empty() {
            let ids: Vec<&str> = cancelled.iter().map(|i| i.as_str()).collect();
            s.push_str(&format!(
                "\n  cancelled {} (satisfied: cancelled, not done)",
                ids.join(", ")
            ));
        }
    }
    if let Some(p) = &t.parent {
        s.push_str(&format!("\n  parent    {p}"));
    }
    if !t.tags.is_empty() {
        let tags: Vec<&str> = t.tags.iter().map(|t| t.as_str()).collect();
        s.push_str(&format!("\n  tags      {}", tags.join(", ")));
    }
    if t.attempts > 0 {
        s.push_str(&format!("\n  attempts  {}", t.attempts));
    }
    if !t.description.is_empty() {
        s.push_str(&format!("\n\n{}", t.description));
    }
    s
}

pub fn update(cx: &Ctx<'_>, a: &UpdateArgs) -> Result<Report> {
    let patch = TaskPatch {
        title: a.title.clone(),
        description: a.description.clone(),
        priority: a.priority,
        status: a.status,
        tags: if a.clear_tags {
            Some(Vec::new())
        } else if a.tags.is_empty() {
            None
        } else {
            Some(a.tags.clone())
        },
        parent: match (&a.parent, a.no_parent) {
            (Some(p), _) => Some(Some(p.clone())),
            (None, true) => Some(None),
            (None, false) => None,
        },
    };
    patch.validate()?;
    let agent = cx.agent()?;
    let store = cx.store()?;
    let task = store.update(
        &a.id,
        Version::new(a.expect_version),
        &patch,
        a.token.as_ref(),
        &agent,
    )?;
    let now = store.now()?;
    Ok(Report::ok(
        one_task_json("updated", &task, now),
        format!("updated {} (now at version {})", task.id, task.version),
    ))
}

pub fn migrate(cx: &Ctx<'_>, backup: bool) -> Result<Report> {
    let r = open::migrate(&cx.spec()?, &cx.options(), backup)?;
    let backups: Vec<String> = [&r.migrated.backup, &r.backup]
        .into_iter()
        .flatten()
        .map(|p| p.display().to_string())
        .collect();
    let mut human = if r.migrated.from == r.migrated.to {
        format!("{} is up to date (schema version {})", r.db, r.migrated.to)
    } else {
        format!(
            "migrated {} from schema version {} to {}",
            r.db, r.migrated.from, r.migrated.to
        )
    };
    for b in &backups {
        human.push_str(&format!("\nbackup written to {b}"));
    }
    let outcome = if r.migrated.from == r.migrated.to {
        "current"
    } else {
        "migrated"
    };
    Ok(Report::ok(
        success(
            outcome,
            json!({
                "db": r.db,
                "from": r.migrated.from,
                "to": r.migrated.to,
                "backups": backups,
            }),
        ),
        human,
    ))
}

pub fn agent_id(cx: &Ctx<'_>) -> Result<Report> {
    let a = cx.agent()?;
    Ok(Report::ok(
        success("named", json!({"agent": a})),
        a.to_string(),
    ))
}
