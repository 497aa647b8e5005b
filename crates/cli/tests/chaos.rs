//! The chaos suite: long-running agents claim and finish tasks while the harness
//! kills, stops and disturbs them, then checks from the database and from what each
//! agent was told that nothing was granted twice, finished twice, or lost.
//!
//! # The agents
//!
//! Real processes, as in production: `tasklease mcp` servers driven over stdio by a
//! harness thread each (the thread is the "LLM", the server is the process chaos
//! hits), and `tasklease run --next` agents whose command records the task and token
//! it was handed — every other one `run --next --loop --max-tasks 3`, which steps from
//! task to task with `done_then_claim_next`. An agent whose process dies is started again. Every call has a
//! bound; a call that outlives it is a violation unless its own process was the one
//! stopped.
//!
//! # The chaos
//!
//! Until the time is up, every few hundred milliseconds one of: `kill -9` of a random
//! agent; `kill -9` of whichever process holds the SQLite writer turn (read from
//! `/proc/locks`, the kernel's own record); `SIGSTOP` of the turn holder for longer
//! than the busy timeout (then `SIGCONT`); removing the writer queue's directory; and
//! on PostgreSQL (a server of the test's own, never the shared one) a fast or an
//! immediate restart, or terminating every client backend.
//!
//! # The checks
//!
//! - no (task, token) was granted twice, and no two agents were told the same one;
//! - tokens grow strictly per task, in history order;
//! - no task was finished twice;
//! - every claim and every done an agent was told of is in the database;
//! - no agent waited past the bound;
//! - SQLite: `PRAGMA integrity_check` is `ok`.
//!
//! Ignored by default: `scripts/chaos` runs it (and `scripts/test` runs it for 60 s a
//! store). `TASKLEASE_CHAOS_SECS` sets how long; `TASKLEASE_CHAOS_REPORT=FILE` appends
//! the run's figures as one JSON line per store.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::bin;
use common::own_pg::OwnPg;
use serde_json::{Value, json};

/// The busy timeout every agent runs with.
const BUSY: Duration = Duration::from_secs(2);
/// What a loaded 2-core machine may add to a bounded wait before we call it a hang.
const SLACK: Duration = Duration::from_secs(6);
/// How long a stopped turn holder stays stopped: well past the busy timeout, so a
/// wait that is not bounded by it shows up as a violation.
const STOP_FOR: Duration = Duration::from_secs(9);
/// The lease agents take.
const LEASE: &str = "4s";
const MCP_AGENTS: usize = 3;
const RUN_AGENTS: usize = 3;

#[test]
#[ignore = "long: scripts/chaos and scripts/test run it"]
fn chaos_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let db = dir.path().join(".tasklease/tasklease.db");
    let target = Target {
        root: dir.path().to_path_buf(),
        db: db.to_string_lossy().into_owned(),
        pg: None,
    };
    target.init();
    let report = chaos(&target);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "integrity_check");
    finish("sqlite", &report);
}

#[test]
#[ignore = "long: scripts/chaos and scripts/test run it"]
fn chaos_postgres() {
    let Some(server) = OwnPg::start("chaos", 56000) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let target = Target {
        root: dir.path().to_path_buf(),
        db: server.conn(),
        pg: Some(server),
    };
    target.init();
    let report = chaos(&target);
    finish("postgres", &report);
}

/// Where the agents work.
struct Target {
    root: PathBuf,
    /// The `--db` value.
    db: String,
    pg: Option<OwnPg>,
}

