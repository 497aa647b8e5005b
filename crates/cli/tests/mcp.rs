//! `tasklease mcp` through the built binary: a real MCP client (rmcp's) spawns it and
//! talks over its stdin/stdout for the happy paths; malformed traffic is written by
//! hand as newline-delimited JSON-RPC, since a well-behaved client cannot send it.

#[path = "../../mcp/tests/client/mod.rs"]
mod client;
mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use client::{Client, call, named, result};
use common::{Project, bin};
use rmcp::service::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

/// Long enough for a loaded CI machine; only a hang comes near it.
const PATIENCE: Duration = Duration::from_secs(20);

/// `tasklease mcp` on the project's store, with an rmcp client named `name`
/// connected to it.
async fn client(p: &Project, name: &str) -> Client {
    client_as(p, name, None).await
}

/// [`client`], with `TASKLEASE_AGENT` set to `agent` in the server's environment (as a
/// client's `env` sets it), or unset.
async fn client_as(p: &Project, name: &str, agent: Option<&str>) -> Client {
    let mut cmd = p.cmd(&["mcp"]);
    cmd.env_remove("TASKLEASE_AGENT")
        .env_remove("TASKLEASE_LOG");
    if let Some(a) = agent {
        cmd.env("TASKLEASE_AGENT", a);
    }
    let (transport, _) = TokioChildProcess::builder(tokio::process::Command::from(cmd))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tasklease mcp");
    named(name).serve(transport).await.expect("MCP handshake")
}

/// Runs an async test body on a runtime of its own (`each_store!` takes plain fns).
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

each_store!(
    restart_and_recover,
    rmcp_client_claims_renews_and_finishes_a_task,
    two_clients_race_for_one_task_and_exactly_one_wins,
    every_session_ends_with_exit_0_at_end_of_input,
    pipelined_adds_and_claims_apply_in_the_order_sent,
    claim_waits_for_a_task_to_become_ready,
);

/// A hand-driven server on the project's store, whichever it is.
fn raw(p: &Project) -> Raw {
    match &p.pg {
        Some(pg) => Raw::start_with(p, &["--db", pg.conn()]),
        None => Raw::start(p),
    }
}

/// On PostgreSQL every session used to end in a panic (exit 101: the store was
/// dropped inside the async runtime).
fn every_session_ends_with_exit_0_at_end_of_input(p: &Project) {
    p.ok(&["add", "t", "--id", "t"]);
    let mut s = raw(p);
    s.handshake();
    let r = s.tool(2, "claim", json!({"id": "t"}));
    assert_eq!(r["result"]["isError"], false, "{r}");
    let r = s.tool(3, "list", json!({}));
    assert_eq!(r["result"]["isError"], false, "{r}");
    let (code, _, rest) = s.hang_up();
    assert!(rest.is_empty(), "stray output: {rest:?}");
    assert_eq!(code, Some(0));
}

/// rmcp runs requests concurrently; `claim X` sent right after `add X` must still
/// find X (it claimed "no task" 6 times in 10).
fn pipelined_adds_and_claims_apply_in_the_order_sent(p: &Project) {
    const PAIRS: i64 = 50;
    let mut s = raw(p);
    s.handshake();
    let mut burst = String::new();
    for i in 0..PAIRS {
        let task = format!("p{i}");
        for (id, name, args) in [
            (100 + 2 * i, "add", json!({"id": task, "title": task})),
            (101 + 2 * i, "claim", json!({"id": task})),
        ] {
            let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                              "params": {"name": name, "arguments": args}});
            burst.push_str(&call.to_string());
            burst.push('\n');
        }
    }
    // One write: every request is read before the first is answered.
    s.send(burst.trim_end());
    let mut claims = 0;
    for _ in 0..2 * PAIRS {
        let r = s.recv();
        let id = r["id"].as_i64().unwrap();
        assert_eq!(r["result"]["isError"], false, "{r}");
        if id % 2 == 1 {
            assert_eq!(
                r["result"]["structuredContent"]["outcome"], "claimed",
                "{r}"
            );
            claims += 1;
        }
    }
    assert_eq!(claims, PAIRS);
    let (code, _, _) = s.hang_up();
    assert_eq!(code, Some(0));
}

fn rmcp_client_claims_renews_and_finishes_a_task(p: &Project) {
    block_on(claim_renew_done(p));
}

