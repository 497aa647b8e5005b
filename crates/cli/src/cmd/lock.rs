//! `lock git|state|task ID|path FILE [--timeout D] [--shared] -- CMD…`, `git ARGS…`
//! and `locks`: file locks from the command line, like flock(1).
//!
//! The command runs as a child while tasklease holds the lock, and tasklease exits
//! with the command's status. The lock belongs to the tasklease process — the child
//! does not inherit its descriptor — so killing tasklease frees the lock at once.
//!
//! With `--json` the child cannot own stdout, since stdout must be exactly one JSON
//! object: its output is captured into that object's `stdout` field (stderr still
//! passes through). Without `--json`, stdin, stdout and stderr are the child's.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tasklease::locks::{self, Acquired, Busy, Held, Lock, Mode, Name, Wait};
use tasklease::text::escape;
use tasklease::{Error, Result, project};
use tasklease_shape::json::{failure, success};

use super::Ctx;
use crate::args::{GitArgs, LockArgs, LockTarget};
use crate::exit::Exit;
use crate::output::{Report, human_ms, note};

pub fn lock(cx: &Ctx<'_>, a: &LockArgs) -> Result<Report> {
    let (lock, run) = match &a.target {
        LockTarget::Git(run) => (named(&Name::Git)?, run),
        LockTarget::State(run) => (named(&Name::State)?, run),
        LockTarget::Task { id, run } => (named(&Name::Task(id.clone()))?, run),
        LockTarget::Path { file, run } => (Lock::file(file), run),
    };
    let mode = if run.shared {
        Mode::Shared
    } else {
        Mode::Exclusive
    };
    run_under(cx, &lock, mode, run.timeout, &run.command)
}

pub fn git(cx: &Ctx<'_>, a: &GitArgs) -> Result<Report> {
    let mut command = vec![OsString::from("git")];
    command.extend(a.args.iter().cloned());
    run_under(
        cx,
        &named(&Name::Git)?,
        Mode::Exclusive,
        a.timeout,
        &command,
    )
}

pub fn locks(cx: &Ctx<'_>) -> Result<Report> {
    let listed = locks::list(&root(true)?)?;
    let turn = tasklease::open::writer_turn(&cx.spec()?)?;
    let rows: Vec<Vec<String>> = listed
        .iter()
        .map(|l| {
            let state = match (&l.mode, &l.holder) {
                (None, _) => "free".to_owned(),
                (Some(m), Some(h)) => format!("held {m} by {h}"),
                (Some(m), None) => format!("held {m} (no holder record)"),
            };
            vec![escape(&l.name).into_owned(), escape(&state).into_owned()]
        })
        .collect();
    let mut human = Vec::new();
    if !rows.is_empty() {
        human.push(crate::table::render(&["LOCK", "STATE"], rows, 1));
    }
    if let Some(t) = &turn {
        human.push(writer_turn_line(t));
    }
    let mut json = tasklease_shape::json::locks_json(&listed);
    json["writer_turn"] = tasklease_shape::json::writer_turn_json(turn.as_ref());
    Ok(Report::ok(
        json,
        if human.is_empty() {
            "no locks".to_owned()
        } else {
            human.join("\n")
        },
    ))
}

/// `writer turn  held by alice (pid 42 on h) since … (for 3s)`, or `… free`.
pub fn writer_turn_line(t: &tasklease::open::TurnState) -> String {
    let state = match (t.held, &t.holder) {
        (false, _) => "free".to_owned(),
        (true, Some(h)) => format!(
            "held by {h} (for {})",
            human_ms(tasklease_shape::json::held_for_ms(h.since))
        ),
        (true, None) => "held by a process that left no record of itself".to_owned(),
    };
    format!("writer turn (SQLite writer queue)  {state}")
}

/// The project root: the nearest `.tasklease` or `.git` above the current directory.
/// Only the git lock can do without one (git finds the repository itself).
fn root(required: bool) -> Result<PathBuf> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::store("cannot read the current directory", e))?;
    match project::find_root(&cwd) {
        Some(root) => Ok(root),
        None if !required => Ok(cwd),
        None => Err(Error::invalid(
            "project",
            format!(
                "{} is not inside a project (no .tasklease or .git above it); run \
                 `tasklease init` in the project root, or lock a file with `lock path FILE`",
                cwd.display()
            ),
        )),
    }
}

