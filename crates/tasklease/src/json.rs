//! The JSON object of every result, shared by every front end: the CLI prints these
//! with `--json`, and the MCP server returns the same objects as structured tool
//! results. Building them in one place is what keeps the two from drifting: a field
//! added here appears in both.
//!
//! Every object carries `ok` (did the verb do what was asked) and, where a verb can
//! end more than one way, `outcome` (`claimed`, `held`, `empty`, `renewed`, …).
//! Instants are RFC 3339 strings in UTC with milliseconds; `lock_until_ms` repeats the
//! lease end as epoch milliseconds for arithmetic. Tokens appear only in results given
//! to the lease holder (claim, renew) and in reap's list of the now-stale tokens —
//! never in `show` or `list`.

use serde_json::{Value, json};

use crate::locks::LockInfo;
use crate::show::Shown;
use crate::{
    Deleted, DepChange, DepState, Deps, Ended, Error, ErrorKind, Lease, LeaseDuration, Millis,
    Reaped, Refusal, Status, Task, TaskId, Unclaimable,
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
    json!({"ok": false, "error": {"code": code, "message": message, "exit": exit}})
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
        "assigned_at": l.assigned_at.to_rfc3339(),
        "lock_until": l.lock_until.to_rfc3339(),
        "lock_until_ms": l.lock_until.0,
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

/// A refusal as JSON: `outcome` is `held`, `not_found` or `not_claimable`.
pub fn refusal_json(id: &TaskId, r: &Refusal) -> Value {
    let mut j = json!({"ok": false, "id": id});
    match r {
        Refusal::Held { by, until } => {
            j["outcome"] = json!("held");
            j["holder"] = json!(by);
            j["lock_until"] = json!(until.to_rfc3339());
        }
        Refusal::NotFound => j["outcome"] = json!("not_found"),
        Refusal::NotClaimable { why } => {
            j["outcome"] = json!("not_claimable");
            match why {
                Unclaimable::Closed { status } => {
                    j["reason"] = json!("closed");
                    j["status"] = json!(status);
                }
                Unclaimable::Waiting { on } => {
                    j["reason"] = json!("waiting");
                    j["waiting_on"] = json!(on);
                }
            }
        }
    }
    j
}

/// One task claimed: the lease, `outcome: claimed`, and the lease length asked for.
pub fn claimed_json(l: &Lease, lease: LeaseDuration) -> Value {
    let mut j = lease_json(l);
    j["ok"] = json!(true);
    j["outcome"] = json!("claimed");
    j["lease_ms"] = json!(lease.as_millis());
    j
}

/// A whole batch claimed, in the order asked.
pub fn batch_claimed_json(leases: &[Lease]) -> Value {
    json!({
        "ok": true,
        "outcome": "claimed",
        "leases": leases.iter().map(lease_json).collect::<Vec<_>>(),
    })
}

/// A batch refused: nothing was claimed, and each refused id says why.
pub fn batch_refused_json(why: &[(TaskId, Refusal)]) -> Value {
    json!({
        "ok": false,
        "outcome": "refused",
        "refused": why.iter().map(|(id, r)| refusal_json(id, r)).collect::<Vec<_>>(),
    })
}

/// `claim --next` found nothing ready.
pub fn empty_json() -> Value {
    json!({"ok": false, "outcome": "empty"})
}

/// A lease extended.
pub fn renewed_json(l: &Lease) -> Value {
    let mut j = lease_json(l);
    j["ok"] = json!(true);
    j["outcome"] = json!("renewed");
    j
}

/// A lease ended: `outcome` is `released`, `forced` or `done`, with the task as it
/// is now.
pub fn ended_json(outcome: &str, task: &Task, now: Millis) -> Value {
    json!({"ok": true, "outcome": outcome, "task": task_json(task, now)})
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
        "token": r.token,
        "lock_until": r.lock_until.to_rfc3339(),
    })
}

/// The expired leases `reap` ended.
pub fn reaped_json(reaped: &[Reaped]) -> Value {
    let items: Vec<_> = reaped.iter().map(reaped_item_json).collect();
    json!({"ok": true, "outcome": "reaped", "count": reaped.len(), "reaped": items})
}

/// A list of tasks.
pub fn tasks_json(tasks: &[Task], now: Millis) -> Value {
    json!({
        "ok": true,
        "count": tasks.len(),
        "tasks": tasks.iter().map(|t| task_json(t, now)).collect::<Vec<_>>(),
    })
}

