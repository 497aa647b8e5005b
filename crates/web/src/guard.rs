//! Who may write, and from where.
//!
//! # The run's secret
//!
//! A write (force-release, cancel, re-prioritise, add) must present the run's secret:
//! 32 random bytes in hex, made at start and printed once on the starting line (or
//! given with `--token`, then never printed). Forms carry it in a hidden field, which
//! only a page this server rendered can know; scripts send it as
//! `Authorization: Bearer`. It is compared in constant time, so response timing tells
//! nothing about how much of a guess was right, and it never appears in a log line, an
//! error or the API's JSON.
//!
//! # Origin and Host
//!
//! A browser sends `Origin` with every form post and every `fetch` that writes. A
//! write whose `Origin` is not this server is refused even with the right secret: a
//! page from elsewhere open in the same browser cannot act. Every request's `Host`
//! must name the address served (for a loopback address: `127.0.0.1`, `localhost` or
//! `[::1]` with its port), which defeats DNS rebinding — a hostile name re-pointed at
//! 127.0.0.1 to read the board from another origin. Binding to anything but loopback
//! needs `--token` (checked by the CLI, [`needs_token`]): anyone on the network can then
//! reach the server, and the secret must be one the operator chose and distributes.

use std::fmt;
use std::net::SocketAddr;

use tasklease::{Error, Result};

/// The run's write secret. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// A fresh secret: 32 random bytes, in hex.
    ///
    /// # Errors
    /// [`Error::Store`] when the system has no randomness.
    pub fn generate() -> Result<Secret> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::store("make the write secret", e))?;
        Ok(Secret(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// A secret the operator chose (`--token`).
    ///
    /// # Errors
    /// [`Error::Invalid`] when it is shorter than 16 characters, or holds characters
    /// other than printable ASCII without spaces (it travels in a header and a form).
    pub fn given(s: &str) -> Result<Secret> {
        if s.len() < 16 {
            return Err(Error::invalid(
                "token",
                format!(
                    "the --token given is {} characters long; use at least 16",
                    s.len()
                ),
            ));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "token",
                "the --token given holds a space or a character that is not printable \
                 ASCII; allowed: printable ASCII without spaces",
            ));
        }
        Ok(Secret(s.to_owned()))
    }

    /// The secret itself, for the one line that prints it and the forms that carry it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is the secret, in time that depends only on the lengths.
    pub fn matches(&self, presented: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), presented.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Compares every byte whatever the first difference: the time taken says nothing
/// about where a guess went wrong (only whether the lengths differ).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Whether serving on `addr` needs an operator-chosen secret: anything but loopback.
pub fn needs_token(addr: &SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

/// Whether a request's `Host` header names the server at `served`.
pub fn host_allowed(host: Option<&str>, served: &SocketAddr) -> bool {
    let Some(host) = host else {
        return false;
    };
    let port = served.port();
    if served.ip().is_loopback() {
        ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|name| host == format!("{name}:{port}"))
    } else if served.ip().is_unspecified() {
        // Bound to every interface: any name, but the port must be ours.
        host.rsplit_once(':')
            .is_some_and(|(_, p)| p == port.to_string())
    } else {
        host == served.to_string()
    }
}

/// Whether a write's `Origin` header is this server: absent (a script or `curl`,
/// which must then present the secret as a bearer token) or `http://` + its `Host`.
pub fn origin_allowed(origin: Option<&str>, host: Option<&str>) -> bool {
    match (origin, host) {
        (None, _) => true,
        (Some(o), Some(h)) => o == format!("http://{h}"),
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole_and_never_show() {
        let s = Secret::generate().unwrap();
        assert_eq!(s.expose().len(), 64);
        assert!(s.matches(s.expose()));
        let mut wrong = s.expose().to_owned();
        wrong.replace_range(63.., if wrong.ends_with('0') { "1" } else { "0" });
        assert!(!s.matches(&wrong));
        assert!(!s.matches(&s.expose()[..63]));
        assert!(!s.matches(""));
        assert!(!format!("{s:?}").contains(s.expose()));
        assert_ne!(Secret::generate().unwrap().expose(), s.expose());
        assert!(Secret::given("short").is_err());
        assert!(Secret::given("has a space in it, long enough").is_err());
        assert!(Secret::given("0123456789abcdef").is_ok());
    }

    #[test]
    fn hosts_and_origins() {
        let lo: SocketAddr = "127.0.0.1:7777".parse().unwrap();
        assert!(host_allowed(Some("127.0.0.1:7777"), &lo));
        assert!(host_allowed(Some("localhost:7777"), &lo));
        assert!(!host_allowed(Some("evil.example:7777"), &lo));
        assert!(!host_allowed(Some("localhost:7778"), &lo));
        assert!(!host_allowed(None, &lo));
        assert!(needs_token(&"0.0.0.0:80".parse().unwrap()));
        assert!(!needs_token(&lo));
        assert!(origin_allowed(None, Some("localhost:7777")));
        assert!(origin_allowed(
            Some("http://localhost:7777"),
            Some("localhost:7777")
        ));
        assert!(!origin_allowed(
            Some("http://evil.example"),
            Some("localhost:7777")
        ));
        assert!(!origin_allowed(Some("null"), Some("localhost:7777")));
    }
}
