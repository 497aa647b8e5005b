//! `tasklease run ID|--next -- CMD ARGS…`: claim a task, run a command under its lease,
//! keep the lease alive while the command runs, and finish according to how it ends.
//!
//! One thread watches everything — the child, the renewals ([`keepalive`]) and stop
//! requests ([`signals`]) — through one channel, polling the child between messages.
//! Polling rather than a thread blocked in `wait` keeps the child unreaped until this
//! thread sees it gone, so a signal can never reach a recycled pid.
//!
//! How a run ends:
//!
//! | what happened | the task | exit |
//! |---|---|---|
//! | the command exited 0 | `done` | 0 |
//! | it exited non-zero (or died of a signal) | released to `todo`, attempt counted | its status (128 + signal) |
//! | Ctrl-C / SIGTERM / SIGHUP to tasklease | forwarded, then released to `todo` | 128 + signal |
//! | a renewal found the lease lost | left to whoever has it; the command is stopped | 5 |
//! | no renewal succeeded before the lease's trusted end | released if still ours; the command is stopped | 5 |
//! | `--next` found nothing ready | nothing started | 4 |
//!
//! The command may finish the task itself (`tasklease done` or `release` with
//! `$TASKLEASE_TOKEN`); run then stops renewing and leaves the task as the command left
//! it.
//!
//! `--loop` does this task after task (`fleet`), and `--jobs N` runs N such workers on
//! threads of one process, each its own agent (`NAME-1` …) with its own store, leases
//! and tokens. A worker with nothing ready waits up to `--wait` on the store's wake-up
//! signal (`tasklease::wait`), so a fleet on a task graph sits idle at no cost and
//! starts a task milliseconds after it becomes ready. Ctrl-C is broadcast to every
//! worker: a running command is stopped and its task released as above, a waiting
//! worker stops waiting (within 100 ms). In a loop a failed task goes to `blocked`,
//! not `todo`: it would otherwise be the next task claimed, by the same worker, at once
//! and for ever. Each worker's output lines go through a thread that prefixes them,
//! one write per line, so lines of different workers never interleave mid-line.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value, json};
use tasklease::keepalive::{self, Beat, KeepAlive};
use tasklease::wait::{WaitOptions, Waiter};
use tasklease::{
    AgentId, ClaimOutcome, Error, EventKind, Lease, LostWhy, ReleaseTo, RequestId, Result, Store,
};
use tasklease_shape::json::{WorkerTally, empty_json, run_summary_json};

use super::Ctx;
use crate::args::RunArgs;
use crate::exit::Exit;
use crate::output::{Report, human_ms, note, print_json};
use crate::signals::{self, Caught, Stop, Supervised};

/// How often the child is checked for having exited, between other messages.
const POLL: Duration = Duration::from_millis(25);

/// What the watching thread hears about.
enum Msg {
    Beat(Beat),
    Caught(Caught),
}

/// Why tasklease stopped the child.
enum Why {
    /// Ctrl-C, SIGTERM or SIGHUP to tasklease.
    Interrupted(Caught),
    /// A renewal found the lease gone.
    Lost(Error),
    /// No renewal succeeded before the lease's trusted end; the last error, if any,
    /// and when the lease ends at the latest.
    Unconfirmed(Option<Error>, Instant),
}

/// How the child ended.
struct Ending {
    status: ExitStatus,
    /// Set when tasklease stopped it.
    stopped: Option<Why>,
    /// The command ended the lease itself (done or release with the token).
    settled: Option<EventKind>,
}

/// A claimed task and what happened to it so far.
struct Run<'a> {
    a: &'a RunArgs,
    store: Arc<dyn Store>,
    agent: AgentId,
    lease: Lease,
    /// When the claim was sent: the first lease's trusted end counts from here.
    sent: Instant,
    started: Instant,
    renewals: u32,
    /// The worker's name when several run side by side (`--jobs`): prefixes its
    /// messages and its command's output lines.
    label: Option<String>,
    /// In a loop that may take another task: on success, finish with
    /// `done_then_claim_next` under this key, so the worker takes the next task itself
    /// and no waiter is woken for it.
    then_next: Option<RequestId>,
    /// The task `done_then_claim_next` claimed (and when its claim was sent), for the
    /// loop to run next.
    next: std::cell::RefCell<Option<(Lease, Instant)>>,
}

/// The shortest lease `run` accepts: renewing every third of it must stay possible on
/// a busy machine.
const MIN_LEASE_MS: i64 = 100;

