//! The live feed: tells every open board that the store changed, so it fetches itself
//! again.
//!
//! # Why a poll of the store's stamp
//!
//! The board must show a claim, renewal, release or done by any agent within a second,
//! and an idle board must cost the agents nothing worth mentioning. The agents are
//! other processes (often on other machines, for PostgreSQL), so the only place a
//! change is visible is the database. [`tasklease::Store::stamp`] is the cheapest
//! question that notices every committed change: on SQLite `PRAGMA data_version`
//! (read from the WAL index in shared memory — no table, no lock, no writer turn), on
//! PostgreSQL the current snapshot (no table either). One poller per server asks it
//! every `poll` (250 ms by default) on a store thread of its own, and only while at
//! least one browser is connected: a server nobody watches asks nothing. Each
//! browser gets one small event per change, never the data itself: it fetches the
//! board again with its own filters, and coalesces bursts (see `board.js`).
//!
//! Another branch adds wake-ups (PostgreSQL `LISTEN/NOTIFY`, the SQLite writer queue's
//! signal); this module is the one place to swap the poll for them: anything that
//! calls [`Feed::changed`] (in place of the stamp comparison) drives the boards.
//!
//! # Failures
//!
//! - A stamp read fails (database gone, server restarting): the poller logs it once,
//!   keeps its last stamp and tries again after a longer pause (up to 5 s); boards keep
//!   what they show and update once it answers again. The first answer after a
//!   failure counts as a change, since something may have happened meanwhile.
//! - A browser connects after a change it did not see (made between its page load and
//!   its subscription): each stream starts with a `hello` the script answers with a
//!   fetch, and the poller's first read after idling counts as a change.
//! - A browser disconnects: its stream ends; when the last one goes, polling stops.
//! - The server shuts down: every stream ends at once, so graceful shutdown does not
//!   wait for browsers that would otherwise stay connected for ever.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tasklease::Stamp;
use tasklease::asynchronous::AsyncStore;
use tokio::sync::{Notify, watch};

/// The pause after a failed read grows to this.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One poller, shared by every connected browser.
#[derive(Clone)]
pub struct Feed {
    /// The change count; a browser's receiver wakes when it grows.
    changes: watch::Sender<u64>,
    /// Woken when a browser connects, so an idle poller starts again.
    watched: Arc<Notify>,
    /// What the poller did, for `/api/feed` (the idle cost, measured).
    counters: Arc<Counters>,
    poll: Duration,
}

/// What the poller has done since the server started.
#[derive(Default)]
struct Counters {
    /// Stamp reads made.
    polls: AtomicU64,
    /// Of those, reads that failed.
    failures: AtomicU64,
}

impl Feed {
    /// Starts the poller on the current runtime; it reads stamps from `store` while
    /// anyone is subscribed, until `stopping` turns true.
    pub fn start(store: AsyncStore, poll: Duration, stopping: watch::Receiver<bool>) -> Feed {
        let (changes, _) = watch::channel(0);
        let feed = Feed {
            changes,
            watched: Arc::new(Notify::new()),
            counters: Arc::new(Counters::default()),
            poll,
        };
        tokio::spawn(feed.clone().run(store, stopping));
        feed
    }

    /// A receiver that wakes on every change from now on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        let rx = self.changes.subscribe();
        self.watched.notify_one();
        rx
    }

    /// Tells every subscriber that the store changed.
    pub fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// The poller's figures: `{"poll_ms", "polls", "failures", "changes",
    /// "subscribers"}`.
    pub fn figures(&self) -> serde_json::Value {
        serde_json::json!({
            "poll_ms": u64::try_from(self.poll.as_millis()).unwrap_or(u64::MAX),
            "polls": self.counters.polls.load(Ordering::Relaxed),
            "failures": self.counters.failures.load(Ordering::Relaxed),
            "changes": *self.changes.borrow(),
            "subscribers": self.changes.receiver_count(),
        })
    }

    async fn run(self, store: AsyncStore, mut stopping: watch::Receiver<bool>) {
        let mut last: Option<Stamp> = None;
        let mut pause = self.poll;
        loop {
            if *stopping.borrow() {
                return;
            }
            if self.changes.receiver_count() == 0 {
                // Nobody watches: ask nothing until someone connects. What happened
                // meanwhile is in the page they load.
                last = None;
                tokio::select! {
                    () = self.watched.notified() => {}
                    _ = stopping.changed() => return,
                }
                continue;
            }
            self.counters.polls.fetch_add(1, Ordering::Relaxed);
            match store.stamp().await {
                Ok(stamp) => {
                    // The first read after idling is news too: a board loaded before
                    // it may have missed a change made just before.
                    // Back after failures: whatever happened meanwhile is news.
                    if last.as_ref() != Some(&stamp) || pause != self.poll {
                        self.changed();
                    }
                    last = Some(stamp);
                    pause = self.poll;
                }
                Err(e) => {
                    self.counters.failures.fetch_add(1, Ordering::Relaxed);
                    if pause == self.poll {
                        tracing::warn!("live feed: cannot read the store's stamp: {e}");
                    }
                    pause = (pause * 2).min(MAX_BACKOFF);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stopping.changed() => return,
            }
        }
    }
}
