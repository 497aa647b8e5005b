//! Holding a lease while work runs: [`hold`] returns a guard that keeps the lease
//! renewed and says whether the work may go on.
//!
//! ```
//! # fn main() -> tasklease::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let spec = tasklease::open::DbSpec::parse(dir.path().join("t.db").to_str().unwrap());
//! # let opts = tasklease::open::OpenOptions::default();
//! # tasklease::open::init(&spec, &opts)?;
//! # let store: std::sync::Arc<dyn tasklease::Store> = tasklease::open::open(&spec, &opts)?.into();
//! # store.add(&tasklease::NewTask { title: "write the docs".into(), ..Default::default() })?;
//! use std::time::Duration;
//! use tasklease::{AgentId, LeaseDuration};
//!
//! let me = AgentId::new("worker-1")?;
//! let length = LeaseDuration::from_millis(60_000)?;
//! if let Some(lease) = store.claim_next(length, &me)? {
//!     let held = tasklease::hold(store.clone(), &lease, length)?;
//!     for _step in 0..3 {
//!         if !held.is_trusted() {
//!             break; // lost, or unconfirmed for too long: stop working on it
//!         }
//!         // ... one step of the work ...
//!     }
//!     held.done()?; // stops renewing, then marks the task done with the token
//! }
//! # Ok(()) }
//! ```
//!
//! # How long a lease is trusted
//!
//! As in [`crate::keepalive`]: a renewal sent at `sent` makes the lease trusted until
//! `sent + length − margin` on this host's monotonic clock. [`hold`] renews once
//! before it returns, so the guard starts from a deadline it measured itself, and
//! an already-lost lease is an error at once rather than a surprise later.
//!
//! # One thread for every held lease
//!
//! The first [`hold`] in a process starts one thread, `tasklease-hold`, that renews
//! every held lease of the process at a third of its length; it sleeps while nothing
//! is held. A renewal that finds the lease gone marks it lost for good; any other
//! failure is retried every `length / 20` (50 ms to 2 s) while the lease is trusted.
//! Known limit: the thread renews one lease at a time, so a renewal stuck on a
//! silent server (up to the store's busy timeout) delays the others — a process that
//! holds leases on several servers may want a [`crate::keepalive::KeepAlive`] each.
//!
//! Dropping the guard stops its renewals (one already in flight may still land); the
//! lease then runs out on its own unless [`Held::release`] or [`Held::done`] ended it.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::keepalive::{is_lost, period, retry_after, trusted_until};
use crate::{Ended, Error, Lease, LeaseDuration, ReleaseTo, Result, Store};

/// Starts holding `lease`, granted for `length`: renews it once now, then keeps it
/// renewed from the process's renewal thread until the guard is dropped or the lease
/// is lost.
///
/// This calls the store, so in async code call [`hold_from`] instead (or call this
/// from a blocking thread): a PostgreSQL store must not be called from inside an
/// async task.
///
/// # Errors
/// What the first renewal returns: [`Error::LeaseLost`] or [`Error::NotFound`] when
/// the lease is gone already, store failures; [`Error::Store`] when the renewal thread
/// cannot be started.
pub fn hold(store: Arc<dyn Store>, lease: &Lease, length: LeaseDuration) -> Result<Held> {
    let sent = Instant::now();
    let renewed = store.renew(&lease.task, &lease.token, length, &lease.agent)?;
    hold_from(store, &renewed, length, sent)
}

/// Starts holding `lease`, granted for `length` by a claim or renewal sent at `sent`
/// (taken just before the call), without calling the store: the first renewal comes
/// from the renewal thread a third of the lease after `sent`. Safe to call from async
/// code, e.g. after a claim through [`crate::asynchronous::AsyncStore`].
///
/// # Errors
/// [`Error::Store`] when the renewal thread cannot be started.
pub fn hold_from(
    store: Arc<dyn Store>,
    lease: &Lease,
    length: LeaseDuration,
    sent: Instant,
) -> Result<Held> {
    let entry = Arc::new(Entry {
        store,
        length,
        state: Mutex::new(State {
            lease: lease.clone(),
            trusted_until: trusted_until(sent, length),
            next: sent + period(length),
            lost: None,
            stopped: false,
        }),
        changed: Condvar::new(),
        changed_async: tokio::sync::Notify::new(),
    });
    renewer()?.add(entry.clone());
    Ok(Held { entry })
}

