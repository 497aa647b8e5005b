//! Secrets are never printed: every way a PostgreSQL connection string can reach the
//! user — `--help` (clap shows environment values), connect errors, `status`, `--json`,
//! an MCP tool's error, `bench`, debug logs — is driven through the real binary with
//! connection strings whose passwords are written every way libpq allows (and a few
//! ways it does not), and the password must appear on neither stdout nor stderr.
//!
//! Every password below contains `r3t`, in every spelling (raw, percent-encoded,
//! quoted, escaped), so one fragment finds any leak of it or of a piece of it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Project, bin};
use serde_json::json;

const SECRET: &str = "r3t";

/// A port on 127.0.0.1 that nothing listens on: connecting fails at once.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Connection strings, with `PORT` standing for a closed port.
const CASES: &[&str] = &[
    "postgres://agent:S3cr3t@127.0.0.1:PORT/tasks",
    "postgresql://agent:S3cr3t@127.0.0.1:PORT/tasks",
    // An unencoded `@` in the password (libpq takes the first `@` as the end).
    "postgres://agent:p@S3cr3t@127.0.0.1:PORT/tasks",
    "postgres://agent:a/b@S3cr3t@127.0.0.1:PORT/tasks",
    "postgres://agent:S3cr3t:@@127.0.0.1:PORT/tasks",
    "postgres://agent:S3%40cr%33t@127.0.0.1:PORT/tasks",
    "postgres://agent:S3:cr3t@127.0.0.1:PORT/tasks",
    "postgres://agent:S3/cr3t@127.0.0.1:PORT/tasks",
    "postgres://agent:S3?cr3t@127.0.0.1:PORT/tasks",
    "postgres://127.0.0.1:PORT/tasks?user=agent&password=S3cr3t",
    "postgres://127.0.0.1:PORT/tasks?password=S3cr3t&sslmode=disable",
    "postgres://127.0.0.1:PORT/tasks?pass%77ord=S3cr3t",
    "postgres://127.0.0.1:PORT/tasks?password=S3%63r3t&application_name=x",
    "postgres://agent:S3cr3t@127.0.0.1:PORT,127.0.0.1:PORT/tasks",
    "postgres://agent:S3cr3t@127.0.0.1:notaport/tasks",
    "postgres://agent:S3cr3t@[::1:PORT/tasks",
    "postgres://127.0.0.1:PORT/tasks?password=S3cr3t&sec%ZZ=1",
    "postgres://127.0.0.1:PORT/tasks?password=S3&cr3t=1",
    "host=127.0.0.1 port=PORT user=agent password=S3cr3t dbname=tasks",
    "password=S3cr3t host=127.0.0.1 port=PORT",
    "host=127.0.0.1 port=PORT password = S3cr3t",
    "host=127.0.0.1 port=PORT password='S3 cr3t'",
    r"host=127.0.0.1 port=PORT password='a b\' S3cr3t'",
    r"host=127.0.0.1 port=PORT password=S3\ cr3t",
    "host=127.0.0.1\tport=PORT\tpassword=S3cr3t",
    "host=127.0.0.1 port=PORT password='S3cr3t",
    "host=127.0.0.1 port=PORT PASSWORD=S3cr3t",
    "host=127.0.0.1 port=notaport password=S3cr3t",
    // A misspelt scheme: not a connection string, but not a file name either.
    "postgress://agent:S3cr3t@127.0.0.1:PORT/tasks",
    "PostgreSQL://agent:S3cr3t@127.0.0.1:PORT/tasks",
];

/// Asserts the secret is in neither stream of a finished command.
fn assert_clean(what: &str, conn: &str, stdout: &[u8], stderr: &[u8]) {
    for (name, s) in [("stdout", stdout), ("stderr", stderr)] {
        let s = String::from_utf8_lossy(s);
        assert!(
            !s.contains(SECRET),
            "{what} with {conn:?} printed the password on {name}:\n{s}"
        );
    }
}

