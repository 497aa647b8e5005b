//! Exit codes. They are part of the interface: scripts and agents branch on them, so
//! they never change meaning.

use std::process::ExitCode;

use tasklease::Error;
use tasklease_shape::json;

/// What a run came to, as an exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: done as asked.
    Ok = 0,
    /// 1: runtime error (database, I/O).
    Runtime = 1,
    /// 2: bad input or usage; nothing was changed.
    Usage = 2,
    /// 3: held by another agent, batch conflict, stale version, or a busy file lock.
    Conflict = 3,
    /// 4: nothing to claim (nothing ready, or the task is done/cancelled/waiting).
    Empty = 4,
    /// 5: lease lost, stale token, or not the holder.
    LeaseLost = 5,
}

impl Exit {
    /// The exit code for an error (the library's table, shared with the MCP server).
    pub fn of(e: &Error) -> Exit {
        Exit::from_code(json::exit_code(e))
    }

    /// The exit for one of the library's stable codes (`tasklease_shape::json::EXIT_*`).
    pub fn from_code(code: u8) -> Exit {
        match code {
            json::EXIT_OK => Exit::Ok,
            json::EXIT_USAGE => Exit::Usage,
            json::EXIT_CONFLICT => Exit::Conflict,
            json::EXIT_EMPTY => Exit::Empty,
            json::EXIT_LEASE_LOST => Exit::LeaseLost,
            _ => Exit::Runtime,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// The table printed in `--help` and the README.
pub const TABLE: &str = "\
Exit codes:
  0  ok
  1  runtime error (database, I/O, a wait past --busy-timeout)
  2  bad input or usage; nothing was changed
  3  held by another agent, batch conflict, stale --expect-version, or a file
     lock still held when --timeout ran out
  4  nothing to claim (none ready; or done, cancelled, waiting on dependencies)
  5  lease lost: stale token, lease ended, or not the holder
`lock … -- CMD` and `git` exit with the command's status once it has run.";
