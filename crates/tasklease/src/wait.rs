//! Waiting for work: claim the next ready task, or wait — up to a bound — for one to
//! become ready and claim it then.
//!
//! # Why events, and what is still timed
//!
//! With dependencies, "nothing ready" is an agent's normal state: most of a graph
//! waits on a few tasks. Polling (`claim --next`, sleep, again) costs every agent a
//! database turn per interval and leaves work idle for up to that interval. Here a
//! waiter sleeps on its store's [`ReadySignal`](crate::ReadySignal) — SQLite: one byte per change through
//! a named pipe beside the database, which wakes one waiter; PostgreSQL: `LISTEN` on a
//! connection of its own, the `NOTIFY` sent by the change's own transaction — and
//! looks only when woken. Three timers remain, each bounded:
//!
//! - **the caller's bound**: the wait ends then with nothing (`Ok(None)`). The last
//!   look and claim after it are bounded by the store's own timeouts, so a wait never
//!   outlives its bound by more than the busy timeout.
//! - **the next lease's end**: a lease running out makes its task ready without any
//!   write, so a waiter wakes at the earliest `lock_until` it saw
//!   ([`Store::readiness`]). A lease granted *after* that look and ending before every
//!   lease the waiter knew of is noticed at its next wake-up or fallback look.
//! - **the fallback look** ([`FALLBACK`], 30 s by default): a wake-up lost to a process
//!   that died between its commit and its signal, or to a notification sent while a
//!   PostgreSQL listener was reconnecting, costs at most this long. It is a read, not a
//!   claim: an idle waiter takes no writer turn.
//!
//! # The loop
//!
//! The signal is armed first, then the waiter claims (at once, like `claim --next`).
//! With nothing claimed it reads [`Store::readiness`] for its timer and sleeps. Woken
//! (or timed out), it looks, and claims only if something is ready — so a wake-up for
//! a change that readied nothing, or for a task someone else took, costs one read and
//! no writer turn. On SQLite one change wakes one waiter; one that was woken, took a
//! task and still sees tasks ready hands a wake-up on ([`crate::ReadySignal::pass_on`]).
//! Wake-ups that arrive while the waiter is busy stay in the signal (a [`Waiter`]
//! keeps it across waits): they cost a look later, never a lost task.
//!
//! # Failure
//!
//! A claim whose outcome is unknown (a connection broken mid-claim) is asked again
//! when the caller gave a claim key (`run` does): the store answers with the grant it
//! made under that key. Without a key it is the caller's error, as for
//! [`Store::claim_next`] (a key costs PostgreSQL a transaction per claim). A retryable error
//! (the store busy or unreachable, a server restarting) does not end the wait: the
//! waiter tries again every half second until its bound, and reports the last error
//! only if the bound passes with it unresolved. The PostgreSQL listener reconnects on
//! its own and wakes the waiter once listening again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::{AgentId, Error, Lease, LeaseDuration, Readiness, RequestId, Result, Store};

/// How often a waiter looks on its own, whatever it was told: the most a lost wake-up
/// can cost.
pub const FALLBACK: Duration = Duration::from_secs(30);

