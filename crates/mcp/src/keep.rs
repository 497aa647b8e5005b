//! `--keep-alive`: the server renews the leases its session claimed for as long as the
//! client stays connected.
//!
//! # Why, and why only while connected
//!
//! An agent is told to renew on a timer, but a model has no timer: it renews when it
//! next thinks of it, and a long tool run or a long thought outlasts the lease. With
//! `--keep-alive` the server, which does have a clock, renews for it. What must not
//! change is the guarantee leases exist for — a dead agent's task comes free — so the
//! renewals are tied to the session, not to the server's wishes: they stop the moment
//! the client disconnects (stdin closes, [`crate::serve`] returns and aborts the
//! renewer), and a client that hangs without disconnecting is the one case this mode
//! cannot tell from a slow one. That is why it is opt-in.
//!
//! # What happens on each failure
//!
//! - A renewal answered `lease_lost` or `not_found`: the lease is no longer ours
//!   (released from the CLI, reaped, force-released, the task deleted). It is dropped
//!   from the set and never tried again; the agent learns of it on its next call with
//!   the token.
//! - Any other error (busy, unavailable): kept, and tried again on the next tick; the
//!   lease's own end still bounds how long a failing store can leave it unrenewed.
//! - done or release through this session: dropped from the set at once, whatever the
//!   answer, so a finished task is never renewed again.
//!
//! Renewals go to the session's write store, so they are ordered with the session's own
//! writes and never overlap one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tasklease::{AgentId, Error, Lease, LeaseDuration, Result, TaskId, Token};

/// How often the renewer looks for a lease that is due.
const TICK: Duration = Duration::from_millis(250);

/// The leases a session holds, shared by its tool calls and its renewer.
#[derive(Default)]
pub(crate) struct Kept {
    leases: Arc<Mutex<HashMap<TaskId, Entry>>>,
}

#[derive(Clone)]
struct Entry {
    token: Token,
    agent: AgentId,
    lease: LeaseDuration,
    renewed: Instant,
}

/// A tool call's handle on [`Kept`]: does nothing unless keep-alive is on.
#[derive(Clone)]
pub(crate) struct Keeping(Option<Arc<Mutex<HashMap<TaskId, Entry>>>>);

impl Kept {
    pub(crate) fn handle(&self, on: bool) -> Keeping {
        Keeping(on.then(|| self.leases.clone()))
    }
}

impl Keeping {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<TaskId, Entry>) -> T) -> Option<T> {
        let m = self.0.as_ref()?;
        Some(f(&mut m.lock().unwrap_or_else(PoisonError::into_inner)))
    }

    /// Keeps `l` renewed to `lease` from each renewal.
    pub(crate) fn hold(&self, l: &Lease, lease: LeaseDuration) {
        self.with(|m| {
            m.insert(
                l.task.clone(),
                Entry {
                    token: l.token,
                    agent: l.agent.clone(),
                    lease,
                    renewed: Instant::now(),
                },
            )
        });
    }

    /// Stops renewing `id`.
    pub(crate) fn drop_task(&self, id: &TaskId) {
        self.with(|m| m.remove(id));
    }

    /// Passes `r` on, dropping `id` when it says the lease is gone.
    pub(crate) fn settle<T>(&self, id: &TaskId, r: Result<T>) -> Result<T> {
        if let Err(Error::LeaseLost { .. } | Error::NotFound(_)) = &r {
            self.drop_task(id);
        }
        r
    }
}

/// Renews the session's kept leases, each at a third of its length, until aborted
/// (at disconnect).
pub(crate) async fn run(server: crate::Server) {
    let keeping = server.kept().handle(true);
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        let due: Vec<(TaskId, Entry)> = keeping
            .with(|m| {
                m.iter()
                    .filter(|(_, e)| {
                        let third = u64::try_from(e.lease.as_millis() / 3).unwrap_or(u64::MAX);
                        e.renewed.elapsed() >= Duration::from_millis(third)
                    })
                    .map(|(id, e)| (id.clone(), e.clone()))
                    .collect()
            })
            .unwrap_or_default();
        if due.is_empty() {
            continue;
        }
        let Ok(store) = server.store().await else {
            continue;
        };
        for (id, e) in due {
            let (task, agent) = (id.clone(), e.agent.clone());
            let r = store
                .call(move |s| s.renew(&task, e.token, e.lease, &agent))
                .await;
            match keeping.settle(&id, r) {
                Ok(_) => {
                    keeping.with(|m| {
                        if let Some(k) = m.get_mut(&id).filter(|k| k.token == e.token) {
                            k.renewed = Instant::now();
                        }
                    });
                }
                Err(err) => tracing::warn!("keep-alive: renewing {id}: {err}"),
            }
        }
    }
}
