//! Concurrency with real OS processes: agents are processes, so races are run between
//! processes of the built binary, never threads sharing one connection. Each race
//! runs against both stores (`each_store!`): a SQLite file and a PostgreSQL schema.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::process::{Child, Stdio};

use common::{Project, parse_one};
use serde_json::Value;

/// Starts every command at (nearly) the same instant: each child first blocks reading
/// one line from a FIFO, then execs tasklease; the parent releases them all at once.
struct StartLine {
    #[cfg(unix)]
    fifo: std::path::PathBuf,
    #[cfg(unix)]
    writer: std::fs::File,
}

impl StartLine {
    fn new(dir: &std::path::Path) -> StartLine {
        #[cfg(unix)]
        {
            let fifo = dir.join(format!("start-{}", std::process::id()));
            let _ = std::fs::remove_file(&fifo);
            let ok = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap();
            assert!(ok.success(), "mkfifo");
            // Read+write open does not block, and keeps the pipe's buffer alive for
            // children that reach their `read` late.
            let writer = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&fifo)
                .unwrap();
            StartLine { fifo, writer }
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            StartLine {}
        }
    }

    fn spawn(&self, p: &Project, args: &[&str]) -> Child {
        #[cfg(unix)]
        {
            let mut c = std::process::Command::new("sh");
            c.arg("-c")
                .arg(r#"read _ < "$0"; exec "$@""#)
                .arg(&self.fifo)
                .arg(common::bin())
                .args(args);
            let base = p.cmd(&[]);
            for (k, v) in base.get_envs() {
                match v {
                    Some(v) => c.env(k, v),
                    None => c.env_remove(k),
                };
            }
            c.current_dir(p.root())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().unwrap()
        }
        #[cfg(not(unix))]
        {
            p.cmd(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        }
    }

    fn go(&mut self, n: usize) {
        #[cfg(unix)]
        {
            use std::io::Write;
            std::thread::sleep(std::time::Duration::from_millis(50));
            self.writer.write_all(&vec![b'\n'; n]).unwrap();
        }
        #[cfg(not(unix))]
        let _ = n;
    }
}

fn finish(children: Vec<Child>) -> Vec<(i32, Value, String)> {
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let code = out.status.code().unwrap_or(-1);
            (code, parse_one(&out.stdout), stderr)
        })
        .collect()
}

each_store!(
    sixteen_processes_claim_one_task_exactly_one_wins,
    twenty_processes_drain_the_queue_each_task_done_once,
    overlapping_batches_are_all_or_nothing_under_contention,
);