async fn claim_renew_done(p: &Project) {
    p.ok(&["add", "write the parser", "--id", "parser", "-p", "high"]);
    p.ok(&["add", "ship it", "--id", "ship", "--dep", "parser"]);
    let c = client(p, "claude-code").await;
    let tools = c.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "add", "claim", "done", "list", "locks", "log", "mine", "release", "renew", "show",
            "update"
        ]
    );

    let claimed = result(
        &call(&c, "claim", json!({"next": true, "lease": "5m"})).await,
        false,
    );
    assert_eq!(claimed["id"], "parser");
    let me = claimed["agent"].as_str().unwrap().to_owned();
    assert!(me.starts_with("claude-code-"), "{me}");
    let token = claimed["token"].as_str().unwrap().to_owned();
    // The CLI sees the same lease.
    let shown = p.json(&["show", "parser"], 0);
    assert_eq!(shown["task"]["assignee"], me.as_str());
    assert_eq!(shown["task"]["lock_until"], claimed["lock_until"]);

    let renewed = result(
        &call(
            &c,
            "renew",
            json!({"id": "parser", "token": token, "lease": "1h"}),
        )
        .await,
        false,
    );
    assert_eq!(renewed["token"], token);
    assert!(renewed["lock_until_ms"].as_i64() > claimed["lock_until_ms"].as_i64());

    let waiting = result(&call(&c, "claim", json!({"id": "ship"})).await, true);
    assert_eq!(waiting["error"]["code"], "not_claimable");
    assert_eq!(waiting["error"]["waiting_on"], json!(["parser"]));

    let done = result(
        &call(&c, "done", json!({"id": "parser", "token": token})).await,
        false,
    );
    assert_eq!(done["task"]["status"], "done");
    // Same object as the CLI's --json for the same task.
    let cli = p.json(&["show", "ship"], 0);
    let mcp = result(&call(&c, "show", json!({"id": "ship"})).await, false);
    assert_eq!(mcp, cli);
    let next = result(&call(&c, "claim", json!({"next": true})).await, false);
    assert_eq!(next["id"], "ship");
    c.cancel().await.unwrap();
}

fn two_clients_race_for_one_task_and_exactly_one_wins(p: &Project) {
    block_on(race(p));
}

async fn race(p: &Project) {
    const ROUNDS: usize = 8;
    // Two sessions of the same client program in one project, each given its own name
    // in its server's environment (as the README says to).
    let (a, b) = tokio::join!(
        client_as(p, "claude-code", Some("alice")),
        client_as(p, "claude-code", Some("bob"))
    );
    for round in 0..ROUNDS {
        let id = format!("race-{round}");
        p.ok(&["add", "contended", "--id", &id]);
        let args = json!({"id": id});
        let (ra, rb) = tokio::join!(call(&a, "claim", args.clone()), call(&b, "claim", args));
        let (won, lost) = match (ra.is_error, rb.is_error) {
            (Some(false), Some(true)) => (ra, rb),
            (Some(true), Some(false)) => (rb, ra),
            other => panic!("round {round}: not exactly one winner: {other:?}"),
        };
        let won = result(&won, false);
        let lost = result(&lost, true);
        assert_eq!(lost["error"]["code"], "held", "round {round}: {lost}");
        assert_eq!(lost["error"]["holder"], won["agent"], "round {round}");
        assert_eq!(
            lost["error"]["lock_until"], won["lock_until"],
            "round {round}"
        );
        assert!(
            !lost.to_string().contains("token"),
            "the loser must not learn the token: {lost}"
        );
        assert_eq!(
            p.json(&["show", &id], 0)["task"]["assignee"],
            won["agent"],
            "round {round}"
        );
    }
    let empty = result(&call(&a, "claim", json!({"next": true})).await, true);
    assert_eq!(empty["error"]["code"], "empty");
    p.ok(&["add", "for a", "--id", "xa"]);
    p.ok(&["add", "for b", "--id", "xb"]);
    let na = result(&call(&a, "claim", json!({"id": "xa"})).await, false)["agent"].clone();
    let nb = result(&call(&b, "claim", json!({"id": "xb"})).await, false)["agent"].clone();
    assert_eq!((na, nb), (json!("alice"), json!("bob")));
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
    // Without names of their own, two sessions of one client in one project share the
    // default name (stable across restarts), so the second is handed the first's lease.
    let (c, d) = tokio::join!(client(p, "claude-code"), client(p, "claude-code"));
    p.ok(&["add", "shared", "--id", "shared"]);
    let first = result(&call(&c, "claim", json!({"id": "shared"})).await, false);
    let second = result(&call(&d, "claim", json!({"id": "shared"})).await, false);
    assert_eq!(second["outcome"], "already_held", "{second}");
    assert_eq!(second["token"], first["token"]);
    c.cancel().await.unwrap();
    d.cancel().await.unwrap();
}

