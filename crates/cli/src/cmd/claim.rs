//! `tasklease claim ID…|--next`.

use serde_json::{Value, json};
use tasklease::{BatchOutcome, ClaimOutcome, Lease, LeaseDuration, Refusal, TaskId, Unclaimable};

use super::Ctx;
use crate::args::ClaimArgs;
use crate::exit::Exit;
use crate::output::{Report, human_ms, lease_json};

pub fn run(cx: &Ctx<'_>, a: &ClaimArgs) -> tasklease::Result<Report> {
    if a.ids.len() > 1 && a.token.is_some() {
        return Err(tasklease::Error::invalid(
            "token",
            "--token re-claims one task; a batch claims free tasks only",
        ));
    }
    let agent = cx.agent()?;
    let store = cx.store()?;
    if a.next {
        return Ok(match store.claim_next(&agent, a.lease)? {
            Some(l) => claimed(&l, a.lease),
            None => Report::refused(
                Exit::Empty,
                json!({"ok": false, "outcome": "empty"}),
                "nothing to claim: no task is ready",
            ),
        });
    }
    if let [id] = a.ids.as_slice() {
        return Ok(match store.claim(id, &agent, a.lease, a.token)? {
            ClaimOutcome::Claimed(l) => claimed(&l, a.lease),
            ClaimOutcome::Refused(r) => refused(id, &r),
        });
    }
    Ok(match store.claim_batch(&a.ids, &agent, a.lease)? {
        BatchOutcome::Claimed(leases) => {
            let human: Vec<String> = leases.iter().map(|l| human_lease(l, a.lease)).collect();
            Report::ok(
                json!({
                    "ok": true,
                    "outcome": "claimed",
                    "leases": leases.iter().map(lease_json).collect::<Vec<_>>(),
                }),
                human.join("\n"),
            )
        }
        BatchOutcome::Refused(why) => {
            let human: Vec<String> = why.iter().map(|(id, r)| format!("{id}: {r}")).collect();
            Report::refused(
                Exit::Conflict,
                json!({
                    "ok": false,
                    "outcome": "refused",
                    "refused": why.iter().map(|(id, r)| refusal_json(id, r)).collect::<Vec<_>>(),
                }),
                format!(
                    "claimed nothing (all or nothing):\n  {}",
                    human.join("\n  ")
                ),
            )
        }
    })
}

fn claimed(l: &Lease, lease: LeaseDuration) -> Report {
    let mut j = lease_json(l);
    j["ok"] = json!(true);
    j["outcome"] = json!("claimed");
    j["lease_ms"] = json!(lease.as_millis());
    Report::ok(j, human_lease(l, lease))
}

fn human_lease(l: &Lease, lease: LeaseDuration) -> String {
    format!(
        "claimed {} as {}: token {}, lease until {} ({})",
        l.task,
        l.agent,
        l.token,
        l.lock_until,
        human_ms(lease.as_millis())
    )
}

pub fn refused(id: &TaskId, r: &Refusal) -> Report {
    let exit = match r {
        Refusal::Held { .. } => Exit::Conflict,
        Refusal::NotFound => Exit::Usage,
        Refusal::NotClaimable { .. } => Exit::Empty,
    };
    Report::refused(exit, refusal_json(id, r), format!("{id}: {r}"))
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
