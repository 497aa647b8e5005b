//! The JSON object of every result, shared by every front end: the CLI prints these
//! with `--json`, and the MCP server returns the same objects as structured tool
//! results. Building them in one place is what keeps the two from drifting: a field
//! added here appears in both.
//!
//! Every outcome has one of two shapes (docs/json.md; a JSON Schema per verb in
//! `docs/json/`, built by [`crate::schema`]):
//!
//! - success: `{"ok": true, "outcome": "claimed" | "renewed" | …, …payload}`;
//! - anything else — an error, a refusal, nothing to claim, a command that failed:
//!   `{"ok": false, "error": {"code", "exit", "message", …details}}`. `code` is the
//!   stable name to branch on, `exit` the CLI's exit status for it, and every detail
//!   (`holder`, `lock_until`, `waiting_on`, …) sits inside `error`, so a reader finds
//!   the why of every failure in one place.
//!
//! Instants are RFC 3339 strings in UTC with milliseconds; `lock_until_ms` repeats the
//! lease end as epoch milliseconds for arithmetic. A token (`token`, `<fence>.<secret>`)
//! is a bearer secret: it appears only in results given to the lease holder (claim,
//! renew, `mine`); every lease also carries its `fence` number, the part others may see
//! (reap's list, the history) — never a token in `show`, `list`, `log` or `status`.

use serde_json::{Value, json};

use tasklease::locks::LockInfo;
use tasklease::show::Shown;
use tasklease::{
    Deleted, DepChange, DepState, Deps, Ended, Error, ErrorKind, Event, Lease, LeaseDuration,
    Millis, Reaped, Refusal, Status, Task, TaskId, Unclaimable,
};

/// Exit status: done as asked.
pub const EXIT_OK: u8 = 0;
/// Exit status: runtime error (database, I/O).
pub const EXIT_RUNTIME: u8 = 1;
/// Exit status: bad input or usage; nothing was changed.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: held by another agent, batch conflict, or stale version.
pub const EXIT_CONFLICT: u8 = 3;
/// Exit status: nothing to claim (none ready; done, cancelled or waiting).
pub const EXIT_EMPTY: u8 = 4;
/// Exit status: lease lost, stale token, or not the holder.
pub const EXIT_LEASE_LOST: u8 = 5;

/// The stable number for an error: the CLI's exit status, and `error.exit` in JSON.
pub fn exit_code(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::Invalid => EXIT_USAGE,
        ErrorKind::Conflict => EXIT_CONFLICT,
        ErrorKind::LeaseLost => EXIT_LEASE_LOST,
        _ => EXIT_RUNTIME,
    }
}

/// The stable number for a refused claim of one task.
pub fn refusal_exit(r: &Refusal) -> u8 {
    match r {
        Refusal::Held { .. } => EXIT_CONFLICT,
        Refusal::NotFound => EXIT_USAGE,
        Refusal::NotClaimable { .. } => EXIT_EMPTY,
    }
}

/// `{"ok":false,"error":{"code","message","exit"}}`: a failure with its stable code.
pub fn error_json(code: &str, message: &str, exit: u8) -> Value {
    failure(code, exit, message, Value::Null)
}

/// `{"ok":false,"error":{"code","exit","message",…details}}`: every non-success, with
/// the fields of `details` (an object; anything else adds nothing) inside `error`.
pub fn failure(code: &str, exit: u8, message: &str, details: Value) -> Value {
    let mut error = json!({"code": code, "exit": exit, "message": message});
    if let (Value::Object(e), Value::Object(d)) = (&mut error, details) {
        for (k, v) in d {
            e.entry(k).or_insert(v);
        }
    }
    json!({"ok": false, "error": error})
}

/// `{"ok":true,"outcome":…}` with the fields of `payload` (an object) after them.
pub fn success(outcome: &str, payload: Value) -> Value {
    let mut j = json!({"ok": true, "outcome": outcome});
    if let (Value::Object(o), Value::Object(p)) = (&mut j, payload) {
        for (k, v) in p {
            o.entry(k).or_insert(v);
        }
    }
    j
}

/// [`error_json`] for a library error, with `"retryable"` ([`Error::is_retryable`]).
pub fn error_of(e: &Error) -> Value {
    error_said(e, &e.to_string())
}

/// [`error_of`] with the message as a front end words it (its hints added).
pub fn error_said(e: &Error, message: &str) -> Value {
    let mut v = error_json(e.code(), message, exit_code(e));
    v["error"]["retryable"] = Value::Bool(e.is_retryable());
    v
}

