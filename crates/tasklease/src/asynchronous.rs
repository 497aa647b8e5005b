//! The store for async code: [`AsyncStore`] runs a [`Store`] on a thread of its own
//! and hands back futures.
//!
//! # Which to use when
//!
//! - **Sync code** (the CLI, scripts, a worker thread): call the [`Store`] that
//!   [`crate::open::open`] returns directly. Every call blocks until the database
//!   answers, within its bounds (SQLite's busy timeout; PostgreSQL's connect and
//!   statement bounds).
//! - **Async code** (the MCP server, a web board, anything on tokio): wrap that store
//!   in an [`AsyncStore`] and `.await` its methods.
//!
//! # Why a thread of its own rather than `spawn_blocking`
//!
//! A store blocks, so it must not run on an executor's threads. `spawn_blocking` would
//! keep the executor free, but it is not enough:
//!
//! - The PostgreSQL store drives its connection on a private current-thread runtime.
//!   Calling it — or, with the sync `postgres` client of old, merely *dropping* it —
//!   from inside an async context panics ("Cannot start a runtime from within a
//!   runtime"). Here the store is created (with [`AsyncStore::open`]), used and
//!   dropped on its own plain thread, never in an async context.
//! - `spawn_blocking` runs calls on whichever pool thread is free, in no particular
//!   order. One thread with one queue runs them in the order they were made, so a
//!   client that sends "add X" and then at once "claim X" always finds X there.
//!
//! Each method queues its call **when it is called**, not when its future is first
//! polled: calls made one after another run in that order even if their futures are
//! awaited later, or on different tasks. A queued call runs even if its future is
//! dropped — a write, once asked for, is never silently withdrawn halfway — and its
//! answer is then discarded.
//!
//! The cost is that calls from one `AsyncStore` never overlap: a slow call delays the
//! ones queued behind it. Each call is bounded by the store's own timeouts, so the
//! delay is too. For parallel work, open one `AsyncStore` per session or worker.
//!
//! The thread ends, dropping the store, once the `AsyncStore` and every future it
//! handed out are gone and the queue is empty.
//!
//! ```
//! use tasklease::asynchronous::AsyncStore;
//! use tasklease::open::{DbSpec, OpenOptions};
//! use tasklease::{AgentId, LeaseDuration, NewTask, TaskId};
//!
//! # fn main() -> tasklease::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let spec = DbSpec::Sqlite { path: dir.path().join("t.db"), explicit: true };
//! tasklease::open::init(&spec, &OpenOptions::default())?;
//! let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! runtime.block_on(async {
//!     let store = AsyncStore::open(move || tasklease::open::open(&spec, &OpenOptions::default()))
//!         .await?;
//!     let id = TaskId::new("T-1")?;
//!     let me = AgentId::new("docs")?;
//!     // Queued in this order, so the claim finds the task.
//!     let added = store.add(NewTask { id: Some(id.clone()), title: "write docs".into(), ..Default::default() });
//!     let claimed = store.claim(id, LeaseDuration::DEFAULT, None, me);
//!     added.await?;
//!     assert!(matches!(claimed.await?, tasklease::ClaimOutcome::Claimed(_)));
//!     Ok(())
//! })
//! # }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::wait::{WaitOptions, Waited};
use crate::{
    AgentId, BatchOutcome, ClaimOutcome, DoneThenNext, Ended, Error, Event, Lease, LeaseDuration,
    ListFilter, Millis, NewTask, Reaped, ReleaseTo, RequestId, Result, Retention, Stamp, Status,
    Store, Task, TaskId, TaskPatch, Token, Version,
};

/// One queued call: runs against the store and sends its own answer.
type Job = Box<dyn FnOnce(&dyn Store) + Send>;

/// A [`Store`] on a thread of its own, with async methods (see the module docs).
///
/// Cloning shares the thread and its queue.
#[derive(Clone)]
pub struct AsyncStore {
    /// The store thread's queue; the thread ends when every sender is gone.
    jobs: mpsc::Sender<Job>,
}

