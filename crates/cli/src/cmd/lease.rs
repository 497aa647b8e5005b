//! `renew`, `release`, `done`, `reap`: the verbs that end or extend leases.

use tasklease::json::{ended_json, reaped_json, renewed_json};
use tasklease::{LeaseDuration, TaskId, Token};

use super::Ctx;
use crate::args::ReleaseArgs;
use crate::output::Report;

pub fn renew(
    cx: &Ctx<'_>,
    id: &TaskId,
    token: Token,
    lease: LeaseDuration,
) -> tasklease::Result<Report> {
    let agent = cx.agent()?;
    let l = cx.store()?.renew(id, token, lease, &agent)?;
    Ok(Report::ok(
        renewed_json(&l),
        format!("renewed {id} (token {token}) until {}", l.lock_until),
    ))
}

pub fn release(cx: &Ctx<'_>, a: &ReleaseArgs) -> tasklease::Result<Report> {
    let agent = cx.agent()?;
    let store = cx.store()?;
    let (task, how) = match a.token {
        Some(token) if !a.force => (store.release(&a.id, token, a.status, &agent)?, "released"),
        _ => (
            store.release_force(&a.id, a.status, &agent)?,
            "force-released",
        ),
    };
    let now = store.now()?;
    let outcome = if a.force { "forced" } else { "released" };
    Ok(Report::ok(
        ended_json(outcome, &task, now),
        format!("{how} {}; it is {} now", a.id, task.status),
    ))
}

pub fn done(cx: &Ctx<'_>, id: &TaskId, token: Token) -> tasklease::Result<Report> {
    let agent = cx.agent()?;
    let store = cx.store()?;
    let task = store.done(id, token, &agent)?;
    let now = store.now()?;
    Ok(Report::ok(
        ended_json("done", &task, now),
        format!("done {id}"),
    ))
}

pub fn reap(cx: &Ctx<'_>) -> tasklease::Result<Report> {
    let agent = cx.agent()?;
    let reaped = cx.store()?.reap(&agent)?;
    let mut human: Vec<String> = reaped
        .iter()
        .map(|r| {
            format!(
                "reaped {} (lease of {} ran out at {})",
                r.id, r.agent, r.lock_until
            )
        })
        .collect();
    if human.is_empty() {
        human.push("no expired leases".into());
    }
    Ok(Report::ok(reaped_json(&reaped), human.join("\n")))
}