/// A server driven by hand: lines in, lines out, each line read with a deadline.
struct Raw {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Raw {
    fn start(p: &Project) -> Raw {
        Raw::start_with(p, &[])
    }

    fn start_with(p: &Project, args: &[&str]) -> Raw {
        Raw::start_in(p.root(), args)
    }

    fn start_in(dir: &std::path::Path, args: &[&str]) -> Raw {
        Raw::start_as(dir, args, Some("raw-agent"))
    }

    /// With `TASKLEASE_AGENT` set to `agent`, or unset.
    fn start_as(dir: &std::path::Path, args: &[&str], agent: Option<&str>) -> Raw {
        let mut cmd = Command::new(bin());
        cmd.arg("mcp")
            .args(args)
            .current_dir(dir)
            .env_remove("TASKLEASE_DB")
            .env_remove("TASKLEASE_LOG")
            .env_remove("TASKLEASE_AGENT");
        if let Some(a) = agent {
            cmd.env("TASKLEASE_AGENT", a);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tasklease mcp");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Raw {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line on stdout, which must be one JSON-RPC 2.0 message.
    fn recv(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(PATIENCE)
            .expect("no answer from the server");
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout not JSON ({e}): {line}"));
        assert_eq!(v["jsonrpc"], "2.0", "{v}");
        v
    }

    /// Sends a request and returns its response.
    fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        let v = self.recv();
        assert_eq!(v["id"], id, "{v}");
        v
    }

    fn tool(&mut self, id: i64, name: &str, args: Value) -> Value {
        self.request(id, "tools/call", json!({"name": name, "arguments": args}))
    }

    fn handshake(&mut self) {
        self.handshake_as("by-hand");
    }

    fn handshake_as(&mut self, client: &str) {
        let init = self.request(
            1,
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": client, "version": "0"}
            }),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "tasklease", "{init}");
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    }

    /// Closes stdin and waits for the exit; returns the code, the time it took after
    /// the close, and what was left on stdout.
    fn hang_up(mut self) -> (Option<i32>, Duration, Vec<String>) {
        drop(self.stdin.take());
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("the server did not exit after stdin closed");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = t.elapsed();
        let rest: Vec<String> = self.lines.iter().collect();
        (status.code(), took, rest)
    }
}

#[test]
fn malformed_traffic_is_answered_and_the_server_keeps_serving() {
    let p = Project::new();
    p.ok(&["add", "t", "--id", "t"]);
    let mut s = Raw::start(&p);
    // Before the handshake: a stray notification is ignored, not fatal.
    s.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    s.handshake();

    s.send("{this is not json");
    let e = s.recv();
    assert_eq!(e["error"]["code"], -32700, "{e}");

    s.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":7}}"#);
    let e = s.recv();
    assert_eq!(
        (e["id"].clone(), e["error"]["code"].clone()),
        (json!(2), json!(-32602)),
        "{e}"
    );

    let e = s.tool(3, "frobnicate", json!({}));
    assert_eq!(e["error"]["code"], -32602, "{e}");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("frobnicate") && msg.contains("claim"), "{msg}");

    let e = s.request(4, "tasks/steal", json!({}));
    assert_eq!(e["error"]["code"], -32601, "{e}");

    // Missing and mistyped arguments: tool errors the model can read and act on.
    for (id, name, args, why) in [
        (5, "claim", json!({}), "exactly one of"),
        (6, "renew", json!({"id": "t"}), "missing field `token`"),
        (
            7,
            "renew",
            json!({"id": "t", "token": "one"}),
            "is not a token",
        ),
        (8, "claim", json!({"id": ["t"]}), "`id`"),
        (
            9,
            "show",
            json!({"id": "../../etc/passwd"}),
            "not a valid task id",
        ),
    ] {
        let r = s.tool(id, name, args);
        assert_eq!(r["result"]["isError"], true, "{r}");
        let sc = &r["result"]["structuredContent"];
        assert_eq!(sc["error"]["code"], "invalid", "{r}");
        assert!(
            sc["error"]["message"].as_str().unwrap().contains(why),
            "{r}"
        );
        let text = r["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("Nothing was changed"), "{text}");
    }

    // Still serving, and the refusals changed nothing.
    let r = s.tool(10, "claim", json!({"id": "t"}));
    assert_eq!(r["result"]["isError"], false, "{r}");
    let me = r["result"]["structuredContent"]["agent"].clone();
    let held = p.json(&["claim", "t", "--agent", "cli"], 3);
    assert_eq!(held["error"]["holder"], me);

    let (code, _, rest) = s.hang_up();
    assert_eq!(code, Some(0));
    assert!(rest.is_empty(), "stray output: {rest:?}");
}