impl AsyncStore {
    /// Moves an open store to a thread of its own. A store is dropped where its last
    /// reference goes: hand over the only one and it is dropped on that thread. A
    /// clone kept for [`crate::hold_from`] (whose renewal thread calls the store,
    /// never the runtime) is fine; drop yours outside async tasks.
    ///
    /// # Errors
    /// [`Error::Store`] when the thread cannot be started.
    pub fn new(store: impl Into<Arc<dyn Store>>) -> Result<AsyncStore> {
        let store = store.into();
        let (jobs, queue) = mpsc::channel::<Job>();
        spawn(move || serve(&*store, &queue))?;
        Ok(AsyncStore { jobs })
    }

    /// Opens a store with `open` on a thread of its own, where it stays: it is
    /// created, used and dropped there, never in an async context.
    ///
    /// # Errors
    /// Whatever `open` fails with; [`Error::Store`] when the thread cannot be started
    /// or `open` panicked.
    pub async fn open(
        open: impl FnOnce() -> Result<Box<dyn Store>> + Send + 'static,
    ) -> Result<AsyncStore> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened, is_open) = oneshot::channel::<Result<()>>();
        spawn(move || match open() {
            Ok(store) => {
                let _ = opened.send(Ok(()));
                serve(&*store, &queue);
            }
            Err(e) => {
                let _ = opened.send(Err(e));
            }
        })?;
        is_open
            .await
            .map_err(|_| Error::store("open the store", "opening it panicked"))??;
        Ok(AsyncStore { jobs })
    }

    /// Queues `f` to run against the store now; the future resolves with its result.
    ///
    /// # Errors
    /// What `f` returns; [`Error::Store`] when `f` panicked or the store's thread is
    /// gone.
    pub fn call<T, F>(&self, f: F) -> impl Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T>>();
        let queued = self.jobs.send(Box::new(move |store: &dyn Store| {
            let _ = reply.send(f(store));
        }));
        async move {
            if queued.is_err() {
                return Err(gone());
            }
            answer.await.map_err(|_| gone())?
        }
    }

    /// [`Store::add`].
    ///
    /// # Errors
    /// As [`Store::add`] and [`AsyncStore::call`].
    pub fn add(&self, task: NewTask) -> impl Future<Output = Result<Task>> + Send + 'static {
        self.call(move |s| s.add(&task))
    }

    /// [`Store::show`].
    ///
    /// # Errors
    /// As [`Store::show`] and [`AsyncStore::call`].
    pub fn show(&self, id: TaskId) -> impl Future<Output = Result<Option<Task>>> + Send + 'static {
        self.call(move |s| s.show(&id))
    }

    /// [`Store::list`].
    ///
    /// # Errors
    /// As [`Store::list`] and [`AsyncStore::call`].
    pub fn list(
        &self,
        filter: ListFilter,
    ) -> impl Future<Output = Result<Vec<Task>>> + Send + 'static {
        self.call(move |s| s.list(&filter))
    }

    /// [`Store::claim`].
    ///
    /// # Errors
    /// As [`Store::claim`] and [`AsyncStore::call`].
    pub fn claim(
        &self,
        id: TaskId,
        lease: LeaseDuration,
        token: Option<Token>,
        agent: AgentId,
    ) -> impl Future<Output = Result<ClaimOutcome>> + Send + 'static {
        self.call(move |s| s.claim(&id, lease, token.as_ref(), &agent))
    }

    /// [`Store::claim_next`].
    ///
    /// # Errors
    /// As [`Store::claim_next`] and [`AsyncStore::call`].
    pub fn claim_next(
        &self,
        lease: LeaseDuration,
        agent: AgentId,
    ) -> impl Future<Output = Result<Option<Lease>>> + Send + 'static {
        self.call(move |s| s.claim_next(lease, &agent))
    }

    /// [`Store::claim_batch`].
    ///
    /// # Errors
    /// As [`Store::claim_batch`] and [`AsyncStore::call`].
    pub fn claim_batch(
        &self,
        ids: Vec<TaskId>,
        lease: LeaseDuration,
        agent: AgentId,
    ) -> impl Future<Output = Result<BatchOutcome>> + Send + 'static {
        self.call(move |s| s.claim_batch(&ids, lease, &agent))
    }

    /// [`Store::claim_keyed`].
    ///
    /// # Errors
    /// As [`Store::claim_keyed`] and [`AsyncStore::call`].
    pub fn claim_keyed(
        &self,
        id: TaskId,
        lease: LeaseDuration,
        token: Option<Token>,
        request: Option<RequestId>,
        agent: AgentId,
    ) -> impl Future<Output = Result<ClaimOutcome>> + Send + 'static {
        self.call(move |s| s.claim_keyed(&id, lease, token.as_ref(), request.as_ref(), &agent))
    }

    /// [`Store::claim_next_keyed`].
    ///
    /// # Errors
    /// As [`Store::claim_next_keyed`] and [`AsyncStore::call`].
    pub fn claim_next_keyed(
        &self,
        lease: LeaseDuration,
        request: Option<RequestId>,
        agent: AgentId,
    ) -> impl Future<Output = Result<Option<Lease>>> + Send + 'static {
        self.call(move |s| s.claim_next_keyed(lease, request.as_ref(), &agent))
    }

    /// [`Store::claim_batch_keyed`].
    ///
    /// # Errors
    /// As [`Store::claim_batch_keyed`] and [`AsyncStore::call`].
    pub fn claim_batch_keyed(
        &self,
        ids: Vec<TaskId>,
        lease: LeaseDuration,
        request: Option<RequestId>,
        agent: AgentId,
    ) -> impl Future<Output = Result<BatchOutcome>> + Send + 'static {
        self.call(move |s| s.claim_batch_keyed(&ids, lease, request.as_ref(), &agent))
    }

    /// [`Store::renew`].
    ///
    /// # Errors
    /// As [`Store::renew`] and [`AsyncStore::call`].
    pub fn renew(
        &self,
        id: TaskId,
        token: Token,
        lease: LeaseDuration,
        agent: AgentId,
    ) -> impl Future<Output = Result<Lease>> + Send + 'static {
        self.call(move |s| s.renew(&id, &token, lease, &agent))
    }

    /// [`Store::release`].
    ///
    /// # Errors
    /// As [`Store::release`] and [`AsyncStore::call`].
    pub fn release(
        &self,
        id: TaskId,
        token: Token,
        to: ReleaseTo,
        agent: AgentId,
    ) -> impl Future<Output = Result<Ended>> + Send + 'static {
        self.call(move |s| s.release(&id, &token, to, &agent))
    }

    /// [`Store::release_force`].
    ///
    /// # Errors
    /// As [`Store::release_force`] and [`AsyncStore::call`].
    pub fn release_force(
        &self,
        id: TaskId,
        to: ReleaseTo,
        agent: AgentId,
    ) -> impl Future<Output = Result<Task>> + Send + 'static {
        self.call(move |s| s.release_force(&id, to, &agent))
    }

    /// [`Store::done`].
    ///
    /// # Errors
    /// As [`Store::done`] and [`AsyncStore::call`].
    pub fn done(
        &self,
        id: TaskId,
        token: Token,
        agent: AgentId,
    ) -> impl Future<Output = Result<Ended>> + Send + 'static {
        self.call(move |s| s.done(&id, &token, &agent))
    }

    /// [`Store::done_then_claim_next`].
    ///
    /// # Errors
    /// As [`Store::done_then_claim_next`] and [`AsyncStore::call`].
    pub fn done_then_claim_next(
        &self,
        id: TaskId,
        token: Token,
        lease: LeaseDuration,
        request: Option<RequestId>,
        agent: AgentId,
    ) -> impl Future<Output = Result<DoneThenNext>> + Send + 'static {
        self.call(move |s| s.done_then_claim_next(&id, &token, lease, request.as_ref(), &agent))
    }

    /// [`Store::reap`].
    ///
    /// # Errors
    /// As [`Store::reap`] and [`AsyncStore::call`].
    pub fn reap(
        &self,
        agent: AgentId,
    ) -> impl Future<Output = Result<Vec<Reaped>>> + Send + 'static {
        self.call(move |s| s.reap(&agent))
    }

    /// [`Store::update`].
    ///
    /// # Errors
    /// As [`Store::update`] and [`AsyncStore::call`].
    pub fn update(
        &self,
        id: TaskId,
        expect_version: Version,
        patch: TaskPatch,
        token: Option<Token>,
        agent: AgentId,
    ) -> impl Future<Output = Result<Task>> + Send + 'static {
        self.call(move |s| s.update(&id, expect_version, &patch, token.as_ref(), &agent))
    }

    /// [`Store::log`].
    ///
    /// # Errors
    /// As [`Store::log`] and [`AsyncStore::call`].
    pub fn log(
        &self,
        task: Option<TaskId>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Event>>> + Send + 'static {
        self.call(move |s| s.log(task.as_ref(), limit))
    }

    /// [`Store::prune`].
    ///
    /// # Errors
    /// As [`Store::prune`] and [`AsyncStore::call`].
    pub fn prune(&self, keep: Retention) -> impl Future<Output = Result<u64>> + Send + 'static {
        self.call(move |s| s.prune(&keep))
    }

    /// [`Store::counts`].
    ///
    /// # Errors
    /// As [`Store::counts`] and [`AsyncStore::call`].
    pub fn counts(&self) -> impl Future<Output = Result<Vec<(Status, u64)>>> + Send + 'static {
        self.call(|s| s.counts())
    }

    /// [`Store::mine`].
    ///
    /// # Errors
    /// As [`Store::mine`] and [`AsyncStore::call`].
    pub fn mine(
        &self,
        agent: AgentId,
    ) -> impl Future<Output = Result<Vec<Lease>>> + Send + 'static {
        self.call(move |s| s.mine(&agent))
    }

    /// [`Store::now`].
    ///
    /// # Errors
    /// As [`Store::now`] and [`AsyncStore::call`].
    pub fn now(&self) -> impl Future<Output = Result<Millis>> + Send + 'static {
        self.call(|s| s.now())
    }

    /// [`Store::stamp`].
    ///
    /// # Errors
    /// As [`Store::stamp`] and [`AsyncStore::call`].
    pub fn stamp(&self) -> impl Future<Output = Result<Stamp>> + Send + 'static {
        self.call(|s| s.stamp())
    }

    /// [`crate::wait::claim_next_waiting`]: claims the next ready task, waiting up to
    /// `opts.bound` for one. The waiting happens on a thread of its own; each look and
    /// claim is queued on the store's thread like any call, so other calls are not held
    /// up while it sleeps. Dropping the future cancels the wait within 100 ms (a claim
    /// already queued still runs: a lease it grants is held under `request`'s key, or
    /// the key made for the wait, until it runs out or is ended).
    ///
    /// # Errors
    /// As [`crate::wait::claim_next_wait`] and [`AsyncStore::call`].
    pub fn claim_next_waiting(
        &self,
        lease: LeaseDuration,
        request: Option<RequestId>,
        opts: WaitOptions,
        agent: AgentId,
    ) -> impl Future<Output = Result<Waited>> + Send + 'static {
        let wait = Wait {
            lease,
            request,
            opts,
            agent,
            look_first: false,
        };
        wait.start(Queued(self.jobs.clone()), None, None)
    }

    /// An [`AsyncWaiter`]: the async [`crate::wait::Waiter`], for a worker that claims
    /// task after task.
    pub fn waiter(&self) -> AsyncWaiter {
        AsyncWaiter {
            store: self.clone(),
            signal: Arc::default(),
            found_nothing: false,
        }
    }
}