pub fn run(cx: &Ctx<'_>, a: &RunArgs) -> Result<Report> {
    if a.lease.as_millis() < MIN_LEASE_MS {
        return Err(Error::invalid(
            "lease",
            format!(
                "run renews every third of the lease, and {} is too short for that; allowed: \
                 {MIN_LEASE_MS}ms to 7d",
                a.lease
            ),
        ));
    }
    check_loop_args(a)?;
    check_program(&a.cmd[0])?;
    if a.repeat {
        return fleet(cx, a);
    }
    let agent = cx.agent()?;
    let store: Arc<dyn Store> = Arc::from(tasklease::open::open(
        &cx.spec()?,
        &cx.long_running_options(),
    )?);
    let (tx, rx) = mpsc::channel::<Msg>();
    // Caught before claiming, so an interrupt during the claim still hands it back.
    let caught = tx.clone();
    signals::catch(move |c| {
        let _ = caught.send(Msg::Caught(c));
    })
    .map_err(|e| Error::store("cannot catch Ctrl-C and SIGTERM", e))?;
    let (lease, sent) = match claim(&*store, a, &agent, None, None)? {
        Ok(claimed) => claimed,
        Err(refused) => return Ok(refused),
    };
    one(cx, a, store, agent, lease, sent, tx, &rx, None, None).map(|(r, _)| r)
}

/// Runs the command on one claimed task, renewing its lease, and finishes or releases
/// the task by how the command ended.
#[allow(clippy::too_many_arguments)]
fn one(
    cx: &Ctx<'_>,
    a: &RunArgs,
    store: Arc<dyn Store>,
    agent: AgentId,
    lease: Lease,
    sent: Instant,
    tx: mpsc::Sender<Msg>,
    rx: &Receiver<Msg>,
    label: Option<String>,
    then_next: Option<RequestId>,
) -> Result<(Report, Option<(Lease, Instant)>)> {
    let mut run = Run {
        a,
        store,
        agent,
        lease,
        sent,
        started: Instant::now(),
        renewals: 0,
        label,
        then_next,
        next: std::cell::RefCell::new(None),
    };
    if let Some(c) = rx.try_iter().find_map(|m| match m {
        Msg::Caught(c) => Some(c),
        Msg::Beat(_) => None,
    }) {
        run.release();
        return Ok((run.interrupted_before_start(c), None));
    }
    let mut child = run.spawn(cx)?;
    note!(
        "tasklease{}: claimed {} (fence {}, lease {}), running {}",
        run.tag(),
        run.lease.task,
        run.lease.token.fence(),
        a.lease,
        a.cmd[0].to_string_lossy()
    );
    let renewer = KeepAlive::start(
        run.store.clone(),
        &run.lease,
        a.lease,
        run.sent,
        run.agent.clone(),
        move |b| {
            let _ = tx.send(Msg::Beat(b));
        },
    )?;
    let ending = run.watch(&mut child, rx);
    // Renewals failing until the lease ran short mostly means the store is not
    // answering: the renewal in flight then waits out its own bound (the busy
    // timeout), and the run must not wait with it.
    let unanswered = matches!(
        &ending,
        Ok(Ending {
            stopped: Some(Why::Unconfirmed(..)),
            ..
        })
    );
    if unanswered {
        drop(renewer);
    } else {
        renewer.stop();
    }
    // Renewals that landed while the child was exiting.
    run.renewals += rx
        .try_iter()
        .filter(|m| matches!(m, Msg::Beat(Beat::Renewed { .. })))
        .count() as u32;
    let report = run.finish(ending?);
    if !unanswered {
        prune(&*run.store, a);
    }
    let next = run.next.take();
    report.map(|r| (r, next))
}

/// The most workers one `run --jobs` starts.
const MAX_JOBS: u32 = 256;

/// Refuses `--loop`, `--wait`, `--max-tasks` and `--jobs` where they mean nothing.
fn check_loop_args(a: &RunArgs) -> Result<()> {
    let refuse = |field, message: &str| Err(Error::invalid(field, message));
    if a.repeat && !a.next {
        return refuse(
            "loop",
            "--loop takes one ready task after another: it goes with --next, not with an id",
        );
    }
    if a.wait.is_some() && !a.next {
        return refuse(
            "wait",
            "--wait waits for a task to become ready: it goes with --next, not with an id",
        );
    }
    if a.max_tasks.is_some() && !a.repeat {
        return refuse("max-tasks", "--max-tasks bounds a --loop: add --loop");
    }
    if a.max_tasks == Some(0) {
        return refuse(
            "max-tasks",
            "--max-tasks 0 would run nothing; allowed: 1 or more",
        );
    }
    if a.jobs == 0 || a.jobs > MAX_JOBS {
        return Err(Error::invalid(
            "jobs",
            format!(
                "--jobs {} is not a number of workers; allowed: 1 to {MAX_JOBS}",
                a.jobs
            ),
        ));
    }
    if a.jobs > 1 && !a.repeat {
        return refuse(
            "jobs",
            "--jobs runs workers that each take task after task: add --loop",
        );
    }
    Ok(())
}