#[test]
fn eof_ends_the_server_cleanly_after_answering() {
    let p = Project::new();
    p.ok(&["add", "t", "--id", "t"]);
    // Hung up before saying anything.
    let (code, _, rest) = Raw::start(&p).hang_up();
    assert_eq!(code, Some(0));
    assert!(rest.is_empty(), "{rest:?}");

    // Hung up right after a request: it is still answered, then the server exits.
    let mut s = Raw::start(&p);
    s.handshake();
    s.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"claim","arguments":{"id":"t"}}}"#);
    let (code, took, rest) = s.hang_up();
    assert_eq!(code, Some(0));
    assert_eq!(rest.len(), 1, "{rest:?}");
    let v: Value = serde_json::from_str(&rest[0]).unwrap();
    assert_eq!(v["id"], 2);
    assert_eq!(
        v["result"]["structuredContent"]["outcome"], "claimed",
        "{v}"
    );
    eprintln!("exited {took:?} after stdin closed");
    assert_eq!(p.json(&["show", "t"], 0)["task"]["status"], "in_progress");
}

#[test]
fn the_agent_is_the_argument_then_agent_flag_then_environment_then_client() {
    let p = Project::new();
    for id in ["a", "b", "c", "d", "e"] {
        p.ok(&["add", id, "--id", id]);
    }
    let agent_of = |r: &Value| r["result"]["structuredContent"]["agent"].clone();
    // No flag, no variable: the client's name, the host and the project's hash — no
    // process id, so a restarted server has the same name.
    let mut s = Raw::start_as(p.root(), &[], None);
    let pid = s.child.id().to_string();
    s.handshake_as("Cursor");
    let by_client = agent_of(&s.tool(2, "claim", json!({"id": "a"})));
    let by_client = by_client.as_str().unwrap().to_owned();
    assert!(by_client.starts_with("Cursor-"), "{by_client}");
    assert!(!by_client.ends_with(&pid), "{by_client}");
    let by_arg = agent_of(&s.tool(3, "claim", json!({"id": "b", "agent": "named"})));
    assert_eq!(by_arg, "named");
    s.hang_up();
    let mut s = Raw::start_as(p.root(), &[], None);
    s.handshake_as("Cursor");
    assert_eq!(
        agent_of(&s.tool(2, "mine", json!({}))),
        Value::Null,
        "mine answers leases, not one agent"
    );
    let again = &s.tool(3, "mine", json!({}))["result"]["structuredContent"];
    assert_eq!(again["leases"][0]["agent"], by_client.as_str(), "{again}");
    s.hang_up();
    // $TASKLEASE_AGENT in the server's environment wins over the client's name.
    let mut s = Raw::start_as(p.root(), &[], Some("from-env"));
    s.handshake_as("Cursor");
    assert_eq!(
        agent_of(&s.tool(2, "claim", json!({"id": "c"}))),
        "from-env"
    );
    s.hang_up();
    // A client that gives no usable name: $TASKLEASE_AGENT too.
    let mut s = Raw::start(&p);
    s.handshake_as(" ");
    assert_eq!(
        agent_of(&s.tool(2, "claim", json!({"id": "d"}))),
        "raw-agent"
    );
    s.hang_up();
    // `tasklease mcp --agent` over both.
    let mut s = Raw::start_with(&p, &["--agent", "flagged"]);
    s.handshake_as("Cursor");
    assert_eq!(agent_of(&s.tool(2, "claim", json!({"id": "e"}))), "flagged");
    s.hang_up();
}