fn run(p: &Project, conn: &str, args: &[&str]) -> std::process::Output {
    p.cmd(args)
        .env("TASKLEASE_DB", conn)
        .env("TASKLEASE_LOG", "debug")
        .env_remove("PGPASSWORD")
        .output()
        .expect("run tasklease")
}

#[test]
fn connection_strings_never_print_their_password() {
    let p = Project::new();
    let port = closed_port().to_string();
    for case in CASES {
        let conn = case.replace("PORT", &port);
        for args in [
            &["--help"][..],
            &["list", "--help"],
            &["status"],
            &["status", "--json"],
            &["list"],
            &["list", "--json"],
            &["show", "t1"],
            &["migrate"],
            &["add", "a task"],
        ] {
            let out = run(&p, &conn, args);
            assert_clean(&format!("{args:?}"), &conn, &out.stdout, &out.stderr);
            if args[0] != "--help" && args.get(1) != Some(&"--help") {
                assert_ne!(out.status.code(), Some(0), "{args:?} {conn}");
                // The error is about the connection, so it had the string to print.
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains("PostgreSQL"), "{args:?} {conn}: {err}");
            }
        }
        // Given as --db rather than through the environment, too.
        let out = p
            .cmd(&["list", "--db", &conn])
            .env_remove("PGPASSWORD")
            .output()
            .unwrap();
        assert_clean("list --db", &conn, &out.stdout, &out.stderr);
        // `bench` is built with both backends only.
        if !cfg!(all(feature = "sqlite", feature = "postgres")) {
            mcp_is_clean(&p, &conn);
            continue;
        }
        let out = p
            .cmd(&[
                "bench",
                "--db",
                &conn,
                "--agents",
                "1",
                "--tasks",
                "1",
                "--seconds",
                "0.1",
            ])
            .output()
            .unwrap();
        assert_clean("bench", &conn, &out.stdout, &out.stderr);
        assert_ne!(out.status.code(), Some(0), "bench {conn}");
        mcp_is_clean(&p, &conn);
    }
}

/// `PGPASSWORD` fills in a password the string leaves out; it is never printed either.
#[test]
fn pgpassword_is_never_printed() {
    let p = Project::new();
    let conn = format!("postgres://agent@127.0.0.1:{}/tasks", closed_port());
    for args in [&["status"][..], &["list", "--json"], &["--help"]] {
        let out = p
            .cmd(args)
            .env("TASKLEASE_DB", &conn)
            .env("PGPASSWORD", "S3cr3t")
            .env("TASKLEASE_LOG", "debug")
            .output()
            .unwrap();
        assert_clean(&format!("{args:?}"), &conn, &out.stdout, &out.stderr);
    }
}

/// `tasklease mcp` answering a tool call while its store cannot be opened.
fn mcp_is_clean(p: &Project, conn: &str) {
    let mut child = Command::new(bin())
        .args(["mcp", "--db", conn])
        .current_dir(p.root())
        .env_remove("TASKLEASE_DB")
        .env("TASKLEASE_LOG", "debug")
        .env("TASKLEASE_AGENT", "tester")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tasklease mcp");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let patience = Duration::from_secs(30);
    let mut send = |v: serde_json::Value| {
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    };
    send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "secrets", "version": "0"}}}),
    );
    let mut seen = vec![lines.recv_timeout(patience).expect("no initialize answer")];
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "list", "arguments": {}}}));
    let answer = lines.recv_timeout(patience).expect("no tools/call answer");
    assert!(answer.contains("\"id\":2"), "{answer}");
    // The answer is the store's error, naming the connection (redacted).
    assert!(answer.contains("PostgreSQL"), "{answer}");
    seen.push(answer);
    drop(stdin);
    // The server ends when its stdin does; its stderr is read to the end meanwhile.
    let mut stderr = child.stderr.take().unwrap();
    let (tx, err) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut all);
        let _ = tx.send(all);
    });
    let deadline = std::time::Instant::now() + patience;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("tasklease mcp did not exit within {patience:?} of its stdin closing");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let stderr = err.recv_timeout(patience).expect("stderr still open");
    seen.extend(lines.try_iter());
    assert_clean("mcp", conn, seen.join("\n").as_bytes(), &stderr);
}
