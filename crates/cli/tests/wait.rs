//! `claim --next --wait` through the built binary, waiters as real processes, on both
//! stores: the bound and its exit code, every task that becomes ready taken exactly
//! once and soon, a lease running out waking a waiter, and a PostgreSQL restart in the
//! middle of a wait.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::own_pg::OwnPg;
use common::{Project, parse_one};

/// How soon a waiter must hold a task that became ready: generous for a loaded CI
/// machine, and far below the fallback look (30 s), so only a wake-up meets it.
const SOON: Duration = Duration::from_secs(10);

fn waiter(p: &Project, name: &str, wait: &str) -> Child {
    p.cmd(&["claim", "--next", "--wait", wait, "--json", "--agent", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a waiter")
}

/// Waits for a waiter to exit: its exit code, its one JSON object, and when it ended.
fn finish(mut c: Child) -> (Option<i32>, serde_json::Value, Instant, String) {
    let status = c.wait().expect("wait for the waiter");
    let ended = Instant::now();
    let mut out = Vec::new();
    c.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let mut err = String::new();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.code(), parse_one(&out), ended, err)
}

fn a_wait_with_nothing_ready_ends_at_its_bound_with_exit_4(p: &Project) {
    let started = Instant::now();
    let out = p.run(&["claim", "--next", "--wait", "1s", "--json"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    // The same JSON as claim --next with nothing ready.
    let plain = p.json(&["claim", "--next"], 4);
    assert_eq!(parse_one(&out.stdout), plain);
    assert!(took >= Duration::from_secs(1), "ended early: {took:?}");
    // The busy timeout (30 s) bounds what comes after the bound.
    assert!(took < Duration::from_secs(31), "{took:?}");
    let out = p.run(&["claim", "--next", "--wait", "200ms"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no task became ready within 200ms") && said.contains("waited"),
        "the message says what it waited for and how long: {said}"
    );
    let out = p.run(&["claim", "--wait", "1s", "X"]);
    assert_eq!(out.status.code(), Some(2), "--wait without --next: {out:?}");
    let out = p.run(&["claim", "--next", "--wait", "soon"]);
    assert_eq!(out.status.code(), Some(2), "a bad duration: {out:?}");
}

/// A small xorshift: random moments without a dependency.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        eprintln!("seed {seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Eight waiting processes; tasks become ready at random moments — three at once by a
/// `done` of the task they wait on, five by `add` — and each is taken by exactly one
/// waiter, within [`SOON`] of becoming ready.
fn waiters_take_each_task_that_becomes_ready_exactly_once_and_soon(p: &Project) {
    let mut rng = Rng::new();
    p.ok(&["add", "root", "--id", "root"]);
    for d in ["d1", "d2", "d3"] {
        p.ok(&["add", d, "--id", d, "--dep", "root"]);
    }
    let root = p.json(&["claim", "root", "--agent", "boss"], 0);
    let token = root["token"].to_string();
    let token = token.trim_matches('"').to_owned();
    let waiters: Vec<Child> = (0..8).map(|i| waiter(p, &format!("w{i}"), "2m")).collect();
    // Give them a moment to fall asleep (correctness does not depend on it).
    std::thread::sleep(Duration::from_millis(1500));
    let mut ready_at = std::collections::HashMap::new();
    std::thread::sleep(Duration::from_millis(rng.below(500)));
    p.ok(&["done", "root", "--token", &token, "--agent", "boss"]);
    for d in ["d1", "d2", "d3"] {
        ready_at.insert(d.to_owned(), Instant::now());
    }
    for i in 0..5 {
        std::thread::sleep(Duration::from_millis(rng.below(700)));
        let id = format!("n{i}");
        p.ok(&["add", &id, "--id", &id]);
        ready_at.insert(id, Instant::now());
    }
    let mut taken = Vec::new();
    for w in waiters {
        let (code, v, ended, err) = finish(w);
        assert_eq!(code, Some(0), "a waiter got nothing: {v} {err}");
        let task = v["id"].as_str().unwrap_or_else(|| panic!("{v}")).to_owned();
        let became = ready_at[&task];
        let late = ended.saturating_duration_since(became);
        assert!(
            late < SOON,
            "{task} was ready {late:?} before its waiter held it"
        );
        taken.push(task);
    }
    taken.sort();
    let mut expected: Vec<String> = ready_at.keys().cloned().collect();
    expected.sort();
    assert_eq!(taken, expected, "each task exactly once");
}

fn a_lease_running_out_wakes_a_waiter(p: &Project) {
    p.ok(&["add", "t", "--id", "t"]);
    p.json(&["claim", "t", "--agent", "gone", "--lease", "2s"], 0);
    let started = Instant::now();
    let (code, v, ended, err) = finish(waiter(p, "w", "2m"));
    assert_eq!(code, Some(0), "{v} {err}");
    assert_eq!(v["id"], "t");
    let took = ended - started;
    assert!(
        took < SOON,
        "the waiter took {took:?} to see the lease run out"
    );
}

each_store!(
    a_wait_with_nothing_ready_ends_at_its_bound_with_exit_4,
    waiters_take_each_task_that_becomes_ready_exactly_once_and_soon,
    a_lease_running_out_wakes_a_waiter
);

/// A PostgreSQL restart while agents wait: their listening connections break, they
/// reconnect and keep waiting, and a task added after the restart is taken — by a
/// wake-up, well before the fallback look.
#[test]
fn a_postgres_restart_during_a_wait_is_ridden_out() {
    if common::pg_server().is_none() {
        return;
    }
    let Some(pg) = OwnPg::start("wait", 57000) else {
        return;
    };
    let db = pg.conn();
    let cli = |args: &[&str]| {
        let mut c = Command::new(common::bin());
        c.args(args)
            .env("TASKLEASE_DB", &db)
            .env("TASKLEASE_AGENT", "tester")
            .current_dir(pg.dir.path());
        c
    };
    let init = cli(&["init"]).output().unwrap();
    assert!(init.status.success(), "{init:?}");
    let waiters: Vec<Child> = (0..3)
        .map(|i| {
            cli(&[
                "claim",
                "--next",
                "--wait",
                "2m",
                "--json",
                "--agent",
                &format!("w{i}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    assert!(pg.restart("fast"), "the server restarted");
    // Room for the listeners to notice and reconnect (0.1 s, doubling to 2 s).
    std::thread::sleep(Duration::from_secs(3));
    let mut added = Vec::new();
    for i in 0..3 {
        let id = format!("t{i}");
        let out = cli(&["add", &id, "--id", &id]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        added.push((id, Instant::now()));
    }
    let mut taken = Vec::new();
    for w in waiters {
        let (code, v, ended, err) = finish(w);
        assert_eq!(
            code,
            Some(0),
            "a waiter did not survive the restart: {v} {err}"
        );
        let task = v["id"].as_str().unwrap().to_owned();
        let became = added.iter().find(|(id, _)| *id == task).unwrap().1;
        assert!(
            ended.saturating_duration_since(became) < SOON,
            "{task} waited too long"
        );
        taken.push(task);
    }
    taken.sort();
    assert_eq!(taken, ["t0", "t1", "t2"]);
}

/// Writes an executable script into the project.
fn script(p: &Project, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = p.root().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Every JSON line of stdout.
fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `run --next --loop --jobs 4` drains a graph with dependencies: every task run once,
/// in dependency order, and done; the summary's counts per worker match the history.
fn a_fleet_drains_a_graph_and_its_summary_matches_the_history(p: &Project) {
    // Three layers of four; each task of a layer waits on two of the layer before.
    let layers = ["a", "b", "c"];
    let mut all = Vec::new();
    for (l, name) in layers.iter().enumerate() {
        for i in 0..4 {
            let id = format!("{name}{i}");
            let mut args = vec!["add".to_owned(), id.clone(), "--id".into(), id.clone()];
            if l > 0 {
                let prev = layers[l - 1];
                for d in [i, (i + 1) % 4] {
                    args.push("--dep".into());
                    args.push(format!("{prev}{d}"));
                }
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            p.ok(&args);
            all.push(id);
        }
    }
    // Each run appends its task and the layers already finished (a task of layer b
    // must find all of its layer-a dependencies done: their lines are in ran.txt).
    script(
        p,
        "agent.sh",
        "echo \"start $TASKLEASE_TASK_ID\" >> ran.txt\nsleep 0.1\necho \"end $TASKLEASE_TASK_ID\" >> ran.txt",
    );
    let out = p.run(&[
        "run",
        "--next",
        "--loop",
        "--jobs",
        "4",
        "--wait",
        "2s",
        "--agent",
        "fleet",
        "--json",
        "--",
        "./agent.sh",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let summary = lines.last().unwrap();
    assert_eq!(summary["outcome"], "finished", "{summary}");
    assert_eq!(summary["done"], 12);
    assert_eq!(summary["failed"], 0);
    let workers = summary["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 4);
    // Each task exactly once, and never before its dependencies ended.
    let ran = std::fs::read_to_string(p.root().join("ran.txt")).unwrap();
    let mut ended = std::collections::HashSet::new();
    let mut started = Vec::new();
    for line in ran.lines() {
        let (what, id) = line.split_once(' ').unwrap();
        if what == "end" {
            ended.insert(id.to_owned());
            continue;
        }
        started.push(id.to_owned());
        let layer = layers.iter().position(|l| id.starts_with(l)).unwrap();
        if layer > 0 {
            let i: usize = id[1..].parse().unwrap();
            for d in [i, (i + 1) % 4] {
                let dep = format!("{}{d}", layers[layer - 1]);
                assert!(
                    ended.contains(&dep),
                    "{id} started before {dep} ended:\n{ran}"
                );
            }
        }
    }
    started.sort();
    all.sort();
    assert_eq!(started, all, "each task run exactly once");
    // The history's done events, per agent, are the summary's counts.
    let log = p.json(&["log", "--limit", "1000"], 0);
    let mut by_agent = std::collections::HashMap::<String, u64>::new();
    for e in log["events"].as_array().unwrap() {
        if e["kind"] == "done" {
            *by_agent
                .entry(e["agent"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    for w in workers {
        let agent = w["agent"].as_str().unwrap();
        assert!(agent.starts_with("fleet-"), "{w}");
        assert_eq!(
            w["done"].as_u64().unwrap(),
            by_agent.get(agent).copied().unwrap_or(0),
            "{agent}: summary {w} vs history {by_agent:?}"
        );
    }
    let per_task: Vec<_> = lines[..lines.len() - 1].iter().collect();
    assert_eq!(per_task.len(), 12, "one JSON line per task");
    let list = p.json(&["list"], 0);
    for t in list["tasks"].as_array().unwrap() {
        assert_eq!(t["status"], "done", "{t}");
    }
}

/// Ctrl-C to a fleet: every running command is stopped, its task released, a waiting
/// worker stops waiting, and the fleet exits 130 with its summary.
fn ctrl_c_stops_a_fleet_and_releases_its_tasks(p: &Project) {
    for id in ["x", "y"] {
        p.ok(&["add", id, "--id", id]);
    }
    script(
        p,
        "slow.sh",
        "echo \"$TASKLEASE_TASK_ID\" >> started.txt\nexec sleep 60",
    );
    let child = p
        .cmd(&[
            "run",
            "--next",
            "--loop",
            "--jobs",
            "3",
            "--wait",
            "5m",
            "--agent",
            "f",
            "--json",
            "--",
            "./slow.sh",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = p.root().join("started.txt");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&started).map_or(0, |s| s.lines().count()) < 2 {
        assert!(Instant::now() < deadline, "the commands did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let at = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        at.elapsed() < Duration::from_secs(20),
        "took {:?} to stop",
        at.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let summary = lines.last().unwrap();
    // A failure: the summary is the error's details.
    assert_eq!(summary["ok"], false, "{summary}");
    assert_eq!(summary["error"]["code"], "interrupted", "{summary}");
    assert_eq!(summary["error"]["exit"], 130, "{summary}");
    assert_eq!(summary["error"]["released"], 2, "{summary}");
    for id in ["x", "y"] {
        let t = p.json(&["show", id], 0);
        assert_eq!(t["task"]["status"], "todo", "{t}");
    }
}

/// A chain drained by a fleet: the worker that finishes a task takes the next one
/// itself (`done_then_claim_next`), so the whole chain is claimed by one worker and
/// the others, never woken for a task they could not have, claim nothing after their
/// first look. With --max-tasks the step never claims beyond the bound: exactly that
/// many tasks run and none is left in progress.
fn a_fleet_on_a_chain_hands_each_task_to_its_finisher(p: &Project) {
    let chain = |name: &str| {
        for i in 0..6 {
            let id = format!("{name}{i}");
            let mut args = vec!["add".to_owned(), id.clone(), "--id".into(), id];
            if i > 0 {
                args.extend(["--dep".into(), format!("{name}{}", i - 1)]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            p.ok(&args);
        }
    };
    let fleet = |max: Option<&str>| {
        let mut args = vec![
            "run", "--next", "--loop", "--jobs", "3", "--wait", "3s", "--agent", "fleet", "--json",
        ];
        if let Some(m) = max {
            args.extend(["--max-tasks", m]);
        }
        args.extend(["--", "true"]);
        let out = p.run(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(&out.stdout).pop().unwrap()
    };
    chain("c");
    let summary = fleet(None);
    assert_eq!(summary["done"], 6, "{summary}");
    let log = p.json(&["log", "--limit", "1000"], 0);
    let claims: Vec<(String, String)> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "claimed")
        .map(|e| {
            (
                e["task"].as_str().unwrap().to_owned(),
                e["agent"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(claims.len(), 6, "each task claimed once: {claims:?}");
    assert!(
        claims.iter().all(|(_, a)| *a == claims[0].1),
        "the finisher of each task took the next: {claims:?}"
    );
    // --max-tasks bounds the step too: 4 run, none is left claimed.
    chain("d");
    let summary = fleet(Some("4"));
    assert_eq!(summary["done"], 4, "{summary}");
    let list = p.json(&["list", "--limit", "100"], 0);
    let mut seen = 0;
    for t in list["tasks"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        let Some(i) = id.strip_prefix('d') else {
            continue;
        };
        seen += 1;
        let want = if i.parse::<u32>().unwrap() < 4 {
            "done"
        } else {
            "todo"
        };
        assert_eq!(t["status"], want, "{t}");
    }
    assert_eq!(seen, 6, "{list}");
}

each_store!(
    a_fleet_drains_a_graph_and_its_summary_matches_the_history,
    ctrl_c_stops_a_fleet_and_releases_its_tasks,
    a_fleet_on_a_chain_hands_each_task_to_its_finisher
);
