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

use std::ffi::OsStr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tasklease::keepalive::{self, Beat, KeepAlive};
use tasklease::{
    AgentId, ClaimOutcome, Error, EventKind, Lease, LostWhy, ReleaseTo, RequestId, Result, Store,
};

use super::Ctx;
use crate::args::RunArgs;
use crate::exit::Exit;
use crate::output::{Report, human_ms, note};
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
    check_program(&a.cmd[0])?;
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
    let sent = Instant::now();
    let lease = match claim(&*store, a, &agent)? {
        Ok(lease) => lease,
        Err(refused) => return Ok(refused),
    };
    let mut run = Run {
        a,
        store,
        agent,
        lease,
        sent,
        started: Instant::now(),
        renewals: 0,
    };
    if let Some(c) = rx.try_iter().find_map(|m| match m {
        Msg::Caught(c) => Some(c),
        Msg::Beat(_) => None,
    }) {
        run.release();
        return Ok(run.interrupted_before_start(c));
    }
    let mut child = run.spawn(cx)?;
    note!(
        "tasklease: claimed {} (token {}, lease {}), running {}",
        run.lease.task,
        run.lease.token,
        a.lease,
        a.cmd[0].to_string_lossy()
    );
    let renewer = KeepAlive::start(
        run.store.clone(),
        &run.lease,
        a.lease,
        run.agent.clone(),
        run.sent,
        move |b| {
            let _ = tx.send(Msg::Beat(b));
        },
    )?;
    let ending = run.watch(&mut child, &rx);
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
    report
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

/// The lease, or the report of why there is none.
fn claim(store: &dyn Store, a: &RunArgs, agent: &AgentId) -> Result<Result<Lease, Report>> {
    // A key of its own: should a store ever retry this claim after an unknown outcome,
    // the retry finds this lease instead of claiming a second task.
    let key = RequestId::generate();
    if let Some(id) = &a.id {
        return Ok(
            match store.claim_keyed(id, agent, a.lease, None, Some(&key))? {
                ClaimOutcome::Claimed(l) => Ok(l),
                ClaimOutcome::Refused(r) => Err(super::claim::refused(id, &r)),
            },
        );
    }
    Ok(store
        .claim_next_keyed(agent, a.lease, Some(&key))?
        .ok_or_else(|| {
            Report::refused(
                Exit::Empty,
                tasklease::json::empty_json(),
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
    fn spawn(&self, cx: &Ctx<'_>) -> Result<Supervised> {
        // Spawned from this (the main) thread, which lives as long as `run`: the
        // child's parent-death signal is tied to the thread that forked it.
        let mut cmd = crate::child::command(&self.a.cmd[0], &self.a.cmd[1..]);
        cmd.env("TASKLEASE_TASK_ID", self.lease.task.as_str())
            .env("TASKLEASE_TOKEN", self.lease.token.to_string())
            .env("TASKLEASE_AGENT", self.agent.as_str());
        if let Some(db) = cx.cli.db.as_deref().filter(|d| !d.is_empty()) {
            cmd.env(tasklease::open::DB_VAR, db);
        }
        if cx.cli.json {
            // stdout carries exactly one JSON object: the command's output goes to stderr.
            cmd.stdout(Stdio::from(std::io::stderr()));
        }
        let own_group = signals::prepare(&mut cmd);
        match cmd.spawn() {
            Ok(child) => Ok(Supervised { child, own_group }),
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
                            "tasklease: renewing {} failed ({error}); retrying while the lease lasts",
                            self.lease.task
                        );
                    }
                    last_error = Some(error);
                }
                Ok(Msg::Beat(Beat::Lost(e))) => match self.settled_by_holder(&e) {
                    Some(kind) => settled = Some(kind),
                    None => {
                        note!("tasklease: {e}; stopping the command");
                        begin_stop(&mut stopping, Why::Lost(e), Stop::Terminate, sup);
                    }
                },
                Ok(Msg::Caught(c)) if stopping.is_none() => {
                    note!(
                        "tasklease: {}: stopping the command, then releasing {}",
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
                    "tasklease: could not renew {} before its lease ran short; stopping the command",
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
        let r = self.store.release(
            &self.lease.task,
            self.lease.token,
            ReleaseTo::Todo,
            &self.agent,
        );
        if let Err(e) = r
            && !keepalive::is_lost(&e)
        {
            note!("tasklease: could not release {}: {e}", self.lease.task);
        }
    }

    /// Hands the task back like [`Run::release`], but waits for the store only until
    /// the lease ends (at least a second): past that, the lease has lapsed by itself,
    /// and a store that did not answer the renewals will likely not answer this.
    fn release_by(&self, ends: Instant) {
        let (store, task, token, agent) = (
            self.store.clone(),
            self.lease.task.clone(),
            self.lease.token,
            self.agent.clone(),
        );
        let (tx, rx) = mpsc::channel();
        let started = std::thread::Builder::new()
            .name("tasklease-release".into())
            .spawn(move || {
                let _ = tx.send(store.release(&task, token, ReleaseTo::Todo, &agent));
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
            .find(|ev| ev.token == Some(self.lease.token) && ev.kind.ends_lease())?;
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
                self.release();
                let msg = format!(
                    "the command {}; released {} back to todo",
                    describe(end.status),
                    self.lease.task
                );
                Ok(self.report("failed", child, end.status, &msg))
            }
        }
    }

    fn done(&self, status: ExitStatus) -> Result<Report> {
        match self
            .store
            .done(&self.lease.task, self.lease.token, &self.agent)
        {
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
            "tasklease: {msg} (after {}, {})",
            human_ms(took),
            renewals(self.renewals)
        );
        let ran = json!({
            "id": self.lease.task,
            "agent": self.agent,
            "token": self.lease.token,
            "lease_ms": self.a.lease.as_millis(),
            "renewals": self.renewals,
            "ran_ms": took,
            "child": child,
            "exit": code,
        });
        // What exits 0 is a success (done, or the command settled the task itself);
        // every other end is a failure whose code says how it ended.
        let json = if code == 0 {
            tasklease::json::success(outcome, ran)
        } else {
            tasklease::json::failure(outcome, code.max(1), msg, ran)
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

#[cfg(test)]
mod renewal_tests {
    #[test]
    fn renewals_are_counted_in_words() {
        assert_eq!(super::renewals(0), "0 renewals");
        assert_eq!(super::renewals(1), "1 renewal");
        assert_eq!(super::renewals(2), "2 renewals");
    }
}
