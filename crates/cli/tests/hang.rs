//! PostgreSQL never hangs a caller: the built binary against a listener that accepts
//! and never answers, and against the test server behind a TCP proxy the test
//! freezes (the shared server itself is never disturbed). Bounds are generous; only
//! a hang comes near them.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Project;
use tasklease_postgres::testing::{Proxy, Silent};

/// How much later than its bound a command may exit on a loaded machine.
const SLACK: Duration = Duration::from_secs(15);

/// The default connect timeout, which covers start-up too.
const CONNECT: Duration = Duration::from_secs(10);

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// How long any command here may run before the test kills it and fails: a hang is
/// the bug these tests look for, and must fail rather than stall the run.
const LIMIT: Duration = Duration::from_secs(90);

/// Waits for `child`, killing it and failing the test after [`LIMIT`].
fn wait_within(mut child: Child) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {LIMIT:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Runs `args` against `db`, returning the output and how long it took.
fn timed(p: &Project, db: &str, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let child = p
        .cmd(args)
        .env("TASKLEASE_DB", db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_within(child);
    (out, started.elapsed())
}

#[test]
fn a_server_that_never_answers_fails_with_exit_1_within_the_connect_timeout() {
    if !common::built_with_postgres() {
        return;
    }
    let p = Project::new();
    let silent = Silent::start();
    let db = silent.conn("connect_timeout=2");
    for args in [&["list"][..], &["claim", "t"]] {
        let (out, took) = timed(&p, &db, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(took < Duration::from_secs(2) + SLACK, "{args:?}: {took:?}");
        assert!(
            err.contains("no answer from the PostgreSQL server at postgres://postgres@127.0.0.1:")
                && err.contains("within 2s"),
            "{args:?}: {err}"
        );
    }
}

/// A frozen server, as a one-shot command meets it: the connection is accepted (by
/// the kernel, or here the proxy) and start-up never completes.
#[test]
fn a_frozen_server_fails_list_and_claim_with_exit_1_within_the_connect_timeout() {
    let Some(p) = Project::postgres() else {
        return;
    };
    let server = common::pg_server().unwrap();
    let proxy = Proxy::start(&server);
    let db = proxy.via(p.pg.as_ref().unwrap().conn());
    p.ok(&["add", "t", "--id", "t"]);
    proxy.freeze();
    let (list, claim) = std::thread::scope(|s| {
        let list = s.spawn(|| timed(&p, &db, &["list"]));
        let claim = s.spawn(|| timed(&p, &db, &["claim", "t"]));
        (list.join().unwrap(), claim.join().unwrap())
    });
    for (out, took) in [list, claim] {
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(took < CONNECT + SLACK, "{took:?}: {err}");
        assert!(
            err.contains("no answer from the PostgreSQL server at postgres://postgres@127.0.0.1:")
                && err.contains("within 10s"),
            "{err}"
        );
    }
    drop(proxy);
    assert_eq!(p.json(&["show", "t"], 0)["task"]["status"], "todo");
}

#[test]
fn run_against_a_frozen_server_exits_within_lease_and_grace() {
    let Some(p) = Project::postgres() else {
        return;
    };
    let server = common::pg_server().unwrap();
    let proxy = Proxy::start(&server);
    let db = proxy.via(p.pg.as_ref().unwrap().conn());
    p.ok(&["add", "t", "--id", "t"]);
    let started = Instant::now();
    let mut child = p
        .cmd(&[
            "run", "t", "--lease", "3s", "--grace", "1s", "--", "sleep", "60",
        ])
        .env("TASKLEASE_DB", &db)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = reader(child.stderr.take().unwrap());
    let claimed = lines.recv_timeout(LIMIT).unwrap();
    assert!(claimed.contains("claimed t"), "{claimed}");
    proxy.freeze();
    let status = wait_within(child).status;
    let took = started.elapsed();
    let rest: Vec<String> = lines.try_iter().collect();
    assert_eq!(status.code(), Some(5), "{rest:?}");
    assert!(
        took < Duration::from_secs(3 + 1) + SLACK,
        "run took {took:?} against a frozen server: {rest:?}"
    );
}

/// A long-lived process — the MCP server — meets the statement bound: its store was
/// opened before the server froze, so the claim is sent and its answer never comes;
/// it answers `outcome_unknown`, and once the server answers again the agent finds its
/// way back with `mine`.
#[test]
fn mcp_claim_on_a_frozen_server_answers_outcome_unknown_within_the_busy_timeout() {
    use std::io::Write;
    use std::process::Command;
    let Some(p) = Project::postgres() else {
        return;
    };
    let server = common::pg_server().unwrap();
    let proxy = Proxy::start(&server);
    let db = proxy.via(p.pg.as_ref().unwrap().conn());
    p.ok(&["add", "t", "--id", "t"]);
    let mut child = Command::new(common::bin())
        .args(["mcp", "--db", &db])
        .current_dir(p.root())
        .env_remove("TASKLEASE_DB")
        .env("TASKLEASE_AGENT", "frozen")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = reader(child.stdout.take().unwrap());
    let mut ask = |line: serde_json::Value, answered: bool| -> Option<serde_json::Value> {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        answered.then(|| {
            let line = stdout
                .recv_timeout(LIMIT)
                .expect("no answer: the server hangs");
            serde_json::from_str(&line).unwrap()
        })
    };
    ask(
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "hang", "version": "0"}}}),
        true,
    );
    ask(
        serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        false,
    );
    let tool = |id: i64, name: &str| {
        serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                           "params": {"name": name, "arguments": {"id": "t"}}})
    };
    let shown = ask(tool(2, "show"), true).unwrap();
    assert_eq!(shown["result"]["isError"], false, "{shown}");
    proxy.freeze();
    let started = Instant::now();
    let claimed = ask(tool(3, "claim"), true).unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(32) + SLACK, "{took:?}");
    assert_eq!(claimed["result"]["isError"], true, "{claimed}");
    let error = &claimed["result"]["structuredContent"]["error"];
    assert_eq!(error["code"], "outcome_unknown", "{claimed}");
    let msg = error["message"].as_str().unwrap();
    assert!(
        msg.contains("within 32s while trying to claim the task")
            && msg.contains("whether it took effect is unknown: look first"),
        "{msg}"
    );
    // Recovery, as the message says: the server answers again, and the agent looks
    // with `mine` before doing anything. Either the claim took effect (the bytes held
    // while frozen reached the server: `mine` has the lease, with its token, and
    // `done` with it works) or it did not (nothing in `mine`, the task still todo, and
    // claiming again works). Never a task held by nobody's known token.
    proxy.thaw();
    let mine_tool = |id: i64| {
        serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                           "params": {"name": "mine", "arguments": {}}})
    };
    let mut id = 10;
    let deadline = Instant::now() + LIMIT;
    let lease = loop {
        id += 1;
        let mine = ask(mine_tool(id), true).unwrap();
        if mine["result"]["isError"] == false {
            let leases = mine["result"]["structuredContent"]["leases"].clone();
            let status = p.json(&["show", "t"], 0)["task"]["status"].clone();
            match (leases.as_array().map(Vec::len), status.as_str()) {
                (Some(1), Some("in_progress")) => break Some(leases[0].clone()),
                (Some(0), Some("todo")) => break None,
                // The held claim may still be on its way: look again.
                _ => {}
            }
        }
        assert!(
            Instant::now() < deadline,
            "no clear answer after thawing: {mine}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let finished = match lease {
        Some(l) => {
            assert_eq!(l["id"], "t", "{l}");
            let token = l["token"].as_str().unwrap().to_owned();
            ask(
                serde_json::json!({"jsonrpc": "2.0", "id": 90, "method": "tools/call",
                    "params": {"name": "done", "arguments": {"id": "t", "token": token}}}),
                true,
            )
            .unwrap()
        }
        None => ask(tool(90, "claim"), true).unwrap(),
    };
    assert_eq!(finished["result"]["isError"], false, "{finished}");
    drop(stdin);
    assert_eq!(wait_within(child).status.code(), Some(0));
    drop(proxy);
}

/// The lines `from` yields, on a channel, so that reading them can time out.
fn reader(from: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
