//! Time: instants in epoch milliseconds, lease durations, and the clock a store reads.
//!
//! Every lease instant (`assigned_at`, `lock_until`) is computed *inside the database*
//! from the database's own clock, so agents with skewed clocks still agree on who holds
//! what. The only clock in this crate is [`Clock::Manual`], which tests use to replace
//! the database clock; [`Clock::Database`] means "ask the database".

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

use crate::Error;

/// An instant as milliseconds since the Unix epoch, read from the database clock.
///
/// Made with [`Millis::from_millis`] or from a [`std::time::SystemTime`], read with
/// [`Millis::as_millis`]; the field is private, so the representation can change.
///
/// ```compile_fail
/// let m = tasklease_core::Millis(5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Millis(i64);

impl Millis {
    /// The instant `ms` milliseconds after the Unix epoch (before it when negative).
    pub const fn from_millis(ms: i64) -> Millis {
        Millis(ms)
    }

    /// Milliseconds since the Unix epoch (negative before it), as stores keep them.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The instant as RFC 3339 in UTC with millisecond precision, e.g.
    /// `2026-11-27T14:03:32.123Z`.
    pub fn to_rfc3339(self) -> String {
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(ts) => format!("{ts:.3}"),
            Err(_) => format!("@{}ms", self.0),
        }
    }

    /// `self - earlier`, as a signed millisecond count.
    pub fn since(self, earlier: Millis) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl From<std::time::SystemTime> for Millis {
    /// Milliseconds since the epoch (negative before it), saturating far out.
    fn from(t: std::time::SystemTime) -> Millis {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Millis::from_millis(ms(d)),
            Err(e) => Millis::from_millis(-ms(e.duration())),
        }
    }
}

impl From<Millis> for std::time::SystemTime {
    fn from(m: Millis) -> std::time::SystemTime {
        let d = std::time::Duration::from_millis(m.0.unsigned_abs());
        if m.0 >= 0 {
            std::time::UNIX_EPOCH + d
        } else {
            std::time::UNIX_EPOCH - d
        }
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// How long a lease lasts: more than zero, at most [`LeaseDuration::MAX`].
///
/// Parsed from strings such as `90s`, `30m`, `2h`, `1h30m` or `500ms`. A bare number
/// is refused because its unit would be a guess.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct LeaseDuration(i64);

impl LeaseDuration {
    /// The longest lease accepted: 7 days. Longer work renews (see `tasklease run`).
    pub const MAX: LeaseDuration = LeaseDuration(7 * 24 * 3_600_000);
    /// The lease taken when none is given: 30 minutes.
    pub const DEFAULT: LeaseDuration = LeaseDuration(30 * 60_000);

    /// A duration of `ms` milliseconds.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `ms` is zero, negative or above [`LeaseDuration::MAX`].
    pub fn from_millis(ms: i64) -> Result<Self, Error> {
        if ms <= 0 {
            return Err(Error::invalid(
                "lease",
                format!("a lease of {ms} ms is not positive; allowed: 1ms to 7d"),
            ));
        }
        if ms > Self::MAX.0 {
            return Err(Error::invalid(
                "lease",
                format!(
                    "a lease of {} is longer than the maximum of 7d; renew instead",
                    LeaseDuration(ms)
                ),
            ));
        }
        Ok(LeaseDuration(ms))
    }

    /// The duration in milliseconds.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// The duration as a [`std::time::Duration`].
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.unsigned_abs())
    }
}

impl TryFrom<std::time::Duration> for LeaseDuration {
    type Error = Error;

    /// A lease of `d`, whole milliseconds.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `d` is under a millisecond or over
    /// [`LeaseDuration::MAX`].
    fn try_from(d: std::time::Duration) -> Result<Self, Error> {
        LeaseDuration::from_millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

impl From<LeaseDuration> for std::time::Duration {
    fn from(l: LeaseDuration) -> std::time::Duration {
        l.to_std()
    }
}

impl Default for LeaseDuration {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl FromStr for LeaseDuration {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let ms = parse_duration_ms(s).map_err(|why| {
            Error::invalid(
                "lease",
                format!(
                    "{} is not a lease duration: {why}; allowed: a number with a unit \
                     (ms, s, m, h, d), e.g. 90s, 30m, 2h, 1h30m, up to 7d",
                    crate::id::quote(s)
                ),
            )
        })?;
        LeaseDuration::from_millis(ms)
    }
}

impl<'de> Deserialize<'de> for LeaseDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for LeaseDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        if ms > 0 {
            write!(f, "{ms}ms")?;
        }
        Ok(())
    }
}

/// `d` the way durations are written on the command line (`2s`, `1m30s`, `500ms`), to
/// the millisecond.
pub fn human_duration(d: std::time::Duration) -> String {
    LeaseDuration(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).to_string()
}

