//! Stored text is not terminal control (docs/security.md): input refuses the
//! characters a terminal acts on, and every human output escapes them whatever their
//! origin — including rows another client wrote by plain SQL, shown here under a real
//! pseudo-terminal.

mod common;

use common::Project;

/// Bad input: exit 2 naming the field and the character, and nothing written.
fn refused(p: &Project, args: &[&str], env: &[(&str, &str)], field: &str, code_point: &str) {
    let mut cmd = p.cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(field), "{args:?} does not name {field}: {err}");
    assert!(
        err.contains(code_point),
        "{args:?} does not name {code_point}: {err}"
    );
    assert!(
        !err.contains(['\u{1b}', '\r', '\u{202e}', '\u{9b}']),
        "{args:?} echoed the character raw: {err:?}"
    );
}

each_store!(hostile_input_is_refused_naming_field_and_character);

fn hostile_input_is_refused_naming_field_and_character(p: &Project) {
    p.ok(&["add", "fine", "--id", "t1"]);
    refused(p, &["add", "a\u{202e}b"], &[], "title", "U+202E");
    refused(p, &["add", "a\u{1b}]0;x\u{7}"], &[], "title", "U+001B");
    refused(p, &["add", "a\tb"], &[], "title", "U+0009");
    refused(
        p,
        &["add", "t", "-d", "harmless\r  status done"],
        &[],
        "description",
        "U+000D",
    );
    refused(
        p,
        &["add", "t", "-d", "x\u{9b}2J"],
        &[],
        "description",
        "U+009B",
    );
    refused(
        p,
        &["add", "t", "-d", "x\u{2066}y"],
        &[],
        "description",
        "U+2066",
    );
    refused(p, &["add", "t", "--tag", "a\u{202e}"], &[], "tag", "U+202E");
    refused(
        p,
        &[
            "update",
            "t1",
            "--expect-version",
            "1",
            "--title",
            "x\u{202e}",
        ],
        &[],
        "title",
        "U+202E",
    );
    refused(
        p,
        &["claim", "t1", "--agent", "m\u{202e}e"],
        &[],
        "agent",
        "U+202E",
    );
    refused(
        p,
        &["claim", "t1"],
        &[("TASKLEASE_AGENT", "m\u{1b}e")],
        "agent",
        "U+001B",
    );
    // Nothing was written: the one task is still the only one, untouched.
    let v = p.json(&["list"], 0);
    let tasks = v["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{v}");
    assert_eq!(tasks[0]["title"], "fine");
    assert_eq!(tasks[0]["status"], "todo");
    // What stays allowed: several lines and tabs in a description.
    p.ok(&["add", "ok", "-d", "line one\n\tline two"]);
}

/// Sets the terminal's title, rings its bell, clears the screen, returns the carriage
/// over what was printed, a C1 CSI, and a right-to-left override.
/// The newline starts a forged row in a table.
const HOSTILE: &str =
    "\u{1b}]0;pwned\u{7}T\u{1b}[2J\r  status    done \u{9b}2J \u{202e}evil\nt9  done";
/// A description: several lines, each hostile.
const HOSTILE_LINES: &str =
    "harmless\r  status    done\n\u{1b}]0;pwned\u{7}\n\u{9b}31m red \u{2066}isolate\u{2069}";

/// Runs `args` with its stdin, stdout and stderr on a fresh pseudo-terminal, as a
/// person's shell would, and returns the exit code and every byte the terminal got.
#[cfg(unix)]
fn on_pty(p: &Project, args: &[&str]) -> (Option<i32>, Vec<u8>) {
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    use std::time::{Duration, Instant};

    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("open a pty");
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(std::ffi::OsStr::from_bytes(name.as_bytes()))
        .expect("open the pty's terminal side");
    let mut cmd = p.cmd(args);
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    let mut child = cmd.spawn().expect("spawn tasklease on the pty");
    // Our copies of the terminal side must go, or reading never ends.
    drop(cmd);
    let mut master = std::fs::File::from(master);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // Linux answers EIO once every terminal-side descriptor is closed.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(all);
    });
    let patience = Duration::from_secs(60);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > patience {
            let _ = child.kill();
            panic!("tasklease {args:?} did not finish within {patience:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = rx
        .recv_timeout(patience)
        .expect("the pty still open after the process ended");
    (status.code(), out)
}

/// Fails if the terminal got a byte that would act on it: C0 controls other than
/// newline (the pty turns `\n` into `\r\n`, so a CR is fine right before a LF), DEL,
/// C1 controls, bidirectional controls.
fn assert_inert(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let crlf = c == '\r' && chars.peek() == Some(&'\n');
        assert!(
            c == '\n' || crlf || !tasklease::text::is_terminal_control(c),
            "{what} sent U+{:04X} to the terminal:\n{text:?}",
            c as u32
        );
    }
}

/// Overwrites a task's text columns behind tasklease's back, as another client of the
/// same database may.
fn write_raw(p: &Project, sql_sqlite: &str, sql_pg: &str, params: &[&str]) {
    match &p.pg {
        None => {
            let c = rusqlite::Connection::open(p.db()).unwrap();
            c.execute(sql_sqlite, rusqlite::params_from_iter(params))
                .unwrap();
        }
        Some(pg) => {
            let mut c = postgres::Client::connect(pg.conn(), postgres::NoTls).unwrap();
            let params: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|s| s as &(dyn postgres::types::ToSql + Sync))
                .collect();
            c.execute(sql_pg, &params).unwrap();
        }
    }
}

