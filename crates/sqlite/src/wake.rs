//! Waking agents that wait for work: one byte in a pipe per change.
//!
//! # Why a named pipe
//!
//! An agent with nothing to claim waits for a task to become ready, and the change
//! that makes one ready is committed by another process (`done` by a worker, `add` by
//! a person). Polling the database costs every waiter a read (and, to claim, a writer
//! turn) per interval, and still leaves work idle for up to that interval. The writer
//! queue's sockets (see `queue`) wake *one known* slot; here the waker does not know
//! who waits, and should wake one of them, whichever is free.
//!
//! A FIFO does exactly that. `<db>-queue/ready` is a named pipe; every process that
//! commits a change that can make a task ready (`add`, `done`, `release`, `reap`,
//! `update`, a dependency removed, a task deleted, an import) writes one byte into it
//! after the commit — a non-blocking write on a descriptor it keeps, a few
//! microseconds. A waiter keeps the pipe open and sleeps in `poll` with its bound. The
//! kernel keeps the bytes while any process has the pipe open and drops them when none
//! does, so nothing piles up for a store nobody waits on for long.
//!
//! Each waiter sleeps in its own epoll set holding the pipe with `EPOLLEXCLUSIVE`
//! (Linux), so a byte wakes one sleeping waiter, not all of them; with plain `poll`
//! (elsewhere) all wake, and each byte is still read by one — a waiter that reads
//! nothing goes back to sleep without asking the database anything. On a 2-core
//! machine the difference was measured: with twenty waiters, waking all of them per
//! `done` made a chain of tasks drain ~2–3× slower (`bench --mode wait`). So a change
//! costs one waiter one look (a read transaction, no writer turn), not twenty.
//! A waiter that took a task and still sees tasks ready writes a byte on its way out
//! ([`ReadySignal::pass_on`]): a `done` that readies five dependants wakes five
//! waiters, one after another, each about a claim apart.
//!
//! Measured (`tasklease bench --mode wait`, docs/performance.md): wake latency from a
//! `done`'s commit to a waiter holding the next task, idle cost, and a chain of 1,000
//! tasks drained by 20 waiters, each against the poll-every-100 ms alternative.
//!
//! # Failure
//!
//! A byte is a hint, never evidence: the waiter reads the store before claiming, and
//! the claim is still one conditional statement. A byte for a change a waiter already
//! saw costs it one read. A waker that dies between its commit and its byte, or a
//! waiter that dies holding a byte it read, leaves a task ready with nobody woken: the
//! waiters' fallback look (`tasklease::wait`, every 30 s by default) finds it. A pipe
//! already holding 64 KiB of unread bytes (nobody has read for a long while) refuses
//! more; whoever next waits drains it first and looks. The pipe lives in the writer
//! queue's directory, ours alone like everything there ([`tasklease_filelock::private`]):
//! a pipe that is not ours, or is something else, is refused rather than read or
//! written. Where there are no named pipes (not Unix), nothing rings and waiters rely
//! on their fallback look.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use tasklease_core::{ReadySignal, Result};

/// The pipe of one database.
pub(crate) fn pipe_path(db: &Path) -> PathBuf {
    let mut dir = db.as_os_str().to_owned();
    dir.push("-queue");
    PathBuf::from(dir).join("ready")
}

/// The writing end a store rings after each change that can make a task ready; opened
/// on the first ring.
pub(crate) struct Bell {
    path: PathBuf,
    /// `None` when the pipe could not be opened: ringing is best effort (waiters still
    /// look on their fallback timer), and a store must not fail a commit that happened.
    #[cfg(unix)]
    fd: OnceLock<Option<rustix::fd::OwnedFd>>,
    #[cfg(not(unix))]
    fd: OnceLock<()>,
}

impl Bell {
    pub(crate) fn new(db: &Path) -> Bell {
        Bell {
            path: pipe_path(db),
            fd: OnceLock::new(),
        }
    }

    /// One byte: wakes one waiter, if any waits. Best effort, never blocks.
    pub(crate) fn ring(&self) {
        #[cfg(unix)]
        if let Some(fd) = self.fd.get_or_init(|| open(&self.path).ok()) {
            // EAGAIN (64 KiB unread) only when nobody has read for a long while.
            let _ = rustix::io::write(fd, &[1]);
        }
    }
}

/// A waiter's end of the pipe.
#[cfg(unix)]
pub(crate) struct Listener {
    fd: rustix::fd::OwnedFd,
    /// Linux: an epoll set holding `fd` with `EPOLLEXCLUSIVE`, so a byte wakes one
    /// sleeping waiter rather than all of them (see "Why a named pipe").
    #[cfg(target_os = "linux")]
    epoll: rustix::fd::OwnedFd,
    path: PathBuf,
}