impl Target {
    fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(&self.root);
        // SQLite: the project's database, found from the working directory.
        match self.pg {
            Some(_) => c.env("TASKLEASE_DB", &self.db),
            None => c.env_remove("TASKLEASE_DB"),
        };
        c.env("TASKLEASE_BUSY_TIMEOUT", format!("{}ms", BUSY.as_millis()))
            .env_remove("TASKLEASE_LOG")
            .env_remove("TASKLEASE_SYNCHRONOUS");
        c
    }

    fn init(&self) {
        let out = self.cmd().arg("init").output().unwrap();
        assert!(out.status.success(), "init: {out:?}");
    }

    fn queue_dir(&self) -> Option<PathBuf> {
        self.pg
            .is_none()
            .then(|| PathBuf::from(format!("{}-queue", self.db)))
    }

    /// Every (seq, task, kind, agent, token) of the history, oldest first, and every
    /// task's (status, fence).
    fn read_back(&self) -> (Vec<Ev>, BTreeMap<String, (String, i64)>) {
        const EVENTS: &str = "SELECT seq, task, kind, agent, token FROM events ORDER BY seq";
        const TASKS: &str = "SELECT id, status, fence FROM tasks";
        if let Some(pg) = &self.pg {
            let mut c = postgres::Client::connect(&pg.conn(), postgres::NoTls).unwrap();
            let evs = c
                .query(EVENTS, &[])
                .unwrap()
                .iter()
                .map(|r| Ev {
                    seq: r.get(0),
                    task: r.get(1),
                    kind: r.get(2),
                    agent: r.get(3),
                    token: r.get(4),
                })
                .collect();
            let tasks = c
                .query(TASKS, &[])
                .unwrap()
                .iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2))))
                .collect();
            return (evs, tasks);
        }
        let c = rusqlite::Connection::open(&self.db).unwrap();
        let evs = c
            .prepare(EVENTS)
            .unwrap()
            .query_map([], |r| {
                Ok(Ev {
                    seq: r.get(0)?,
                    task: r.get(1)?,
                    kind: r.get(2)?,
                    agent: r.get(3)?,
                    token: r.get(4)?,
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let tasks = c
            .prepare(TASKS)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        (evs, tasks)
    }
}

#[derive(Debug)]
struct Ev {
    seq: i64,
    task: String,
    kind: String,
    agent: String,
    token: Option<i64>,
}

/// What an agent was told.
#[derive(Clone, Debug)]
enum Told {
    Claimed {
        agent: String,
        task: String,
        token: i64,
    },
    Done {
        agent: String,
        task: String,
        token: i64,
    },
}

/// What every thread of the run shares.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Live agent processes: pid → agent name.
    pids: Mutex<BTreeMap<u32, String>>,
    /// How often each pid was stopped, so a caller of a stopped process is not
    /// blamed for waiting on it.
    stops_of: Mutex<HashMap<u32, u64>>,
    told: Mutex<Vec<Told>>,
    /// Waits past the bound: who, how long, for what.
    overdue: Mutex<Vec<String>>,
    calls: AtomicU64,
    failed_calls: AtomicU64,
    /// Tasks a looping `run` took with `done_then_claim_next` (its second or later
    /// task in one process).
    stepped: AtomicU64,
    kills: AtomicU64,
    turn_kills: AtomicU64,
    stops: AtomicU64,
    queue_removals: AtomicU64,
    restarts: AtomicU64,
    terminations: AtomicU64,
}

impl Shared {
    /// Whether `pid` was stopped at any moment since its stop count was `before`: a
    /// caller waiting on a stopped process is not blamed for the wait.
    fn was_stopped(&self, pid: u32, before: u64) -> bool {
        let now = self.stops(pid);
        now != before || now % 2 == 1
    }

    fn stops(&self, pid: u32) -> u64 {
        self.stops_of
            .lock()
            .unwrap()
            .get(&pid)
            .copied()
            .unwrap_or(0)
    }

    fn tell(&self, t: Told) {
        self.told.lock().unwrap().push(t);
    }

    /// Records a wait past `bound`, unless the process waited on was stopped meanwhile.
    fn check_wait(&self, who: &str, pid: u32, stops_before: u64, took: Duration, what: &str) {
        let bound = BUSY + SLACK;
        if took > bound && !self.was_stopped(pid, stops_before) {
            self.overdue.lock().unwrap().push(format!(
                "{who}: {what} took {took:?}, past the bound of {bound:?}; its threads: {}",
                threads_of(pid)
            ));
        }
    }
}

/// What each thread of `pid` is waiting in (the kernel's wait channel), to say where
/// a wait past its bound is stuck.
fn threads_of(pid: u32) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return "gone".to_owned();
    };
    let mut out: Vec<String> = tasks
        .flatten()
        .map(|t| {
            let read = |f: &str| {
                std::fs::read_to_string(t.path().join(f))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            };
            format!("{}:{}", read("comm"), read("wchan"))
        })
        .collect();
    out.sort();
    out.join(" ")
}

/// Tells every agent thread to stop, and wakes anything still stopped so its thread
/// can see it.
struct EndAgents<'a>(&'a Shared);

impl Drop for EndAgents<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
        for pid in self.0.pids.lock().unwrap().keys() {
            signal(*pid, "CONT");
        }
    }
}