fn sixteen_processes_claim_one_task_exactly_one_wins(p: &Project) {
    const PROCS: usize = 16;
    const ROUNDS: usize = 12;
    let mut start = StartLine::new(p.root());
    for round in 0..ROUNDS {
        let id = format!("race-{round}");
        p.ok(&["add", "contended", "--id", &id]);
        let agents: Vec<String> = (0..PROCS).map(|i| format!("agent-{i}")).collect();
        let children: Vec<Child> = agents
            .iter()
            .map(|a| start.spawn(p, &["claim", &id, "--agent", a, "--json"]))
            .collect();
        start.go(PROCS);
        let results = finish(children);
        let winners: Vec<&Value> = results.iter().filter(|r| r.0 == 0).map(|r| &r.1).collect();
        for (code, v, err) in &results {
            assert!(
                *code == 0 || *code == 3,
                "round {round}: exit {code}: {v} {err}"
            );
            if *code == 3 {
                assert_eq!(v["error"]["code"], "held", "{v}");
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {} winners", winners.len());
        let holder = p.json(&["show", &id], 0)["task"]["assignee"].clone();
        assert_eq!(holder, winners[0]["agent"], "round {round}");
        for (code, v, _) in &results {
            if *code == 3 {
                assert_eq!(v["error"]["holder"], holder, "losers name the winner");
            }
        }
    }
}

fn twenty_processes_drain_the_queue_each_task_done_once(p: &Project) {
    const AGENTS: usize = 20;
    const TASKS: usize = 300;
    let ids: Vec<String> = (0..TASKS).map(|i| format!("T-{i}")).collect();
    for chunk in ids.chunks(50) {
        // Adding through the CLI, a few at a time in parallel, is itself a test.
        std::thread::scope(|s| {
            for id in chunk {
                s.spawn(move || {
                    p.ok(&[
                        "add",
                        "work",
                        "--id",
                        id,
                        "-p",
                        ["high", "low", "medium"][id.len() % 3],
                    ])
                });
            }
        });
    }
    // Each agent loops: claim --next; then done, or every third claim release it back
    // (so tasks are claimed several times and tokens must keep increasing).
    let logs: Vec<Vec<(String, i64, i64, &'static str)>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..AGENTS)
            .map(|i| {
                s.spawn(move || {
                    let me = format!("w{i}");
                    let mut log = Vec::new();
                    for n in 0.. {
                        let out = p.run(&["claim", "--next", "--agent", &me, "--json"]);
                        match out.status.code() {
                            Some(4) => break,
                            Some(0) => {}
                            other => panic!(
                                "{me}: claim exit {other:?}: {}",
                                String::from_utf8_lossy(&out.stderr)
                            ),
                        }
                        let v = parse_one(&out.stdout);
                        let id = v["id"].as_str().unwrap().to_owned();
                        let token = v["token"].as_i64().unwrap();
                        let at_ms =
                            v["lock_until_ms"].as_i64().unwrap() - v["lease_ms"].as_i64().unwrap();
                        let tok = token.to_string();
                        let end = if n % 3 == 2 { "release" } else { "done" };
                        p.ok(&[end, &id, "--token", &tok, "--agent", &me]);
                        log.push((id, token, at_ms, end));
                    }
                    log
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut per_task: BTreeMap<String, Vec<(i64, i64, &str)>> = BTreeMap::new();
    for (id, token, at, end) in logs.into_iter().flatten() {
        per_task.entry(id).or_default().push((token, at, end));
    }
    assert_eq!(per_task.len(), TASKS, "every task claimed");
    for (id, mut claims) in per_task {
        claims.sort();
        let dones = claims.iter().filter(|c| c.2 == "done").count();
        assert_eq!(dones, 1, "{id} done {dones} times: {claims:?}");
        assert_eq!(
            claims.last().unwrap().2,
            "done",
            "{id}: done is the last claim"
        );
        let tokens: HashSet<i64> = claims.iter().map(|c| c.0).collect();
        assert_eq!(
            tokens.len(),
            claims.len(),
            "{id}: a token was handed out twice"
        );
        for w in claims.windows(2) {
            assert!(
                w[0].1 <= w[1].1,
                "{id}: larger token claimed earlier: {claims:?}"
            );
        }
    }
    let l = p.json(&["list", "--status", "done"], 0);
    assert_eq!(l["count"], TASKS);
}

fn overlapping_batches_are_all_or_nothing_under_contention(p: &Project) {
    const PROCS: usize = 12;
    for i in 0..PROCS {
        p.ok(&["add", "ring", "--id", &format!("b{i}")]);
    }
    let mut start = StartLine::new(p.root());
    let batches: Vec<[String; 2]> = (0..PROCS)
        .map(|i| [format!("b{i}"), format!("b{}", (i + 1) % PROCS)])
        .collect();
    let children: Vec<Child> = batches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            start.spawn(
                p,
                &["claim", &b[0], &b[1], "--agent", &format!("g{i}"), "--json"],
            )
        })
        .collect();
    start.go(PROCS);
    let results = finish(children);
    let tasks = p.json(&["list"], 0);
    let holder = |id: &str| -> Value {
        tasks["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap()["assignee"]
            .clone()
    };
    let mut winners = 0;
    for (i, (code, v, err)) in results.iter().enumerate() {
        let me = format!("g{i}");
        match code {
            0 => {
                winners += 1;
                assert_eq!(v["leases"].as_array().unwrap().len(), 2);
                for id in &batches[i] {
                    assert_eq!(holder(id), me.as_str(), "{id} must belong to {me}");
                }
            }
            3 => {
                assert_eq!(v["error"]["code"], "refused");
                for id in &batches[i] {
                    assert_ne!(holder(id), me.as_str(), "refused {me} holds {id}");
                }
            }
            _ => panic!("{me}: exit {code}: {err}"),
        }
    }
    assert!(winners >= 1, "the first batch to commit must win");
    let held = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "in_progress")
        .count();
    assert_eq!(held, winners * 2, "only winning batches hold tasks");
}
