//! `tasklease bench`: N real agent processes (this binary, as `bench-worker`) loop
//! claim-next for a fixed time on a freshly filled database; the parent gathers their
//! reports, checks that no task was held twice, and prints claims/s, latency and
//! fairness — with `--baseline`, next to the raw SQL floor measured in the same run.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::bench::{self, BenchDb, Mode, Raw, Summary, Target, WorkerReport};
use serde_json::{Value, json};
use tasklease::open::{DbSpec, Synchronous};
use tasklease::{Error, LeaseDuration, Result};

use super::Ctx;
use crate::args::{BenchArgs, BenchWorkerArgs};
use crate::exit::Exit;
use crate::output::Report;
use crate::signals::{self, Caught, Stop, Supervised};

/// Bench leases outlast any run, so a task granted twice is a double claim.
const LEASE: LeaseDuration = LeaseDuration::MAX;

pub fn run(cx: &Ctx<'_>, a: &BenchArgs) -> Result<Report> {
    if a.agents == 0 || a.agents > 512 {
        return Err(Error::invalid(
            "agents",
            "--agents must be between 1 and 512",
        ));
    }
    if !(a.seconds > 0.0 && a.seconds <= 3600.0) {
        return Err(Error::invalid(
            "seconds",
            "--seconds must be more than 0 and at most 3600",
        ));
    }
    if a.tasks == 0 {
        return Err(Error::invalid("tasks", "--tasks must be at least 1"));
    }
    let tmp;
    // A TASKLEASE_DB from the environment names the project's database, which bench
    // never touches: a SQLite one is set aside (said on stderr), a PostgreSQL one is the
    // server to make scratch schemas in, as --db would be. Only an explicit --db
    // naming a SQLite file is refused: it asks for what bench will not do.
    let explicit = std::env::args_os()
        .any(|a| a == "--db" || a.to_str().is_some_and(|a| a.starts_with("--db=")));
    let spec = cx.cli.db.as_deref().map(DbSpec::parse);
    if !explicit && matches!(spec, Some(DbSpec::Sqlite { .. })) {
        crate::output::note!(
            "tasklease: bench: TASKLEASE_DB names a SQLite database; bench never touches it \
             and fills fresh files{}",
            a.dir
                .as_ref()
                .map(|d| format!(" in {}", d.display()))
                .unwrap_or_else(|| " in a temporary directory".into())
        );
    }
    let target = match spec {
        Some(DbSpec::Postgres { url }) => Target::Postgres(url),
        Some(DbSpec::Sqlite { .. }) if !explicit => Target::SqliteDir(match &a.dir {
            Some(d) => create_dir(d)?,
            None => {
                tmp = tempdir()?;
                tmp.0.clone()
            }
        }),
        Some(DbSpec::Sqlite { .. }) => {
            return Err(Error::invalid(
                "db",
                "bench always fills fresh databases and never touches yours: for SQLite \
                 use --dir to choose where its files go; for PostgreSQL pass a server \
                 (--db postgres://…) and it works in scratch schemas it drops afterwards",
            ));
        }
        None => Target::SqliteDir(match &a.dir {
            Some(d) => create_dir(d)?,
            None => {
                tmp = tempdir()?;
                tmp.0.clone()
            }
        }),
    };
    if a.mode == Mode::Wait {
        return super::bench_wait::run(cx, a, &target);
    }
    let mut runs = vec![("tasklease", false)];
    if a.baseline {
        runs.push(("raw baseline", true));
    }
    let stop = Interrupt::install()?;
    let mut results: Vec<(&str, Summary, Vec<bench::DoubleClaim>)> = Vec::new();
    for (label, raw) in runs {
        let (summary, doubles) = one_run(cx, a, &target, label, raw, &stop)?;
        results.push((label, summary, doubles));
    }
    Ok(report(cx, a, &target, &results))
}

