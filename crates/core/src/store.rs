//! The contract every store implements.

use crate::{
    AgentId, BatchOutcome, ClaimOutcome, Deleted, DepChange, Deps, DoneThenNext, Ended, Event,
    ImportBatch, ImportOutcome, Lease, LeaseDuration, ListFilter, Millis, NewTask, Readiness,
    ReadySignal, Reaped, Reason, ReleaseTo, RequestId, Result, Retention, Status, Task, TaskId,
    TaskPatch, Token, Version,
};

/// The operations on tasks and leases, the same for every backend.
///
/// Every method is one database transaction: it either happens completely or not at
/// all. Lease times are read from the store's clock (the database's, unless a test
/// injected a [`crate::Clock::Manual`]). `agent` is who is acting, recorded for history;
/// authority over a leased task comes only from its [`Token`].
///
/// **The acting agent is always the last argument** — of every method here, of
/// `tasklease`'s `AsyncStore`, its `wait` functions and every other public function
/// that takes one (a callback aside, which goes after it). What is acted on comes
/// first, then how (lease length, token, reason, key). Every argument is a type of its
/// own, so an argument in the wrong place does not compile:
///
/// ```
/// # use tasklease_core::{AgentId, LeaseDuration, Store, TaskId};
/// fn take(store: &dyn Store, id: &TaskId, me: &AgentId) -> tasklease_core::Result<()> {
///     store.claim(id, LeaseDuration::DEFAULT, None, me)?;
///     store.claim_next(LeaseDuration::DEFAULT, me)?;
///     Ok(())
/// }
/// ```
///
/// ```compile_fail
/// # use tasklease_core::{AgentId, LeaseDuration, Store, TaskId};
/// fn take(store: &dyn Store, id: &TaskId, me: &AgentId) {
///     // The agent where it used to be, second: a compile error.
///     let _ = store.claim(id, me, LeaseDuration::DEFAULT, None);
/// }
/// ```
///
/// ```compile_fail
/// # use tasklease_core::{AgentId, LeaseDuration, Store, Token, TaskId};
/// fn finish(store: &dyn Store, id: &TaskId, token: &Token, me: &AgentId) {
///     // The token and the agent swapped.
///     let _ = store.done(id, me, token);
/// }
/// ```
///
/// Policy — retries, renewal cadence, reaping schedules — lives above this trait.
pub trait Store: Send + Sync {
    /// Creates a task in `todo`.
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) for bad fields, a dependency that does
    /// not exist, or an id that was deleted (ids are never reused);
    /// [`Error::Exists`](crate::Error::Exists) when the id is taken.
    fn add(&self, task: &NewTask) -> Result<Task>;

    /// One task, or `None`.
    ///
    /// # Errors
    /// Only store failures.
    fn show(&self, id: &TaskId) -> Result<Option<Task>>;

    /// Tasks matching `filter`, by priority then age.
    ///
    /// # Errors
    /// Only store failures.
    fn list(&self, filter: &ListFilter) -> Result<Vec<Task>>;

    /// Claims one task in one conditional statement: of many concurrent claimers exactly
    /// one gets [`ClaimOutcome::Claimed`]. A task whose lease ran out is free to anyone
    /// and its token grows. The holder presenting its current `token` re-claims: the
    /// lease is extended and the token kept. [`Store::claim_keyed`] without a key.
    ///
    /// # Errors
    /// Only store failures; every refusal is a [`ClaimOutcome::Refused`].
    fn claim(
        &self,
        id: &TaskId,
        lease: LeaseDuration,
        token: Option<&Token>,
        agent: &AgentId,
    ) -> Result<ClaimOutcome> {
        self.claim_keyed(id, lease, token, None, agent)
    }

    /// [`Store::claim`], made safe to retry by `request`: while a lease that `agent`
    /// was granted under that key is live, the claim answers with it (same token, its
    /// current lease end) and changes nothing. A key whose lease ended (done, released,
    /// expired, reaped, forced) is forgotten: the claim proceeds as a new one would.
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) when the key's live lease is on another
    /// task (a key names one request); store failures.
    fn claim_keyed(
        &self,
        id: &TaskId,
        lease: LeaseDuration,
        token: Option<&Token>,
        request: Option<&RequestId>,
        agent: &AgentId,
    ) -> Result<ClaimOutcome>;

    /// Claims the highest-priority ready task — `todo` with every dependency done, or
    /// `in_progress` under an expired lease — oldest first within a priority, in one
    /// atomic step. `None` when nothing is ready. [`Store::claim_next_keyed`] without
    /// a key.
    ///
    /// # Errors
    /// Only store failures.
    fn claim_next(&self, lease: LeaseDuration, agent: &AgentId) -> Result<Option<Lease>> {
        self.claim_next_keyed(lease, None, agent)
    }

    /// [`Store::claim_next`], made safe to retry by `request` as in
    /// [`Store::claim_keyed`]: a live lease granted to `agent` under the key is
    /// answered again instead of a second task being claimed.
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) when the key's live leases are on more
    /// than one task (it named a batch); store failures.
    fn claim_next_keyed(
        &self,
        lease: LeaseDuration,
        request: Option<&RequestId>,
        agent: &AgentId,
    ) -> Result<Option<Lease>>;

    /// Claims every task in `ids` in one transaction, or none of them. On refusal,
    /// lists each id that could not be claimed and why. [`Store::claim_batch_keyed`]
    /// without a key.
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) for an empty list or a repeated id;
    /// store failures.
    fn claim_batch(
        &self,
        ids: &[TaskId],
        lease: LeaseDuration,
        agent: &AgentId,
    ) -> Result<BatchOutcome> {
        self.claim_batch_keyed(ids, lease, None, agent)
    }

    /// [`Store::claim_batch`], made safe to retry by `request`: when the leases
    /// granted to `agent` under the key are live on exactly `ids`, they are answered
    /// again (in the order asked) and nothing changes.
    ///
    /// # Errors
    /// As [`Store::claim_batch`], and [`Error::Invalid`](crate::Error::Invalid) when the
    /// key's live leases are on other tasks than `ids`.
    fn claim_batch_keyed(
        &self,
        ids: &[TaskId],
        lease: LeaseDuration,
        request: Option<&RequestId>,
        agent: &AgentId,
    ) -> Result<BatchOutcome>;

    /// Extends the lease to `now + lease`. Works while `token` is the task's current
    /// token and the task is `in_progress`, even if the lease ran out, as long as nobody
    /// claimed it since.
    ///
    /// # Errors
    /// [`Error::LeaseLost`](crate::Error::LeaseLost) when the token no longer holds the
    /// task; [`Error::NotFound`](crate::Error::NotFound).
    fn renew(
        &self,
        id: &TaskId,
        token: &Token,
        lease: LeaseDuration,
        agent: &AgentId,
    ) -> Result<Lease>;

    /// Ends the lease and puts the task in `to`. A retry by the token that already
    /// released the task to `to`, with nothing changed since, succeeds again with
    /// [`Ended::repeat`] set and changes nothing.
    ///
    /// # Errors
    /// As [`Store::renew`].
    fn release(&self, id: &TaskId, token: &Token, to: ReleaseTo, agent: &AgentId) -> Result<Ended> {
        self.release_with_reason(id, token, to, None, agent)
    }

    /// [`Store::release`], recording `reason` in the history's `released` row (a repeat
    /// records nothing).
    ///
    /// # Errors
    /// As [`Store::release`].
    fn release_with_reason(
        &self,
        id: &TaskId,
        token: &Token,
        to: ReleaseTo,
        reason: Option<&Reason>,
        agent: &AgentId,
    ) -> Result<Ended>;

    /// Ends whatever lease the task has, without a token: the admin escape hatch,
    /// recorded as forced. The old token becomes stale.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound).
    fn release_force(&self, id: &TaskId, to: ReleaseTo, agent: &AgentId) -> Result<Task>;

    /// Ends the lease and marks the task `done`, which may make dependants ready. A
    /// retry by the token that already finished the task succeeds again with
    /// [`Ended::repeat`] set and changes nothing.
    ///
    /// # Errors
    /// As [`Store::renew`]: a token whose lease was reaped, forced, taken over, released
    /// or ended by an `update` is [`Error::LeaseLost`](crate::Error::LeaseLost).
    fn done(&self, id: &TaskId, token: &Token, agent: &AgentId) -> Result<Ended> {
        self.done_with_reason(id, token, None, agent)
    }

    /// [`Store::done`], recording `reason` in the history's `done` row (a repeat
    /// records nothing).
    ///
    /// # Errors
    /// As [`Store::done`].
    fn done_with_reason(
        &self,
        id: &TaskId,
        token: &Token,
        reason: Option<&Reason>,
        agent: &AgentId,
    ) -> Result<Ended>;

    /// [`Store::done`], then [`Store::claim_next_keyed`]: a worker's step from one task
    /// to the next. The result is the same as the two calls, with one difference that
    /// matters to a fleet of waiting workers: the `done` wakes no waiter by itself.
    /// Waiters are woken only if, after this worker's own claim, a task is still ready
    /// — so in a chain of dependent tasks the worker that finishes one takes the next,
    /// and nineteen others are not woken to find it gone (`docs/waiting.md`).
    ///
    /// Two steps, not one transaction, and each answers for itself: an error from the
    /// `done` is this call's error (nothing was claimed); once the task is done, the
    /// claim's result — a lease, `None`, or its error — is [`DoneThenNext::next`]. After
    /// a claim that failed, waiters are woken so that a ready task is not left waiting.
    /// The call is safe to repeat: the `done` answers a repeat ([`Ended::repeat`]), and
    /// a claim under the same `request` key answers with the grant it made (without a
    /// key, as for [`Store::claim_next`], a claim whose outcome is unknown may have
    /// granted a lease nobody knows of until it expires).
    ///
    /// # Errors
    /// As [`Store::done`].
    fn done_then_claim_next(
        &self,
        id: &TaskId,
        token: &Token,
        lease: LeaseDuration,
        request: Option<&RequestId>,
        agent: &AgentId,
    ) -> Result<DoneThenNext> {
        let ended = self.done(id, token, agent)?;
        let next = self.claim_next_keyed(lease, request, agent);
        Ok(DoneThenNext { ended, next })
    }

    /// Returns every task whose lease ran out to `todo`, in one statement. Claims treat
    /// expired leases as free anyway, so this is housekeeping, not correctness.
    ///
    /// # Errors
    /// Only store failures.
    fn reap(&self, agent: &AgentId) -> Result<Vec<Reaped>>;

    /// Changes fields if the task is still at `expect_version`. A task under a live
    /// lease changes only with its current `token`. Moving a task out of `in_progress`
    /// ends its lease.
    ///
    /// # Errors
    /// [`Error::VersionConflict`](crate::Error::VersionConflict) with the current
    /// version; [`Error::NotHolder`](crate::Error::NotHolder) or
    /// [`Error::LeaseLost`](crate::Error::LeaseLost) under a live lease without the
    /// right token; [`Error::NotFound`](crate::Error::NotFound);
    /// [`Error::Invalid`](crate::Error::Invalid) for a parent that does not exist or
    /// would make a cycle of parents (the message spells it out).
    fn update(
        &self,
        id: &TaskId,
        expect_version: Version,
        patch: &TaskPatch,
        token: Option<&Token>,
        agent: &AgentId,
    ) -> Result<Task>;

    /// The lease history, oldest first: the last `limit` events, of one task or of all
    /// (`u32::MAX` for every event the history keeps; see [`Store::prune`]).
    ///
    /// # Errors
    /// Only store failures.
    fn log(&self, task: Option<&TaskId>, limit: u32) -> Result<Vec<Event>>;

    /// Deletes the oldest lease events beyond `keep`. Runs in short write transactions
    /// of a bounded size, so claims never queue long behind it; returns how many events
    /// went. The newest event always stays, so event seqs keep growing. Never called on
    /// the claim path: `reap` (and `run`) call it.
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) for a bound of zero events or a
    /// non-positive age; store failures.
    fn prune(&self, keep: &Retention) -> Result<u64>;

    /// How many tasks are in each status: every status, in [`Status::ALL`] order,
    /// zeros included.
    ///
    /// # Errors
    /// Only store failures.
    fn counts(&self) -> Result<Vec<(Status, u64)>>;

    /// Makes `task` wait on each of `deps`, in one transaction: all edges or none. An
    /// edge that exists already is reported as [`DepChange::Already`]. `task`'s version
    /// is bumped when an edge was added.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for `task` or a dependency that does
    /// not exist; [`Error::Invalid`](crate::Error::Invalid) for a repeated or self
    /// dependency, or an edge that would close a cycle (the message spells it out);
    /// store failures.
    fn dep_add(&self, task: &TaskId, deps: &[TaskId]) -> Result<Vec<(TaskId, DepChange)>>;

    /// Stops `task` waiting on each of `deps`, in one transaction. An edge that does not
    /// exist is reported as [`DepChange::Absent`]. `task`'s version is bumped when an
    /// edge was removed.
    ///
    /// # Errors
    /// As [`Store::dep_add`], cycles aside.
    fn dep_rm(&self, task: &TaskId, deps: &[TaskId]) -> Result<Vec<(TaskId, DepChange)>>;

    /// Both directions of a task's dependencies with their current states, read in one
    /// snapshot; `None` when there is no such task.
    ///
    /// # Errors
    /// Only store failures.
    fn deps(&self, id: &TaskId) -> Result<Option<Deps>>;

    /// Exactly the tasks [`Store::claim_next`] would take now, in the order it would
    /// take them, claiming nothing; narrowed by `filter`'s tag and limit (its statuses
    /// and assignee must be empty: readiness decides those).
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) for a filter on statuses or assignee;
    /// store failures.
    fn ready(&self, filter: &ListFilter) -> Result<Vec<Task>>;

    /// The open tasks (not `done` or `cancelled`) that wait on at least one dependency,
    /// by priority then age, narrowed by `filter` as [`Store::list`].
    ///
    /// # Errors
    /// Only store failures.
    fn blocked(&self, filter: &ListFilter) -> Result<Vec<Task>>;

    /// The children of `parent` (the tasks whose parent it is) matching `filter`, by
    /// priority then age.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when there is no task `parent`;
    /// store failures.
    fn children(&self, parent: &TaskId, filter: &ListFilter) -> Result<Vec<Task>>;

    /// Deletes every task in `ids`, in one transaction: all or none. Without `force`, a
    /// task under a live lease, or one that tasks outside `ids` wait on, is refused;
    /// with it, the lease ends and those edges are dropped (their `waiting_on`
    /// recounted). Each deletion is a `deleted` history row. The ids stay taken for
    /// ever: [`Store::add`] refuses them, so no token of a deleted task can become
    /// valid again.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) for an unknown id;
    /// [`Error::Held`](crate::Error::Held) for a live lease and
    /// [`Error::Invalid`](crate::Error::Invalid) for dependants, without `force`;
    /// [`Error::Invalid`](crate::Error::Invalid) for an empty list or a repeated id;
    /// store failures.
    fn rm(&self, ids: &[TaskId], force: bool, agent: &AgentId) -> Result<Vec<Deleted>>;

    /// Upserts whole tasks by id in one transaction (`tasklease import`): a missing
    /// task is created with the batch's times, version and attempts; an existing one
    /// that differs is overwritten (version + 1, `updated_at` now) unless a live lease
    /// holds it, then it is left alone and listed in [`ImportOutcome::leased`]; one
    /// that says the same already is left unchanged, so a second import of the same
    /// batch changes nothing. An overwritten task's dependencies are replaced by the
    /// batch's. With [`ImportBatch::dry_run`] everything is worked out and rolled back.
    ///
    /// # Errors
    /// [`Error::Invalid`](crate::Error::Invalid) for an invalid task (see
    /// [`ImportTask::validate`](crate::ImportTask::validate)), an id given twice or a
    /// dependency neither in the batch nor in the store; nothing is written then.
    fn import(&self, batch: &ImportBatch) -> Result<ImportOutcome>;

    /// The live leases `agent` holds, with their tokens, oldest claim first: how an
    /// agent that lost its context (a restart, an unknown outcome) finds its way back.
    /// Whoever can use a name can read its tokens: the token guards against confused
    /// agents, not against one that takes another's name (docs/security.md).
    ///
    /// # Errors
    /// Only store failures.
    fn mine(&self, agent: &AgentId) -> Result<Vec<Lease>>;

    /// Whether [`Store::claim_next`] would find a task now, and when the next live
    /// lease runs out; one read, claiming nothing (`sql/readiness.sql`).
    ///
    /// # Errors
    /// Only store failures.
    fn readiness(&self) -> Result<Readiness>;

    /// A signal that wakes when a task may have become ready, armed when it returns
    /// (see [`ReadySignal`]). SQLite: the wake-up pipe beside the database; PostgreSQL:
    /// a connection of its own that `LISTEN`s.
    ///
    /// # Errors
    /// [`Error::Store`](crate::Error::Store) (or
    /// [`Error::Unavailable`](crate::Error::Unavailable)) when the signal cannot be set
    /// up.
    fn ready_signal(&self) -> Result<Box<dyn ReadySignal>>;

    /// The store's clock, as leases see it.
    ///
    /// # Errors
    /// Only store failures.
    fn now(&self) -> Result<Millis>;

    /// A cheap mark of the database's committed state, for a watcher polling for
    /// change (the web board's live feed): after another handle commits a change, the
    /// next stamp differs from every one read before it. Reads no table. It may also
    /// differ when nothing this store holds changed (PostgreSQL: any write in the
    /// cluster), so a watcher re-reads and finds nothing new; and it does not move for
    /// this handle's own writes on SQLite (the caller knows about those).
    ///
    /// # Errors
    /// Only store failures.
    fn stamp(&self) -> Result<Stamp>;
}

/// What [`Store::stamp`] returns: opaque, compared only for equality with another
/// stamp of the same store handle.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stamp(String);

impl Stamp {
    /// A stamp of `mark`, for a store implementing [`Store::stamp`]: whatever text
    /// changes when the committed state does (SQLite's data version, PostgreSQL's
    /// current snapshot).
    pub fn new(mark: impl Into<String>) -> Stamp {
        Stamp(mark.into())
    }
}