/// A held lease: renewed in the background while this value lives.
///
/// Ask it before each step of the work whether to go on ([`Held::is_trusted`]), or
/// wait for the moment to stop ([`Held::wait_lost`], [`Held::lost_async`]).
pub struct Held {
    entry: Arc<Entry>,
}

/// Where a held lease stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Renewed recently enough: work may go on until `until`.
    Trusted {
        /// When trust runs out unless a renewal succeeds before.
        until: Instant,
    },
    /// No renewal succeeded in time (the store was unreachable or busy): the lease may
    /// still be ours, but nobody can vouch for it. Renewals go on; a success makes it
    /// [`Trust::Trusted`] again.
    RanOut {
        /// When trust ran out.
        at: Instant,
    },
    /// The store refused the token: the lease is gone for good (reaped, forced,
    /// claimed by another after it ran out). Renewals have stopped.
    Lost,
}

impl Held {
    /// The lease as last renewed (its `lock_until` is the database's).
    pub fn lease(&self) -> Lease {
        self.entry.lock().lease.clone()
    }

    /// Where the lease stands now.
    pub fn trust(&self) -> Trust {
        self.entry.lock().trust(Instant::now())
    }

    /// Whether work under the lease may go on: not lost, and trusted now.
    pub fn is_trusted(&self) -> bool {
        matches!(self.trust(), Trust::Trusted { .. })
    }

    /// Whether the store refused the token (see [`Trust::Lost`]).
    pub fn is_lost(&self) -> bool {
        self.entry.lock().lost.is_some()
    }

    /// Until when the lease is trusted: in the past once trust ran out (or the lease
    /// was lost after it).
    pub fn trusted_until(&self) -> Instant {
        self.entry.lock().trusted_until
    }

    /// Why the lease was lost ([`Error::LeaseLost`] or [`Error::NotFound`]), if it was.
    pub fn lost(&self) -> Option<Error> {
        self.entry.lock().lost.as_ref().map(copy_lost)
    }

    /// Waits up to `timeout` for the work to have to stop — the lease lost or its trust
    /// run out — and returns where it stands then: [`Trust::Trusted`] only when the
    /// timeout passed first.
    pub fn wait_lost(&self, timeout: Duration) -> Trust {
        let end = Instant::now() + timeout;
        let mut s = self.entry.lock();
        loop {
            let now = Instant::now();
            let trust = s.trust(now);
            if !matches!(trust, Trust::Trusted { .. }) || now >= end {
                return trust;
            }
            let wake = end.min(s.trusted_until);
            s = self
                .entry
                .changed
                .wait_timeout(s, wake.saturating_duration_since(now))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Completes when the work has to stop — the lease lost or its trust run out —
    /// with where it stands then. Needs a tokio runtime with time enabled.
    pub async fn lost_async(&self) -> Trust {
        loop {
            let changed = self.entry.changed_async.notified();
            let (trust, until) = {
                let s = self.entry.lock();
                (s.trust(Instant::now()), s.trusted_until)
            };
            if !matches!(trust, Trust::Trusted { .. }) {
                return trust;
            }
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(until.into()) => {}
            }
        }
    }

    /// Stops renewing and ends the lease, putting the task in `to`.
    ///
    /// # Errors
    /// As [`Store::release`]: [`Error::LeaseLost`] when the lease was lost meanwhile.
    pub fn release(self, to: ReleaseTo) -> Result<Ended> {
        let lease = self.stop();
        self.entry
            .store
            .release(&lease.task, &lease.token, to, &lease.agent)
    }

    /// Stops renewing and marks the task done.
    ///
    /// # Errors
    /// As [`Store::done`]: [`Error::LeaseLost`] when the lease was lost meanwhile.
    pub fn done(self) -> Result<Ended> {
        let lease = self.stop();
        self.entry
            .store
            .done(&lease.task, &lease.token, &lease.agent)
    }

    /// Stops renewing and hands back the lease, still live: for finishing it some
    /// other way than [`Held::done`] or [`Held::release`] — e.g.
    /// [`Store::done_then_claim_next`], a worker's
    /// step to its next task. The lease runs out at its `lock_until` unless ended or
    /// renewed.
    pub fn into_lease(self) -> Lease {
        self.stop()
    }

    /// Marks the entry stopped (the renewal thread drops it) and returns the lease.
    fn stop(&self) -> Lease {
        let mut s = self.entry.lock();
        s.stopped = true;
        s.lease.clone()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.entry.lock();
        f.debug_struct("Held")
            .field("task", &s.lease.task)
            .field("token", &s.lease.token)
            .field("lock_until", &s.lease.lock_until)
            .field("trust", &s.trust(Instant::now()))
            .finish_non_exhaustive()
    }
}

/// A lease error as a new value ([`Error`] is not `Clone`: other variants carry a
/// boxed source, but a lost lease's reasons are plain data).
fn copy_lost(e: &Error) -> Error {
    match e {
        Error::LeaseLost { task, token, why } => Error::LeaseLost {
            task: task.clone(),
            token: token.clone(),
            why: why.clone(),
        },
        Error::NotFound(t) => Error::NotFound(t.clone()),
        other => Error::store("renew the lease", other.to_string()),
    }
}

/// One held lease, shared by its guard and the renewal thread.
struct Entry {
    /// Where the lease is renewed.
    store: Arc<dyn Store>,
    /// The length of each renewal.
    length: LeaseDuration,
    /// What the renewals found; written by the renewal thread, read by the guard.
    state: Mutex<State>,
    /// Signalled whenever `state` changes, for [`Held::wait_lost`].
    changed: Condvar,
    /// The same, for [`Held::lost_async`].
    changed_async: tokio::sync::Notify,
}

struct State {
    /// The lease as last renewed.
    lease: Lease,
    /// The deadline of the last successful renewal.
    trusted_until: Instant,
    /// When the renewal thread renews next.
    next: Instant,
    /// Why the store refused the token; `Some` ends renewals.
    lost: Option<Error>,
    /// The guard is gone or ended the lease itself; the renewal thread drops the entry.
    stopped: bool,
}

impl State {
    fn trust(&self, now: Instant) -> Trust {
        if self.lost.is_some() {
            Trust::Lost
        } else if now < self.trusted_until {
            Trust::Trusted {
                until: self.trusted_until,
            }
        } else {
            Trust::RanOut {
                at: self.trusted_until,
            }
        }
    }