fn one_run(
    cx: &Ctx<'_>,
    a: &BenchArgs,
    target: &Target,
    label: &str,
    raw: bool,
    stop: &Arc<Interrupt>,
) -> Result<(Summary, Vec<bench::DoubleClaim>)> {
    let sync = cx.cli.synchronous;
    progress(format_args!("{label}: filling {} tasks…", a.tasks));
    let db = BenchDb::create(
        target,
        if raw { "raw" } else { "tasklease" },
        a.tasks,
        a.deps,
        raw,
        sync,
    )?;
    stop.check()?;
    let spawn_allowance = 300 + 30 * a.agents as u64;
    let start_at = epoch_ms() + spawn_allowance;
    let mut outs = Vec::with_capacity(a.agents);
    for i in 0..a.agents {
        if stop.caught().is_some() {
            break;
        }
        let mut child = spawn_worker(&db, sync, a, i, start_at, raw)?;
        outs.push(child.stdout.take().expect("piped"));
        stop.add(child);
    }
    progress(format_args!(
        "{label}: {} agents, {:.1}s…",
        a.agents, a.seconds
    ));
    let started = Instant::now();
    let mut reports = collect(outs, stop, started, spawn_allowance, a.seconds)?;
    if a.inject_double_claim && !raw {
        // Test hook for the verifier: another agent reports a task that was claimed.
        if let Some(claim) = reports.iter().find_map(|r| r.claims.first().cloned()) {
            let last = reports.len() - 1;
            reports[last].claims.push(claim);
        }
    }
    let summary = bench::summarize(&reports, Duration::from_secs_f64(a.seconds));
    let mut doubles = bench::double_claims(&reports);
    // The database must agree with what the agents reported.
    let store = tasklease::open::open(&db.spec(), &cx.options())?;
    let status = match a.mode {
        Mode::Next | Mode::Wait => tasklease::Status::InProgress,
        Mode::NextDone => tasklease::Status::Done,
    };
    let held = store
        .list(&tasklease::ListFilter {
            statuses: vec![status],
            ..Default::default()
        })?
        .len() as u64;
    let reported: std::collections::HashSet<&str> = reports
        .iter()
        .flat_map(|r| r.claims.iter().map(|(t, _)| t.as_str()))
        .collect();
    if held != reported.len() as u64 {
        doubles.push(bench::DoubleClaim {
            task: format!(
                "(the database has {held} tasks {status}; agents reported {} distinct claims)",
                reported.len()
            ),
            holders: Vec::new(),
        });
    }
    progress(format_args!(
        "{label}: {:.0} claims/s, p99 {}µs",
        summary.claims_per_s, summary.p99_us
    ));
    Ok((summary, doubles))
}