/// How long a waiter pauses between tries while the store answers with retryable
/// errors (busy, unreachable).
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// How often a cancellable wait checks its cancel flag.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// How a wait goes.
#[derive(Clone, Debug)]
pub struct WaitOptions {
    /// The longest the wait goes on with nothing to claim.
    pub bound: Duration,
    /// How often to look without being woken ([`FALLBACK`]).
    pub fallback: Duration,
    /// Set to `true` (from any thread) to end the wait early, with nothing: checked at
    /// least every 100 ms while it is given.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl WaitOptions {
    /// A wait of up to `bound`, with the default fallback and no cancel flag.
    pub fn new(bound: Duration) -> WaitOptions {
        WaitOptions {
            bound,
            fallback: FALLBACK,
            cancel: None,
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

/// What a wait came to, and what it cost. Only ever made by a wait, so it may grow
/// fields.
#[derive(Debug)]
#[non_exhaustive]
pub struct Waited {
    /// The task claimed, or `None` when the bound passed (or the wait was cancelled)
    /// with nothing ready.
    pub lease: Option<Lease>,
    /// How long the call took.
    pub waited: Duration,
    /// What it waited on, for messages ("the wake-up pipe …", "notifications …").
    pub on: String,
    /// Wake-ups received.
    pub wakes: u32,
    /// Looks at the store ([`Store::readiness`], a read).
    pub looks: u32,
    /// Claims tried (a writer turn each).
    pub claims: u32,
    /// The wait was cancelled.
    pub cancelled: bool,
    /// When the claim that returned [`Waited::lease`] was sent: pass it as the `sent`
    /// of [`crate::hold()`] or [`crate::keepalive::KeepAlive::start`], whose trust in
    /// the lease counts from the claim, not from the start of the wait (a wait longer
    /// than the lease would otherwise hand over a lease already untrusted).
    pub sent: Option<Instant>,
}

/// [`Store::claim_next_keyed`], waiting up to `bound` for a task to become ready when
/// none is. `Ok(None)` when the bound passed with nothing ready.
///
/// ```
/// use std::time::Duration;
/// use tasklease::open::{DbSpec, OpenOptions};
/// use tasklease::{AgentId, LeaseDuration, NewTask};
///
/// # fn main() -> tasklease::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let spec = DbSpec::parse(dir.path().join("t.db").to_str().unwrap());
/// tasklease::open::init(&spec, &OpenOptions::default())?;
/// let store = tasklease::open::open(&spec, &OpenOptions::default())?;
/// let me = AgentId::new("worker")?;
/// // Nothing there: the wait ends after its bound.
/// let got = tasklease::wait::claim_next_wait(&*store, LeaseDuration::DEFAULT, None,
///     Duration::from_millis(50), &me)?;
/// assert!(got.is_none());
/// store.add(&NewTask { title: "t".into(), ..Default::default() })?;
/// let got = tasklease::wait::claim_next_wait(&*store, LeaseDuration::DEFAULT, None,
///     Duration::from_secs(5), &me)?;
/// assert!(got.is_some());
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`Store::claim_next_keyed`] and [`Store::ready_signal`]; a retryable error
/// ([`Error::is_retryable`]) only if it was still the answer when the bound passed.
pub fn claim_next_wait(
    store: &dyn Store,
    lease: LeaseDuration,
    request: Option<&RequestId>,
    bound: Duration,
    agent: &AgentId,
) -> Result<Option<Lease>> {
    claim_next_waiting(store, lease, request, &WaitOptions::new(bound), agent).map(|w| w.lease)
}

/// [`claim_next_wait`] with every option, saying what the wait cost.
///
/// # Errors
/// As [`claim_next_wait`].
pub fn claim_next_waiting(
    store: &dyn Store,
    lease: LeaseDuration,
    request: Option<&RequestId>,
    opts: &WaitOptions,
    agent: &AgentId,
) -> Result<Waited> {
    Waiter::new(store)?.claim_next(lease, request, opts, agent)
}

/// A store and its armed [`crate::ReadySignal`], kept across waits: a worker that
/// claims task after task (`run --loop`) sets the signal up once, and wake-ups that
/// came while it worked are not lost between its waits.
pub struct Waiter<'s> {
    store: &'s dyn Store,
    signal: Box<dyn crate::ReadySignal>,
    /// The last step found nothing ready: the next wait starts with a look (a read),
    /// not a claim (a writer turn).
    found_nothing: bool,
}

impl<'s> Waiter<'s> {
    /// Arms a signal on `store`.
    ///
    /// # Errors
    /// As [`Store::ready_signal`].
    pub fn new(store: &'s dyn Store) -> Result<Waiter<'s>> {
        Ok(Waiter {
            store,
            signal: store.ready_signal()?,
            found_nothing: false,
        })
    }

    /// [`claim_next_waiting`] on this waiter's signal.
    ///
    /// # Errors
    /// As [`claim_next_wait`].
    pub fn claim_next(
        &mut self,
        lease: LeaseDuration,
        request: Option<&RequestId>,
        opts: &WaitOptions,
        agent: &AgentId,
    ) -> Result<Waited> {
        let look_first = std::mem::take(&mut self.found_nothing);
        run(
            &Direct(self.store),
            &mut *self.signal,
            Start {
                agent,
                lease,
                request,
                look_first,
            },
            opts,
        )
    }

    /// [`Store::done_then_claim_next`]: a worker's step from one task to the next.
    /// When it finds nothing ready, the next [`Waiter::claim_next`] starts by looking
    /// (a read) rather than claiming (a writer turn).
    ///
    /// # Errors
    /// As [`Store::done_then_claim_next`].
    pub fn done_then_claim_next(
        &mut self,
        id: &crate::TaskId,
        token: &crate::Token,
        lease: LeaseDuration,
        request: Option<&RequestId>,
        agent: &AgentId,
    ) -> Result<crate::DoneThenNext> {
        let step = self
            .store
            .done_then_claim_next(id, token, lease, request, agent)?;
        self.found_nothing = matches!(step.next, Ok(None));
        Ok(step)
    }
}

/// Who waits, for what lease, and how the loop begins.
pub(crate) struct Start<'a> {
    pub(crate) agent: &'a AgentId,
    pub(crate) lease: LeaseDuration,
    pub(crate) request: Option<&'a RequestId>,
    /// Look before the first claim (the caller just found nothing ready).
    pub(crate) look_first: bool,
}

/// What the loop asks of a store: directly, or through an `AsyncStore`'s thread.
pub(crate) trait Target {
    fn claim(
        &self,
        lease: LeaseDuration,
        key: Option<&RequestId>,
        agent: &AgentId,
    ) -> Result<Option<Lease>>;
    fn readiness(&self) -> Result<Readiness>;
}

struct Direct<'a>(&'a dyn Store);

