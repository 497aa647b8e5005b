//! Tokens: a fence number and a bearer secret.
//!
//! A token does two jobs. Its **fence** — a per-task integer that grows with every new
//! claim and is never handed out twice — fences out *stale* holders: an agent paused or
//! partitioned past its lease presents an old fence, and an external system that records
//! the highest fence it has seen can refuse its late writes. Its **secret** — at least
//! 64 random bits drawn from the operating system for every new lease — makes the token
//! unguessable, so that an agent that never claimed a task cannot finish it by passing
//! a plausible small integer (a hallucinated argument is enough: fences start at 1).
//!
//! Written as `<fence>.<secret>`, e.g. `7.k3f9q2m8x1c4v6b0`: digits, a dot, then 16–24 of
//! `a–z 0–9`, safe unquoted in a URL, a shell and JSON. Claims mint 16 characters of a
//! 32-letter alphabet (80 bits).
//!
//! **Why the secret is stored in plain text.** The holder must be able to find its token
//! again after a restart (`mine`), so the store keeps it; a hash could not be handed
//! back. The database is not a boundary here anyway: whoever can read it can write it.
//! What the secret stops is a *confused agent* going through tasklease, so every check
//! compares it in constant time (SQLite: the `tasklease_secret_eq` function this crate's
//! [`secret_eq`] backs; PostgreSQL: SHA-256 digests compared, so timing reveals nothing
//! about the secret), and no output meant for others (`list`, `show`, `status`, `log`,
//! the board) ever carries it: the history keeps fences only.
//!
//! **Legacy tokens.** Databases from before migration 0005 issued bare integers. A lease
//! live at migration time has no secret; its bare integer keeps working until that lease
//! ends, and every later claim mints a secret. A bare integer presented on a lease that
//! has a secret is refused like any wrong token ([`crate::Error::LeaseLost`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::id::quote;

/// The shortest and longest secret accepted.
const SECRET_LEN: std::ops::RangeInclusive<usize> = 16..=24;
/// The alphabet minted secrets use (Crockford's base 32, lower case: no i, l, o, u).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// What a token looks like, for error messages.
pub const TOKEN_FORM: &str = "the token a claim returned: <fence>.<secret>, a positive \
     integer, a dot and 16-24 of a-z 0-9 (e.g. 7.k3f9q2m8x1c4v6b0)";

/// A lease's bearer secret: 16–24 of `a–z 0–9`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// A fresh secret: 80 bits from the operating system's random source.
    ///
    /// # Errors
    /// [`Error::Store`] when the operating system gives no randomness (no claim can
    /// then be made safely).
    pub fn random() -> Result<Secret, Error> {
        let mut bytes = [0u8; 10];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::store("draw a token's secret", e.to_string()))?;
        // 80 bits, five at a time.
        let bits = bytes
            .iter()
            .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        let s = (0..16)
            .map(|i| char::from(ALPHABET[((bits >> (75 - 5 * i)) & 31) as usize]))
            .collect();
        Ok(Secret(s))
    }

    /// A secret read back from a store, checked.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `s` is not 16–24 of `a–z 0–9`.
    pub fn new(s: &str) -> Result<Secret, Error> {
        if SECRET_LEN.contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            Ok(Secret(s.to_owned()))
        } else {
            Err(Error::invalid(
                "token",
                format!(
                    "a token's secret must be 16-24 of a-z 0-9, not {}",
                    quote(s)
                ),
            ))
        }
    }

    /// The text, to store or send to its holder.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug output ends up in logs and panics: never the secret itself.
        f.write_str("Secret(…)")
    }
}

/// Whether a stored secret and a presented one are the same, in time that depends on
/// their lengths only. Two absent secrets match (a lease from before secrets, presented
/// by its bare integer); one absent and one present never do.
pub fn secret_eq(stored: Option<&str>, given: Option<&str>) -> bool {
    match (stored, given) {
        (None, None) => true,
        (Some(a), Some(b)) if a.len() == b.len() => {
            let diff = a
                .bytes()
                .zip(b.bytes())
                .fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
            diff == 0
        }
        _ => false,
    }
}

/// A lease's token: its fence number and its bearer secret. Every write a lease
/// protects (renew, release, done, and updates under a live lease) presents the whole
/// token; the store refuses one that is not the task's current one, comparing the
/// secret in constant time. See the module docs for the design.
///
/// Equality (`==`) compares the whole token and is not constant-time: stores check
/// tokens with [`Token::matches`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token {
    fence: i64,
    secret: Option<Secret>,
}

