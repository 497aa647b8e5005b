//! `tasklease bench --mode wait`: what waiting for work costs and gains, measured
//! against the polling alternative (`claim --next`, then a 100 ms sleep on "nothing
//! ready") in the same run, with real agent processes (this binary, as
//! `bench-waiter`).
//!
//! - **Wake latency**: 20 waiters on a board where nothing is ready; the parent
//!   finishes a task whose dependant thereby becomes ready, and measures from the
//!   call of that `done` (so its own commit is inside the figure) to the moment a
//!   waiter's claim of the dependant returned (both on this machine's clock).
//!   Repeated; p50/p99.
//! - **Idle cost**: 20 waiters on an empty board; their CPU time over a window of
//!   `--seconds` (from `/proc/<pid>/stat`) and the claims (writer turns) and looks
//!   (reads) they made in it.
//! - **Chain**: 1,000 tasks each depending on the one before, drained by 20 waiting
//!   workers, against one worker draining 1,000 tasks that are all ready from the
//!   start. Each worker steps from task to task as `run --loop` does, with
//!   `done_then_claim_next` (the worker that finishes a task takes the next; waiters
//!   are woken only for what is left), and — for comparison — with a plain `done`
//!   then a claim. The one-worker baseline is measured both ways too.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::bench::{BenchDb, Target};
use serde_json::{Value, json};
use tasklease::wait::WaitOptions;
use tasklease::{AgentId, Error, LeaseDuration, NewTask, Result, Store, TaskId};

use super::Ctx;
use crate::args::{BenchArgs, BenchWaiterArgs};
use crate::output::Report;

/// Waiters in the latency and idle runs, and workers on the chain.
const WAITERS: usize = 20;
/// Latency rounds per variant.
const ROUNDS: usize = 40;
/// Tasks in the chain.
const CHAIN: usize = 1000;
/// Rounds of each chain run (medians reported).
const CHAIN_ROUNDS: usize = 3;
/// The polling alternative's sleep on "nothing ready".
const POLL: Duration = Duration::from_millis(100);
/// Bench leases outlast any run.
const LEASE: LeaseDuration = LeaseDuration::MAX;

/// How a waiter waits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    Wait,
    Poll,
    /// Claim until nothing is ready, then stop: the one-worker baseline.
    Drain,
}

/// One drain of the chain bench.
struct Drain {
    how: How,
    step: Step,
    /// Each task depends on the one before (else all are ready at once).
    chain: bool,
    workers: usize,
    label: &'static str,
}

impl Drain {
    const ALL: [Drain; 6] = [
        Drain {
            how: How::Drain,
            step: Step::ThenNext,
            chain: false,
            workers: 1,
            label: "one worker, 1,000 ready tasks, done_then_claim_next",
        },
        Drain {
            how: How::Wait,
            step: Step::ThenNext,
            chain: true,
            workers: WAITERS,
            label: "chain of 1,000, 20 waiting workers, done_then_claim_next",
        },
        Drain {
            how: How::Wait,
            step: Step::ThenNext,
            chain: true,
            workers: 1,
            label: "chain of 1,000, 1 waiting worker, done_then_claim_next",
        },
        Drain {
            how: How::Drain,
            step: Step::DoneThenClaim,
            chain: false,
            workers: 1,
            label: "one worker, 1,000 ready tasks, done then claim",
        },
        Drain {
            how: How::Wait,
            step: Step::DoneThenClaim,
            chain: true,
            workers: WAITERS,
            label: "chain of 1,000, 20 waiting workers, done then claim",
        },
        Drain {
            how: How::Poll,
            step: Step::DoneThenClaim,
            chain: true,
            workers: WAITERS,
            label: "chain of 1,000, 20 polling workers, done then claim",
        },
    ];

    /// The run's key in the JSON report.
    fn key(&self) -> String {
        let shape = if self.chain { "chain" } else { "ready_list" };
        format!(
            "{shape}_{}_{}_{}",
            self.workers,
            self.how.arg(),
            self.step.arg()
        )
    }
}

/// How a worker steps from one task to the next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `done_then_claim_next`, as `run --loop` does.
    ThenNext,
    /// `done`, then a claim.
    DoneThenClaim,
}

impl Step {
    fn arg(self) -> &'static str {
        match self {
            Step::ThenNext => "done_then_claim_next",
            Step::DoneThenClaim => "done_then_claim",
        }
    }
}

impl How {
    /// How such a worker steps on: a waiting one as `run --loop` does, a polling one
    /// as a `claim --next` loop does.
    fn step(self) -> Step {
        match self {
            How::Wait => Step::ThenNext,
            How::Poll | How::Drain => Step::DoneThenClaim,
        }
    }

    fn arg(self) -> &'static str {
        match self {
            How::Wait => "wait",
            How::Poll => "poll",
            How::Drain => "drain",
        }
    }
}

