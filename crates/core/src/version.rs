//! The task row's version: the optimistic-concurrency counter.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A task row's version: bumped by every change to the row, presented back to
/// [`Store::update`](crate::Store::update) so that a write based on a stale read is
/// refused ([`Error::VersionConflict`](crate::Error::VersionConflict)).
///
/// A type of its own, like [`Token`](crate::Token), so that a version cannot be passed
/// where a count, a fence or a limit is expected: every mismatch is a compile error.
///
/// ```
/// use tasklease_core::Version;
///
/// let v = Version::new(3);
/// assert_eq!(v.get(), 3);
/// assert_eq!(v.to_string(), "3");
/// assert_eq!(serde_json::to_string(&v).unwrap(), "3");
/// assert_eq!("3".parse::<Version>().unwrap(), v);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(i64);

impl Version {
    /// The version a new task starts at.
    pub const FIRST: Version = Version(1);

    /// The version numbered `v` (as read from a store or a user; a store refuses a
    /// version a row never had with [`Error::VersionConflict`](crate::Error::VersionConflict)).
    pub const fn new(v: i64) -> Version {
        Version(v)
    }

    /// The number, to store or print.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl From<i64> for Version {
    fn from(v: i64) -> Version {
        Version(v)
    }
}

impl From<Version> for i64 {
    fn from(v: Version) -> i64 {
        v.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Version {
    type Err = std::num::ParseIntError;

    /// A decimal integer, as [`Version`]'s `Display` writes it.
    fn from_str(s: &str) -> Result<Version, Self::Err> {
        s.parse().map(Version)
    }
}