/// [`crate::wait::Waiter`] for async code, made by [`AsyncStore::waiter`]: keeps its
/// wake-up signal across waits (wake-ups that came while the worker worked are not
/// lost), and after a [`AsyncWaiter::done_then_claim_next`] that found nothing, starts
/// its next wait with a look rather than a claim. A wait whose future was dropped
/// hands the signal back when its thread ends (within 100 ms); a wait begun before
/// that arms a signal of its own.
pub struct AsyncWaiter {
    store: AsyncStore,
    /// The armed signal between waits.
    signal: SignalSlot,
    found_nothing: bool,
}

impl AsyncWaiter {
    /// [`AsyncStore::claim_next_waiting`] on this waiter's signal.
    ///
    /// # Errors
    /// As [`AsyncStore::claim_next_waiting`].
    pub fn claim_next_waiting(
        &mut self,
        lease: LeaseDuration,
        request: Option<RequestId>,
        opts: WaitOptions,
        agent: AgentId,
    ) -> impl Future<Output = Result<Waited>> + Send + 'static {
        let wait = Wait {
            lease,
            request,
            opts,
            agent,
            look_first: std::mem::take(&mut self.found_nothing),
        };
        let kept = self
            .signal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        wait.start(
            Queued(self.store.jobs.clone()),
            kept,
            Some(self.signal.clone()),
        )
    }

    /// [`AsyncStore::done_then_claim_next`]; when it finds nothing ready, the next
    /// wait starts with a look.
    ///
    /// # Errors
    /// As [`crate::Store::done_then_claim_next`] and [`AsyncStore::call`].
    pub async fn done_then_claim_next(
        &mut self,
        id: TaskId,
        token: Token,
        lease: LeaseDuration,
        request: Option<RequestId>,
        agent: AgentId,
    ) -> Result<DoneThenNext> {
        let step = self
            .store
            .done_then_claim_next(id, token, lease, request, agent)
            .await?;
        self.found_nothing = matches!(step.next, Ok(None));
        Ok(step)
    }
}

