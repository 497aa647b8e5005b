//! Tool results: the object `tasklease … --json` prints as structured content
//! (`tasklease_shape::json`, validated against the tool's `outputSchema`), and one short text
//! block — a sentence saying what happened and, for refusals and errors, what to do
//! next. The object is not repeated as text: the structured content carries it, and
//! every byte here costs the agent context on every call.
//!
//! Every tool declares an `outputSchema` that is the `anyOf` of its success shapes
//! and the one failure shape (`tasklease_shape::schema`), because MCP clients built on the
//! TypeScript SDK validate every structured result against it, error results
//! included: a refusal (`{"ok":false,"error":{…}}`) must fit too.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;
use tasklease::{Error, Lease, LostWhy, Refusal, TaskId, Unclaimable};
use tasklease_shape::json::{
    EXIT_RUNTIME, batch_refused_json, empty_json, error_of, failure, refusal_json,
};

/// A success: the object, and a sentence saying what happened.
pub fn ok(sentence: String, value: Value) -> CallToolResult {
    let mut r = CallToolResult::success(vec![ContentBlock::text(sentence)]);
    r.structured_content = Some(value);
    r
}

/// A refusal or error (`isError: true`): the object, and what to do next.
fn failed(sentence: String, value: Value) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(sentence)]);
    r.structured_content = Some(value);
    r
}

/// A call the client cancelled: `error.code` `cancelled`. `maybe_applied`: it was a
/// write already handed to the store, which cannot be withdrawn halfway.
pub fn cancelled(maybe_applied: bool) -> CallToolResult {
    let message = if maybe_applied {
        "cancelled after the call was handed to the database: it may still take effect; \
         look with list (mine: true) or show before repeating it"
    } else {
        "cancelled before it reached the database: nothing was done"
    };
    failed(
        format!("{message}."),
        failure("cancelled", EXIT_RUNTIME, message, Value::Null),
    )
}

/// A library error: `{"ok":false,"error":{"code","exit","message","retryable"}}` and
/// what to do.
pub fn error(e: &Error) -> CallToolResult {
    failed(format!("{e}. {}", next_step(e)), error_of(e))
}

/// A refused claim of one task.
pub fn refused(id: &TaskId, r: &Refusal) -> CallToolResult {
    failed(refusal_sentence(id, r), refusal_json(id, r))
}

/// A refused batch: nothing was claimed. `mine`: the caller's live leases, so that a
/// task held by the caller's own name is said to be held by you, with its token.
pub fn batch_refused(why: &[(TaskId, Refusal)], mine: &[Lease]) -> CallToolResult {
    let each: Vec<String> = why
        .iter()
        .map(|(id, r)| match mine.iter().find(|l| &l.task == id) {
            Some(l) => format!(
                "{id} is held by you (token {}) until {}: it is yours already; leave it out \
                 of the batch and keep working on it.",
                l.token, l.lock_until
            ),
            None => refusal_sentence(id, r),
        })
        .collect();
    failed(
        format!(
            "Nothing was claimed (a batch is all or nothing). {} Claim the other tasks \
             without these, or try again later.",
            each.join(" ")
        ),
        batch_refused_json(why),
    )
}

/// `claim` with `next` found nothing ready.
pub fn empty() -> CallToolResult {
    failed(
        "Nothing to claim: no task is ready (every todo task waits on dependencies, or \
         is held). Call list to see who holds what and until when, then wait, or add a task."
            .to_owned(),
        empty_json(),
    )
}

fn refusal_sentence(id: &TaskId, r: &Refusal) -> String {
    match r {
        Refusal::Held { by, until } => format!(
            "{id} is held by {by} until {until}. Do not work on it: claim another task \
             (next: true), or claim it again after that time if it is still needed."
        ),
        Refusal::NotFound => format!("There is no task {id}. Call list to see the task ids."),
        Refusal::NotClaimable {
            why: Unclaimable::Closed { status },
        } => format!("{id} is {status}: there is nothing left to do on it. Claim another task."),
        Refusal::NotClaimable {
            why: Unclaimable::Waiting { on },
        } => {
            let on: Vec<&str> = on.iter().map(TaskId::as_str).collect();
            format!(
                "{id} waits on {}, which must be done first. Claim one of those, or another \
                 task (next: true).",
                on.join(", ")
            )
        }
    }
}

fn next_step(e: &Error) -> String {
    match e {
        Error::LeaseLost { task, why, .. } => {
            let now = match why {
                LostWhy::Stale { .. } => "someone else claimed it after your lease ran out",
                LostWhy::Ended { .. } => {
                    "your lease on it was already ended (reaped after it ran out, \
                     force-released, or by another operation with this token)"
                }
                LostWhy::Unknown => "this token was never issued for it",
            };
            format!(
                "Stop working on {task}: {now}, so your token no longer holds it and nothing \
                 was changed. Do not publish work for it before checking: call show {task} \
                 to see its state, then claim it again or move on."
            )
        }
        Error::NotFound(_) => "Call list to see the task ids.".to_owned(),
        Error::Exists(_) => "Pick another id, or omit `id` to get the next free T-<n>.".to_owned(),
        Error::Invalid {
            field: "db" | "project" | "store",
            ..
        } => "Nothing was changed. Ask the user to create the database (`tasklease init` \
              in the project root). This server keeps running: once the project and its \
              database exist, call again."
            .to_owned(),
        Error::OutcomeUnknown { .. } => "Whether this call took effect is unknown, so do not \
              simply repeat it: look first with mine (your live leases, with their tokens) or \
              show the task. A done or release repeated with the same token is safe (it answers \
              already_done / already_released); a claim is safe to repeat only with the same \
              request_id."
            .to_owned(),
        Error::Busy { .. } => "Another process holds the database's writer turn (named above) \
              and may be stopped or hung; this is not caused by your arguments. Tell the user \
              who holds it; call again later. A claim that gave up this way may still be granted \
              when that process resumes: call list with mine: true before claiming again."
            .to_owned(),
        Error::Invalid { .. } => {
            "Nothing was changed; correct the arguments (see the tool's input schema) and \
             call again."
                .to_owned()
        }
        _ => "The database failed; this is not caused by your arguments. Try again shortly, \
              and tell the user if it persists."
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sentence after an error matches the condition: an unknown outcome is never
    /// "try again", a busy turn and a missing database never "correct the arguments".
    #[test]
    fn hints_match_the_condition() {
        let unknown = next_step(&Error::OutcomeUnknown {
            context: "claim the next task".to_owned(),
            source: "connection reset".into(),
        });
        assert!(unknown.contains("look first"), "{unknown}");
        assert!(unknown.contains("mine"), "{unknown}");
        assert!(!unknown.contains("Try again"), "{unknown}");
        let busy = next_step(&Error::Busy {
            what: "the database's writer turn".to_owned(),
            waited: std::time::Duration::from_secs(30),
            holder: Some("alice (pid 1 on h)".to_owned()),
        });
        assert!(!busy.contains("arguments) and"), "{busy}");
        assert!(busy.contains("not caused by your arguments"), "{busy}");
        let missing = next_step(&Error::invalid("store", "no tasklease database at x"));
        assert!(missing.contains("tasklease init"), "{missing}");
        assert!(!missing.contains("correct the arguments"), "{missing}");
    }
}