/// A lease as JSON: the fields every claim result carries.
pub fn lease_json(l: &Lease) -> Value {
    json!({
        "id": l.task,
        "agent": l.agent,
        "token": l.token,
        "fence": l.token.fence(),
        "assigned_at": l.assigned_at.to_rfc3339(),
        "lock_until": l.lock_until.to_rfc3339(),
        "lock_until_ms": l.lock_until.as_millis(),
        "version": l.version,
    })
}

/// A task as JSON, with its lease judged at `now`.
pub fn task_json(t: &Task, now: Millis) -> Value {
    let rfc = |m: Option<Millis>| m.map(Millis::to_rfc3339);
    json!({
        "id": t.id,
        "title": t.title,
        "description": t.description,
        "status": t.status,
        "priority": t.priority,
        "tags": t.tags,
        "deps": t.deps,
        "waiting_on": t.waiting_on,
        "parent": t.parent,
        "version": t.version,
        "assignee": t.assignee,
        "assigned_at": rfc(t.assigned_at),
        "lock_until": rfc(t.lock_until),
        "lease_live": t.is_leased_at(now),
        "lease_left_ms": t.lock_until.filter(|_| t.status == Status::InProgress).map(|u| u.since(now)),
        "attempts": t.attempts,
        "created_at": t.created_at.to_rfc3339(),
        "updated_at": t.updated_at.to_rfc3339(),
    })
}

/// A refused claim as a failure: `error.code` is `held` (exit 3, with `holder` and
/// `lock_until`), `not_found` (exit 2) or `not_claimable` (exit 4, with `reason`
/// `closed` and the `status`, or `waiting` and the ids in `waiting_on`); `error.id`
/// names the task.
pub fn refusal_json(id: &TaskId, r: &Refusal) -> Value {
    let mut d = json!({"id": id});
    let code = match r {
        Refusal::Held { by, until } => {
            d["holder"] = json!(by);
            d["lock_until"] = json!(until.to_rfc3339());
            d["lock_until_ms"] = json!(until.as_millis());
            "held"
        }
        Refusal::NotFound => "not_found",
        Refusal::NotClaimable { why } => {
            match why {
                Unclaimable::Closed { status } => {
                    d["reason"] = json!("closed");
                    d["status"] = json!(status);
                }
                Unclaimable::Waiting { on } => {
                    d["reason"] = json!("waiting");
                    d["waiting_on"] = json!(on);
                }
            }
            "not_claimable"
        }
    };
    failure(code, refusal_exit(r), &format!("{id}: {r}"), d)
}

/// One task claimed: the lease, `outcome: claimed`, the lease length asked for and
/// `lease_left_ms` (all of it: a claim sets the lease end from its own now).
pub fn claimed_json(l: &Lease, lease: LeaseDuration) -> Value {
    let mut j = success("claimed", lease_json(l));
    j["lease_ms"] = json!(lease.as_millis());
    j["lease_left_ms"] = json!(lease.as_millis());
    j
}

/// [`claimed_json`] with what the holder needs to start work: the task's `title` and
/// `description` (the MCP server's claim answers with these, saving a `show`).
pub fn claimed_task_json(l: &Lease, lease: LeaseDuration, task: Option<&Task>) -> Value {
    let mut j = claimed_json(l, lease);
    if let Some(t) = task {
        j["title"] = json!(t.title);
        j["description"] = json!(t.description);
    }
    j
}

/// A claim of a task the caller's identity already holds: its existing lease (same
/// token, same lease end), `outcome: already_held`. Nothing was changed.
pub fn already_held_json(l: &Lease, now: Millis) -> Value {
    let mut j = success("already_held", lease_json(l));
    j["lease_left_ms"] = json!(l.lock_until.since(now).max(0));
    j
}

/// The caller's live leases with their tokens (`mine`): `count` and `leases` (each as
/// [`lease_json`], plus `lease_left_ms`).
pub fn mine_json(leases: &[Lease], now: Millis) -> Value {
    let each: Vec<Value> = leases
        .iter()
        .map(|l| {
            let mut j = lease_json(l);
            j["lease_left_ms"] = json!(l.lock_until.since(now).max(0));
            j
        })
        .collect();
    success("mine", json!({"count": leases.len(), "leases": each}))
}

