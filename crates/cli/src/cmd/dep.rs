//! `dep add`, `dep rm`, `dep list`: the dependency graph, edited and read; and `rm`,
//! which deletes tasks from it.

use tasklease::{DepChange, DepState, Error, Result, TaskId};
use tasklease_shape::json::{deleted_json, dep_edit_json, deps_json};

use super::Ctx;
use crate::args::{DepCmd, RmArgs};
use crate::output::{Report, note_line};

pub fn rm(cx: &Ctx<'_>, a: &RmArgs) -> Result<Report> {
    tasklease::validate_rm(&a.ids)?;
    let agent = cx.agent()?;
    let gone = cx.store()?.rm(&a.ids, a.force, &agent).inspect_err(|e| {
        let forceable = match e {
            Error::Held { .. } => true,
            Error::Invalid { message, .. } => message.contains("with force"),
            _ => false,
        };
        if forceable {
            note_line("nothing was deleted; pass --force to delete anyway");
        }
    })?;
    let human: Vec<String> = gone
        .iter()
        .map(|d| match d.detail() {
            Some(what) => format!("deleted {} ({what})", d.id),
            None => format!("deleted {}", d.id),
        })
        .collect();
    Ok(Report::ok(deleted_json(&gone), human.join("\n")))
}

pub fn run(cx: &Ctx<'_>, cmd: &DepCmd) -> Result<Report> {
    match cmd {
        DepCmd::Add { task, deps } => {
            tasklease::validate_dep_edit(task, deps)?;
            let changes = cx.store()?.dep_add(task, deps)?;
            Ok(edited(task, "waits on", &changes))
        }
        DepCmd::Rm { task, deps } => {
            tasklease::validate_dep_edit(task, deps)?;
            let changes = cx.store()?.dep_rm(task, deps)?;
            Ok(edited(task, "no longer waits on", &changes))
        }
        DepCmd::List { task } => {
            let d = cx
                .store()?
                .deps(task)?
                .ok_or_else(|| Error::NotFound(task.clone()))?;
            let mut human = format!("{task} waits on:");
            push_states(&mut human, &d.on);
            human.push_str(&format!("\n{task} is needed by:"));
            push_states(&mut human, &d.needed_by);
            Ok(Report::ok(deps_json(task, &d), human))
        }
    }
}

fn edited(task: &TaskId, verb: &str, changes: &[(TaskId, DepChange)]) -> Report {
    let lines: Vec<String> = changes
        .iter()
        .map(|(dep, c)| match c {
            DepChange::Added | DepChange::Removed => format!("{task} {verb} {dep}"),
            DepChange::Already => format!("{task} already waits on {dep}"),
            DepChange::Absent => format!("{task} did not wait on {dep}"),
        })
        .collect();
    Report::ok(dep_edit_json(task, changes), lines.join("\n"))
}

fn push_states(out: &mut String, states: &[DepState]) {
    if states.is_empty() {
        out.push_str(" nothing");
    }
    for d in states {
        let why = d.why().unwrap_or_else(|| d.status.to_string());
        out.push_str(&format!("\n  {}  {why}", d.id));
    }
}