/// An agent whose server was killed finds its way back: a new server (the same client,
/// in the same project) has the same name, `mine` returns the lease with its token, a
/// claim of the task answers `already_held` with that token, and `done` with it works.
fn restart_and_recover(p: &Project) {
    p.ok(&["add", "parser", "--id", "parser"]);
    p.ok(&["add", "lexer", "--id", "lexer"]);
    let db: Vec<&str> = match &p.pg {
        Some(pg) => vec!["--db", pg.conn()],
        None => vec![],
    };
    let sc = |r: &Value| r["result"]["structuredContent"].clone();
    let mut s = Raw::start_as(p.root(), &db, None);
    s.handshake_as("claude-code");
    let claimed = sc(&s.tool(2, "claim", json!({"id": "parser", "lease": "10m"})));
    let token = claimed["token"].as_str().unwrap().to_owned();
    let me = claimed["agent"].as_str().unwrap().to_owned();
    // Killed: no goodbye, the lease stays.
    s.child.kill().unwrap();
    s.child.wait().unwrap();

    let mut s = Raw::start_as(p.root(), &db, None);
    s.handshake_as("claude-code");
    let mine = sc(&s.tool(2, "mine", json!({})));
    assert_eq!(mine["count"], 1, "{mine}");
    let lease = &mine["leases"][0];
    assert_eq!(lease["id"], "parser");
    assert_eq!(lease["agent"], me.as_str());
    assert_eq!(lease["token"], token.as_str(), "mine returns the token");
    assert!(lease["lease_left_ms"].as_i64().unwrap() > 0);
    // Claiming it again by the same identity hands back the same lease.
    let again = s.tool(3, "claim", json!({"id": "parser"}));
    assert_ne!(again["result"]["isError"], true, "{again}");
    let again = sc(&again);
    assert_eq!(again["outcome"], "already_held", "{again}");
    assert_eq!(again["token"], token.as_str());
    // A batch that includes it says it is held by you, with the token.
    let batch = s.tool(4, "claim", json!({"ids": ["lexer", "parser"]}));
    let text = batch["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("held by you (token {token})")),
        "{text}"
    );
    let done = sc(&s.tool(5, "done", json!({"id": "parser", "token": token})));
    assert_eq!(done["outcome"], "done", "{done}");
    let repeat = sc(&s.tool(6, "done", json!({"id": "parser", "token": token})));
    assert_eq!(repeat["outcome"], "already_done", "{repeat}");
    assert_eq!(sc(&s.tool(7, "mine", json!({})))["count"], 0);
    s.hang_up();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_before_init_waits_for_the_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let p = Project { dir, pg: None };
    let c = client(&p, "early-bird").await;
    let r = call(&c, "list", json!({})).await;
    let e = result(&r, true);
    assert_eq!(e["error"]["code"], "invalid");
    let text = r.content[0].as_text().unwrap().text.clone();
    assert!(text.contains("tasklease init"), "{text}");
    p.ok(&["init"]);
    p.ok(&["add", "now there is a database", "--id", "x"]);
    let l = result(&call(&c, "list", json!({})).await, false);
    assert_eq!(l["tasks"][0]["id"], "x");
    c.cancel().await.unwrap();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_lists_who_holds_which_file_lock_like_the_cli() {
    let p = Project::new();
    // A process holding task A's lock until its stdin closes.
    let mut holder = p
        .cmd(&["lock", "task", "A", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while p.json(&["locks"], 0)["locks"][0]["held"] != true {
        assert!(t.elapsed() < PATIENCE, "the lock was never taken");
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = client(&p, "watcher").await;
    let mcp = result(&call(&c, "locks", json!({})).await, false);
    assert_eq!(mcp, p.json(&["locks"], 0), "MCP and CLI disagree");
    assert_eq!(mcp["locks"][0]["task"], "A");
    assert_eq!(mcp["locks"][0]["holder"]["agent"], "tester");
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    let after = result(&call(&c, "locks", json!({})).await, false);
    assert_eq!(after["locks"][0]["held"], false, "{after}");
    let e = result(&call(&c, "locks", json!({"path": "x"})).await, true);
    assert_eq!(e["error"]["code"], "invalid");
    c.cancel().await.unwrap();

    // Started elsewhere (as Cursor does) with `--db` naming the project's database:
    // the project is the one holding it, for tasks and for locks alike.
    let elsewhere = tempfile::tempdir().unwrap();
    let db = p.db();
    let mut s = Raw::start_in(elsewhere.path(), &["--db", db.to_str().unwrap()]);
    s.handshake();
    let l = s.tool(2, "locks", json!({}));
    assert_eq!(
        l["result"]["structuredContent"]["locks"][0]["task"], "A",
        "{l}"
    );
    let t = s.tool(3, "list", json!({}));
    assert_eq!(t["result"]["structuredContent"]["ok"], true, "{t}");
    s.hang_up();
}

// --- agents' view: sizes, schemas, the workflow taught, cancellation, keep-alive ------

/// `tools/list` as a hand-driven client gets it, and its size on the wire.
fn tools_list(s: &mut Raw) -> (Vec<Value>, usize) {
    let r = s.request(2, "tools/list", json!({}));
    let size = r.to_string().len();
    (r["result"]["tools"].as_array().unwrap().clone(), size)
}

fn tool<'a>(tools: &'a [Value], name: &str) -> &'a Value {
    tools
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
}

/// Whole `tools/list`, output schemas included, within 16 KB (~4k tokens); every tool
/// titled, with an object `outputSchema` and annotations that match what it does;
/// `reap` only when enabled.
#[test]
fn tools_list_fits_its_budget_and_says_what_each_tool_does() {
    let p = Project::new();
    let mut s = Raw::start(&p);
    s.handshake();
    let (tools, size) = tools_list(&mut s);
    assert!(size <= 16 * 1024, "tools/list is {size} bytes, over 16 KB");
    for t in &tools {
        assert!(t["title"].is_string(), "untitled: {t}");
        assert_eq!(t["outputSchema"]["type"], "object", "{t}");
        assert!(t["outputSchema"]["anyOf"].is_array(), "{t}");
    }
    assert!(
        tools.iter().all(|t| t["name"] != "reap"),
        "reap offered unasked"
    );
    assert_eq!(tool(&tools, "done")["annotations"]["destructiveHint"], true);
    for name in ["show", "list", "locks", "log"] {
        let a = &tool(&tools, name)["annotations"];
        assert_eq!(a["readOnlyHint"], true, "{name}");
        assert_eq!(a["idempotentHint"], true, "{name}");
    }
    assert_eq!(tool(&tools, "claim")["annotations"]["readOnlyHint"], false);
    let (code, _, _) = s.hang_up();
    assert_eq!(code, Some(0));

    let mut s = Raw::start_with(&p, &["--enable-reap"]);
    s.handshake();
    let (tools, _) = tools_list(&mut s);
    assert_eq!(tool(&tools, "reap")["title"], "Reap expired leases");
    s.hang_up();
}

/// A default `list` of 100 tasks with long descriptions is 20 compact rows and says
/// how many more there are, within 4 KB; `fields` picks the columns.
#[test]
fn default_list_is_small_and_says_how_many_more() {
    let p = Project::new();
    let long = "x".repeat(2000);
    let mut s = Raw::start(&p);
    s.handshake();
    for i in 0..100 {
        let r = s.tool(
            10 + i,
            "add",
            json!({"title": format!("task number {i} with a title of some length"), "description": long}),
        );
        assert_eq!(r["result"]["isError"], false, "{r}");
    }
    let r = s.tool(200, "list", json!({}));
    let size = r.to_string().len();
    assert!(
        size <= 4 * 1024,
        "default list is {size} bytes, over 4 KB: {r}"
    );
    let l = &r["result"]["structuredContent"];
    assert_eq!(l["count"], 20);
    assert_eq!(l["more"], 80);
    assert_eq!(l["truncated"], true);
    let row = l["tasks"][0].as_object().unwrap();
    let mut keys: Vec<&str> = row.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "holder",
            "id",
            "lease_left_ms",
            "priority",
            "status",
            "title"
        ]
    );
    let text = r["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("80 more"), "{text}");
    let r = s.tool(201, "list", json!({"fields": ["title"], "limit": 100}));
    let l = &r["result"]["structuredContent"];
    assert_eq!(l["count"], 100);
    assert!(l.get("more").is_none(), "{l}");
    assert_eq!(l["tasks"][0].as_object().unwrap().len(), 2, "{l}");
    let bad = s.tool(202, "list", json!({"fields": ["token"]}));
    assert_eq!(bad["result"]["isError"], true, "{bad}");
    s.hang_up();
}

/// Validates `v` against `schema` with jsonschema.
fn fits(schema: &Value, v: &Value, what: &str) {
    let validator = jsonschema::validator_for(schema).expect("a valid schema");
    let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\n{v}");
}

/// Every result, success or refusal, validates against the tool's declared
/// `outputSchema` and against the full schema in docs/json/; claim and renew carry
/// what the next step needs.
#[test]
fn results_fit_the_output_schemas_success_and_refusal() {
    let p = Project::new();
    p.ok(&[
        "add",
        "write the parser",
        "--id",
        "parser",
        "-d",
        "the grammar is in doc/",
    ]);
    p.ok(&["add", "ship", "--id", "ship", "--dep", "parser"]);
    let mut s = Raw::start(&p);
    s.handshake();
    let (tools, _) = tools_list(&mut s);
    let mut n = 10;
    let mut check = |s: &mut Raw, name: &str, args: Value, is_error: bool| -> Value {
        n += 1;
        let r = s.tool(n, name, args);
        assert_eq!(r["result"]["isError"], is_error, "{name}: {r}");
        let content = r["result"]["content"].as_array().unwrap();
        assert_eq!(content.len(), 1, "one short text block: {r}");
        let v = r["result"]["structuredContent"].clone();
        fits(&tool(&tools, name)["outputSchema"], &v, name);
        let verb = if name == "update" { "update" } else { name };
        let full: Value = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{}/../../docs/json/{verb}.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        fits(&full, &v, name);
        v
    };
    let c = check(
        &mut s,
        "claim",
        json!({"id": "parser", "lease": "10m"}),
        false,
    );
    assert_eq!(c["title"], "write the parser");
    assert_eq!(c["description"], "the grammar is in doc/");
    assert_eq!(c["lease_left_ms"], 600_000);
    assert!(c["lock_until"].is_string() && !c["token"].is_null(), "{c}");
    let token = c["token"].clone();
    let w = check(&mut s, "claim", json!({"id": "ship"}), true);
    assert_eq!(w["error"]["code"], "not_claimable");
    check(&mut s, "claim", json!({"id": "nosuch"}), true);
    p.ok(&["add", "other", "--id", "o"]);
    p.json(&["claim", "o", "--agent", "bob"], 0);
    let h = check(&mut s, "claim", json!({"id": "o"}), true);
    assert_eq!(h["error"]["holder"], "bob");
    check(&mut s, "claim", json!({"ids": ["o", "parser"]}), true);
    let r = check(
        &mut s,
        "renew",
        json!({"id": "parser", "token": token}),
        false,
    );
    assert!(r["lease_left_ms"].as_i64().unwrap() > 0, "{r}");
    check(&mut s, "renew", json!({"id": "parser", "token": 99}), true);
    let u = check(
        &mut s,
        "update",
        json!({"id": "parser", "token": token, "notes": "lexer done", "priority": "high"}),
        false,
    );
    assert_eq!(u["task"]["priority"], "high");
    assert!(
        u["task"]["description"]
            .as_str()
            .unwrap()
            .ends_with("lexer done"),
        "{u}"
    );
    check(
        &mut s,
        "update",
        json!({"id": "parser", "token": 99, "notes": "x"}),
        true,
    );
    check(&mut s, "list", json!({"ready": true}), false);
    check(&mut s, "list", json!({"mine": true}), false);
    check(&mut s, "show", json!({"id": "parser"}), false);
    check(&mut s, "show", json!({"id": "nosuch"}), true);
    let log = check(&mut s, "log", json!({"id": "parser"}), false);
    assert!(log["count"].as_i64().unwrap() >= 2, "{log}");
    check(&mut s, "log", json!({"id": "nosuch"}), true);
    check(&mut s, "locks", json!({}), false);
    check(
        &mut s,
        "done",
        json!({"id": "parser", "token": token}),
        false,
    );
    check(&mut s, "done", json!({"id": "parser", "token": 99}), true);
    check(&mut s, "add", json!({"title": "t", "id": "parser"}), true);
    let e = check(&mut s, "claim", json!({"next": true}), false);
    assert_eq!(e["id"], "ship");
    let e = check(&mut s, "claim", json!({"next": true}), true);
    assert_eq!(e["error"]["code"], "empty");
    s.hang_up();
}

/// The workflow is taught three ways: the instructions, a prompt, a resource.
#[test]
fn the_workflow_is_taught_by_instructions_prompt_and_resource() {
    let p = Project::new();
    let mut s = Raw::start(&p);
    let init = s.request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "x", "version": "0"}}),
    );
    let instructions = init["result"]["instructions"].as_str().unwrap();
    assert!(
        instructions.contains("at least as long as the work"),
        "{instructions}"
    );
    assert!(instructions.contains("on a timer"), "{instructions}");
    s.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    let prompts = s.request(2, "prompts/list", json!({}));
    assert_eq!(
        prompts["result"]["prompts"][0]["name"],
        "tasklease_workflow"
    );
    let got = s.request(3, "prompts/get", json!({"name": "tasklease_workflow"}));
    let text = got["result"]["messages"][0]["content"]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("renew"), "{text}");
    let res = s.request(4, "resources/list", json!({}));
    let uri = res["result"]["resources"][0]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = s.request(5, "resources/read", json!({"uri": uri}));
    let quick = read["result"]["contents"][0]["text"].as_str().unwrap();
    assert!(quick.contains("lease_lost"), "{quick}");
    let missing = s.request(6, "prompts/get", json!({"name": "nosuch"}));
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tasklease_workflow")
    );
    s.hang_up();
}