/// `run --next --loop [--jobs N]`: N workers, each its own agent with its own store,
/// claiming (waiting up to `--wait` when nothing is ready), running and finishing task
/// after task. Ctrl-C (SIGTERM, SIGHUP) reaches every worker: a running command is
/// stopped and its task released, a waiting worker stops waiting; then the summary.
fn fleet(cx: &Ctx<'_>, a: &RunArgs) -> Result<Report> {
    let base = cx.agent()?;
    let shown = base.to_string();
    let names: Vec<AgentId> = if a.jobs == 1 {
        vec![base]
    } else {
        (1..=a.jobs)
            .map(|i| AgentId::new(&format!("{base}-{i}")))
            .collect::<Result<_>>()?
    };
    let spec = cx.spec()?;
    let stop = Arc::new(AtomicBool::new(false));
    let first = Arc::new(std::sync::Mutex::new(None::<Caught>));
    let chans: Vec<_> = names.iter().map(|_| mpsc::channel::<Msg>()).collect();
    let senders: Vec<mpsc::Sender<Msg>> = chans.iter().map(|(t, _)| t.clone()).collect();
    let (stopping, caught) = (stop.clone(), first.clone());
    signals::catch(move |c| {
        stopping.store(true, Ordering::SeqCst);
        caught
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert(c);
        for t in &senders {
            let _ = t.send(Msg::Caught(c));
        }
    })
    .map_err(|e| Error::store("cannot catch Ctrl-C and SIGTERM", e))?;
    if a.jobs > 1 {
        note!(
            "tasklease: {} workers ({shown}-1 … {shown}-{}); Ctrl-C stops them and releases \
             their tasks",
            a.jobs,
            a.jobs
        );
    }
    let taken = AtomicU64::new(0);
    let tallies: Vec<WorkerTally> = std::thread::scope(|s| {
        let workers: Vec<_> = names
            .iter()
            .zip(chans)
            .map(|(agent, (tx, rx))| {
                let label = (a.jobs > 1).then(|| agent.to_string());
                let w = Worker {
                    cx,
                    a,
                    spec: &spec,
                    agent: agent.clone(),
                    stop: &stop,
                    taken: &taken,
                    label,
                };
                s.spawn(move || w.work(&tx, &rx))
            })
            .collect();
        workers
            .into_iter()
            .zip(&names)
            .map(|(h, agent)| {
                h.join().unwrap_or_else(|_| WorkerTally {
                    agent: agent.to_string(),
                    ended: "error".into(),
                    error: Some("the worker panicked".into()),
                    ..WorkerTally::default()
                })
            })
            .collect()
    });
    let caught = *first
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let outcome = if caught.is_some() {
        "interrupted"
    } else if tallies.iter().any(|t| t.error.is_some()) {
        "error"
    } else {
        "finished"
    };
    let human: Vec<String> = tallies
        .iter()
        .map(|t| {
            let mut line = format!(
                "{}: {} done, {} released, {} failed ({})",
                t.agent, t.done, t.released, t.failed, t.ended
            );
            if let Some(e) = &t.error {
                line.push_str(&format!(": {e}"));
            }
            line
        })
        .collect();
    let human = human.join("\n");
    Ok(match (caught, outcome) {
        (Some(c), _) => {
            let msg = format!("interrupted by {}", c.name());
            let json = run_summary_json(outcome, c.exit_status(), &msg, &tallies);
            let mut r = Report::refused(Exit::Runtime, json, human);
            r.status = Some(c.exit_status());
            r
        }
        (None, "error") => {
            let json = run_summary_json(outcome, Exit::Runtime as u8, "a worker failed", &tallies);
            Report::refused(Exit::Runtime, json, human)
        }
        _ => Report::ok(run_summary_json(outcome, 0, "", &tallies), human),
    })
}