impl Token {
    /// A token from its parts.
    pub fn new(fence: i64, secret: Secret) -> Token {
        Token {
            fence,
            secret: Some(secret),
        }
    }

    /// A token from before migration 0005: a bare fence number, accepted only by a
    /// lease that was live when the store migrated (it has no secret).
    pub fn legacy(fence: i64) -> Token {
        Token {
            fence,
            secret: None,
        }
    }

    /// A token as a store reads it back: its fence and stored secret (`None` for a
    /// lease from before secrets).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed stored secret.
    pub fn from_parts(fence: i64, secret: Option<&str>) -> Result<Token, Error> {
        Ok(Token {
            fence,
            secret: secret.map(Secret::new).transpose()?,
        })
    }

    /// The fence number: grows with every new claim of the task, never reused. Pass it
    /// to external systems to fence out stale writers; it grants nothing by itself.
    pub fn fence(&self) -> i64 {
        self.fence
    }

    /// The secret, if the token has one (tokens minted before migration 0005 do not).
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_ref().map(Secret::as_str)
    }

    /// Whether this token is the one a task row holds: same fence, same secret
    /// (compared in constant time).
    pub fn matches(&self, fence: i64, secret: Option<&str>) -> bool {
        // Both are evaluated: a wrong fence must not answer faster than a wrong secret.
        let same_secret = secret_eq(secret, self.secret());
        (self.fence == fence) & same_secret
    }

    /// `<fence>.…`: names the token without giving it away (for messages that may be
    /// read by others).
    pub fn redacted(&self) -> String {
        match self.secret {
            Some(_) => format!("{}.…", self.fence),
            None => self.fence.to_string(),
        }
    }
}

impl fmt::Display for Token {
    /// The whole token: only for its holder.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.secret {
            Some(s) => write!(f, "{}.{}", self.fence, s.0),
            None => write!(f, "{}", self.fence),
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", self.redacted())
    }
}

impl FromStr for Token {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim();
        let bad = || {
            Error::invalid(
                "token",
                format!("{} is not a token; allowed: {TOKEN_FORM}", quote(s)),
            )
        };
        let (fence, secret) = match t.split_once('.') {
            Some((f, s)) => (f, Some(s)),
            None => (t, None),
        };
        if fence.is_empty() || !fence.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let fence = match fence.parse::<i64>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad()),
        };
        let secret = secret
            .map(|s| Secret::new(s).map_err(|_| bad()))
            .transpose()?;
        Ok(Token { fence, secret })
    }
}

impl Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// A string, or a bare integer (a token from before secrets).
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(i64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
            Raw::Number(n) => n.to_string().parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_round_trip_and_differ() {
        let a = Token::new(7, Secret::random().unwrap());
        let b = Token::new(7, Secret::random().unwrap());
        assert_ne!(a, b, "two mints must differ");
        let text = a.to_string();
        assert!(text.starts_with("7."), "{text}");
        assert_eq!(text.len(), 2 + 16, "{text}");
        assert_eq!(text.parse::<Token>().unwrap(), a);
        assert_eq!(a.fence(), 7);
        assert!(a.matches(7, a.secret()));
        assert!(!a.matches(7, b.secret()), "a wrong secret");
        assert!(!a.matches(8, a.secret()), "a wrong fence");
        assert!(!a.matches(7, None), "a secret presented to a legacy lease");
        assert!(
            !format!("{a:?}").contains(a.secret().unwrap()),
            "Debug hides it"
        );
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{a}\""));
        assert_eq!(serde_json::from_str::<Token>(&json).unwrap(), a);
    }

    #[test]
    fn bare_integers_are_legacy_tokens_and_junk_is_refused_naming_the_form() {
        let t: Token = "3".parse().unwrap();
        assert_eq!((t.fence(), t.secret()), (3, None));
        assert!(t.matches(3, None));
        assert!(!t.matches(3, Some("abcdefghjkmnpqrs")));
        assert_eq!(serde_json::from_str::<Token>("3").unwrap(), t);
        for bad in [
            "",
            "0",
            "-1",
            "x",
            "7.",
            "7.short",
            "7.UPPERCASEUPPERCASE",
            "7.abc def ghi jklmn",
            "+7",
            "7.k3f9q2m8x1c4v6b0.1",
        ] {
            let e = bad.parse::<Token>().unwrap_err().to_string();
            assert!(e.contains("<fence>.<secret>"), "{bad}: {e}");
        }
    }
}