/// One async wait: its arguments, run on a thread of its own.
struct Wait {
    lease: LeaseDuration,
    request: Option<RequestId>,
    opts: WaitOptions,
    agent: AgentId,
    look_first: bool,
}

/// Where a waiter keeps its signal between waits.
type SignalSlot = Arc<std::sync::Mutex<Option<Box<dyn crate::ReadySignal>>>>;

impl Wait {
    /// Starts the wait on its thread with `signal` (armed anew when `None`), handing
    /// the signal back to `keep` when the wait ends.
    fn start(
        self,
        via: Queued,
        signal: Option<Box<dyn crate::ReadySignal>>,
        keep: Option<SignalSlot>,
    ) -> impl Future<Output = Result<Waited>> + Send + 'static {
        let Wait {
            lease,
            request,
            opts,
            agent,
            look_first,
        } = self;
        let cancel = opts.cancel.clone().unwrap_or_default();
        let opts = WaitOptions {
            cancel: Some(cancel.clone()),
            ..opts
        };
        let (reply, answer) = oneshot::channel::<Result<Waited>>();
        let started = std::thread::Builder::new()
            .name("tasklease-wait".into())
            .spawn(move || {
                let armed = match signal {
                    Some(s) => Ok(s),
                    None => via.blocking(|s| s.ready_signal()),
                };
                let waited = armed.and_then(|mut signal| {
                    let waited = crate::wait::run(
                        &via,
                        &mut *signal,
                        crate::wait::Start {
                            agent: &agent,
                            lease,
                            request: request.as_ref(),
                            look_first,
                        },
                        &opts,
                    );
                    if let Some(keep) = keep {
                        *keep
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(signal);
                    }
                    waited
                });
                let _ = reply.send(waited);
            })
            .map_err(|e| Error::store("start the waiting thread", e));
        async move {
            let _cancel = CancelOnDrop(cancel);
            started?;
            answer.await.map_err(|_| gone())?
        }
    }
}