/// Parses a bound on a wait, such as `--busy-timeout`: a number with a unit, like a
/// lease (`500ms`, `2s`, `1m30s`), more than zero.
///
/// # Errors
/// [`Error::Invalid`] naming `field` and the forms allowed.
pub fn parse_wait(field: &'static str, s: &str) -> Result<std::time::Duration, Error> {
    match parse_duration_ms(s) {
        Ok(ms) if ms > 0 => Ok(std::time::Duration::from_millis(ms.unsigned_abs())),
        got => Err(Error::invalid(
            field,
            format!(
                "{} is not a {field}: {}; allowed: a number with a unit (ms, s, m, h), \
                 more than zero, e.g. 500ms, 2s, 30s, 1m30s",
                crate::id::quote(s),
                got.err().unwrap_or(DurationError("it is zero"))
            ),
        )),
    }
}

/// Why a duration did not parse: said as the middle of a sentence ("… is not a
/// lease duration: {why}; allowed: …"), which each caller finishes with what it allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationError(&'static str);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for DurationError {}

/// Parses `1h30m`-style durations (units ms, s, m, h, d; each number needs one) into
/// milliseconds.
///
/// # Errors
/// [`DurationError`] saying why not.
pub fn parse_duration_ms(s: &str) -> Result<i64, DurationError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(DurationError("it is empty"));
    }
    if s.starts_with('-') {
        return Err(DurationError("it is negative"));
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError("expected a number"));
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError("the number is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let size = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(DurationError("a number needs a unit")),
            _ => return Err(DurationError("unknown unit")),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(size)
            .and_then(|v| total.checked_add(v))
            .ok_or(DurationError("it is too large"))?;
    }
    Ok(total)
}

/// Where a store reads "now" from.
///
/// Production code always uses [`Clock::Database`]. Tests use [`Clock::Manual`] to move
/// time by hand; the value is still handed to the database as the statement's `now`,
/// so the same SQL runs either way.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The database server's clock (SQLite: the host clock via `unixepoch('subsec')`;
    /// PostgreSQL: `clock_timestamp()`).
    #[default]
    Database,
    /// A clock set by hand, shared by every clone.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `start`.
    pub fn manual(start: Millis) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(start.0)))
    }

    /// The injected instant, or `None` when the database should read its own clock.
    pub fn injected(&self) -> Option<i64> {
        match self {
            Clock::Database => None,
            Clock::Manual(t) => Some(t.load(Ordering::SeqCst)),
        }
    }

    /// Moves a manual clock forward by `ms`; does nothing to the database clock.
    pub fn advance(&self, ms: i64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let ok = [
            ("90s", 90_000),
            ("30m", 1_800_000),
            ("2h", 7_200_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("7d", 604_800_000),
            (" 5m ", 300_000),
        ];
        for (s, ms) in ok {
            assert_eq!(s.parse::<LeaseDuration>().unwrap().as_millis(), ms, "{s}");
        }
    }

    #[test]
    fn durations_refused() {
        for s in [
            "",
            "0s",
            "0",
            "90",
            "-5m",
            "5x",
            "m",
            "1.5h",
            "8d",
            "99999999999999999999s",
            "5 m",
            "abc",
        ] {
            let err = s.parse::<LeaseDuration>().unwrap_err();
            assert!(matches!(err, Error::Invalid { .. }), "{s}: {err}");
        }
        let msg = "garbage".parse::<LeaseDuration>().unwrap_err().to_string();
        assert!(msg.contains("allowed"), "{msg}");
    }

    #[test]
    fn durations_display_round_trip() {
        for s in ["90s", "30m", "2h", "1h30m", "500ms", "1d2h3m4s5ms"] {
            let d: LeaseDuration = s.parse().unwrap();
            let back: LeaseDuration = d.to_string().parse().unwrap();
            assert_eq!(d, back);
        }
        assert_eq!("90s".parse::<LeaseDuration>().unwrap().to_string(), "1m30s");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(
            Millis::from_millis(0).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Millis::from_millis(1_795_788_212_123).to_rfc3339(),
            "2026-11-27T14:03:32.123Z"
        );
    }

    #[test]
    fn manual_clock_is_shared() {
        let c = Clock::manual(Millis::from_millis(1000));
        let c2 = c.clone();
        c.advance(500);
        assert_eq!(c2.injected(), Some(1500));
        assert_eq!(Clock::Database.injected(), None);
    }
}

#[cfg(test)]
mod conversion_tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;

    #[test]
    fn lease_durations_and_instants_convert_from_std() {
        let l = LeaseDuration::try_from(Duration::from_secs(90)).unwrap();
        assert_eq!(l.as_millis(), 90_000);
        assert_eq!(Duration::from(l), Duration::from_secs(90));
        assert!(LeaseDuration::try_from(Duration::from_micros(10)).is_err());
        assert!(LeaseDuration::try_from(Duration::from_secs(8 * 86_400)).is_err());
        let t = UNIX_EPOCH + Duration::from_millis(1_767_952_800_123);
        assert_eq!(Millis::from(t), Millis::from_millis(1_767_952_800_123));
        assert_eq!(Millis::from(t).as_millis(), 1_767_952_800_123);
        assert_eq!(SystemTime::from(Millis::from_millis(1_767_952_800_123)), t);
        let before = UNIX_EPOCH - Duration::from_millis(5);
        assert_eq!(Millis::from(before), Millis::from_millis(-5));
        assert_eq!(SystemTime::from(Millis::from_millis(-5)), before);
    }
}
