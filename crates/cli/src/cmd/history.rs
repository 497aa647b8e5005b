//! `log` and `status`: what the lease history and the task table say, read-only.

use serde_json::{Value, json};
use tasklease::{Error, Event, LeaseDuration, ListFilter, Millis, Result, Status};
use tasklease_shape::stats::{self, Contention, Held, LeaseFit, Standing};

use super::Ctx;
use crate::args::{LogArgs, StatusArgs};
use crate::output::{Report, human_ms, time_left};
use tasklease::text::escape;

pub fn log(cx: &Ctx<'_>, a: &LogArgs) -> Result<Report> {
    let store = cx.store()?;
    let events = store.log(a.id.as_ref(), a.limit)?;
    // A deleted task's history is still shown (its `deleted` row last).
    if let Some(id) = &a.id
        && events.is_empty()
        && store.show(id)?.is_none()
    {
        return Err(Error::NotFound(id.clone()));
    }
    let human = if events.is_empty() {
        "no lease events".to_owned()
    } else {
        let rows = events.iter().map(event_row).collect();
        crate::table::render(&["AT", "SEQ", "KIND", "TASK", "AGENT", "DETAIL"], rows, 5)
    };
    Ok(Report::ok(
        tasklease_shape::json::events_json(&events),
        human,
    ))
}

/// One event as a table row: when, its number, what, which task, who, and the rest.
fn event_row(e: &Event) -> Vec<String> {
    let mut detail = Vec::new();
    if let Some(f) = e.fence {
        detail.push(format!("fence {f}"));
    }
    if let Some(ms) = e.lease_ms {
        detail.push(format!("lease {}", lease_str(ms)));
    }
    if let Some(us) = e.wait_us
        && (us >= 1000 || e.busy.unwrap_or(0) > 0)
    {
        let mut w = format!("waited {}", human_us(us));
        if let Some(b) = e.busy.filter(|&b| b > 0) {
            w.push_str(&format!(" ({b} busy retries)"));
        }
        detail.push(w);
    }
    if let Some(r) = &e.reason {
        // One line by construction; a row written by plain SQL is escaped here.
        detail.push(format!("reason: {}", escape(r)));
    }
    if let Some(d) = &e.detail {
        detail.push(format!("— {}", escape(d)));
    }
    vec![
        e.at.to_string(),
        e.seq.to_string(),
        e.kind.as_str().to_owned(),
        e.task.to_string(),
        escape(e.agent.as_str()).into_owned(),
        detail.join("  "),
    ]
}