/// One worker of [`fleet`].
struct Worker<'a> {
    cx: &'a Ctx<'a>,
    a: &'a RunArgs,
    spec: &'a tasklease::open::DbSpec,
    agent: AgentId,
    /// Set by Ctrl-C / SIGTERM / SIGHUP: take no more tasks, stop waiting.
    stop: &'a Arc<AtomicBool>,
    /// Tasks claimed by all workers so far, for --max-tasks.
    taken: &'a AtomicU64,
    label: Option<String>,
}

impl Worker<'_> {
    fn work(&self, tx: &mpsc::Sender<Msg>, rx: &Receiver<Msg>) -> WorkerTally {
        let mut t = WorkerTally {
            agent: self.agent.to_string(),
            ..WorkerTally::default()
        };
        let tag = self
            .label
            .as_ref()
            .map_or_else(String::new, |l| format!(" [{l}]"));
        let fail = |t: &mut WorkerTally, e: &Error| {
            note!("tasklease{tag}: {e}");
            t.ended = "error".into();
            t.error = Some(e.to_string());
        };
        let store: Arc<dyn Store> =
            match tasklease::open::open(self.spec, &self.cx.long_running_options()) {
                Ok(s) => Arc::from(s),
                Err(e) => {
                    fail(&mut t, &e);
                    return t;
                }
            };
        let mut waiter = match self.a.wait.map(|_| Waiter::new(&*store)).transpose() {
            Ok(w) => w,
            Err(e) => {
                fail(&mut t, &e);
                return t;
            }
        };
        // The task the last one's done claimed, and whether a --max-tasks slot is
        // already counted for the claim to come.
        let mut pending: Option<(Lease, Instant)> = None;
        let mut reserved = false;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                if let Some((l, _)) = pending.take() {
                    // Claimed by the last done, never started: handed straight back.
                    match store.release(&l.task, &l.token, ReleaseTo::Todo, &self.agent) {
                        Ok(_) => t.released += 1,
                        Err(e) => note!("tasklease{tag}: could not release {}: {e}", l.task),
                    }
                }
                t.ended = "interrupted".into();
                break;
            }
            let (lease, sent) = match pending.take() {
                Some(p) => p,
                None => {
                    if let Some(max) = self.a.max_tasks
                        && !std::mem::take(&mut reserved)
                        && self.taken.fetch_add(1, Ordering::SeqCst) >= max
                    {
                        t.ended = "max_tasks".into();
                        break;
                    }
                    let waiter = waiter.as_mut();
                    match claim(
                        &*store,
                        self.a,
                        &self.agent,
                        Some(self.stop.clone()),
                        waiter,
                    ) {
                        Ok(Ok(claimed)) => claimed,
                        Ok(Err(_)) if self.stop.load(Ordering::SeqCst) => {
                            t.ended = "interrupted".into();
                            break;
                        }
                        Ok(Err(_)) => {
                            t.ended = "drained".into();
                            break;
                        }
                        Err(e) => {
                            fail(&mut t, &e);
                            break;
                        }
                    }
                }
            };
            // Its done may claim the next task (no waiter is woken for it) while the
            // fleet is not stopping and --max-tasks leaves room: a slot is counted now.
            let then_next = match self.a.max_tasks {
                _ if self.stop.load(Ordering::SeqCst) => None,
                Some(max) if self.taken.fetch_add(1, Ordering::SeqCst) >= max => None,
                Some(_) => {
                    reserved = true;
                    Some(RequestId::generate())
                }
                None => Some(RequestId::generate()),
            };
            let ran = one(
                self.cx,
                self.a,
                store.clone(),
                self.agent.clone(),
                lease,
                sent,
                tx.clone(),
                rx,
                self.label.clone(),
                then_next,
            );
            let ran = ran.map(|(r, next)| {
                if next.is_some() {
                    // The slot counted above went to this task.
                    reserved = false;
                }
                pending = next;
                r
            });
            let r = match ran {
                Ok(r) => r,
                Err(e) => {
                    t.failed += 1;
                    fail(&mut t, &e);
                    break;
                }
            };
            if self.cx.cli.json {
                print_json(&r.json);
            }
            // A success says its outcome; a failure says it as its error's code.
            let outcome = r.json["outcome"]
                .as_str()
                .or_else(|| r.json["error"]["code"].as_str());
            match outcome {
                Some("done") => t.done += 1,
                Some("released") => t.released += 1,
                Some("interrupted") => {
                    t.released += 1;
                    t.ended = "interrupted".into();
                    break;
                }
                _ => t.failed += 1,
            }
        }
        t
    }
}

