//! What a store offers an agent that waits for work: a look at whether anything is
//! ready ([`Readiness`]) and a [`ReadySignal`] that wakes it when something may have
//! become ready. The waiting itself — bounds, timers, the fallback poll — is policy and
//! lives above the store (`tasklease::wait`).

use std::time::Duration;

use crate::{Millis, Result};

/// Whether a claim-next would find a task now, and when the next live lease runs out
/// (a task whose lease runs out becomes ready without any write: a waiter sets a timer
/// for it). Read in one snapshot, claiming nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// Some task is ready: `todo` with every dependency satisfied, or `in_progress`
    /// under an expired lease.
    pub ready: bool,
    /// The earliest `lock_until` of the leases still live, if any.
    pub next_expiry: Option<Millis>,
    /// The store's clock at the read.
    pub now: Millis,
}

impl Readiness {
    /// How long until the next live lease runs out, on the store's clock.
    pub fn until_expiry(&self) -> Option<Duration> {
        self.next_expiry.map(|t| {
            Duration::from_millis(u64::try_from(t.as_millis() - self.now.as_millis()).unwrap_or(0))
        })
    }
}

/// Wakes a waiting agent when a task may have become ready: every write that can make
/// one ready (`add`, `done`, `release`, `release_force`, `reap`, `update`, `dep_rm`,
/// `rm`, `import`) rings it after its commit, in this process or any other.
///
/// A signal is armed from the moment [`crate::Store::ready_signal`] returns: a change
/// committed after that is never missed by a [`ReadySignal::wait`] that follows, even
/// one that starts later. A wake-up says *may*: the waiter looks
/// ([`crate::Store::readiness`]) before it claims.
pub trait ReadySignal: Send {
    /// Blocks until woken or `timeout` has passed; `true` when woken.
    ///
    /// # Errors
    /// Only failures of the signal itself (its channel is gone); a store whose
    /// notifications break says so by waking (something may have been missed).
    fn wait(&mut self, timeout: Duration) -> Result<bool>;

    /// Forgets the wake-ups received so far, saying whether there were any. Called
    /// before a look at the store, which sees every change those wake-ups were for.
    fn drain(&mut self) -> bool;

    /// Hands a wake-up on to one other waiter. Where one change wakes one waiter (the
    /// SQLite store), the waiter that took a task and still sees others ready calls this
    /// so that the rest are taken too; where every waiter is woken anyway it does
    /// nothing.
    fn pass_on(&self);

    /// Whether [`ReadySignal::pass_on`] does anything (one change wakes one waiter).
    fn wakes_one(&self) -> bool;

    /// What the waiter waits on, for messages ("the wake-up pipe /p/tasks.db-queue/ready").
    fn describe(&self) -> String;
}
