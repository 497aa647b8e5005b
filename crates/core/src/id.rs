//! Identifiers validated at the boundary.
//!
//! A [`TaskId`] ends up in SQL parameters, in file names (`task-<id>.lock`) and in
//! shell output, so it is restricted to a small alphabet that is safe in all three:
//! once a value of this type exists it cannot escape a directory or smuggle a
//! control character into a terminal.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;
pub(crate) use crate::text::quote;

/// Longest task or agent id we accept, in bytes (all accepted characters are ASCII).
pub const MAX_ID_LEN: usize = 128;

/// A task identifier: 1–128 characters of `[A-Za-z0-9._-]`, not starting with `.` or
/// `-`, and never containing `..`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    /// Validates `s` as a task id.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming what is wrong and what is allowed.
    pub fn new(s: &str) -> Result<Self, Error> {
        let why = if s.is_empty() {
            Some("it is empty".to_owned())
        } else if s.len() > MAX_ID_LEN {
            Some(format!(
                "it is {} bytes long (at most {MAX_ID_LEN})",
                s.len()
            ))
        } else if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            Some(format!("it contains {}", describe_char(c)))
        } else if s.starts_with('.') || s.starts_with('-') {
            Some("it starts with '.' or '-'".to_owned())
        } else if s.contains("..") {
            Some("it contains '..'".to_owned())
        } else {
            None
        };
        match why {
            None => Ok(TaskId(s.to_owned())),
            Some(why) => Err(Error::invalid(
                "task id",
                format!(
                    "{} is not a valid task id: {why}; allowed: 1-{MAX_ID_LEN} characters of \
                     A-Z a-z 0-9 . _ -, not starting with '.' or '-', without '..'",
                    quote(s)
                ),
            )),
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TaskId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        TaskId::new(s)
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TaskId::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Who is acting: for display and history only. Authority over a task comes from the
/// fencing token, never from this name.
///
/// 1–128 printable characters without whitespace other than a plain space.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct AgentId(String);

impl AgentId {
    /// Validates `s` as an agent id.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming what is wrong and what is allowed.
    pub fn new(s: &str) -> Result<Self, Error> {
        let why = if s.trim().is_empty() {
            Some("it is empty".to_owned())
        } else if s.len() > MAX_ID_LEN {
            Some(format!(
                "it is {} bytes long (at most {MAX_ID_LEN})",
                s.len()
            ))
        } else {
            crate::text::forbidden(s, &[]).map(|c| format!("it contains {}", describe_char(c)))
        };
        match why {
            None => Ok(AgentId(s.to_owned())),
            Some(why) => Err(Error::invalid(
                "agent id",
                format!(
                    "{} is not a valid agent id: {why}; allowed: 1-{MAX_ID_LEN} bytes of \
                     printable characters (no control characters, no bidirectional \
                     overrides or isolates)",
                    quote(s)
                ),
            )),
        }
    }

    /// An agent id read back from a store, taken as it is stored. Rows written by
    /// plain SQL, another client or an older tasklease never went through
    /// [`AgentId::new`]; refusing them on read would let one odd row break every
    /// `list` and `show`. Human output escapes them instead ([`crate::text`]).
    pub fn from_stored(s: impl Into<String>) -> AgentId {
        AgentId(s.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AgentId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        AgentId::new(s)
    }
}

impl<'de> Deserialize<'de> for AgentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AgentId::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A tag on a task: 1–64 characters of `[A-Za-z0-9._:/-]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    /// Validates `s` as a tag.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming what is wrong and what is allowed.
    pub fn new(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'));
        if ok {
            return Ok(Tag(s.to_owned()));
        }
        let bad = s
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && !matches!(c, '.' | '_' | '-' | ':' | '/'))
            .map(|c| format!(" (it contains {})", describe_char(c)))
            .unwrap_or_default();
        Err(Error::invalid(
            "tag",
            format!(
                "{} is not a valid tag{bad}; allowed: 1-64 characters of A-Z a-z 0-9 . _ - : /",
                quote(s)
            ),
        ))
    }

    /// A tag read back from a store, taken as it is stored: see
    /// [`AgentId::from_stored`].
    pub fn from_stored(s: impl Into<String>) -> Tag {
        Tag(s.into())
    }

    /// The tag as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Tag {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Tag::new(s)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Tag::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A claim's idempotency key: a claim retried with the same key, by the same agent,
/// while the lease it granted is live, answers with that lease instead of claiming
/// again. 1–128 characters of `[A-Za-z0-9._:-]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RequestId(String);

impl RequestId {
    /// Validates `s` as a request id.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming what is wrong and what is allowed.
    pub fn new(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= MAX_ID_LEN
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
        if ok {
            Ok(RequestId(s.to_owned()))
        } else {
            Err(Error::invalid(
                "request id",
                format!(
                    "{} is not a valid request id; allowed: 1-{MAX_ID_LEN} characters of \
                     A-Z a-z 0-9 . _ - :",
                    quote(s)
                ),
            ))
        }
    }

    /// A new key no other claim has used: this process's id, the time and a counter.
    pub fn generate() -> RequestId {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        RequestId(format!(
            "{}.{nanos}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RequestId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        RequestId::new(s)
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RequestId::new(&s).map_err(serde::de::Error::custom)
    }
}

fn describe_char(c: char) -> String {
    match c {
        '\0' => "a NUL byte".to_owned(),
        '/' | '\\' => format!("a path separator '{c}'"),
        c if crate::text::is_terminal_control(c) => crate::text::describe(c),
        c if c.is_whitespace() => "whitespace".to_owned(),
        c => format!("'{c}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_accepted() {
        for s in [
            "T-1",
            "a",
            "feature.login_v2",
            "A-b.C_d",
            &"x".repeat(MAX_ID_LEN),
        ] {
            assert_eq!(TaskId::new(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn task_ids_refused_with_reason() {
        let cases = [
            ("", "empty"),
            ("../x", "path separator"),
            ("a/b", "path separator"),
            ("a\\b", "path separator"),
            ("a..b", "'..'"),
            (".hidden", "starts with"),
            ("-flag", "starts with"),
            ("a\0b", "NUL"),
            ("a b", "whitespace"),
            ("é", "'é'"),
        ];
        for (s, why) in cases {
            let msg = TaskId::new(s).unwrap_err().to_string();
            assert!(msg.contains(why), "{s:?}: {msg}");
            assert!(msg.contains("allowed"), "{s:?}: {msg}");
        }
        let long = "x".repeat(10_000);
        let msg = TaskId::new(&long).unwrap_err().to_string();
        assert!(msg.contains("10000 bytes"), "{msg}");
        assert!(
            msg.len() < 400,
            "error message must not echo 10 kB: {}",
            msg.len()
        );
    }

    #[test]
    fn agent_ids() {
        assert!(AgentId::new("agent-host-1").is_ok());
        assert!(AgentId::new("Claude Code").is_ok());
        assert!(AgentId::new("").is_err());
        assert!(AgentId::new("  ").is_err());
        assert!(AgentId::new("a\nb").is_err());
        assert!(AgentId::new(&"a".repeat(129)).is_err());
    }

    #[test]
    fn ids_deserialize_through_validation() {
        assert!(serde_json::from_str::<TaskId>("\"T-1\"").is_ok());
        assert!(serde_json::from_str::<TaskId>("\"../etc\"").is_err());
        assert!(serde_json::from_str::<Tag>("\"a b\"").is_err());
    }
}

/// The conversions people reach for, the same for every validated string id: a `&str`
/// view (`AsRef`, and `Borrow` so a `HashMap<TaskId, _>` can be looked up by `&str`),
/// and the `String` back out.
macro_rules! str_id_conversions {
    ($($t:ty),+) => {$(
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<$t> for String {
            fn from(id: $t) -> String {
                id.0
            }
        }

        impl TryFrom<String> for $t {
            type Error = Error;
            fn try_from(s: String) -> Result<Self, Error> {
                s.parse()
            }
        }

        impl TryFrom<&str> for $t {
            type Error = Error;
            fn try_from(s: &str) -> Result<Self, Error> {
                s.parse()
            }
        }
    )+};
}

str_id_conversions!(TaskId, AgentId, Tag, RequestId);

#[cfg(test)]
mod conversion_tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn ids_convert_to_and_from_strings_and_look_up_by_str() {
        let id = TaskId::try_from("parser").unwrap();
        let mut m = HashMap::new();
        m.insert(id.clone(), 1);
        assert_eq!(m.get("parser"), Some(&1));
        assert_eq!(id.as_ref(), "parser");
        assert_eq!(String::from(id), "parser");
        assert!(TaskId::try_from("../x".to_owned()).is_err());
        assert!(Tag::try_from("has space").is_err());
        assert_eq!(AgentId::try_from("alice").unwrap().as_ref(), "alice");
        assert!(RequestId::try_from("").is_err());
    }
}
