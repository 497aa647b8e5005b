//! `renew`, `release`, `done`, `reap` (once, or `--every` as a sweeper): the verbs that
//! end or extend leases.

use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use tasklease::{AgentId, LeaseDuration, Reaped, Reason, Retention, Store, TaskId, Token};
use tasklease_shape::json::{
    ended_by_token_json, ended_json, error_of, mine_json, reaped_item_json, reaped_json,
    renewed_json, success,
};

use super::Ctx;
use crate::args::{ReapArgs, ReleaseArgs};
use crate::output::{Report, human_ms, note, print_json, print_line};
use crate::signals;

pub fn renew(
    cx: &Ctx<'_>,
    id: &TaskId,
    token: &Token,
    lease: LeaseDuration,
) -> tasklease::Result<Report> {
    let agent = cx.agent()?;
    let store = cx.store()?;
    let l = store.renew(id, token, lease, &agent)?;
    let now = store.now()?;
    Ok(Report::ok(
        renewed_json(&l, now),
        format!(
            "renewed {id} (fence {}) until {}",
            token.fence(),
            l.lock_until
        ),
    ))
}

pub fn release(cx: &Ctx<'_>, a: &ReleaseArgs) -> tasklease::Result<Report> {
    let agent = cx.agent()?;
    let store = cx.store()?;
    if let Some(token) = a.token.as_ref().filter(|_| !a.force) {
        let ended = store.release_with_reason(&a.id, token, a.status, a.reason.as_ref(), &agent)?;
        let now = store.now()?;
        let human = if ended.repeat {
            format!(
                "{} was already released to {} by token {token} (an earlier call went \
                 through); nothing changed",
                a.id, ended.task.status
            )
        } else {
            format!("released {}; it is {} now", a.id, ended.task.status)
        };
        return Ok(Report::ok(
            ended_by_token_json("released", &ended, now),
            human,
        ));
    }
    let task = store.release_force(&a.id, a.status, &agent)?;
    let now = store.now()?;
    Ok(Report::ok(
        ended_json("forced", &task, now),
        format!("force-released {}; it is {} now", a.id, task.status),
    ))
}

pub fn done(
    cx: &Ctx<'_>,
    id: &TaskId,
    token: &Token,
    reason: Option<&Reason>,
) -> tasklease::Result<Report> {
    let agent = cx.agent()?;
    let store = cx.store()?;
    let ended = store.done_with_reason(id, token, reason, &agent)?;
    let now = store.now()?;
    let human = if ended.repeat {
        format!(
            "{id} was already done by token {token} (an earlier call went through); nothing \
             changed"
        )
    } else {
        format!("done {id}")
    };
    Ok(Report::ok(ended_by_token_json("done", &ended, now), human))
}

/// `mine`: the caller's live leases, with their tokens — printed to the caller alone.
pub fn mine(cx: &Ctx<'_>) -> tasklease::Result<Report> {
    let agent = cx.named_agent("mine")?;
    let store = cx.store()?;
    let leases = store.mine(&agent)?;
    let now = store.now()?;
    let human = if leases.is_empty() {
        format!("{agent} holds no live lease")
    } else {
        leases
            .iter()
            .map(|l| {
                format!(
                    "{}  token {}  until {} ({} left)",
                    l.task,
                    l.token,
                    l.lock_until,
                    human_ms(l.lock_until.since(now))
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(Report::ok(mine_json(&leases, now), human))
}

pub fn reap(cx: &Ctx<'_>, a: &ReapArgs) -> tasklease::Result<Report> {
    let agent = cx.agent()?;
    let keep = a.keep.retention();
    if let Some(every) = a.every {
        let store = tasklease::open::open(&cx.spec()?, &cx.long_running_options())?;
        return sweep(cx, &*store, &agent, &keep, every.0);
    }
    let store = cx.store()?;
    let reaped = store.reap(&agent)?;
    let pruned = prune(&*store, &keep);
    let mut j = reaped_json(&reaped);
    j["pruned"] = json!(pruned);
    let mut human: Vec<String> = reaped.iter().map(reaped_human).collect();
    if human.is_empty() {
        human.push("no expired leases".into());
    }
    Ok(Report::ok(j, human.join("\n")))
}

/// `reap --every`: sweeps until Ctrl-C, SIGTERM or SIGHUP, printing each reaped lease
/// as it happens — one JSON object per line with `--json`, the last line being the
/// summary. A failed sweep is reported and the next one tried: a sweeper that dies on
/// one busy moment is no sweeper.
fn sweep(
    cx: &Ctx<'_>,
    store: &dyn Store,
    agent: &AgentId,
    keep: &Retention,
    every: Duration,
) -> tasklease::Result<Report> {
    let (tx, stop) = mpsc::channel();
    signals::catch(move |c| {
        let _ = tx.send(c);
    })
    .map_err(|e| tasklease::Error::store("cannot catch Ctrl-C and SIGTERM", e))?;
    let interval = human_ms(i64::try_from(every.as_millis()).unwrap_or(i64::MAX));
    note!("tasklease: reaping expired leases every {interval}; Ctrl-C to stop");
    let (mut sweeps, mut reaped, mut pruned) = (0u64, 0u64, 0u64);
    let caught = loop {
        match store.reap(agent) {
            Ok(rs) => {
                for r in &rs {
                    let j = success("reaped", reaped_item_json(r));
                    emit(cx, &j, &reaped_human(r));
                }
                reaped += rs.len() as u64;
            }
            Err(e) => {
                let j = error_of(&e);
                emit(cx, &j, "");
                note!("tasklease: sweep failed: {e}; trying again in {interval}");
            }
        }
        pruned += prune(store, keep).unwrap_or(0);
        sweeps += 1;
        match stop.recv_timeout(every) {
            Ok(c) => break c,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(tasklease::Error::store(
                    "reap --every",
                    "the signal handler went away",
                ));
            }
        }
    };
    Ok(Report::ok(
        success(
            "stopped",
            json!({
                "signal": caught.name(), "sweeps": sweeps, "reaped": reaped, "pruned": pruned,
            }),
        ),
        format!(
            "stopped by {}: {sweeps} sweeps, {reaped} leases reaped, {pruned} history events pruned",
            caught.name()
        ),
    ))
}

/// Prints one line of a long-running verb's output.
fn emit(cx: &Ctx<'_>, j: &Value, human: &str) {
    if cx.cli.json {
        print_json(j);
    } else if !human.is_empty() {
        print_line(human);
    }
}

/// Keeps the history within its bound; reported, never fatal: the reap has committed.
fn prune(store: &dyn Store, keep: &Retention) -> Option<u64> {
    store
        .prune(keep)
        .map_err(|e| note!("tasklease: could not prune the lease history: {e}"))
        .ok()
}

fn reaped_human(r: &Reaped) -> String {
    format!(
        "reaped {} (lease of {} ran out at {})",
        r.id, r.agent, r.lock_until
    )
}