const VERBS: &[&[&str]] = &[
    &["list"],
    &["list", "--status", "in_progress"],
    &["show", "t1"],
    &["show", "t2"],
    &["status"],
    &["log"],
    &["log", "t2"],
    &["locks"],
];

#[cfg(unix)]
each_store!(hostile_rows_never_reach_the_terminal_raw);

#[cfg(unix)]
fn hostile_rows_never_reach_the_terminal_raw(p: &Project) {
    p.ok(&["add", "placeholder", "--id", "t1"]);
    p.ok(&["add", "other", "--id", "t2", "--tag", "x"]);
    p.ok(&["claim", "t2"]);
    // Title and description: every verb still works, and shows the text escaped.
    write_raw(
        p,
        "UPDATE tasks SET title = ?1, description = ?2 WHERE id = 't1'",
        "UPDATE tasks SET title = $1, description = $2 WHERE id = 't1'",
        &[HOSTILE, HOSTILE_LINES],
    );
    for args in VERBS {
        let (code, out) = on_pty(p, args);
        assert_inert(&format!("{args:?}"), &out);
        assert_eq!(code, Some(0), "{args:?}: {}", String::from_utf8_lossy(&out));
    }
    let (_, listed) = on_pty(p, &["list"]);
    let listed = String::from_utf8_lossy(&listed);
    assert_eq!(listed.lines().count(), 3, "a forged row: {listed}");
    let (_, shown) = on_pty(p, &["show", "t1"]);
    let shown = String::from_utf8_lossy(&shown);
    assert!(shown.contains("\\u{1b}]0;pwned\\u{7}T"), "{shown}");
    assert!(shown.contains("harmless\\u{d}  status"), "{shown}");
    assert!(shown.contains("\\u{202e}evil"), "{shown}");
    // --json stays exact: the same text comes back.
    let v = p.json(&["show", "t1"], 0);
    assert_eq!(v["task"]["title"], HOSTILE, "{v}");
    // Tags and the holder's name, and the history's agent: whatever the verbs make of
    // rows tasklease never writes, none of it reaches the terminal raw.
    write_raw(
        p,
        "UPDATE tasks SET tags = json_array(?1), assignee = ?1 WHERE id = 't2'",
        "UPDATE tasks SET tags = ARRAY[$1], assignee = $1 WHERE id = 't2'",
        &[HOSTILE],
    );
    write_raw(
        p,
        "UPDATE events SET agent = ?1",
        "UPDATE events SET agent = $1",
        &[HOSTILE],
    );
    // A row nobody validated neither reaches the terminal raw nor breaks the verb:
    // the board stays readable (and the holder's name is shown, escaped).
    for args in VERBS {
        let (code, out) = on_pty(p, args);
        assert_inert(&format!("{args:?} (hostile holder)"), &out);
        if std::env::var_os("SHOW_PTY").is_some() {
            eprintln!("{args:?}: {:?}", String::from_utf8_lossy(&out));
        }
        assert_eq!(
            code,
            Some(0),
            "{args:?} (hostile holder): {}",
            String::from_utf8_lossy(&out)
        );
    }
    let (_, shown) = on_pty(p, &["show", "t2"]);
    let shown = String::from_utf8_lossy(&shown);
    assert!(shown.contains("\\u{1b}]0;pwned"), "{shown}");
    assert_eq!(p.json(&["show", "t2"], 0)["task"]["assignee"], HOSTILE);
}

/// An error message echoing a hostile `--db` path escapes it too.
#[cfg(unix)]
#[test]
fn hostile_db_path_in_an_error_is_escaped() {
    let p = Project::new();
    let path = format!("{}/no\u{1b}]0;pwned\u{7}\u{202e}/x.db", p.root().display());
    // No database there: refused as bad input, the path named escaped.
    let (code, out) = on_pty(&p, &["list", "--db", &path]);
    assert_inert("list --db", &out);
    assert_eq!(code, Some(2), "{}", String::from_utf8_lossy(&out));
    assert!(
        String::from_utf8_lossy(&out).contains("no\\u{1b}]0;pwned"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let (code, out) = on_pty(&p, &["claim", "t1", "--agent", "a\u{1b}[2Jb"]);
    assert_inert("claim --agent", &out);
    assert_eq!(code, Some(2), "{}", String::from_utf8_lossy(&out));
}

/// On a terminal, tables fit it: a fresh pty reports no size, so 80 columns; long
/// titles and long details are cut with `…`, one line per row. Piped, nothing is cut.
#[cfg(unix)]
#[test]
fn tables_fit_an_80_column_terminal() {
    let p = Project::new();
    let long = format!("a title that goes on {}", "and on ".repeat(30));
    p.ok(&["add", &long, "--id", "long"]);
    p.ok(&["add", "short", "--id", "s"]);
    p.ok(&["claim", "long", "--agent", "someone-with-a-long-agent-name"]);
    for args in [vec!["list"], vec!["log"], vec!["status"]] {
        let (code, out) = on_pty(&p, &args);
        assert_eq!(code, Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&out).replace("\r\n", "\n");
        for line in text.lines() {
            // `status`' prose lines (contention) are sentences, not table rows.
            if line.starts_with("contention") {
                continue;
            }
            assert!(
                line.chars().count() <= 80,
                "{args:?}: {line:?} ({} chars)",
                line.chars().count()
            );
        }
        if args == ["list"] {
            assert!(
                text.contains("a title that goes on") && text.contains('…'),
                "{text}"
            );
            assert!(text.lines().next().unwrap().starts_with("ID"), "{text}");
        }
    }
    assert!(
        p.ok(&["list"]).contains(long.trim_end()),
        "piped output is cut"
    );
}