fn seconds() -> u64 {
    std::env::var("TASKLEASE_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

fn chaos(t: &Target) -> Value {
    let shared = Arc::new(Shared::default());
    let deadline = Instant::now() + Duration::from_secs(seconds());
    std::thread::scope(|s| {
        s.spawn(|| feed(t, &shared));
        for k in 0..MCP_AGENTS {
            let shared = &shared;
            s.spawn(move || mcp_agent(t, shared, &format!("mcp-{k}")));
        }
        for k in 0..RUN_AGENTS {
            let shared = &shared;
            // Every other one loops: its steps from task to task are
            // done_then_claim_next, killed mid-step like anything else.
            s.spawn(move || run_agent(t, shared, &format!("run-{k}"), k % 2 == 1));
        }
        // Ends the agents even if the chaos itself panics: the scope waits for them.
        let _end = EndAgents(&shared);
        disturb(t, &shared, deadline);
    });
    verify(t, &shared)
}

/// Keeps a few hundred tasks ready, through the CLI as a person would add them.
fn feed(t: &Target, shared: &Shared) {
    // A CLI call may also wait for a connection (PostgreSQL's connect timeout, 10 s).
    let bound = Duration::from_secs(10) + BUSY + SLACK;
    let mut n = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        let Ok(mut child) = t
            .cmd()
            .args(["add", "--id", &format!("c{n}"), "chaos task"])
            .env("TASKLEASE_AGENT", "feeder")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        else {
            continue;
        };
        let start = Instant::now();
        let pid = child.id();
        let added = wait_bounded(&mut child, shared, pid, 0).is_some()
            && child.wait().is_ok_and(|s| s.success());
        let took = start.elapsed();
        if took > bound {
            shared
                .overdue
                .lock()
                .unwrap()
                .push(format!("feeder: add took {took:?}, past {bound:?}"));
        }
        if added {
            n += 1;
        }
        if n.is_multiple_of(50) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An MCP server and the agent driving it, restarted whenever the server dies.
fn mcp_agent(t: &Target, shared: &Shared, name: &str) {
    let mut id = 10;
    while !shared.stop.load(Ordering::SeqCst) {
        let Some(mut server) = Mcp::start(t, shared, name) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        while !shared.stop.load(Ordering::SeqCst) {
            id += 2;
            let Some(claim) = server.tool(
                shared,
                id,
                "claim",
                json!({"next": true, "lease": LEASE, "agent": name}),
            ) else {
                break;
            };
            let Some((task, token, secret)) = granted(&claim) else {
                std::thread::sleep(Duration::from_millis(30));
                continue;
            };
            shared.tell(Told::Claimed {
                agent: name.to_owned(),
                task: task.clone(),
                token,
            });
            let Some(done) = server.tool(
                shared,
                id + 1,
                "done",
                json!({"id": task, "token": secret, "agent": name}),
            ) else {
                break;
            };
            if !is_error(&done) {
                shared.tell(Told::Done {
                    agent: name.to_owned(),
                    task,
                    token,
                });
            }
        }
        server.end(shared);
    }
}

fn structured(result: &Value) -> Value {
    let r = &result["result"];
    if r["structuredContent"].is_object() {
        return r["structuredContent"].clone();
    }
    r["content"][0]["text"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

fn is_error(result: &Value) -> bool {
    result.get("error").is_some() || result["result"]["isError"] == true
}

/// The task, fence and whole token a successful claim result grants.
fn granted(result: &Value) -> Option<(String, i64, String)> {
    if is_error(result) {
        return None;
    }
    let v = structured(result);
    Some((
        v["id"].as_str()?.to_owned(),
        v["fence"].as_i64()?,
        v["token"].as_str()?.to_owned(),
    ))
}

struct Mcp {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    name: String,
}

impl Mcp {
    fn start(t: &Target, shared: &Shared, name: &str) -> Option<Mcp> {
        let mut child = t
            .cmd()
            .arg("mcp")
            .env("TASKLEASE_AGENT", name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        shared
            .pids
            .lock()
            .unwrap()
            .insert(child.id(), name.to_owned());
        let stdin = child.stdin.take()?;
        let stdout = child.stdout.take()?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut m = Mcp {
            child,
            stdin,
            lines,
            name: name.to_owned(),
        };
        let init = m.request(
            shared,
            1,
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "chaos", "version": "0"}
            }),
        );
        if init.is_none() || !m.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#) {
            m.end(shared);
            return None;
        }
        Some(m)
    }

    fn send(&mut self, line: &str) -> bool {
        writeln!(self.stdin, "{line}").is_ok() && self.stdin.flush().is_ok()
    }

    /// A request's response, or `None` once the server is gone (or hung past the
    /// bound, which is recorded and ends it).
    fn request(&mut self, shared: &Shared, id: i64, method: &str, params: Value) -> Option<Value> {
        let pid = self.child.id();
        let stops = shared.stops(pid);
        let start = Instant::now();
        shared.calls.fetch_add(1, Ordering::Relaxed);
        // `method` may carry the tool's name after a space, for messages.
        let rpc = method.split(' ').next().unwrap_or(method);
        let line = json!({"jsonrpc": "2.0", "id": id, "method": rpc, "params": params});
        if !self.send(&line.to_string()) {
            return None;
        }
        loop {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(l) => {
                    let Ok(v) = serde_json::from_str::<Value>(&l) else {
                        continue;
                    };
                    if v["id"] != id {
                        continue;
                    }
                    shared.check_wait(&self.name, pid, stops, start.elapsed(), method);
                    if is_error(&v) {
                        shared.failed_calls.fetch_add(1, Ordering::Relaxed);
                    }
                    return Some(v);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let waited = start.elapsed();
                    let stopped = shared.was_stopped(pid, stops);
                    if waited > BUSY + SLACK && !stopped {
                        shared.check_wait(&self.name, pid, stops, waited, method);
                        return None;
                    }
                    if waited > BUSY + SLACK + STOP_FOR + SLACK {
                        return None;
                    }
                }
            }
        }
    }

    fn tool(&mut self, shared: &Shared, id: i64, name: &str, args: Value) -> Option<Value> {
        self.request(
            shared,
            id,
            "tools/call",
            json!({"name": name, "arguments": args}),
        )
    }

    fn end(mut self, shared: &Shared) {
        let pid = self.child.id();
        signal(pid, "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
        shared.pids.lock().unwrap().remove(&pid);
    }
}

/// Tasks a looping `run` agent takes per process.
const LOOP_TASKS: u32 = 3;

/// `tasklease run --next` again and again (or, `looped`, `run --next --loop
/// --max-tasks 3`); its command records the task and token it got.
fn run_agent(t: &Target, shared: &Shared, name: &str, looped: bool) {
    let record = t.root.join(format!("{name}.told"));
    let max = LOOP_TASKS.to_string();
    let (loop_args, tasks): (&[&str], u32) = if looped {
        (&["--loop", "--max-tasks", &max], LOOP_TASKS)
    } else {
        (&[], 1)
    };
    while !shared.stop.load(Ordering::SeqCst) {
        let Ok(mut child) = t
            .cmd()
            .args(["run", "--next"])
            .args(loop_args)
            .args(["--lease", LEASE, "--grace", "1s", "--json", "--"])
            .args([
                "sh",
                "-c",
                r#"echo "$TASKLEASE_TASK_ID $TASKLEASE_FENCE" >> "$1""#,
            ])
            .arg("record")
            .arg(&record)
            .env("TASKLEASE_AGENT", name)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        else {
            continue;
        };
        let pid = child.id();
        shared.pids.lock().unwrap().insert(pid, name.to_owned());
        let stops = shared.stops(pid);
        let start = Instant::now();
        shared.calls.fetch_add(1, Ordering::Relaxed);
        let out = wait_bounded(&mut child, shared, pid, stops);
        shared.pids.lock().unwrap().remove(&pid);
        // A run's wait is bounded by its claim's and its done's busy timeouts, the
        // lease and the grace period, per task.
        let took = start.elapsed();
        let bound = (BUSY * 2 + Duration::from_secs(4 + 1)) * tasks + SLACK;
        if took > bound && !shared.was_stopped(pid, stops) {
            shared
                .overdue
                .lock()
                .unwrap()
                .push(format!("{name}: run took {took:?}, past {bound:?}"));
        }
        // One JSON line per task (and, looped, a summary line last).
        let lines: Vec<Value> = out
            .iter()
            .flat_map(|s| s.lines())
            .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
            .collect();
        if lines.is_empty() {
            shared.failed_calls.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let mut idle = false;
        let dones = lines.iter().filter(|v| v["outcome"] == "done").count() as u64;
        shared
            .stepped
            .fetch_add(dones.saturating_sub(1), Ordering::Relaxed);
        for v in &lines {
            if v["outcome"] == "done" {
                shared.tell(Told::Done {
                    agent: name.to_owned(),
                    task: v["id"].as_str().unwrap_or_default().to_owned(),
                    token: v["fence"].as_i64().unwrap_or(-1),
                });
            } else if v["outcome"] != "finished" {
                shared.failed_calls.fetch_add(1, Ordering::Relaxed);
                idle |= v["error"]["code"] == "empty";
            }
        }
        if idle
            || lines
                .last()
                .is_some_and(|v| v["workers"][0]["ended"] == "drained")
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // What the commands were handed: each line one claim this agent was told of.
    for line in std::fs::read_to_string(&record).unwrap_or_default().lines() {
        let mut w = line.split_whitespace();
        if let (Some(task), Some(Ok(token))) = (w.next(), w.next().map(str::parse)) {
            shared.tell(Told::Claimed {
                agent: name.to_owned(),
                task: task.to_owned(),
                token,
            });
        }
    }
}

/// The child's stdout once it exits; kills it past every bound it could have.
fn wait_bounded(child: &mut Child, shared: &Shared, pid: u32, stops: u64) -> Option<String> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(_) => return None,
        }
        let limit = if !shared.was_stopped(pid, stops) {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(60) + STOP_FOR
        };
        if start.elapsed() > limit {
            signal(pid, "CONT");
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut s = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut()?, &mut s).ok()?;
    Some(s)
}

/// The chaos itself, until `deadline`.
fn disturb(t: &Target, shared: &Shared, deadline: Instant) {
    let mut rng = Rng::seeded();
    eprintln!("chaos: seed {}", rng.0);
    // Let the agents start before the first blow.
    std::thread::sleep(Duration::from_secs(2));
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(150 + rng.below(350)));
        let roll = rng.below(100);
        match (&t.pg, t.queue_dir()) {
            (_, Some(queue)) if roll < 30 => {
                if let Some(pid) = turn_holder(&queue, shared) {
                    kill9(pid, shared);
                    shared.turn_kills.fetch_add(1, Ordering::Relaxed);
                }
            }
            (_, Some(queue)) if roll < 36 => {
                if let Some(pid) = turn_holder(&queue, shared) {
                    stop_for(
                        pid,
                        shared,
                        STOP_FOR.min(deadline.saturating_duration_since(Instant::now())),
                    );
                }
            }
            (_, Some(queue)) if roll < 42 && std::fs::remove_dir_all(&queue).is_ok() => {
                shared.queue_removals.fetch_add(1, Ordering::Relaxed);
            }
            (Some(pg), _) if roll < 8 => {
                let mode = if rng.below(2) == 0 {
                    "fast"
                } else {
                    "immediate"
                };
                if pg.restart(mode) {
                    shared.restarts.fetch_add(1, Ordering::Relaxed);
                }
            }
            (Some(pg), _) if roll < 30 => {
                let n = pg.terminate_backends();
                shared.terminations.fetch_add(n, Ordering::Relaxed);
            }
            _ if roll < 75 => {
                let pids: Vec<u32> = shared.pids.lock().unwrap().keys().copied().collect();
                if !pids.is_empty() {
                    let pid = pids[rng.below(pids.len() as u64) as usize];
                    kill9(pid, shared);
                }
            }
            _ => {}
        }
    }
}