pub fn status(cx: &Ctx<'_>, a: &StatusArgs) -> Result<Report> {
    let store = cx.store()?;
    let counts = store.counts()?;
    let leased = store.list(&ListFilter {
        statuses: vec![Status::InProgress],
        ..ListFilter::default()
    })?;
    let events = store.log(None, a.window)?;
    let now = store.now()?;
    let held = stats::held(&leased, &events, now);
    let contention = stats::contention(&events);
    let fits = stats::fit(&stats::holds(&events));
    let standing = |s: Standing| held.iter().filter(|h| h.standing == s).count();
    let turn = tasklease::open::writer_turn(&cx.spec()?)?;
    let json = json!({
        "ok": true,
        "outcome": "status",
        "now": now.to_rfc3339(),
        "tasks": counts.iter().map(|(s, n)| (s.as_str().to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "total": counts.iter().map(|c| c.1).sum::<u64>(),
        "held": held.iter().map(held_json).collect::<Vec<_>>(),
        "near_expiry": standing(Standing::NearExpiry),
        "expired": standing(Standing::Expired),
        "contention": contention,
        "leases": fits.iter().map(|f| {
            let mut j = json!(f);
            j["advice"] = json!(f.advice());
            j
        }).collect::<Vec<_>>(),
        "window": {
            "events": events.len(),
            "since": events.first().map(|e| e.at.to_rfc3339()),
        },
        "writer_turn": tasklease_shape::json::writer_turn_json(turn.as_ref()),
    });
    let mut human = vec![
        tasks_line(&counts),
        held_lines(&held, now, a.all),
        contention_line(&contention, &events),
        lease_lines(&fits),
    ];
    human.extend(turn.as_ref().map(super::lock::writer_turn_line));
    let human = human.join("\n");
    Ok(Report::ok(json, human))
}

fn held_json(h: &Held) -> Value {
    let mut j = json!(h);
    j["lock_until"] = json!(h.lock_until.to_rfc3339());
    j
}

fn tasks_line(counts: &[(Status, u64)]) -> String {
    let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    format!("tasks       {}", parts.join(" · "))
}

/// How many held tasks `status` lists without `--all`: the nearest expiries.
const HELD_SHOWN: usize = 10;

/// The held tasks, nearest expiry first: the ten that need a look soonest, or all with
/// `--all`; a line says how many more there are.
fn held_lines(held: &[Held], now: Millis, all: bool) -> String {
    if held.is_empty() {
        return "held        nothing".to_owned();
    }
    let mut by_expiry: Vec<&Held> = held.iter().collect();
    by_expiry.sort_by_key(|h| (h.lock_until, h.id.clone()));
    let shown = if all { by_expiry.len() } else { HELD_SHOWN };
    let rows = by_expiry
        .iter()
        .take(shown)
        .map(|h| {
            let mark = match h.standing {
                Standing::Live => "",
                Standing::NearExpiry => "near expiry",
                Standing::Expired => "expired: anyone may claim it",
            };
            vec![
                h.id.to_string(),
                escape(h.holder.as_str()).into_owned(),
                time_left(h.lock_until, now),
                human_ms(h.held_ms),
                h.lease_ms.map(lease_str).unwrap_or_default(),
                mark.to_owned(),
            ]
        })
        .collect();
    let mut out = format!(
        "held        {} task{}, nearest expiry first:\n{}",
        held.len(),
        if held.len() == 1 { "" } else { "s" },
        crate::table::render(&["TASK", "HOLDER", "LEFT", "HELD", "LEASE", ""], rows, 1)
    );
    if by_expiry.len() > shown {
        out.push_str(&format!(
            "\n… and {} more held (tasklease status --all lists every one)",
            by_expiry.len() - shown
        ));
    }
    out
}

fn contention_line(c: &Contention, events: &[Event]) -> String {
    let Some(first) = events.first() else {
        return "contention  no history yet".to_owned();
    };
    let mut s = format!(
        "contention  since {} ({} events): {} claims won, {} lost to a holder; {} busy retries in {} claims",
        first.at,
        events.len(),
        c.won,
        c.lost,
        c.busy_retries,
        c.retried
    );
    if let (Some(p50), Some(p99), Some(max)) = (c.wait_us_p50, c.wait_us_p99, c.wait_us_max) {
        s.push_str(&format!(
            "; wait for the write lock p50 {}, p99 {}, max {}",
            human_us(p50),
            human_us(p99),
            human_us(max)
        ));
    }
    s
}

fn lease_lines(fits: &[LeaseFit]) -> String {
    if fits.is_empty() {
        return "leases      no finished leases in the history yet".to_owned();
    }
    fits.iter()
        .enumerate()
        .map(|(i, f)| {
            let mut ends = vec![];
            for (n, what) in [
                (f.done, "done"),
                (f.released, "released"),
                (f.expired, "ran out"),
                (f.forced, "forced"),
            ] {
                if n > 0 {
                    ends.push(format!("{n} {what}"));
                }
            }
            let held = match (f.held_ms_p50, f.held_ms_p90) {
                (Some(p50), Some(p90)) => {
                    format!(", held p50 {} p90 {}", human_ms(p50), human_ms(p90))
                }
                _ => String::new(),
            };
            format!(
                "{}{}: {} {} ({}){held}; {}",
                if i == 0 {
                    "leases      "
                } else {
                    "            "
                },
                lease_str(f.lease_ms),
                f.leases,
                if f.leases == 1 { "lease" } else { "leases" },
                ends.join(", "),
                f.advice()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A lease length as `--lease` takes it: `5m`, `1h30m`, `600ms`.
fn lease_str(ms: i64) -> String {
    LeaseDuration::from_millis(ms).map_or_else(|_| human_ms(ms), |d| d.to_string())
}

fn human_us(us: i64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else if us < 10_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else {
        human_ms(us / 1000)
    }
}