    fn done(&self) -> bool {
        self.stopped || self.lost.is_some()
    }
}

impl Entry {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Renews once, records the outcome and wakes the waiters.
    fn renew(&self) {
        let lease = {
            let s = self.lock();
            if s.done() {
                return;
            }
            s.lease.clone()
        };
        let sent = Instant::now();
        let got = self
            .store
            .renew(&lease.task, &lease.token, self.length, &lease.agent);
        let mut s = self.lock();
        if s.stopped {
            return;
        }
        match got {
            Ok(renewed) => {
                s.lease = renewed;
                s.trusted_until = trusted_until(sent, self.length);
                s.next = sent + period(self.length);
            }
            Err(e) if is_lost(&e) => s.lost = Some(e),
            Err(_) => s.next = Instant::now() + retry_after(self.length),
        }
        drop(s);
        self.changed.notify_all();
        self.changed_async.notify_waiters();
    }
}

/// The process's renewal thread and the leases it renews.
struct Renewer {
    /// Every held lease not yet stopped or lost.
    held: Mutex<Vec<Arc<Entry>>>,
    /// Signalled when a lease is added, so the thread recomputes its next wake-up.
    added: Condvar,
}

/// How long the renewal thread sleeps at most between looks at its list: it is woken
/// for new leases, so this only bounds the wait.
const IDLE: Duration = Duration::from_secs(60);

fn renewer() -> Result<&'static Renewer> {
    static RENEWER: OnceLock<Renewer> = OnceLock::new();
    static STARTED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let r = RENEWER.get_or_init(|| Renewer {
        held: Mutex::new(Vec::new()),
        added: Condvar::new(),
    });
    STARTED
        .get_or_init(|| {
            std::thread::Builder::new()
                .name("tasklease-hold".into())
                .spawn(move || r.run())
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| Error::store("start the lease renewal thread", e))?;
    Ok(r)
}

impl Renewer {
    fn add(&self, e: Arc<Entry>) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(e);
        self.added.notify_one();
    }

    fn run(&self) {
        loop {
            let due = self.wait_due();
            for e in due {
                e.renew();
            }
        }
    }

    /// Waits until some lease is due for renewal and returns those that are, dropping
    /// the stopped and lost ones.
    fn wait_due(&self) -> Vec<Arc<Entry>> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            held.retain(|e| !e.lock().done());
            let now = Instant::now();
            let next = held.iter().map(|e| e.lock().next).min();
            match next {
                Some(at) if at <= now => {
                    return held
                        .iter()
                        .filter(|e| e.lock().next <= now)
                        .cloned()
                        .collect();
                }
                _ => {
                    let wait = next.map_or(IDLE, |at| (at - now).min(IDLE));
                    held = self
                        .added
                        .wait_timeout(held, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }
}
