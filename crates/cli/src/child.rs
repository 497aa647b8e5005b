//! The hidden first step of every command `tasklease run` starts: a command must die
//! with the `run` that supervises it.
//!
//! A `run` killed by SIGKILL (or the OOM killer) cannot stop its command, and nothing
//! renews the lease any more: once it expires another agent claims the task, and two
//! agents would work on it at once, one of them unfenced. So on Linux the command is
//! not spawned directly. `run` spawns this binary again as
//! `tasklease __exec-child PID -- CMD ARGS…`, from the thread that lives as long as
//! `run` (the kernel's parent-death signal fires when the *thread* that forked dies,
//! not the process). The re-exec asks for SIGKILL on its parent's death, checks that its
//! parent is still PID (a `run` that died before the request was made would otherwise
//! go unnoticed: the child has been re-parented already), then replaces itself with the
//! command. The death signal survives `execve` (except into a set-uid or set-gid
//! program, which the kernel resets it for).
//!
//! Why a re-exec rather than a `pre_exec` hook: the hook is `unsafe`, and the workspace
//! forbids unsafe code. The cost is one extra `execve` per run.
//!
//! Limits: only the command itself gets the signal. Processes it started (say, what a
//! shell script runs) are not killed with it unless they watch their own parent.
//! Elsewhere than Linux there is no parent-death signal: the command is spawned
//! directly and outlives a killed `run` (see README, "Running work under a lease").

use std::ffi::{OsStr, OsString};
use std::process::{Command, ExitCode};

/// The hidden verb: `tasklease __exec-child SUPERVISOR_PID -- CMD ARGS…`.
const VERB: &str = "__exec-child";

/// The command that runs `program args` as a child that dies with this process.
pub fn command(program: &OsStr, args: &[OsString]) -> Command {
    #[cfg(target_os = "linux")]
    {
        // The running binary itself, even if its file was replaced since.
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg(VERB)
            .arg(std::process::id().to_string())
            .arg("--")
            .arg(program)
            .args(args);
        cmd
    }
    #[cfg(not(target_os = "linux"))]
    {
        let mut cmd = Command::new(program);
        cmd.args(args);
        cmd
    }
}

/// Runs the hidden verb if this process was started as one: `None` when it was not
/// (carry on as the CLI), else the exit code of a command that could not be started.
/// On success this never returns: the process becomes the command.
pub fn exec_if_asked() -> Option<ExitCode> {
    let mut argv = std::env::args_os().skip(1);
    if argv.next().as_deref() != Some(OsStr::new(VERB)) {
        return None;
    }
    let supervisor = argv.next();
    let sep = argv.next();
    let rest: Vec<OsString> = argv.collect();
    let (Some(supervisor), Some(true), Some((program, args))) = (
        supervisor.and_then(|s| s.to_str().and_then(|s| s.parse::<i32>().ok())),
        sep.map(|s| s == "--"),
        rest.split_first(),
    ) else {
        eprintln!(
            "tasklease: {VERB} is internal to `tasklease run`; usage: {VERB} SUPERVISOR_PID -- CMD ARGS…"
        );
        return Some(ExitCode::from(2));
    };
    Some(exec(supervisor, program, args))
}

#[cfg(target_os = "linux")]
fn exec(supervisor: i32, program: &OsStr, args: &[OsString]) -> ExitCode {
    use rustix::process::{Pid, Signal, getppid, set_parent_process_death_signal};
    use std::os::unix::process::CommandExt;

    if let Err(e) = set_parent_process_death_signal(Some(Signal::KILL)) {
        eprintln!(
            "tasklease: cannot ask to die with the supervising run ({e}); not starting {}",
            program.to_string_lossy()
        );
        return ExitCode::from(126);
    }
    // Asked only now: a supervisor that died before this line is noticed here instead.
    if getppid() != Pid::from_raw(supervisor) {
        eprintln!(
            "tasklease: the supervising run (pid {supervisor}) is gone; not starting {}",
            program.to_string_lossy()
        );
        return ExitCode::from(126);
    }
    let e = Command::new(program).args(args).exec();
    eprintln!("tasklease: cannot start {}: {e}", program.to_string_lossy());
    // The shells' convention: 127 not found, 126 found but not runnable.
    ExitCode::from(if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}

#[cfg(not(target_os = "linux"))]
fn exec(_supervisor: i32, program: &OsStr, _args: &[OsString]) -> ExitCode {
    eprintln!(
        "tasklease: {VERB} is only used on Linux; not starting {}",
        program.to_string_lossy()
    );
    ExitCode::from(2)
}
