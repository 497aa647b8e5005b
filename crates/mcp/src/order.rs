//! Tool calls reach the store in the order the client sent them.
//!
//! rmcp runs every request as a task of its own, so two calls sent back to back —
//! `add X`, then at once `claim X` — race, and the claim could run first and find no
//! X. The store side already runs calls in the order they are queued (one
//! [`tasklease::asynchronous::AsyncStore`] per session); what is missing is queueing
//! them in the order they arrived. So the transport, which reads the input in order,
//! gives each `tools/call` request a numbered [`Turn`] (in the request's extensions,
//! which rmcp hands to the handler), and a handler queues its store call only when
//! every earlier turn has been passed.
//!
//! A turn is passed when its handler has queued its call, or — whatever happens to
//! the request (bad arguments, an unknown tool, cancellation) — when the last handle
//! to it is dropped, so one lost request can never stall the ones behind it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// Hands out turns in arrival order and tracks which have been passed.
pub(crate) struct Turnstile {
    /// The next number to hand out, and the turns passed out of order, waiting for
    /// the ones before them.
    state: Mutex<State>,
    /// The lowest turn not yet passed: a handler waits until it reaches its own.
    serving: watch::Sender<u64>,
}

struct State {
    next: u64,
    passed: BTreeSet<u64>,
}

impl Turnstile {
    pub(crate) fn new() -> Arc<Turnstile> {
        Arc::new(Turnstile {
            state: Mutex::new(State {
                next: 0,
                passed: BTreeSet::new(),
            }),
            serving: watch::Sender::new(0),
        })
    }

    /// The next turn, for a request just read.
    pub(crate) fn take(self: &Arc<Turnstile>) -> Turn {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let n = st.next;
        st.next += 1;
        Turn(Arc::new(Ticket {
            n,
            gate: self.clone(),
            passed: AtomicBool::new(false),
        }))
    }

    fn pass(&self, n: u64) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.passed.insert(n);
        let mut serving = *self.serving.borrow();
        while st.passed.remove(&serving) {
            serving += 1;
        }
        self.serving.send_replace(serving);
    }
}

/// A request's place in line; cloned freely (rmcp's extensions require it), passed
/// once.
#[derive(Clone)]
pub(crate) struct Turn(Arc<Ticket>);

struct Ticket {
    n: u64,
    gate: Arc<Turnstile>,
    passed: AtomicBool,
}

impl Turn {
    /// Waits until every earlier turn has been passed.
    pub(crate) async fn wait(&self) {
        let mut serving = self.0.gate.serving.subscribe();
        // The sender lives in the turnstile this ticket holds, so it cannot close.
        let _ = serving.wait_for(|s| *s >= self.0.n).await;
    }

    /// Lets the next turn go.
    pub(crate) fn pass(&self) {
        self.0.pass();
    }
}

impl Ticket {
    fn pass(&self) {
        if !self.passed.swap(true, Ordering::SeqCst) {
            self.gate.pass(self.n);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pass();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn turns_go_in_order_and_a_dropped_one_does_not_stall_the_rest() {
        let gate = Turnstile::new();
        let (a, b, c) = (gate.take(), gate.take(), gate.take());
        let waiting = tokio::time::timeout(Duration::from_millis(50), c.wait()).await;
        assert!(waiting.is_err(), "turn 2 went before 0 and 1");
        drop(b);
        a.wait().await;
        a.pass();
        tokio::time::timeout(Duration::from_secs(10), c.wait())
            .await
            .expect("turn 2 waits for a turn that was dropped");
    }
}
