//! Who the calling agent is, for display and history.
//!
//! Identity is never authority: a lease is proven by its fencing token. A name only has
//! to be readable and, by default, different for every agent process, so that two
//! agents never look like one (a fresh name per process incarnation also keeps a
//! restarted agent from being mistaken for its dead predecessor).

use crate::{AgentId, Result};

/// Variable naming the agent explicitly.
pub const AGENT_VAR: &str = "TASKLEASE_AGENT";
/// Variable naming the role used in a generated name.
pub const ROLE_VAR: &str = "TASKLEASE_ROLE";

/// The agent id: `explicit` (from `--agent`), else `$TASKLEASE_AGENT`, else
/// `<role>-<hostname>-<pid>` with the role from `$TASKLEASE_ROLE` (default `agent`).
///
/// # Errors
/// [`crate::Error::Invalid`] when the explicit or environment value is not a valid id.
pub fn agent_id(explicit: Option<&str>) -> Result<AgentId> {
    if let Some(a) = explicit {
        return AgentId::new(a);
    }
    if let Ok(a) = std::env::var(AGENT_VAR)
        && !a.is_empty()
    {
        return AgentId::new(&a);
    }
    let role = std::env::var(ROLE_VAR)
        .ok()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "agent".to_owned());
    generated(&role, std::process::id())
}

/// `<role>-<hostname>-<pid>`, with whitespace and terminal controls in the parts
/// replaced by `_`.
///
/// # Errors
/// [`crate::Error::Invalid`] when the role makes the id too long.
pub fn generated(role: &str, pid: u32) -> Result<AgentId> {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if crate::text::is_terminal_control(c) || c.is_whitespace() {
                    '_'
                } else {
                    c
                }
            })
            .collect()
    };
    let host = if host.is_empty() {
        "unknown".into()
    } else {
        clean(&host)
    };
    AgentId::new(&format!("{}-{host}-{pid}", clean(role)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_wins_and_is_validated() {
        assert_eq!(agent_id(Some("me")).unwrap().as_str(), "me");
        assert!(agent_id(Some("a\nb")).is_err());
    }

    #[test]
    fn generated_names_carry_role_host_and_pid() {
        let id = generated("reviewer", 4242).unwrap();
        assert!(id.as_str().starts_with("reviewer-"), "{id}");
        assert!(id.as_str().ends_with("-4242"), "{id}");
        assert!(!id.as_str().contains(char::is_whitespace));
    }

    /// An MCP client names itself; a name with terminal controls still makes an id.
    #[test]
    fn generated_names_drop_terminal_controls() {
        let id = generated("claude\u{202e}\u{1b}[2J\u{9b}", 7).unwrap();
        assert!(id.as_str().starts_with("claude__[2J_-"), "{id}");
    }
}
