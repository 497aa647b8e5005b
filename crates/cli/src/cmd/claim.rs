//! `tasklease claim ID…|--next`.

use tasklease::{AgentId, BatchOutcome, ClaimOutcome, Lease, LeaseDuration, Refusal, TaskId};
use tasklease_shape::json::{
    batch_claimed_json, batch_refused_json, claimed_json, empty_json, refusal_exit,
};

use super::Ctx;
use crate::args::ClaimArgs;
use crate::exit::Exit;
use crate::output::{Report, human_ms};

pub fn run(cx: &Ctx<'_>, a: &ClaimArgs) -> tasklease::Result<Report> {
    if a.ids.len() > 1 && a.token.is_some() {
        return Err(tasklease::Error::invalid(
            "token",
            "--token re-claims one task; a batch claims free tasks only",
        ));
    }
    if a.wait.is_some() && !a.next {
        return Err(tasklease::Error::invalid(
            "wait",
            "--wait waits for a task to become ready: it goes with --next, not with ids",
        ));
    }
    let agent = cx.agent()?;
    let store = cx.store()?;
    let key = a.request_id.as_ref();
    if a.next
        && let Some(bound) = a.wait
    {
        let w = tasklease::wait::claim_next_waiting(
            &*store,
            a.lease,
            key,
            &tasklease::wait::WaitOptions::new(bound),
            &agent,
        )?;
        let waited = human_ms(i64::try_from(w.waited.as_millis()).unwrap_or(i64::MAX));
        return Ok(match &w.lease {
            Some(l) if w.looks > 0 => Report::ok(
                claimed_json(l, a.lease),
                format!("{} (after waiting {waited})", human_lease(l, a.lease)),
            ),
            Some(l) => claimed(l, a.lease),
            None => Report::refused(
                Exit::Empty,
                empty_json(),
                format!(
                    "nothing to claim: no task became ready within {} (waited {} on {}; \
                     looked {} times)",
                    human_ms(i64::try_from(bound.as_millis()).unwrap_or(i64::MAX)),
                    waited,
                    w.on,
                    w.looks,
                ),
            ),
        });
    }
    if a.next {
        return Ok(match store.claim_next_keyed(a.lease, key, &agent)? {
            Some(l) => claimed(&l, a.lease),
            None => Report::refused(
                Exit::Empty,
                empty_json(),
                "nothing to claim: no task is ready",
            ),
        });
    }
    if let [id] = a.ids.as_slice() {
        return Ok(
            match store.claim_keyed(id, a.lease, a.token.as_ref(), key, &agent)? {
                ClaimOutcome::Claimed(l) => claimed(&l, a.lease),
                ClaimOutcome::Refused(r) => refused_to(id, &r, &agent),
            },
        );
    }
    Ok(
        match store.claim_batch_keyed(&a.ids, a.lease, key, &agent)? {
            BatchOutcome::Claimed(leases) => {
                let human: Vec<String> = leases.iter().map(|l| human_lease(l, a.lease)).collect();
                Report::ok(batch_claimed_json(&leases), human.join("\n"))
            }
            BatchOutcome::Refused(why) => {
                let human: Vec<String> = why.iter().map(|(id, r)| r.message(id)).collect();
                Report::refused(
                    Exit::Conflict,
                    batch_refused_json(&why),
                    format!(
                        "claimed nothing (all or nothing):\n  {}",
                        human.join("\n  ")
                    ),
                )
            }
        },
    )
}

fn claimed(l: &Lease, lease: LeaseDuration) -> Report {
    Report::ok(claimed_json(l, lease), human_lease(l, lease))
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

/// [`refused`], told to `me`: a holder refused on its own task (its name matches, but
/// it gave no token or another one) is told so, and how to re-claim.
pub fn refused_to(id: &TaskId, r: &Refusal, me: &AgentId) -> Report {
    let Refusal::Held { by, until } = r else {
        return refused(id, r);
    };
    if by != me {
        return refused(id, r);
    }
    let mut json = tasklease_shape::json::refusal_json(id, r);
    json["error"]["held_by_you"] = serde_json::json!(true);
    Report::refused(
        Exit::from_code(refusal_exit(r)),
        json,
        format!(
            "{id}: held by you ({by}) until {until}: your agent name matches the holder's, \
             but a name is not proof of holding it; pass --token T to re-claim it \
             (`tasklease mine` lists your leases with their tokens)"
        ),
    )
}

pub fn refused(id: &TaskId, r: &Refusal) -> Report {
    Report::refused(
        Exit::from_code(refusal_exit(r)),
        tasklease_shape::json::refusal_json(id, r),
        r.message(id),
    )
}