#[cfg(unix)]
impl Listener {
    /// Opens the pipe, creating it (ours alone) if needed: armed from here on.
    pub(crate) fn open(db: &Path) -> Result<Listener> {
        let path = pipe_path(db);
        let fd = open(&path)?;
        #[cfg(target_os = "linux")]
        {
            use rustix::event::epoll;
            let cannot = |e: rustix::io::Errno| {
                tasklease_core::Error::store(
                    format!("cannot wait on {}", path.display()),
                    std::io::Error::from(e),
                )
            };
            let ep = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(cannot)?;
            epoll::add(
                &ep,
                &fd,
                epoll::EventData::new_u64(0),
                epoll::EventFlags::IN | epoll::EventFlags::EXCLUSIVE,
            )
            .map_err(cannot)?;
            Ok(Listener {
                fd,
                epoll: ep,
                path,
            })
        }
        #[cfg(not(target_os = "linux"))]
        Ok(Listener { fd, path })
    }

    /// Reads every byte waiting; whether there was one.
    fn take(&mut self) -> bool {
        let mut buf = [0u8; 512];
        let mut got = false;
        while let Ok(n) = rustix::io::read(&self.fd, &mut buf) {
            if n == 0 {
                break;
            }
            got = true;
            if n < buf.len() {
                break;
            }
        }
        got
    }
}

#[cfg(unix)]
impl Listener {
    /// Sleeps until the pipe may be readable, or `ts` passes.
    #[cfg(target_os = "linux")]
    fn sleep(&self, ts: &rustix::event::Timespec) -> rustix::io::Result<()> {
        let mut events = [rustix::event::epoll::Event {
            flags: rustix::event::epoll::EventFlags::empty(),
            data: rustix::event::epoll::EventData::new_u64(0),
        }];
        rustix::event::epoll::wait(&self.epoll, &mut events[..], Some(ts)).map(drop)
    }

    /// Sleeps until the pipe may be readable, or `ts` passes.
    #[cfg(not(target_os = "linux"))]
    fn sleep(&self, ts: &rustix::event::Timespec) -> rustix::io::Result<()> {
        use rustix::event::{PollFd, PollFlags, poll};
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        poll(&mut fds, Some(ts)).map(drop)
    }
}

#[cfg(unix)]
impl ReadySignal for Listener {
    fn wait(&mut self, timeout: Duration) -> Result<bool> {
        use rustix::event::Timespec;
        let end = std::time::Instant::now() + timeout;
        loop {
            if self.take() {
                return Ok(true);
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let ts = Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            match self.sleep(&ts) {
                // Readable: another waiter may read the byte first; then back to sleep.
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Err(tasklease_core::Error::store(
                        format!("cannot wait on {}", self.path.display()),
                        std::io::Error::from(e),
                    ));
                }
            }
        }
    }

    fn drain(&mut self) -> bool {
        self.take()
    }

    fn pass_on(&self) {
        let _ = rustix::io::write(&self.fd, &[1]);
    }

    fn wakes_one(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("the wake-up pipe {}", self.path.display())
    }
}

/// Without named pipes: a signal that never rings (waiters rely on their fallback look).
#[cfg(not(unix))]
pub(crate) struct Listener;

#[cfg(not(unix))]
impl Listener {
    pub(crate) fn open(_: &Path) -> Result<Listener> {
        Ok(Listener)
    }
}

#[cfg(not(unix))]
impl ReadySignal for Listener {
    fn wait(&mut self, timeout: Duration) -> Result<bool> {
        std::thread::sleep(timeout);
        Ok(false)
    }
    fn drain(&mut self) -> bool {
        false
    }
    fn pass_on(&self) {}
    fn wakes_one(&self) -> bool {
        false
    }
    fn describe(&self) -> String {
        "a timer (no wake-up pipe on this system)".into()
    }
}

/// Opens (creating if needed) the pipe for reading and writing, non-blocking: reading
/// and writing because a FIFO opened so never blocks on open nor signals a write with
/// no reader (SIGPIPE); the kernel drops its bytes once nobody has it open.
#[cfg(unix)]
fn open(path: &Path) -> Result<rustix::fd::OwnedFd> {
    use rustix::fs::{CWD, FileType, Mode, OFlags};
    use tasklease_core::Error;
    let what = "the wake-up pipe";
    let cannot = |e: rustix::io::Errno| {
        Error::store(
            format!("cannot open {what} {}", path.display()),
            std::io::Error::from(e),
        )
    };
    if let Some(dir) = path.parent() {
        tasklease_filelock::private::dir(dir, "the writer queue's directory")?;
    }
    match rustix::fs::mknodat(
        CWD,
        path,
        FileType::Fifo,
        Mode::from_raw_mode(tasklease_filelock::private::FILE_MODE),
        0,
    ) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(cannot(e)),
    }
    let fd = rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(cannot)?;
    let st = rustix::fs::fstat(&fd).map_err(cannot)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Fifo {
        return Err(Error::store(
            format!("{what} {} is not a named pipe", path.display()),
            format!("remove it (rm {}); it is made again", path.display()),
        ));
    }
    if st.st_uid != rustix::process::geteuid().as_raw() {
        return Err(Error::store(
            format!("{what} {} is not yours", path.display()),
            format!("remove it (rm {}); it is made again", path.display()),
        ));
    }
    // Inside a directory of ours alone; the umask may have left group or other bits.
    #[allow(clippy::cast_possible_truncation)]
    if st.st_mode & 0o077 != 0 {
        rustix::fs::fchmod(
            &fd,
            Mode::from_raw_mode(tasklease_filelock::private::FILE_MODE),
        )
        .map_err(cannot)?;
    }
    Ok(fd)
}