pub fn run(cx: &Ctx<'_>, a: &BenchArgs, target: &Target) -> Result<Report> {
    let idle = Duration::from_secs_f64(a.seconds);
    let store_desc = match target {
        Target::Postgres(_) => "PostgreSQL",
        Target::SqliteDir(_) => "SQLite",
    };
    let mut out = tasklease_shape::json::success(
        "measured",
        json!({"mode": "wait", "store": store_desc, "waiters": WAITERS}),
    );
    let mut human = vec![format!(
        "tasklease bench --mode wait: {store_desc}, {WAITERS} waiters; polling = claim --next, \
         100 ms sleep on nothing ready"
    )];
    for how in [How::Wait, How::Poll] {
        progress(&format!("wake latency, {}…", how.arg()));
        let (p50, p99, turns) = latency(cx, target, how)?;
        out["latency"][how.arg()] = json!({"p50_ms": p50, "p99_ms": p99, "rounds": ROUNDS,
                                           "claims_per_ready_task": turns});
        human.push(format!(
            "wake latency ({}): p50 {p50:.2} ms, p99 {p99:.2} ms over {ROUNDS} tasks; \
             {turns:.1} claims per task made ready",
            how.arg()
        ));
    }
    for how in [How::Wait, How::Poll] {
        progress(&format!(
            "idle cost, {}, {:.0}s…",
            how.arg(),
            idle.as_secs_f64()
        ));
        let (cpu, claims, looks) = idle_cost(cx, target, how, idle)?;
        out["idle"][how.arg()] = json!({"cpu_percent_of_one_core": cpu, "claims": claims,
                                        "looks": looks, "seconds": idle.as_secs_f64()});
        human.push(format!(
            "idle ({}), {WAITERS} waiters, {:.0}s on an empty board: {cpu:.3} % of one core, \
             {claims} claims (writer turns), {looks} looks (reads)",
            how.arg(),
            idle.as_secs_f64()
        ));
    }
    // Alternating rounds, medians: a loaded machine moves every figure.
    let runs = Drain::ALL;
    let mut took: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    for round in 1..=CHAIN_ROUNDS {
        for (i, d) in runs.iter().enumerate() {
            progress(&format!("round {round}/{CHAIN_ROUNDS}: {}…", d.label));
            took[i].push(drain(cx, target, d)?.as_secs_f64());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let secs: Vec<f64> = took.iter_mut().map(median).collect();
    let mut chain = json!({"tasks": CHAIN, "rounds": CHAIN_ROUNDS});
    for (i, d) in runs.iter().enumerate() {
        let base = runs
            .iter()
            .position(|b| b.step == d.step && !b.chain)
            .expect("every step has its one-worker baseline");
        let ratio = secs[i] / secs[base];
        chain[d.key()] = json!({"seconds": secs[i], "ratio_to_one_worker": ratio,
                                "workers": d.workers});
        human.push(format!(
            "{}: {:.3} s = {ratio:.2} × one worker over a ready list (same step)",
            d.label, secs[i]
        ));
    }
    out["chain"] = chain;
    Ok(Report::ok(out, human.join("\n")))
}

fn progress(s: &str) {
    eprintln!("tasklease bench: {s}");
}

fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// One line a waiter printed, as the parent got it.
struct Line(Value);

/// Waiter processes and the lines they print (one channel for all).
struct Waiters {
    children: Vec<Child>,
    lines: mpsc::Receiver<Line>,
}

impl Waiters {
    fn start(
        db: &BenchDb,
        how: How,
        step: Step,
        n: usize,
        seconds: f64,
        until_eof: bool,
    ) -> Result<Waiters> {
        let exe =
            std::env::current_exe().map_err(|e| Error::store("find the tasklease binary", e))?;
        let (tx, lines) = mpsc::channel();
        let mut children = Vec::new();
        for i in 0..n {
            let mut c = Command::new(&exe);
            // Through the environment, not argv: a connection string may hold a password.
            c.env("TASKLEASE_DB", db.db_arg())
                .arg("bench-waiter")
                .arg("--agent")
                .arg(format!("waiter-{i}"))
                .arg("--how")
                .arg(how.arg())
                .arg("--seconds")
                .arg(seconds.to_string())
                .stdin(if until_eof {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            if until_eof {
                c.arg("--until-eof");
            }
            if step == Step::ThenNext {
                c.arg("--then-next");
            }
            let mut child = c
                .spawn()
                .map_err(|e| Error::store("start a bench waiter", e))?;
            let out = child.stdout.take().expect("piped");
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines().map_while(std::io::Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&l) {
                        let _ = tx.send(Line(v));
                    }
                }
            });
            children.push(child);
        }
        Ok(Waiters { children, lines })
    }

    /// Waits (bounded) until every waiter has said it started.
    fn settle(&self, n: usize) -> Result<()> {
        for _ in 0..n {
            self.next("started", Duration::from_secs(30))?;
        }
        // Their first claim (nothing ready) and first look done: asleep.
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    }

    /// The next line with `event`, within `bound`.
    fn next(&self, event: &str, bound: Duration) -> Result<Value> {
        let end = Instant::now() + bound;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line(v)) if v["event"] == event => return Ok(v),
                Ok(_) => {}
                Err(_) => {
                    return Err(Error::store(
                        "bench",
                        format!("no '{event}' from the waiters within {bound:?}"),
                    ));
                }
            }
        }
    }

    /// Ends the waiters (closing their stdin, or waiting out their --seconds) and adds
    /// up the claims and looks each reports as it exits.
    fn finish(mut self) -> Result<(u64, u64)> {
        for c in &mut self.children {
            drop(c.stdin.take());
        }
        let (mut claims, mut looks) = (0, 0);
        for _ in 0..self.children.len() {
            let v = self.next("counts", Duration::from_secs(60))?;
            claims += v["claims"].as_u64().unwrap_or(0);
            looks += v["looks"].as_u64().unwrap_or(0);
        }
        Ok((claims, looks))
    }
}

