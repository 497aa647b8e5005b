//! Requests to stop (Ctrl-C, SIGTERM, SIGHUP), caught rather than obeyed so that the
//! long-running verbs (`run`, `reap --every`) can hand back their lease or finish their
//! sweep first, and the OS side of stopping a child process.
//!
//! This is the only module with per-OS code. On Unix, SIGINT, SIGTERM and SIGHUP are
//! caught (signal-hook), each with where it came from: a terminal delivers Ctrl-C to its
//! whole foreground process group, so a child sharing tasklease's group has already
//! received it, and forwarding it again would make many programs (which treat a second
//! Ctrl-C as "quit now") skip their cleanup. On Windows only Ctrl-C (and Ctrl-Break) is
//! caught (ctrlc); the console delivers it to every process attached to it, children
//! included, so nothing is forwarded, and a child that must be stopped is terminated.

use std::process::Child;

/// A stop request caught by tasklease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caught {
    /// The signal number (Windows reports Ctrl-C as 2, SIGINT's number).
    pub signal: i32,
    /// Whether it came from the terminal (and so reached every process in the
    /// terminal's foreground group), rather than being sent to tasklease alone.
    pub from_terminal: bool,
}

impl Caught {
    /// The conventional exit status of a process ended by this signal: 128 + number.
    pub fn exit_status(self) -> u8 {
        u8::try_from(128 + self.signal).unwrap_or(255)
    }

    /// `SIGINT`, `SIGTERM`, …
    pub fn name(self) -> &'static str {
        match self.signal {
            1 => "SIGHUP",
            2 => "SIGINT",
            15 => "SIGTERM",
            _ => "a signal",
        }
    }
}

/// Starts catching stop requests for the rest of the process, calling `notify` for each
/// on a thread of its own. From then on they no longer end tasklease by themselves.
///
/// # Errors
/// When the handlers cannot be installed.
pub fn catch(notify: impl Fn(Caught) + Send + 'static) -> std::io::Result<()> {
    os::catch(notify)
}

/// A started child and how to reach it with signals.
pub struct Supervised {
    /// The child; only this module's owner reaps it, so its pid cannot be reused while
    /// `try_wait` has not reported it gone.
    pub child: Child,
    /// Whether the child leads a process group of its own (its whole tree can then be
    /// signalled), or shares tasklease's group (the terminal's, when run interactively).
    pub own_group: bool,
}

/// What to do to a running child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Pass on the stop request tasklease caught.
    Forward(Caught),
    /// Ask it to end: SIGTERM (Windows: terminate).
    Terminate,
    /// End it now: SIGKILL (Windows: terminate).
    Kill,
}

/// Configures `cmd` so the child can be supervised: on Unix, when stdin is not a
/// terminal, the child gets a process group of its own so that stopping it reaches the
/// processes it started too. An interactive child keeps the terminal's group: moved out
/// of it, it would be stopped by the terminal the moment it read from it.
pub fn prepare(cmd: &mut std::process::Command) -> bool {
    os::prepare(cmd)
}

impl Supervised {
    /// Sends `stop` to the child (and its group, if it has one). A child that already
    /// exited is not an error. Returns whether anything was sent.
    pub fn stop(&mut self, stop: Stop) -> bool {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return false;
        }
        os::stop(self, stop)
    }
}

#[cfg(unix)]
mod os {
    use rustix::process::{Pid, Signal, kill_process, kill_process_group};
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::iterator::SignalsInfo;
    use signal_hook::iterator::exfiltrator::WithOrigin;
    use signal_hook::low_level::siginfo::Cause;

    use super::{Caught, Stop, Supervised};

    pub fn catch(notify: impl Fn(Caught) + Send + 'static) -> std::io::Result<()> {
        let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP])?;
        std::thread::Builder::new()
            .name("tasklease-signals".into())
            .spawn(move || {
                for origin in signals.forever() {
                    notify(Caught {
                        signal: origin.signal,
                        // Sent by a process (kill, a supervisor) to us alone; anything
                        // else is the kernel's, i.e. the terminal's, to the whole group.
                        from_terminal: !matches!(origin.cause, Cause::Sent(_)),
                    });
                }
            })?;
        Ok(())
    }

    pub fn prepare(cmd: &mut std::process::Command) -> bool {
        use std::io::IsTerminal;
        use std::os::unix::process::CommandExt;
        let own_group = !std::io::stdin().is_terminal();
        if own_group {
            cmd.process_group(0);
        }
        own_group
    }

    pub fn stop(s: &mut Supervised, stop: Stop) -> bool {
        let sig = match stop {
            // The terminal already told every process in its group, the child included.
            Stop::Forward(c) if c.from_terminal && !s.own_group => return false,
            Stop::Forward(c) => Signal::from_named_raw(c.signal).unwrap_or(Signal::TERM),
            Stop::Terminate => Signal::TERM,
            Stop::Kill => Signal::KILL,
        };
        let pid = Pid::from_child(&s.child);
        let sent = if s.own_group {
            kill_process_group(pid, sig)
        } else {
            kill_process(pid, sig)
        };
        sent.is_ok()
    }
}

#[cfg(not(unix))]
mod os {
    use super::{Caught, Stop, Supervised};

    pub fn catch(notify: impl Fn(Caught) + Send + 'static) -> std::io::Result<()> {
        ctrlc::set_handler(move || {
            notify(Caught {
                signal: 2,
                from_terminal: true,
            })
        })
        .map_err(std::io::Error::other)
    }

    pub fn prepare(_cmd: &mut std::process::Command) -> bool {
        false
    }

    pub fn stop(s: &mut Supervised, stop: Stop) -> bool {
        match stop {
            // The console delivered Ctrl-C to the child as well.
            Stop::Forward(_) => false,
            Stop::Terminate | Stop::Kill => s.child.kill().is_ok(),
        }
    }
}