fn named(name: &Name) -> Result<Lock> {
    locks::lock(&root(*name != Name::Git)?, name)
}

fn run_under(
    cx: &Ctx<'_>,
    lock: &Lock,
    mode: Mode,
    timeout: Option<Duration>,
    command: &[OsString],
) -> Result<Report> {
    let agent = cx.agent()?;
    let started = Instant::now();
    let got = lock.acquire(mode, Wait::from_timeout(timeout), &agent, |b| {
        note!("tasklease: waiting for {b}");
    })?;
    let held = match got {
        Acquired::Held(h) => h,
        Acquired::Busy(b) => return Ok(busy(&b, timeout, started.elapsed())),
    };
    if held.inherited() {
        note!(
            "tasklease: the {} is held by pid {}, which runs this command; running under it",
            held.label(),
            held.holder().pid
        );
    }
    let waited = started.elapsed();
    let out = spawn(cx.cli.json, &held, command)?;
    Ok(ran(cx.cli.json, lock, &held, command, waited, out))
}

/// What the child came to.
struct Ran {
    /// The status tasklease passes on: the child's code, or 128 + its signal.
    code: u8,
    signal: Option<i32>,
    /// Captured only with `--json`.
    stdout: Option<Vec<u8>>,
}

fn spawn(json: bool, held: &Held, command: &[OsString]) -> Result<Ran> {
    let Some((program, args)) = command.split_first() else {
        return Err(Error::invalid("command", "name a command to run after --"));
    };
    let (var, value) = held.child_env();
    let mut c = Command::new(program);
    c.args(args).env(var, value);
    if json {
        c.stdout(Stdio::piped());
    }
    let out = c
        .spawn()
        .and_then(|child| child.wait_with_output())
        .map_err(|e| spawn_error(program, &e))?;
    let signal = signal_of(&out.status);
    let code = match (out.status.code(), signal) {
        (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
        (None, Some(s)) => u8::try_from(128 + (s & 0x7f)).unwrap_or(1),
        (None, None) => 1,
    };
    Ok(Ran {
        code,
        signal,
        stdout: json.then_some(out.stdout),
    })
}

#[cfg(unix)]
fn signal_of(s: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(s)
}

#[cfg(not(unix))]
fn signal_of(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

fn spawn_error(program: &OsStr, e: &std::io::Error) -> Error {
    let name = program.to_string_lossy();
    match e.kind() {
        std::io::ErrorKind::NotFound => Error::invalid(
            "command",
            format!(
                "cannot run {}: no such command",
                tasklease::text::quote(&name)
            ),
        ),
        _ => Error::store(
            format!("cannot run {}", tasklease::text::quote(&name)),
            std::io::Error::new(e.kind(), e.to_string()),
        ),
    }
}

fn ran(
    json: bool,
    lock: &Lock,
    held: &Held,
    command: &[OsString],
    waited: Duration,
    out: Ran,
) -> Report {
    let j = if json {
        let ran = json!({
            "lock": lock_json(lock, held),
            "command": command.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>(),
            "exit": out.code,
            "signal": out.signal,
            "waited_ms": u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            "stdout": out.stdout.as_deref().map(String::from_utf8_lossy),
        });
        if out.code == 0 {
            success("ran", ran)
        } else {
            let message = match out.signal {
                Some(s) => format!("the command was killed by signal {s}"),
                None => format!("the command exited with status {}", out.code),
            };
            failure("command_failed", out.code, &message, ran)
        }
    } else {
        Value::Null
    };
    Report {
        status: Some(out.code),
        ..Report::ok(j, "")
    }
}

fn lock_json(lock: &Lock, held: &Held) -> Value {
    json!({
        "label": held.label(),
        "path": lock.path(),
        "mode": held.mode(),
        "inherited": held.inherited(),
        "holder": held.holder(),
    })
}

fn busy(b: &Busy, timeout: Option<Duration>, waited: Duration) -> Report {
    let how = match timeout {
        Some(t) if t.is_zero() => "tried once (--timeout 0)".to_owned(),
        _ => format!("gave up after {}", human_ms(waited.as_millis() as i64)),
    };
    let message = format!("{b}; {how}");
    Report::refused(
        Exit::Conflict,
        failure(
            "held",
            Exit::Conflict as u8,
            &message,
            json!({
                "lock": {"label": b.lock, "path": b.path},
                "holder": b.holder,
                "waited_ms": u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            }),
        ),
        message,
    )
}