/// One task (`add`, `show`, `update`).
pub fn one_task_json(task: &Task, now: Millis) -> Value {
    json!({"ok": true, "task": task_json(task, now)})
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
    json!({
        "ok": true,
        "task": task,
        "deps": changes
            .iter()
            .map(|(id, c)| json!({"id": id, "outcome": c.as_str()}))
            .collect::<Vec<_>>(),
    })
}

/// Both directions of a task's dependencies (`dep list`): `on` (what it waits on),
/// `needed_by` (what waits on it), and `waiting_on`, how many of `on` hold it back.
pub fn deps_json(task: &TaskId, d: &Deps) -> Value {
    json!({
        "ok": true,
        "task": task,
        "waiting_on": d.on.iter().filter(|s| !s.satisfied()).count(),
        "on": d.on.iter().map(dep_state_json).collect::<Vec<_>>(),
        "needed_by": d.needed_by.iter().map(dep_state_json).collect::<Vec<_>>(),
    })
}

/// Tasks `rm` deleted: each with the `holder` whose live lease it ended and the
/// tasks whose dependency on it was `dropped` (both only when forced).
pub fn deleted_json(gone: &[Deleted]) -> Value {
    json!({
        "ok": true,
        "outcome": "deleted",
        "count": gone.len(),
        "deleted": gone
            .iter()
            .map(|d| json!({"id": d.id, "holder": d.holder, "dropped": d.dropped}))
            .collect::<Vec<_>>(),
    })
}

/// One task as `show` reports it: [`task_json`] plus `cancelled_deps` (dependencies
/// that were cancelled: satisfied, but not done), `children` (`id`, `status`) and
/// `progress` (`done`, `cancelled`, `total` of the children).
pub fn shown_json(s: &Shown) -> Value {
    let mut t = task_json(&s.task, s.now);
    t["cancelled_deps"] = json!(s.cancelled());
    t["children"] = s
        .children
        .iter()
        .map(|c| json!({"id": c.id, "status": c.status}))
        .collect();
    t["progress"] = json!(s.progress());
    json!({"ok": true, "task": t})
}

/// The project's file locks, free or held, and by whom (`locks`).
pub fn locks_json(locks: &[LockInfo]) -> Value {
    json!({"ok": true, "locks": locks})
}

/// The SQLite writer queue's turn (`tasklease locks`, `status`): `{"held", "holder",
/// "held_for_ms", "path"}`, the holder as file locks show theirs; `null` when the store
/// has no such turn or no process has used it yet. `held_for_ms` counts from the
/// holder's own clock's `since` to this one's now, so clocks apart skew it.
#[cfg(feature = "sqlite")]
pub fn writer_turn_json(turn: Option<&crate::open::TurnState>) -> Value {
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
    now.saturating_sub(since.0).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentId, Token};

    #[test]
    fn exit_codes_follow_the_error_kind() {
        let id = TaskId::new("t").unwrap();
        assert_eq!(exit_code(&Error::NotFound(id.clone())), EXIT_USAGE);
        let lost = Error::LeaseLost {
            task: id.clone(),
            token: Token(1),
            why: crate::LostWhy::Unknown,
        };
        assert_eq!(exit_code(&lost), EXIT_LEASE_LOST);
        assert_eq!(error_of(&lost)["error"]["code"], "lease_lost");
        assert_eq!(error_of(&lost)["error"]["exit"], 5);
        assert_eq!(error_of(&lost)["error"]["retryable"], false);
        let unsent = Error::unavailable("connect", "refused");
        assert_eq!(error_of(&unsent)["error"]["retryable"], true);
        let held = Refusal::Held {
            by: AgentId::new("a").unwrap(),
            until: Millis(0),
        };
        assert_eq!(refusal_exit(&held), EXIT_CONFLICT);
        assert_eq!(refusal_json(&id, &held)["holder"], "a");
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

/// The end of `run --loop`: each worker's tally and the totals.
pub fn run_summary_json(outcome: &str, workers: &[WorkerTally]) -> Value {
    let total = |f: fn(&WorkerTally) -> u64| workers.iter().map(f).sum::<u64>();
    json!({
        "ok": outcome != "error",
        "outcome": outcome,
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
    })
}