/// Ends a wait whose future was dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A waiting thread's way to the store: each call queued on the store's thread.
struct Queued(mpsc::Sender<Job>);

impl Queued {
    fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = mpsc::channel::<Result<T>>();
        self.0
            .send(Box::new(move |store: &dyn Store| {
                let _ = reply.send(f(store));
            }))
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

impl crate::wait::Target for Queued {
    fn claim(
        &self,
        lease: LeaseDuration,
        key: Option<&RequestId>,
        agent: &AgentId,
    ) -> Result<Option<Lease>> {
        let (agent, key) = (agent.clone(), key.cloned());
        self.blocking(move |s| s.claim_next_keyed(lease, key.as_ref(), &agent))
    }
    fn readiness(&self) -> Result<crate::Readiness> {
        self.blocking(|s| s.readiness())
    }
}

fn gone() -> Error {
    Error::store(
        "call the store",
        "the call panicked, or the store's thread is gone",
    )
}

fn spawn(f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name("tasklease-store".into())
        .spawn(f)
        .map(drop)
        .map_err(|e| Error::store("start the store's thread", e))
}

/// Runs queued calls in order until every sender is gone. A call that panics loses
/// only its own answer (its caller gets an error); the store is dropped by the caller
/// of this function, on this thread.
fn serve(store: &dyn Store, queue: &mpsc::Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(store)));
    }
}