/// A whole batch claimed, in the order asked.
pub fn batch_claimed_json(leases: &[Lease]) -> Value {
    success(
        "claimed",
        json!({"leases": leases.iter().map(lease_json).collect::<Vec<_>>()}),
    )
}

/// A batch refused (exit 3, `error.code` `refused`): nothing was claimed, and
/// `error.refused` holds each refused id's own failure (`code`, `exit`, `message`,
/// `id`, …details).
pub fn batch_refused_json(why: &[(TaskId, Refusal)]) -> Value {
    let each: Vec<Value> = why
        .iter()
        .map(|(id, r)| refusal_json(id, r)["error"].take())
        .collect();
    let ids: Vec<&str> = why.iter().map(|(id, _)| id.as_str()).collect();
    failure(
        "refused",
        EXIT_CONFLICT,
        &format!(
            "claimed nothing (all or nothing): refused {}",
            ids.join(", ")
        ),
        json!({"refused": each}),
    )
}

/// `claim --next` found nothing ready (exit 4, `error.code` `empty`).
pub fn empty_json() -> Value {
    failure(
        "empty",
        EXIT_EMPTY,
        "nothing to claim: no task is ready",
        Value::Null,
    )
}

/// A lease extended: the lease, `outcome: renewed` and `lease_left_ms` at `now`.
pub fn renewed_json(l: &Lease, now: Millis) -> Value {
    let mut j = success("renewed", lease_json(l));
    j["lease_left_ms"] = json!(l.lock_until.since(now).max(0));
    j
}

/// A lease ended: `outcome` is `released`, `forced` or `done`, with the task as it
/// is now.
pub fn ended_json(outcome: &str, task: &Task, now: Millis) -> Value {
    success(outcome, json!({"task": task_json(task, now)}))
}

/// A lease ended by its token: `op` is `done` or `released`. A retry that found the
/// token had already done exactly that answers `already_done` / `already_released`,
/// with `repeat: true`: success, and nothing was changed by it.
pub fn ended_by_token_json(op: &str, e: &Ended, now: Millis) -> Value {
    let outcome = if e.repeat {
        format!("already_{op}")
    } else {
        op.to_owned()
    };
    let mut j = ended_json(&outcome, &e.task, now);
    j["repeat"] = json!(e.repeat);
    j
}

/// One expired lease `reap` ended.
pub fn reaped_item_json(r: &Reaped) -> Value {
    json!({
        "id": r.id,
        "agent": r.agent,
        "fence": r.fence,
        "lock_until": r.lock_until.to_rfc3339(),
    })
}

/// The expired leases `reap` ended.
pub fn reaped_json(reaped: &[Reaped]) -> Value {
    let items: Vec<_> = reaped.iter().map(reaped_item_json).collect();
    success("reaped", json!({"count": reaped.len(), "reaped": items}))
}

/// A list of tasks (`outcome: listed`).
pub fn tasks_json(tasks: &[Task], now: Millis) -> Value {
    success(
        "listed",
        json!({
            "count": tasks.len(),
            "tasks": tasks.iter().map(|t| task_json(t, now)).collect::<Vec<_>>(),
        }),
    )
}

/// One event of the lease history. Tokens are shown: the history is an audit trail
/// (docs/design.md).
pub fn event_json(e: &Event) -> Value {
    json!({
        "seq": e.seq,
        "at": e.at.to_rfc3339(),
        "at_ms": e.at.as_millis(),
        "task": e.task,
        "kind": e.kind,
        "agent": e.agent,
        "fence": e.fence,
        "detail": e.detail,
        "reason": e.reason,
        "lease_ms": e.lease_ms,
        "wait_us": e.wait_us,
        "busy": e.busy,
    })
}

/// The lease history (`log`), oldest first.
pub fn events_json(events: &[Event]) -> Value {
    success(
        "listed",
        json!({
            "count": events.len(),
            "events": events.iter().map(event_json).collect::<Vec<_>>(),
        }),
    )
}

/// The fields of a compact list row (`ROW_FIELDS` unless asked otherwise): `holder`
/// is the agent whose lease is live, and `lease_left_ms` what is left of it.
pub const ROW_FIELDS: &[&str] = &[
    "id",
    "status",
    "priority",
    "title",
    "holder",
    "lease_left_ms",
];