/// Refuses a command that cannot be started, before anything is claimed.
fn check_program(program: &OsStr) -> Result<()> {
    let path = Path::new(program);
    let found = if path.components().count() > 1 {
        runnable(path)
    } else {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| {
                let p = dir.join(path);
                runnable(&p)
                    || (cfg!(windows)
                        && ["exe", "cmd", "bat", "com"]
                            .iter()
                            .any(|x| p.with_extension(x).is_file()))
            })
        })
    };
    if found {
        return Ok(());
    }
    Err(Error::invalid(
        "command",
        format!(
            "cannot run {:?}: it is neither an executable file nor a program on PATH; \
             nothing was claimed",
            program.to_string_lossy()
        ),
    ))
}

/// Whether `p` is a file someone may execute (any execute bit, on unix): the command is
/// started by a re-exec (`crate::child`), where a failure could no longer be refused
/// before claiming.
fn runnable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// The lease and when its claim was sent (the lease's trust counts from there), or
/// the report of why there is none. With `--wait`, waits for a ready task (ended early
/// when `cancel` is set).
fn claim(
    store: &dyn Store,
    a: &RunArgs,
    agent: &AgentId,
    cancel: Option<Arc<AtomicBool>>,
    waiter: Option<&mut Waiter<'_>>,
) -> Result<Result<(Lease, Instant), Report>> {
    // A key of its own: should a store ever retry this claim after an unknown outcome,
    // the retry finds this lease instead of claiming a second task.
    let key = RequestId::generate();
    let sent = Instant::now();
    if let (None, Some(bound)) = (&a.id, a.wait) {
        let opts = WaitOptions {
            cancel,
            ..WaitOptions::new(bound)
        };
        // A loop keeps its waiter, and the wake-ups that came while it worked.
        let w = match waiter {
            Some(w) => w.claim_next(a.lease, Some(&key), &opts, agent)?,
            None => tasklease::wait::claim_next_waiting(store, a.lease, Some(&key), &opts, agent)?,
        };
        // Not the start of the wait: a wait longer than the lease would hand over a
        // lease already past its trusted end.
        let sent = w.sent.unwrap_or(sent);
        return Ok(w.lease.map(|l| (l, sent)).ok_or_else(|| {
            Report::refused(
                Exit::Empty,
                empty_json(),
                format!(
                    "nothing to claim: no task became ready within {} (waited on {}); \
                     nothing was run",
                    human_ms(i64::try_from(bound.as_millis()).unwrap_or(i64::MAX)),
                    w.on
                ),
            )
        }));
    }
    if let Some(id) = &a.id {
        return Ok(
            match store.claim_keyed(id, a.lease, None, Some(&key), agent)? {
                ClaimOutcome::Claimed(l) => Ok((l, sent)),
                ClaimOutcome::Refused(r) => Err(super::claim::refused(id, &r)),
            },
        );
    }
    Ok(store
        .claim_next_keyed(a.lease, Some(&key), agent)?
        .map(|l| (l, sent))
        .ok_or_else(|| {
            Report::refused(
                Exit::Empty,
                empty_json(),
                "nothing to claim: no task is ready; nothing was run",
            )
        }))
}

/// Keeps the history within its bound; a failure here must not change how the run
/// ended, so it is only reported.
fn prune(store: &dyn Store, a: &RunArgs) {
    if let Err(e) = store.prune(&a.keep.retention()) {
        note!("tasklease: could not prune the lease history: {e}");
    }
}