/// A write stuck behind another process's write lock is cancelled with
/// `notifications/cancelled`: its turn passes at once (no answer is sent for it, as the
/// spec asks), and pings and reads go on being answered while the lock is still held.
#[test]
fn a_cancelled_call_frees_the_session() {
    let p = Project::new();
    p.ok(&["add", "t", "--id", "t"]);
    let mut s = Raw::start_with(&p, &["--busy-timeout", "60s"]);
    s.handshake();
    // A read first, so the read store is open before the lock is taken.
    assert_eq!(s.tool(2, "list", json!({}))["result"]["isError"], false);
    let db = rusqlite::Connection::open(p.db()).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    s.send(
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                   "params": {"name": "claim", "arguments": {"id": "t"}}})
        .to_string(),
    );
    s.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": 3, "reason": "user pressed stop"}})
        .to_string(),
    );
    // A cancelled request gets no answer (the spec; rmcp drops it): the next line on
    // stdout is the ping's, answered while the claim is still stuck on the lock.
    let pong = s.request(4, "ping", json!({}));
    assert!(pong["result"].is_object(), "{pong}");
    let listed = s.tool(5, "list", json!({}));
    assert_eq!(listed["result"]["isError"], false, "{listed}");
    assert_eq!(listed["result"]["structuredContent"]["count"], 1);
    db.execute_batch("COMMIT").unwrap();
    s.hang_up();
}