/// Every field a row may be asked for: [`task_json`]'s and `holder`.
pub const ALL_ROW_FIELDS: &[&str] = &[
    "id",
    "title",
    "description",
    "status",
    "priority",
    "tags",
    "deps",
    "waiting_on",
    "parent",
    "version",
    "assignee",
    "assigned_at",
    "lock_until",
    "lease_live",
    "lease_left_ms",
    "attempts",
    "created_at",
    "updated_at",
    "holder",
];

/// One task as a list row with just `fields` (`id` always).
pub fn row_json(t: &Task, now: Millis, fields: &[&str]) -> Value {
    let full = task_json(t, now);
    let mut row = serde_json::Map::new();
    row.insert("id".into(), json!(t.id));
    for f in fields {
        let v = match *f {
            "holder" => json!(t.assignee.as_ref().filter(|_| t.is_leased_at(now))),
            other => full.get(other).cloned().unwrap_or(Value::Null),
        };
        row.insert((*f).to_owned(), v);
    }
    Value::Object(row)
}

/// A page of list rows: `count`, `tasks`, and when cut, `truncated: true` with `more`
/// (how many more matched; a lower bound when `more_at_least`).
pub fn rows_json(page: &tasklease::listing::Page, now: Millis, fields: &[&str]) -> Value {
    let mut j = success(
        "listed",
        json!({
            "count": page.tasks.len(),
            "tasks": page.tasks.iter().map(|t| row_json(t, now, fields)).collect::<Vec<_>>(),
            "truncated": page.more > 0,
        }),
    );
    if page.more > 0 {
        j["more"] = json!(page.more);
        if page.more_at_least {
            j["more_at_least"] = json!(true);
        }
    }
    j
}

/// One task, after `outcome` (`added`, `updated`).
pub fn one_task_json(outcome: &str, task: &Task, now: Millis) -> Value {
    success(outcome, json!({"task": task_json(task, now)}))
}

/// One end of a dependency edge: the task at the other end, its status and holder,
/// whether it is `satisfied` (done or cancelled), and `why` it holds its dependant back
/// (`null` when it does not).
pub fn dep_state_json(d: &DepState) -> Value {
    json!({
        "id": d.id,
        "status": d.status,
        "holder": d.holder,
        "lock_until": d.lock_until.map(Millis::to_rfc3339),
        "satisfied": d.satisfied(),
        "why": d.why(),
    })
}

/// A dependency edit (`dep add`, `dep rm`): each dependency with its `outcome` —
/// `added`, `already`, `removed` or `absent`. Edits are idempotent: an edge that was
/// already there (or already gone) is reported, not refused.
pub fn dep_edit_json(task: &TaskId, changes: &[(TaskId, DepChange)]) -> Value {
    success(
        "edited",
        json!({
        "task": task,
        "deps": changes
            .iter()
            .map(|(id, c)| json!({"id": id, "outcome": c.as_str()}))
            .collect::<Vec<_>>(),
        }),
    )
}

/// Both directions of a task's dependencies (`dep list`): `on` (what it waits on),
/// `needed_by` (what waits on it), and `waiting_on`, how many of `on` hold it back.
pub fn deps_json(task: &TaskId, d: &Deps) -> Value {
    success(
        "listed",
        json!({
        "task": task,
        "waiting_on": d.on.iter().filter(|s| !s.satisfied()).count(),
        "on": d.on.iter().map(dep_state_json).collect::<Vec<_>>(),
        "needed_by": d.needed_by.iter().map(dep_state_json).collect::<Vec<_>>(),
        }),
    )
}

/// Tasks `rm` deleted: each with the `holder` whose live lease it ended and the
/// tasks whose dependency on it was `dropped` (both only when forced).
pub fn deleted_json(gone: &[Deleted]) -> Value {
    success(
        "deleted",
        json!({
        "count": gone.len(),
        "deleted": gone
            .iter()
            .map(|d| json!({"id": d.id, "holder": d.holder, "dropped": d.dropped}))
            .collect::<Vec<_>>(),
        }),
    )
}

/// One task as `show` reports it: [`task_json`] plus `cancelled_deps` (dependencies
/// that were cancelled: satisfied, but not done), `children` (`id`, `status`),
/// `progress` (`done`, `cancelled`, `total` of the children) and `reason` (how its
/// last lease ended, when `release` or `done` gave one: `kind`, `agent`, `at`, `text`;
/// else null).
pub fn shown_json(s: &Shown) -> Value {
    let mut t = task_json(&s.task, s.now);
    t["cancelled_deps"] = json!(s.cancelled());
    t["children"] = s
        .children
        .iter()
        .map(|c| json!({"id": c.id, "status": c.status}))
        .collect();
    t["progress"] = json!(s.progress());
    t["reason"] = s.reason.as_ref().map_or(
        Value::Null,
        |e| json!({"kind": e.kind, "agent": e.agent, "at": e.at.to_rfc3339(), "text": e.reason}),
    );
    success("shown", json!({"task": t}))
}