impl Target for Direct<'_> {
    fn claim(
        &self,
        lease: LeaseDuration,
        key: Option<&RequestId>,
        agent: &AgentId,
    ) -> Result<Option<Lease>> {
        self.0.claim_next_keyed(lease, key, agent)
    }
    fn readiness(&self) -> Result<Readiness> {
        self.0.readiness()
    }
}

/// Errors a wait rides out until its bound: the store busy or unreachable, and — for
/// a keyed wait — a claim whose outcome is unknown (asked again under its key, which
/// answers with the grant).
fn rides_out(e: &Error, keyed: bool) -> bool {
    e.is_retryable() || (keyed && matches!(e, Error::OutcomeUnknown { .. }))
}

enum Step {
    Claimed(Lease),
    Nothing(Readiness),
}

/// The loop (see the module docs).
pub(crate) fn run(
    target: &dyn Target,
    signal: &mut dyn crate::ReadySignal,
    start_with: Start<'_>,
    opts: &WaitOptions,
) -> Result<Waited> {
    let Start {
        agent,
        lease,
        request,
        look_first,
    } = start_with;
    let start = Instant::now();
    let deadline = start + opts.bound;
    let key = request;
    let mut w = Waited {
        lease: None,
        waited: Duration::ZERO,
        on: signal.describe(),
        wakes: 0,
        looks: 0,
        claims: 0,
        cancelled: false,
        sent: None,
    };
    // When the latest claim was sent.
    let mut sent = start;
    let mut look_first = look_first;
    let mut woken = false;
    let mut disagreed = 0u32;
    loop {
        if opts.cancelled() {
            w.cancelled = true;
            w.waited = start.elapsed();
            return Ok(w);
        }
        let step = (|| {
            if look_first {
                w.looks += 1;
                let r = target.readiness()?;
                if !r.ready {
                    return Ok(Step::Nothing(r));
                }
            }
            w.claims += 1;
            sent = Instant::now();
            if let Some(l) = target.claim(lease, key, agent)? {
                return Ok(Step::Claimed(l));
            }
            w.looks += 1;
            target.readiness().map(Step::Nothing)
        })();
        let mut sleep = deadline
            .saturating_duration_since(Instant::now())
            .min(opts.fallback);
        let mut failed = None;
        match step {
            Ok(Step::Claimed(l)) => {
                // One change woke one waiter: if more is ready, wake the next.
                if woken && signal.wakes_one() && target.readiness().is_ok_and(|r| r.ready) {
                    signal.pass_on();
                }
                w.lease = Some(l);
                w.sent = Some(sent);
                w.waited = start.elapsed();
                return Ok(w);
            }
            Ok(Step::Nothing(r)) => {
                if r.ready {
                    // Taken by someone else between our look and our claim (or a
                    // lease ran out just then): look again at once, a few times.
                    disagreed += 1;
                    if disagreed <= 3 {
                        sleep = Duration::ZERO;
                    } else {
                        sleep = sleep.min(Duration::from_millis(50));
                    }
                } else {
                    disagreed = 0;
                }
                if let Some(d) = r.until_expiry() {
                    // Claimable at lock_until itself; a millisecond's slack for rounding.
                    sleep = sleep.min(d + Duration::from_millis(1));
                }
            }
            Err(e) if rides_out(&e, key.is_some()) => {
                sleep = sleep.min(RETRY_PAUSE);
                failed = Some(e);
            }
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            if let Some(e) = failed {
                return Err(e);
            }
            w.waited = start.elapsed();
            return Ok(w);
        }
        woken = sleep_on(signal, sleep, opts)?;
        if woken {
            w.wakes += 1;
        }
        look_first = true;
    }
}

/// Sleeps on `signal` for up to `sleep`, in slices when the wait can be cancelled;
/// whether it was woken.
fn sleep_on(
    signal: &mut dyn crate::ReadySignal,
    sleep: Duration,
    opts: &WaitOptions,
) -> Result<bool> {
    let until = Instant::now() + sleep;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || opts.cancelled() {
            return Ok(false);
        }
        let slice = if opts.cancel.is_some() {
            left.min(CANCEL_CHECK)
        } else {
            left
        };
        if signal.wait(slice)? {
            return Ok(true);
        }
    }
}