/// `--keep-alive` renews a session's lease past its length while the client stays
/// connected, and stops at disconnect so the lease then runs out.
#[test]
fn keep_alive_renews_while_connected_and_stops_at_disconnect() {
    let p = Project::new();
    p.ok(&["add", "t", "--id", "t"]);
    let mut s = Raw::start_with(&p, &["--keep-alive"]);
    s.handshake();
    let c = s.tool(2, "claim", json!({"id": "t", "lease": "2s"}));
    let first = c["result"]["structuredContent"]["lock_until_ms"]
        .as_i64()
        .unwrap();
    // Past the first lease's end, the lease is still live and was moved on.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let t = p.json(&["show", "t"], 0)["task"].clone();
        assert_eq!(
            t["lease_live"], true,
            "the lease ran out while connected: {t}"
        );
        let until = t["lock_until"].as_str().unwrap().to_owned();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        if now_ms > first + 1000 {
            assert_ne!(
                Value::from(until),
                c["result"]["structuredContent"]["lock_until"]
            );
            break;
        }
        assert!(Instant::now() < deadline, "never got past the first lease");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, _, _) = s.hang_up();
    assert_eq!(code, Some(0));
    let deadline = Instant::now() + PATIENCE;
    while p.json(&["show", "t"], 0)["task"]["lease_live"] == true {
        assert!(
            Instant::now() < deadline,
            "still renewed after the client left"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `claim` with `next` and `wait_seconds`: an agent blocks in one call until a task
/// becomes ready (here when another agent, a CLI process, finishes its dependency) and
/// gets it; meanwhile the session still answers; with nothing ready it answers `empty`
/// once its bound passes; a cancelled wait frees the session at once.
fn claim_waits_for_a_task_to_become_ready(p: &Project) {
    p.ok(&["add", "first", "--id", "a"]);
    p.ok(&["add", "second", "--id", "b", "--dep", "a"]);
    let held = p.json(&["claim", "a", "--agent", "other"], 0);
    let token = held["token"].as_str().unwrap().to_owned();
    let mut s = raw(p);
    s.handshake();
    let start = std::time::Instant::now();
    s.send(
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "claim", "arguments": {"next": true, "wait_seconds": 60}}})
        .to_string(),
    );
    // The session answers while the claim waits.
    let pong = s.request(3, "ping", json!({}));
    assert!(pong["result"].is_object(), "{pong}");
    std::thread::sleep(Duration::from_millis(500));
    p.json(&["done", "a", "--token", &token, "--agent", "other"], 0);
    let got = s.recv();
    assert_eq!(got["id"], 2, "{got}");
    let r = &got["result"]["structuredContent"];
    assert_eq!(
        (r["ok"].as_bool(), r["id"].as_str()),
        (Some(true), Some("b")),
        "{got}"
    );
    assert!(r["token"].as_str().is_some(), "{got}");
    // Woken by the done, not by the 30 s fallback look.
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );

    // Nothing ready: empty once the bound passes.
    let start = std::time::Instant::now();
    let empty = s.tool(4, "claim", json!({"next": true, "wait_seconds": 1}));
    assert_eq!(
        empty["result"]["structuredContent"]["error"]["code"], "empty",
        "{empty}"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );

    // Cancelled: no answer for it, and the next call is answered at once.
    s.send(
        &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                "params": {"name": "claim", "arguments": {"next": true, "wait_seconds": 100}}})
        .to_string(),
    );
    s.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": 5, "reason": "agent stopped"}})
        .to_string(),
    );
    let listed = s.tool(6, "list", json!({}));
    assert_eq!(listed["result"]["isError"], false, "{listed}");
    let bad = s.tool(7, "claim", json!({"id": "b", "wait_seconds": 5}));
    assert_eq!(bad["result"]["isError"], true, "{bad}");
    s.hang_up();
}