impl Drop for Waiters {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn fresh(cx: &Ctx<'_>, target: &Target, label: &str) -> Result<(BenchDb, Box<dyn Store>)> {
    let db = BenchDb::create(target, label, 0, false, false, cx.cli.synchronous)?;
    let store = tasklease::open::open(&db.spec(), &cx.long_running_options())?;
    Ok((db, store))
}

fn add(store: &dyn Store, id: &str, deps: &[String]) -> Result<()> {
    store.add(&NewTask {
        id: Some(TaskId::new(id)?),
        title: id.to_owned(),
        deps: deps.iter().map(|d| TaskId::new(d)).collect::<Result<_>>()?,
        ..Default::default()
    })?;
    Ok(())
}

/// Wake latency: p50 and p99 in ms, and claims made per task made ready (beyond each
/// waiter's first).
fn latency(cx: &Ctx<'_>, target: &Target, how: How) -> Result<(f64, f64, f64)> {
    let (db, store) = fresh(cx, target, &format!("latency_{}", how.arg()))?;
    let me = AgentId::new("bench-parent")?;
    // Every gate held by us and every task waiting on its gate before any waiter starts.
    let mut gates = Vec::with_capacity(ROUNDS);
    for r in 0..ROUNDS {
        let gate = format!("gate-{r}");
        add(&*store, &gate, &[])?;
        let lease = store.claim_next(LEASE, &me)?.expect("the gate is ready");
        add(&*store, &format!("task-{r}"), &[gate])?;
        gates.push(lease);
    }
    let w = Waiters::start(&db, how, how.step(), WAITERS, 3600.0, true)?;
    w.settle(WAITERS)?;
    let mut lat = Vec::with_capacity(ROUNDS);
    for (r, gate) in gates.iter().enumerate() {
        let task = format!("task-{r}");
        // Let every waiter fall asleep again.
        std::thread::sleep(Duration::from_millis(150));
        // From the call: the done's own commit is inside the figure, so it is an upper
        // bound (the waiter may hold the task before the done has returned here).
        let t0 = micros_now();
        store.done(&gate.task, &gate.token, &me)?;
        let v = w.next("claimed", Duration::from_secs(30))?;
        if v["task"] != task.as_str() {
            return Err(Error::store("bench", format!("expected {task}, got {v}")));
        }
        let at = v["at_us"].as_i64().unwrap_or(t0);
        lat.push((at - t0) as f64 / 1000.0);
    }
    let (claims, _) = w.finish()?;
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    let beyond_first = claims.saturating_sub(WAITERS as u64);
    Ok((pct(0.5), pct(0.99), beyond_first as f64 / ROUNDS as f64))
}

/// Idle cost: % of one core used by all waiters together over `window` (after they
/// started), and the claims and looks they made in their whole lives (the window and
/// a few seconds around it, each waiter's first claim included).
fn idle_cost(cx: &Ctx<'_>, target: &Target, how: How, window: Duration) -> Result<(f64, u64, u64)> {
    let (db, _store) = fresh(cx, target, &format!("idle_{}", how.arg()))?;
    let life = window.as_secs_f64() + 3.0;
    let w = Waiters::start(&db, how, how.step(), WAITERS, life, false)?;
    w.settle(WAITERS)?;
    let pids: Vec<u32> = w.children.iter().map(Child::id).collect();
    let before = cpu_ticks(&pids)?;
    let t0 = Instant::now();
    std::thread::sleep(window);
    let after = cpu_ticks(&pids)?;
    let took = t0.elapsed();
    let (claims, looks) = w.finish()?;
    let ticks = after.saturating_sub(before) as f64;
    Ok((
        ticks / clock_ticks() / took.as_secs_f64() * 100.0,
        claims,
        looks,
    ))
}

/// utime + stime of `pids`, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_ticks(pids: &[u32]) -> Result<u64> {
    let mut total = 0;
    for p in pids {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat"))
            .map_err(|e| Error::store("read /proc (the idle figure needs Linux)", e))?;
        // The command name may hold spaces: fields are counted after its ')'.
        let rest = stat.rsplit_once(')').map_or("", |r| r.1);
        let f: Vec<&str> = rest.split_whitespace().collect();
        // rest starts at field 3 (state): utime is field 14, stime 15.
        total += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        total += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    Ok(total)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Time to finish [`CHAIN`] tasks: a chain drained by [`WAITERS`] workers, or (with
/// `chain` off) a list of ready tasks drained by one.
fn drain(cx: &Ctx<'_>, target: &Target, run: &Drain) -> Result<Duration> {
    let Drain {
        how,
        step,
        chain,
        workers: n,
        ..
    } = *run;
    let (db, store) = fresh(cx, target, &format!("drain_{}", run.key()))?;
    let me = AgentId::new("bench-parent")?;
    add(&*store, "c0", &[])?;
    let gate = store.claim_next(LEASE, &me)?.expect("c0 is ready");
    for i in 1..=CHAIN {
        let deps = if chain {
            vec![format!("c{}", i - 1)]
        } else {
            vec!["c0".to_owned()]
        };
        add(&*store, &format!("c{i}"), &deps)?;
    }
    let w = Waiters::start(&db, how, step, n, 3600.0, true)?;
    w.settle(n)?;
    let t0 = Instant::now();
    store.done(&gate.task, &gate.token, &me)?;
    for _ in 0..CHAIN {
        w.next("done", Duration::from_secs(600))?;
    }
    let took = t0.elapsed();
    let (claims, looks) = w.finish()?;
    progress(&format!(
        "  {} tasks: {claims} claims, {looks} looks",
        CHAIN
    ));
    Ok(took)
}

/// `bench-waiter`: one agent process of the wait bench. Prints `started`, a line per
/// claim (`claimed`, with the time the claim returned) and per done, and at the end
/// (its `--seconds`, or stdin closed with `--until-eof`) its claims and looks.
pub fn waiter(cx: &Ctx<'_>, a: &BenchWaiterArgs) -> Result<Report> {
    let agent = cx.agent()?;
    let store = tasklease::open::open(&cx.spec()?, &cx.long_running_options())?;
    let how = match a.how.as_str() {
        "wait" => How::Wait,
        "poll" => How::Poll,
        "drain" => How::Drain,
        other => {
            return Err(Error::invalid(
                "how",
                format!("{other}: allowed: wait, poll, drain"),
            ));
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    if a.until_eof {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            stop.store(true, Ordering::SeqCst);
        });
    }
    let mut waiter = tasklease::wait::Waiter::new(&*store)?;
    let say = |v: Value| println!("{v}");
    let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
    let (mut claims, mut looks) = (0u64, 0u64);
    say(json!({"event": "started"}));
    let mut next: Option<tasklease::Lease> = None;
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        let lease = match (next.take(), how) {
            (Some(l), _) => Some(l),
            (None, How::Wait) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let opts = WaitOptions {
                    cancel: a.until_eof.then(|| stop.clone()),
                    ..WaitOptions::new(left)
                };
                let w = waiter.claim_next(LEASE, None, &opts, &agent)?;
                claims += u64::from(w.claims);
                looks += u64::from(w.looks);
                w.lease
            }
            (None, How::Poll | How::Drain) => {
                claims += 1;
                let got = store.claim_next(LEASE, &agent)?;
                if got.is_none() {
                    let nap = if how == How::Poll {
                        POLL
                    } else {
                        Duration::from_millis(1)
                    };
                    std::thread::sleep(nap.min(deadline.saturating_duration_since(Instant::now())));
                }
                got
            }
        };
        let Some(l) = lease else { continue };
        say(json!({"event": "claimed", "task": l.task, "at_us": micros_now()}));
        if a.then_next {
            claims += 1;
            next = waiter
                .done_then_claim_next(&l.task, &l.token, LEASE, None, &agent)?
                .next?;
        } else {
            store.done(&l.task, &l.token, &agent)?;
        }
        say(json!({"event": "done", "task": l.task, "at_us": micros_now()}));
    }
    say(json!({"event": "counts", "claims": claims, "looks": looks}));
    Ok(Report::ok(
        tasklease_shape::json::success("stopped", json!({})),
        "",
    ))
}