/// The project's file locks, free or held, and by whom (`locks`).
pub fn locks_json(locks: &[LockInfo]) -> Value {
    success("listed", json!({"locks": locks}))
}

/// The SQLite writer queue's turn (`tasklease locks`, `status`): `{"held", "holder",
/// "held_for_ms", "path"}`, the holder as file locks show theirs; `null` when the store
/// has no such turn or no process has used it yet. `held_for_ms` counts from the
/// holder's own clock's `since` to this one's now, so clocks apart skew it.
#[cfg(feature = "sqlite")]
pub fn writer_turn_json(turn: Option<&tasklease::open::TurnState>) -> Value {
    let Some(t) = turn else {
        return Value::Null;
    };
    let holder = t.holder.as_ref().filter(|_| t.held);
    json!({
        "held": t.held,
        "holder": holder,
        "held_for_ms": holder.map(|h| held_for_ms(h.since)),
        "path": t.path,
    })
}

/// Milliseconds from `since` to now by this machine's clock, never negative.
pub fn held_for_ms(since: Millis) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    now.saturating_sub(since.as_millis()).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasklease::{AgentId, Token};

    #[test]
    fn exit_codes_follow_the_error_kind() {
        let id = TaskId::new("t").unwrap();
        assert_eq!(exit_code(&Error::NotFound(id.clone())), EXIT_USAGE);
        let lost = Error::LeaseLost {
            task: id.clone(),
            token: Token::legacy(1),
            why: tasklease::LostWhy::Unknown,
        };
        assert_eq!(exit_code(&lost), EXIT_LEASE_LOST);
        assert_eq!(error_of(&lost)["error"]["code"], "lease_lost");
        assert_eq!(error_of(&lost)["error"]["exit"], 5);
        assert_eq!(error_of(&lost)["error"]["retryable"], false);
        let unsent = Error::unavailable("connect", "refused");
        assert_eq!(error_of(&unsent)["error"]["retryable"], true);
        let held = Refusal::Held {
            by: AgentId::new("a").unwrap(),
            until: Millis::from_millis(0),
        };
        assert_eq!(refusal_exit(&held), EXIT_CONFLICT);
        assert_eq!(refusal_json(&id, &held)["error"]["holder"], "a");
        assert_eq!(refusal_json(&id, &held)["error"]["exit"], 3);
        assert_eq!(refusal_exit(&Refusal::NotFound), EXIT_USAGE);
    }
}

/// What one worker of `run --loop` did with the tasks it took.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerTally {
    /// The worker's agent name.
    pub agent: String,
    /// Tasks whose command exited 0 and were marked done (or that the command finished
    /// itself).
    pub done: u64,
    /// Tasks handed back to `todo` without a failure: by the command itself, or on
    /// Ctrl-C / SIGTERM.
    pub released: u64,
    /// Tasks whose command failed (released to `todo`, attempt counted) or whose lease
    /// was lost while it ran.
    pub failed: u64,
    /// Why the worker stopped: `drained` (nothing ready, after any --wait),
    /// `max_tasks`, `interrupted`, or `error` (with `error` set).
    pub ended: String,
    /// The error that stopped the worker, if one did.
    pub error: Option<String>,
}

/// The end of `run --loop`: each worker's tally and the totals. `outcome` is
/// `finished` (a success), or `interrupted` / `error` (a failure with that code, `exit`
/// and `message`).
pub fn run_summary_json(outcome: &str, exit: u8, message: &str, workers: &[WorkerTally]) -> Value {
    let total = |f: fn(&WorkerTally) -> u64| workers.iter().map(f).sum::<u64>();
    let summary = json!({
        "done": total(|w| w.done),
        "released": total(|w| w.released),
        "failed": total(|w| w.failed),
        "workers": workers.iter().map(|w| json!({
            "agent": w.agent,
            "done": w.done,
            "released": w.released,
            "failed": w.failed,
            "ended": w.ended,
            "error": w.error,
        })).collect::<Vec<_>>(),
    });
    if exit == 0 {
        success(outcome, summary)
    } else {
        failure(outcome, exit, message, summary)
    }
}