fn spawn_worker(
    db: &BenchDb,
    sync: Synchronous,
    a: &BenchArgs,
    i: usize,
    start_at: u64,
    raw: bool,
) -> Result<Child> {
    let exe = std::env::current_exe().map_err(|e| Error::store("find the tasklease binary", e))?;
    let mut c = Command::new(exe);
    // Through the environment, not argv: a PostgreSQL connection string may hold a
    // password, and argv is visible to every user.
    c.env("TASKLEASE_DB", db.db_arg())
        .arg("bench-worker")
        .arg("--agent")
        .arg(format!("bench-{i}"))
        .arg("--synchronous")
        .arg(match sync {
            Synchronous::Normal => "normal",
            Synchronous::Full => "full",
        })
        .arg("--mode")
        .arg(match a.mode {
            Mode::Next => "next",
            Mode::NextDone => "next-done",
            Mode::Wait => "wait",
        })
        .arg("--seconds")
        .arg(a.seconds.to_string())
        .arg("--start-at")
        .arg(start_at.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if raw {
        c.arg("--raw");
    }
    if a.no_queue {
        c.arg("--no-queue");
    }
    c.spawn()
        .map_err(|e| Error::store("start a bench agent", e))
}

fn collect(
    outs: Vec<ChildStdout>,
    stop: &Arc<Interrupt>,
    started: Instant,
    allowance_ms: u64,
    seconds: f64,
) -> Result<Vec<WorkerReport>> {
    let total = Duration::from_millis(allowance_ms) + Duration::from_secs_f64(seconds);
    let ticking = stop.clone();
    let ticker = std::thread::spawn(move || {
        while started.elapsed() < total && ticking.caught().is_none() {
            std::thread::sleep(Duration::from_millis(1000));
            let left = total.saturating_sub(started.elapsed());
            progress(format_args!("  {:.0}s left", left.as_secs_f64().ceil()));
        }
    });
    // An agent's report is one line; an agent stopped early writes none.
    let lines: Vec<std::io::Result<String>> = outs
        .into_iter()
        .map(|out| {
            let mut line = String::new();
            BufReader::new(out).read_line(&mut line).map(|_| line)
        })
        .collect();
    let statuses = stop.wait_all();
    let _ = ticker.join();
    stop.check()?;
    let mut reports = Vec::with_capacity(lines.len());
    for (line, status) in lines.into_iter().zip(statuses) {
        let status = status.map_err(|e| Error::store("wait for a bench agent", e))?;
        if !status.success() {
            return Err(Error::store(
                "a bench agent failed",
                format!("exit status {status}; see its message above"),
            ));
        }
        let line = line.map_err(|e| Error::store("read a bench agent's report", e))?;
        let r: WorkerReport = serde_json::from_str(&line)
            .map_err(|e| Error::store("parse a bench agent's report", e))?;
        reports.push(r);
    }
    Ok(reports)
}

/// Ctrl-C (or SIGTERM, SIGHUP) during a benchmark: its agents are stopped, and the
/// benchmark ends with an error through the ordinary path, so its files (a database
/// of up to millions of tasks) and PostgreSQL scratch schemas are removed rather than
/// left behind.
struct Interrupt {
    caught: Mutex<Option<Caught>>,
    /// The running agents.
    agents: Mutex<Vec<Supervised>>,
}

impl Interrupt {
    fn install() -> Result<Arc<Interrupt>> {
        let it = Arc::new(Interrupt {
            caught: Mutex::new(None),
            agents: Mutex::new(Vec::new()),
        });
        let handler = it.clone();
        signals::catch(move |c| {
            *handler
                .caught
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(c);
            for agent in handler.agents().iter_mut() {
                agent.stop(Stop::Terminate);
            }
        })
        .map_err(|e| Error::store("catch Ctrl-C", e))?;
        Ok(it)
    }

    fn caught(&self) -> Option<Caught> {
        *self.caught.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn agents(&self) -> std::sync::MutexGuard<'_, Vec<Supervised>> {
        self.agents.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a started agent; stops it at once if a stop request came first.
    fn add(&self, child: Child) {
        let mut agents = self.agents();
        agents.push(Supervised {
            child,
            // Our own processes, in our group: stopped with SIGTERM whatever we caught
            // (a SIGINT may be ignored where they run, as in a background job).
            own_group: false,
        });
        if let (Some(_), Some(agent)) = (self.caught(), agents.last_mut()) {
            agent.stop(Stop::Terminate);
        }
    }

    /// Waits for every agent, in the order added, and forgets them.
    fn wait_all(&self) -> Vec<std::io::Result<std::process::ExitStatus>> {
        std::mem::take(&mut *self.agents())
            .into_iter()
            .map(|mut a| a.child.wait())
            .collect()
    }

    fn check(&self) -> Result<()> {
        match self.caught() {
            Some(c) => Err(Error::store(
                "bench",
                format!(
                    "stopped by {}: its agents were stopped and its files removed",
                    c.name()
                ),
            )),
            None => Ok(()),
        }
    }
}

fn report(
    cx: &Ctx<'_>,
    a: &BenchArgs,
    target: &Target,
    results: &[(&str, Summary, Vec<bench::DoubleClaim>)],
) -> Report {
    let sync = match cx.cli.synchronous {
        Synchronous::Normal => "normal",
        Synchronous::Full => "full",
    };
    let (backend, store_desc) = match target {
        Target::SqliteDir(_) => ("sqlite", format!("SQLite (synchronous={sync})")),
        Target::Postgres(server) => (
            "postgres",
            format!("PostgreSQL ({})", tasklease::open::redact_url(server)),
        ),
    };
    let ours = &results[0].1;
    let ratio = results
        .get(1)
        .map(|b| ours.claims_per_s / b.1.claims_per_s.max(1e-9));
    let doubles: Vec<&bench::DoubleClaim> = results.iter().flat_map(|r| &r.2).collect();
    let ms = |us: u32| us as f64 / 1000.0;
    let mut human = format!(
        "tasklease bench: {store_desc}, {} agents, {}s, mode {}, {} tasks{}\n\
         {:<14} {:>10} {:>9} {:>9} {:>9} {:>7}  {:>15}\n",
        a.agents,
        a.seconds,
        match a.mode {
            Mode::Next => "next",
            Mode::NextDone => "next-done",
            Mode::Wait => "wait",
        },
        a.tasks,
        if a.deps { " (with dependencies)" } else { "" },
        "",
        "claims/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        ">10 ms",
        "share min/max",
    );
    for (label, s, _) in results {
        human.push_str(&format!(
            "{:<14} {:>10.0} {:>9.3} {:>9.3} {:>9.1} {:>7}  {:>6.1}% / {:>4.1}%{}\n",
            label,
            s.claims_per_s,
            ms(s.p50_us),
            ms(s.p99_us),
            ms(s.max_us),
            s.over_10ms,
            s.min_share * 100.0,
            s.max_share * 100.0,
            if s.exhausted {
                "  (ran out of tasks)"
            } else {
                ""
            },
        ));
    }
    // A run that ran out of tasks stopped claiming early: its claims/s is not a
    // rate over the run, and a ratio against it compares nothing.
    let exhausted = results.iter().any(|r| r.1.exhausted);
    if exhausted {
        human.push_str(
            "a run ran out of tasks before its time was up: its claims/s is not a rate over \
             the run; raise --tasks (or shorten --seconds) for figures that mean something\n",
        );
    }
    if let Some(r) = ratio {
        if exhausted {
            human.push_str(&format!(
                "ratio tasklease / raw baseline: {r:.2} (meaningless: a run ran out of tasks)\n"
            ));
        } else {
            human.push_str(&format!("ratio tasklease / raw baseline: {r:.2}\n"));
        }
    }
    let verified = doubles.is_empty();
    if verified {
        human.push_str("verified: no task was held by two agents at once");
    } else {
        human.push_str("VERIFICATION FAILED: tasks held by two agents at once:");
        for d in &doubles {
            human.push_str(&format!("\n  {} {:?}", d.task, d.holders));
        }
    }
    let j = json!({
        "backend": backend,
        "synchronous": sync,
        "agents": a.agents,
        "seconds": a.seconds,
        "tasks": a.tasks,
        "deps": a.deps,
        "mode": a.mode,
        "tasklease": ours,
        "baseline": results.get(1).map(|b| &b.1),
        "ratio": ratio,
        // false when a run ran out of tasks: its figures are not rates over the run.
        "meaningful": !exhausted,
        "verified": verified,
        "double_claims": doubles,
    });
    if verified {
        Report::ok(tasklease_shape::json::success("measured", j), human)
    } else {
        let j = tasklease_shape::json::failure(
            "double_claim",
            Exit::Runtime as u8,
            "a task was held by two agents at once",
            j,
        );
        Report::refused(Exit::Runtime, j, human)
    }
}

pub fn worker(cx: &Ctx<'_>, a: &BenchWorkerArgs) -> Result<Report> {
    let spec = cx.spec()?;
    let agent = cx.agent()?;
    let start_at = UNIX_EPOCH + Duration::from_millis(a.start_at);
    let lease_ms = LEASE.as_millis();
    let run = |claim: &mut dyn FnMut() -> Result<Option<(String, tasklease::Token)>>,
               done: &mut dyn FnMut(&str, &tasklease::Token) -> Result<()>| {
        if let Ok(wait) = start_at.duration_since(SystemTime::now()) {
            std::thread::sleep(wait);
        }
        let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
        bench::work(agent.as_str(), a.mode, deadline, claim, done)
    };
    let r = if a.raw {
        let raw = std::cell::RefCell::new(Raw::open(&spec, cx.cli.synchronous)?);
        run(
            // The baseline's own statements fence by number alone.
            &mut || {
                let got = raw.borrow_mut().claim_next(lease_ms, agent.as_str())?;
                Ok(got.map(|(id, fence)| (id, tasklease::Token::legacy(fence))))
            },
            &mut |id, tok| raw.borrow_mut().done(id, tok.fence()),
        )?
    } else {
        let opts = cx.long_running_options().queue(!a.no_queue);
        let store = tasklease::open::open(&spec, &opts)?;
        run(
            &mut || {
                Ok(store
                    .claim_next(LEASE, &agent)?
                    .map(|l| (l.task.to_string(), l.token)))
            },
            &mut |id, tok| {
                store
                    .done(&tasklease::TaskId::new(id)?, tok, &agent)
                    .map(drop)
            },
        )?
    };
    let line = serde_json::to_string(&r).map_err(|e| Error::store("write the report", e))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").map_err(|e| Error::store("write the report", e))?;
    Ok(Report::ok(Value::Null, ""))
}

/// One progress line on stderr (stdout carries only the result).
fn progress(args: std::fmt::Arguments<'_>) {
    crate::output::note!("tasklease: bench: {args}");
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

/// `--dir`, created if missing.
fn create_dir(d: &std::path::Path) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(d)
        .map_err(|e| Error::store(format!("cannot create --dir {}", d.display()), e))?;
    Ok(d.to_path_buf())
}

fn tempdir() -> Result<TempDir> {
    let d = std::env::temp_dir().join(format!("tasklease-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).map_err(|e| Error::store("create a temporary directory", e))?;
    Ok(TempDir(d))
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