fn kill9(pid: u32, shared: &Shared) {
    if signal(pid, "KILL") {
        shared.kills.fetch_add(1, Ordering::Relaxed);
    }
}

/// Stops `pid` for `d`. Its stop count goes up at the stop and again at the resume, so
/// it is odd exactly while the process is stopped.
fn stop_for(pid: u32, shared: &Shared, d: Duration) {
    let bump = || *shared.stops_of.lock().unwrap().entry(pid).or_default() += 1;
    bump();
    if signal(pid, "STOP") {
        shared.stops.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(d);
        signal(pid, "CONT");
    }
    bump();
}

fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The agent process holding the writer turn, as the kernel's lock table says:
/// sampled for up to 100 ms, since a turn is usually held for a few milliseconds.
fn turn_holder(queue: &Path, shared: &Shared) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(100) {
        let Ok(ino) = std::fs::metadata(queue.join("turn")).map(|m| m.ino()) else {
            return None;
        };
        let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
        for l in locks.lines() {
            // "1: FLOCK  ADVISORY  WRITE 12345 fd:01:123456 0 EOF"
            let w: Vec<&str> = l.split_whitespace().collect();
            let (Some(pid), Some(dev_ino)) = (w.get(4), w.get(5)) else {
                continue;
            };
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            if dev_ino.rsplit(':').next() == Some(ino.to_string().as_str())
                && w.get(3) == Some(&"WRITE")
                && shared.pids.lock().unwrap().contains_key(&pid)
            {
                return Some(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// The checks, and the run's figures.
fn verify(t: &Target, shared: &Shared) -> Value {
    let (events, tasks) = t.read_back();
    let told = shared.told.lock().unwrap().clone();
    let mut problems: Vec<String> = shared.overdue.lock().unwrap().clone();

    // No (task, token) granted twice; tokens strictly increasing per task.
    let mut grants: BTreeMap<(String, i64), &Ev> = BTreeMap::new();
    let mut last_token: HashMap<&str, i64> = HashMap::new();
    let mut dones: BTreeMap<&str, Vec<&Ev>> = BTreeMap::new();
    for e in &events {
        match e.kind.as_str() {
            "claimed" => {
                let token = e.token.unwrap_or(-1);
                if let Some(first) = grants.insert((e.task.clone(), token), e) {
                    problems.push(format!(
                        "{}: token {token} granted twice: {first:?} and {e:?}",
                        e.task
                    ));
                }
                let last = last_token.entry(&e.task).or_insert(0);
                if token <= *last {
                    problems.push(format!(
                        "{}: token {token} (seq {}) after token {last}",
                        e.task, e.seq
                    ));
                }
                *last = token;
            }
            "done" => dones.entry(&e.task).or_default().push(e),
            _ => {}
        }
    }
    for (task, ds) in &dones {
        if ds.len() > 1 {
            problems.push(format!("{task} finished {} times: {ds:?}", ds.len()));
        }
    }

    // What agents were told is in the database; nobody was told another's grant.
    let mut told_claims: BTreeMap<(String, i64), String> = BTreeMap::new();
    let (mut n_claims, mut n_dones) = (0u64, 0u64);
    for t in &told {
        match t {
            Told::Claimed { agent, task, token } => {
                n_claims += 1;
                if let Some(other) = told_claims.insert((task.clone(), *token), agent.clone())
                    && other != *agent
                {
                    problems.push(format!("{task} token {token} told to {other} and {agent}"));
                }
                match grants.get(&(task.clone(), *token)) {
                    Some(e) if e.agent == *agent => {}
                    Some(e) => problems.push(format!(
                        "{agent} was told {task} token {token}, granted to {}",
                        e.agent
                    )),
                    None => problems.push(format!(
                        "{agent} was told {task} token {token}, which the history never granted"
                    )),
                }
            }
            Told::Done { agent, task, token } => {
                n_dones += 1;
                match tasks.get(task) {
                    Some((status, fence)) if status == "done" && fence == token => {}
                    other => problems.push(format!(
                        "{agent} was told {task} token {token} is done; the database has {other:?}"
                    )),
                }
            }
        }
    }

    let figures = json!({
        "seconds": seconds(),
        "tasks": tasks.len(),
        "done": tasks.values().filter(|(s, _)| s == "done").count(),
        "grants_in_history": grants.len(),
        "claims_told": n_claims,
        "dones_told": n_dones,
        "calls": shared.calls.load(Ordering::Relaxed),
        "stepped": shared.stepped.load(Ordering::Relaxed),
        "failed_calls": shared.failed_calls.load(Ordering::Relaxed),
        "kills": shared.kills.load(Ordering::Relaxed),
        "turn_holder_kills": shared.turn_kills.load(Ordering::Relaxed),
        "stops": shared.stops.load(Ordering::Relaxed),
        "queue_removals": shared.queue_removals.load(Ordering::Relaxed),
        "restarts": shared.restarts.load(Ordering::Relaxed),
        "backends_terminated": shared.terminations.load(Ordering::Relaxed),
        "problems": problems,
    });
    figures
}

fn finish(store: &str, report: &Value) {
    eprintln!("chaos {store}: {report}");
    if let Ok(path) = std::env::var("TASKLEASE_CHAOS_REPORT") {
        let mut line = report.clone();
        line["store"] = json!(store);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems.is_empty(),
        "{} problems: {:#?}",
        problems.len(),
        problems
    );
    assert!(
        report["dones_told"].as_u64().unwrap() > 0,
        "no agent finished anything: the run proves nothing"
    );
    assert!(
        report["stepped"].as_u64().unwrap() > 0,
        "no looping run stepped from a task to the next: done_then_claim_next went untested"
    );
}

/// A small xorshift generator: the run's seed is printed, so a failure can be read
/// against the sequence of blows that caused it.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("TASKLEASE_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