impl Run<'_> {
    /// ` [worker]` after `tasklease` in messages, when several workers share a terminal.
    fn tag(&self) -> String {
        self.label
            .as_ref()
            .map_or_else(String::new, |l| format!(" [{l}]"))
    }

    fn spawn(&self, cx: &Ctx<'_>) -> Result<Supervised> {
        // Spawned from this (the main) thread, which lives as long as `run`: the
        // child's parent-death signal is tied to the thread that forked it.
        let mut cmd = crate::child::command(&self.a.cmd[0], &self.a.cmd[1..]);
        cmd.env("TASKLEASE_TASK_ID", self.lease.task.as_str())
            .env("TASKLEASE_TOKEN", self.lease.token.to_string())
            .env("TASKLEASE_FENCE", self.lease.token.fence().to_string())
            .env("TASKLEASE_AGENT", self.agent.as_str());
        if let Some(db) = cx.cli.db.as_deref().filter(|d| !d.is_empty()) {
            cmd.env(tasklease::open::DB_VAR, db);
        }
        if self.label.is_some() {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        } else if cx.cli.json {
            // stdout carries exactly one JSON object: the command's output goes to stderr.
            cmd.stdout(Stdio::from(std::io::stderr()));
        }
        let own_group = signals::prepare(&mut cmd);
        match cmd.spawn() {
            Ok(mut child) => {
                if let Some(label) = &self.label {
                    // With --json, stdout carries JSON lines only: the command's output
                    // goes to stderr, prefixed like everything else.
                    let to_stdout = !cx.cli.json;
                    if let Some(out) = child.stdout.take() {
                        prefix_lines(out, label, to_stdout);
                    }
                    if let Some(err) = child.stderr.take() {
                        prefix_lines(err, label, false);
                    }
                }
                Ok(Supervised { child, own_group })
            }
            Err(e) => {
                self.release();
                Err(Error::store(
                    format!(
                        "cannot start {}; {} was released",
                        self.a.cmd[0].to_string_lossy(),
                        self.lease.task
                    ),
                    e,
                ))
            }
        }
    }

    /// Watches the child until it exits, renewing, forwarding stop requests, and
    /// stopping it when the lease can no longer be trusted.
    fn watch(&mut self, sup: &mut Supervised, rx: &Receiver<Msg>) -> Result<Ending> {
        let grace = self.a.grace.0;
        let mut trusted = keepalive::trusted_until(self.sent, self.a.lease);
        let mut last_error = None;
        let mut stopping: Option<(Why, Instant)> = None;
        let mut killed = false;
        let mut settled = None;
        loop {
            let status = sup
                .child
                .try_wait()
                .map_err(|e| Error::store("cannot wait for the command", e))?;
            if let Some(status) = status {
                return Ok(Ending {
                    status,
                    stopped: stopping.map(|s| s.0),
                    settled,
                });
            }
            match rx.recv_timeout(POLL) {
                Ok(Msg::Beat(Beat::Renewed { trusted_until, .. })) => {
                    trusted = trusted_until;
                    last_error = None;
                    self.renewals += 1;
                }
                Ok(Msg::Beat(Beat::Retrying { error, .. })) => {
                    if last_error.is_none() {
                        note!(
                            "tasklease{}: renewing {} failed ({error}); retrying while the lease lasts",
                            self.tag(),
                            self.lease.task
                        );
                    }
                    last_error = Some(error);
                }
                Ok(Msg::Beat(Beat::Lost(e))) => match self.settled_by_holder(&e) {
                    Some(kind) => settled = Some(kind),
                    None => {
                        note!("tasklease{}: {e}; stopping the command", self.tag());
                        begin_stop(&mut stopping, Why::Lost(e), Stop::Terminate, sup);
                    }
                },
                Ok(Msg::Caught(c)) if stopping.is_none() => {
                    note!(
                        "tasklease{}: {}: stopping the command, then releasing {}",
                        self.tag(),
                        c.name(),
                        self.lease.task
                    );
                    begin_stop(&mut stopping, Why::Interrupted(c), Stop::Forward(c), sup);
                }
                Ok(Msg::Caught(_)) => {
                    // Asked again while stopping: no more waiting.
                    killed = sup.stop(Stop::Kill) || killed;
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
            if stopping.is_none() && settled.is_none() && Instant::now() >= trusted {
                note!(
                    "tasklease{}: could not renew {} before its lease ran short; stopping the command",
                    self.tag(),
                    self.lease.task
                );
                let ends = trusted + keepalive::margin(self.a.lease);
                let why = Why::Unconfirmed(last_error.take(), ends);
                begin_stop(&mut stopping, why, Stop::Terminate, sup);
            }
            if let Some((_, since)) = &stopping
                && !killed
                && since.elapsed() >= grace
            {
                killed = sup.stop(Stop::Kill);
            }
        }
    }

    /// Hands the task back to todo; a lease already gone is not an error here.
    fn release(&self) {
        self.release_to(ReleaseTo::Todo);
    }

    /// Hands the task back in `to`; a lease already gone is not an error here.
    fn release_to(&self, to: ReleaseTo) {
        let r = self
            .store
            .release(&self.lease.task, &self.lease.token, to, &self.agent);
        if let Err(e) = r
            && !keepalive::is_lost(&e)
        {
            note!(
                "tasklease{}: could not release {}: {e}",
                self.tag(),
                self.lease.task
            );
        }
    }

    /// Hands the task back like [`Run::release`], but waits for the store only until
    /// the lease ends (at least a second): past that, the lease has lapsed by itself,
    /// and a store that did not answer the renewals will likely not answer this.
    fn release_by(&self, ends: Instant) {
        let (store, task, token, agent) = (
            self.store.clone(),
            self.lease.task.clone(),
            self.lease.token.clone(),
            self.agent.clone(),
        );
        let (tx, rx) = mpsc::channel();
        let started = std::thread::Builder::new()
            .name("tasklease-release".into())
            .spawn(move || {
                let _ = tx.send(store.release(&task, &token, ReleaseTo::Todo, &agent));
            });
        if started.is_err() {
            return self.release();
        }
        let bound = ends
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        match rx.recv_timeout(bound) {
            Ok(Err(e)) if !keepalive::is_lost(&e) => {
                eprintln!("tasklease: could not release {}: {e}", self.lease.task);
            }
            Ok(_) => {}
            Err(_) => eprintln!(
                "tasklease: no answer from the store within {} while releasing {}; its lease \
                 lapses by itself",
                human_ms(bound.as_millis() as i64),
                self.lease.task
            ),
        }
    }

    /// Whether a lost lease was ended by its own token — the command finished or
    /// released the task itself — and how.
    fn settled_by_holder(&self, e: &Error) -> Option<EventKind> {
        let Error::LeaseLost {
            why: LostWhy::Ended { .. },
            ..
        } = e
        else {
            return None;
        };
        let log = self.store.log(Some(&self.lease.task), 20).ok()?;
        let last = log
            .iter()
            .rev()
            .find(|ev| ev.fence == Some(self.lease.token.fence()) && ev.kind.ends_lease())?;
        matches!(last.kind, EventKind::Done | EventKind::Released).then_some(last.kind)
    }

    fn finish(&self, end: Ending) -> Result<Report> {
        let child = exit_of(end.status);
        if let Some(kind) = end.settled {
            let outcome = if kind == EventKind::Done {
                "done"
            } else {
                "released"
            };
            let msg = format!("the command {outcome} {} itself", self.lease.task);
            return Ok(self.report(outcome, child, end.status, &msg));
        }
        match end.stopped {
            Some(Why::Interrupted(c)) => {
                self.release();
                let msg = format!("interrupted by {}; released {}", c.name(), self.lease.task);
                Ok(self.report("interrupted", c.exit_status(), end.status, &msg))
            }
            Some(Why::Lost(e)) => Ok(self.lost(&e.to_string(), end.status)),
            Some(Why::Unconfirmed(e, ends)) => {
                self.release_by(ends);
                let why = match e {
                    Some(e) => format!(
                        "the lease on {} could not be renewed in time ({e})",
                        self.lease.task
                    ),
                    None => format!(
                        "the lease on {} could not be renewed in time",
                        self.lease.task
                    ),
                };
                Ok(self.lost(&why, end.status))
            }
            None if end.status.success() => self.done(end.status),
            None => {
                // In a loop the failed task would be the next one claimed, again and
                // again: it goes to blocked, for a person to look at.
                let to = if self.label.is_some() || self.a.repeat {
                    ReleaseTo::Blocked
                } else {
                    ReleaseTo::Todo
                };
                self.release_to(to);
                let msg = format!(
                    "the command {}; released {} to {}",
                    describe(end.status),
                    self.lease.task,
                    to.status()
                );
                Ok(self.report("failed", child, end.status, &msg))
            }
        }
    }

    fn done(&self, status: ExitStatus) -> Result<Report> {
        let (task, token, agent) = (&self.lease.task, &self.lease.token, &self.agent);
        let sent = Instant::now();
        let ended = match &self.then_next {
            Some(key) => self
                .store
                .done_then_claim_next(task, token, self.a.lease, Some(key), agent)
                .map(|step| {
                    match step.next {
                        Ok(next) => *self.next.borrow_mut() = next.map(|l| (l, sent)),
                        // The task is done; the loop's own claim meets this again.
                        Err(e) => note!(
                            "tasklease{}: done {task}, but claiming the next task failed: {e}",
                            self.tag()
                        ),
                    }
                    step.ended
                }),
            None => self.store.done(task, token, agent),
        };
        match ended {
            Ok(_) => {
                let msg = format!("done {}", self.lease.task);
                Ok(self.report("done", 0, status, &msg))
            }
            Err(e) => match self.settled_by_holder(&e) {
                Some(kind) => {
                    let outcome = if kind == EventKind::Done {
                        "done"
                    } else {
                        "released"
                    };
                    let msg = format!("the command {outcome} {} itself", self.lease.task);
                    Ok(self.report(outcome, 0, status, &msg))
                }
                None if keepalive::is_lost(&e) => Ok(self.lost(&e.to_string(), status)),
                None => Err(Error::store(
                    format!(
                        "the command succeeded but marking {} done failed",
                        self.lease.task
                    ),
                    e,
                )),
            },
        }
    }

    /// The command was stopped, or finished, without a lease to vouch for it.
    fn lost(&self, why: &str, status: ExitStatus) -> Report {
        let msg = format!("{why}; the command's work is not fenced");
        self.report("lost", Exit::LeaseLost as u8, status, &msg)
    }

    fn interrupted_before_start(&self, c: Caught) -> Report {
        let msg = format!(
            "interrupted by {} before the command started; released {}",
            c.name(),
            self.lease.task
        );
        self.report_json("interrupted", c.exit_status(), Value::Null, &msg)
    }

    fn report(&self, outcome: &str, code: u8, status: ExitStatus, msg: &str) -> Report {
        let child = json!({"code": status.code(), "signal": signal_of(status)});
        self.report_json(outcome, code, child, msg)
    }

    fn report_json(&self, outcome: &str, code: u8, child: Value, msg: &str) -> Report {
        let took = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        note!(
            "tasklease{}: {msg} (after {}, {})",
            self.tag(),
            human_ms(took),
            renewals(self.renewals)
        );
        let ran = json!({
            "id": self.lease.task,
            "agent": self.agent,
            "token": self.lease.token,
            "fence": self.lease.token.fence(),
            "lease_ms": self.a.lease.as_millis(),
            "renewals": self.renewals,
            "ran_ms": took,
            "child": child,
            "exit": code,
        });
        // What exits 0 is a success (done, or the command settled the task itself);
        // every other end is a failure whose code says how it ended.
        let json = if code == 0 {
            tasklease_shape::json::success(outcome, ran)
        } else {
            tasklease_shape::json::failure(outcome, code.max(1), msg, ran)
        };
        let mut r = if code == 0 {
            Report::ok(json, "")
        } else {
            Report::refused(Exit::Runtime, json, "")
        };
        r.status = Some(code);
        r
    }
}

/// Sends `how` to the child, unless a stop is already under way.
fn begin_stop(stopping: &mut Option<(Why, Instant)>, why: Why, how: Stop, sup: &mut Supervised) {
    if stopping.is_none() {
        sup.stop(how);
        *stopping = Some((why, Instant::now()));
    }
}

/// The exit status tasklease passes on: the child's code, or 128 + the signal that
/// ended it.
fn exit_of(status: ExitStatus) -> u8 {
    match (status.code(), signal_of(status)) {
        (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
        (None, Some(s)) => u8::try_from(128 + s).unwrap_or(255),
        (None, None) => 1,
    }
}

fn signal_of(status: ExitStatus) -> Option<i32> {
    #[cfg(unix)]
    {
        std::os::unix::process::ExitStatusExt::signal(&status)
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        None
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), signal_of(status)) {
        (Some(c), _) => format!("exited {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        (None, None) => "failed".to_owned(),
    }
}

/// `1 renewal`, `2 renewals`.
fn renewals(n: u32) -> String {
    match n {
        1 => "1 renewal".to_owned(),
        n => format!("{n} renewals"),
    }
}

/// Copies a worker's command output line by line to our stdout (or stderr), each line
/// prefixed with `[worker] `. The thread ends when the command (and anything it left
/// holding the pipe) closes it.
fn prefix_lines(from: impl std::io::Read + Send + 'static, label: &str, to_stdout: bool) {
    use std::io::{BufRead, Write};
    let prefix = format!("[{label}] ");
    let _ = std::thread::Builder::new()
        .name("tasklease-output".into())
        .spawn(move || {
            let mut lines = std::io::BufReader::new(from);
            let mut line = Vec::new();
            loop {
                line.clear();
                match lines.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                let mut whole = prefix.clone().into_bytes();
                whole.extend_from_slice(&line);
                // One write per line, so lines of workers never interleave.
                let _ = if to_stdout {
                    std::io::stdout().lock().write_all(&whole)
                } else {
                    std::io::stderr().lock().write_all(&whole)
                };
            }
        });
}

#[cfg(test)]
mod renewal_tests {
    #[test]
    fn renewals_are_counted_in_words() {
        assert_eq!(super::renewals(0), "0 renewals");
        assert_eq!(super::renewals(1), "1 renewal");
        assert_eq!(super::renewals(2), "2 renewals");
    }
}
