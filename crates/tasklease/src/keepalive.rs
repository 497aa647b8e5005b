//! Keeping a lease alive while work runs: renew at a third of the lease, and say how
//! long the lease can still be trusted.
//!
//! # When to stop trusting a lease
//!
//! The store grants a lease until `db_now + length`, judged by the database's clock. The
//! holder cannot read that clock for free, but it knows the moment it *sent* the claim
//! or renewal on its own monotonic clock, and the database's `now` came after that.
//! So the lease surely lasts until at least `sent + length`, and the holder trusts it
//! only until `sent + length − margin` (river's rule), the margin covering the time to
//! stop the work and any drift between the two clocks' rates.
//!
//! Renewals go out every `length / 3`. A renewal that finds the lease gone (claimed by
//! someone else after it ran out, force-released, reaped) is final: [`Beat::Lost`]. A
//! renewal that fails for any other reason — the database busy past its timeout, a
//! dropped connection — says nothing about the lease, which may well still be ours, so
//! it is retried every `length / 20` (50 ms to 2 s) for as long as the lease is trusted,
//! and reported as [`Beat::Retrying`]. The caller watches the trusted deadline and stops
//! the work when it passes without a successful renewal: past it, work would go on
//! without a lease anyone can vouch for.
//!
//! Known limit: the deadline is taken on this host's monotonic clock. If the database
//! clock jumps forward (an NTP step on the SQLite host), leases end early by the size of
//! the jump, and only fencing — the token — protects the work then.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{AgentId, Error, Lease, LeaseDuration, Store, TaskId, Token};

/// What the renewal loop reports.
#[derive(Debug)]
pub enum Beat {
    /// The lease was renewed; trust it until `trusted_until`.
    Renewed {
        /// The lease as renewed (the database's `lock_until`).
        lease: Lease,
        /// When to stop trusting it unless renewed again.
        trusted_until: Instant,
    },
    /// A renewal failed without saying the lease is lost; it will be retried. The lease
    /// is still trusted until the deadline of the last success.
    Retrying {
        /// Why it failed.
        error: Error,
        /// The deadline of the last successful claim or renewal.
        trusted_until: Instant,
    },
    /// The lease is gone: the store refused the token. The loop has stopped.
    Lost(Error),
}

/// How much of a lease's end the holder does not rely on: a fifth of it, at most a
/// minute.
pub fn margin(length: LeaseDuration) -> Duration {
    (length.to_std() / 5).min(Duration::from_secs(60))
}

/// Until when a lease of `length`, asked for at `sent`, can be trusted.
pub fn trusted_until(sent: Instant, length: LeaseDuration) -> Instant {
    sent + length.to_std() - margin(length)
}

/// How often to renew: a third of the lease.
pub fn period(length: LeaseDuration) -> Duration {
    length.to_std() / 3
}

/// How soon to retry a renewal that failed for a reason other than a lost lease.
pub fn retry_after(length: LeaseDuration) -> Duration {
    (length.to_std() / 20).clamp(Duration::from_millis(50), Duration::from_secs(2))
}

/// Whether a renewal error means the lease is gone for good.
pub fn is_lost(e: &Error) -> bool {
    matches!(e, Error::LeaseLost { .. } | Error::NotFound(_))
}

/// A running renewal loop. Dropping it without [`KeepAlive::stop`] also stops the
/// loop, without waiting for it.
pub struct KeepAlive {
    /// Dropping this wakes the loop and ends it.
    stop: Option<Sender<()>>,
    /// The loop's thread, joined by [`KeepAlive::stop`].
    thread: Option<JoinHandle<()>>,
}

/// The lease a [`KeepAlive`] renews.
struct Held {
    task: TaskId,
    token: Token,
    length: LeaseDuration,
    agent: AgentId,
}

impl KeepAlive {
    /// Starts renewing `lease` (granted for `length` by a claim sent at `sent`) on its
    /// own thread as `agent`, reporting every outcome to `notify`. The acting agent is
    /// the last argument but the callback (which Rust puts last).
    ///
    /// # Errors
    /// [`Error::Store`] if the thread cannot be started.
    pub fn start(
        store: Arc<dyn Store>,
        lease: &Lease,
        length: LeaseDuration,
        sent: Instant,
        agent: AgentId,
        notify: impl Fn(Beat) + Send + 'static,
    ) -> crate::Result<KeepAlive> {
        let (stop, stopped) = mpsc::channel::<()>();
        let held = Held {
            task: lease.task.clone(),
            token: lease.token.clone(),
            length,
            agent,
        };
        let thread = std::thread::Builder::new()
            .name("tasklease-renew".into())
            .spawn(move || renew_loop(&*store, &held, sent, &stopped, &notify))
            .map_err(|e| Error::store("start the renewal thread", e))?;
        Ok(KeepAlive {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops renewing and waits for the loop to end (at most one renewal in flight,
    /// bounded by the store's busy timeout).
    pub fn stop(mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Renews every [`period`] until told to stop or the lease is lost.
fn renew_loop(
    store: &dyn Store,
    h: &Held,
    sent: Instant,
    stopped: &mpsc::Receiver<()>,
    notify: &dyn Fn(Beat),
) {
    let mut next = sent + period(h.length);
    let mut trusted = trusted_until(sent, h.length);
    loop {
        match stopped.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let at = Instant::now();
        match store.renew(&h.task, &h.token, h.length, &h.agent) {
            Ok(lease) => {
                trusted = trusted_until(at, h.length);
                next = at + period(h.length);
                notify(Beat::Renewed {
                    lease,
                    trusted_until: trusted,
                });
            }
            Err(e) if is_lost(&e) => return notify(Beat::Lost(e)),
            Err(error) => {
                next = Instant::now() + retry_after(h.length);
                notify(Beat::Retrying {
                    error,
                    trusted_until: trusted,
                });
            }
        }
    }
}
