//! How long a writer waited for its turn, and how often SQLite made it retry.
//!
//! `tasklease status` reports contention from the lease history, and the history row of
//! a claim is written in the claim's own transaction — so the figures must be known by
//! then, without another statement. The wait is measured around taking the connection
//! and `BEGIN IMMEDIATE`. The retries come from a busy handler that replaces SQLite's
//! built-in timeout with the very same back-off schedule
//! (`sqliteDefaultBusyCallback`: 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, then 100 ms
//! sleeps until the timeout is spent) and counts its calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// What taking the write lock cost one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Wait {
    /// Microseconds from asking for the connection to holding the write lock.
    pub(crate) us: i64,
    /// Busy-handler calls (retries) on the way.
    pub(crate) busy: i64,
}

/// Counts busy retries on one connection. Only the thread holding the connection's
/// mutex resets and reads it, so the count belongs to that thread's transaction.
#[derive(Clone, Debug, Default)]
pub(crate) struct Busy(Arc<AtomicI64>);

impl Busy {
    /// Installs the counting handler on `conn`, giving up after `timeout`.
    pub(crate) fn install(conn: &mut Connection, timeout: Duration) -> rusqlite::Result<Busy> {
        let busy = Busy::default();
        let count = busy.0.clone();
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        conn.busy_handler(Some(move |n: i32| {
            count.fetch_add(1, Ordering::Relaxed);
            match delay(n, timeout_ms) {
                Some(d) => {
                    std::thread::sleep(d);
                    true
                }
                None => false,
            }
        }))?;
        Ok(busy)
    }

    /// Starts timing a wait for the write lock.
    pub(crate) fn start(&self) -> Instant {
        self.0.store(0, Ordering::Relaxed);
        Instant::now()
    }

    /// The wait since `start`.
    pub(crate) fn waited(&self, start: Instant) -> Wait {
        Wait {
            us: i64::try_from(start.elapsed().as_micros()).unwrap_or(i64::MAX),
            busy: self.0.load(Ordering::Relaxed),
        }
    }
}

const DELAYS_MS: [i64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];
const TOTALS_MS: [i64; 12] = [0, 1, 3, 8, 18, 33, 53, 78, 103, 128, 178, 228];

/// The sleep before retry `n` (0-based), or `None` once `timeout_ms` is spent.
fn delay(n: i32, timeout_ms: i64) -> Option<Duration> {
    let n = i64::from(n.max(0));
    let last = DELAYS_MS.len() as i64 - 1;
    let (delay, prior) = match usize::try_from(n).ok().filter(|&i| i < DELAYS_MS.len()) {
        Some(i) => (DELAYS_MS[i], TOTALS_MS[i]),
        None => (DELAYS_MS[11], TOTALS_MS[11] + DELAYS_MS[11] * (n - last)),
    };
    let delay = delay.min(timeout_ms.saturating_sub(prior));
    u64::try_from(delay)
        .ok()
        .filter(|&d| d > 0)
        .map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_sqlite_and_stops_at_the_timeout() {
        let ms = |n, t| delay(n, t).map(|d| d.as_millis() as i64);
        assert_eq!(ms(0, 1000), Some(1));
        assert_eq!(ms(11, 1000), Some(100));
        assert_eq!(ms(13, 1000), Some(100));
        // 228 ms slept before call 11; a 250 ms timeout leaves 22.
        assert_eq!(ms(11, 250), Some(22));
        assert_eq!(ms(12, 250), None);
        let total: i64 = (0..).map_while(|n| ms(n, 30_000)).sum();
        assert_eq!(total, 30_000);
        assert_eq!(ms(0, 0), None);
    }
}
