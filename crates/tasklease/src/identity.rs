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

/// The agent id given from outside — `explicit` (`--agent`), else `$TASKLEASE_AGENT` —
/// for the verbs that look up what "I" hold (`mine`, `list --mine`): the default
/// `<role>-<hostname>-<pid>` names this process only, so the next process would never
/// find what this one holds.
///
/// # Errors
/// [`crate::Error::Invalid`] when neither is given (saying to set one), or the value is
/// not a valid id.
pub fn named_agent_id(explicit: Option<&str>, what: &str) -> Result<AgentId> {
    if let Some(a) = explicit {
        return AgentId::new(a);
    }
    if let Ok(a) = std::env::var(AGENT_VAR)
        && !a.is_empty()
    {
        return AgentId::new(&a);
    }
    let default = agent_id(None)?;
    Err(crate::Error::invalid(
        "agent",
        format!(
            "{what} needs a stable agent name: the default one ({default}) contains this \
             process's id, so it names this process only and would match nothing held \
             before; set {AGENT_VAR} (e.g. {AGENT_VAR}=alice) or pass --agent NAME"
        ),
    ))
}

/// A name for the `n`th worker (thread or async task) of this process:
/// `<role>-<hostname>-<pid>-<n>`. Workers of one process that share a name would look
/// like one agent in history and `list --mine`-style filters; this keeps them apart
/// while showing they belong together.
///
/// ```
/// let a = tasklease::identity::agent_id_for("indexer", 1)?;
/// let b = tasklease::identity::agent_id_for("indexer", 2)?;
/// assert_ne!(a, b);
/// assert!(a.as_str().starts_with("indexer-") && a.as_str().ends_with("-1"));
/// # Ok::<(), tasklease::Error>(())
/// ```
///
/// # Errors
/// [`crate::Error::Invalid`] when the role makes the id too long.
pub fn agent_id_for(role: &str, n: u32) -> Result<AgentId> {
    let base = generated(role, std::process::id())?;
    derived(&base, &n.to_string())
}

/// `<base>-<suffix>`: a worker's name under an agent name given from outside (`--agent`,
/// `TASKLEASE_AGENT`), e.g. `derived(&agent_id(None)?, "3")`.
///
/// # Errors
/// [`crate::Error::Invalid`] when the suffix holds characters an id may not, or makes
/// the id too long.
pub fn derived(base: &AgentId, suffix: &str) -> Result<AgentId> {
    AgentId::new(&format!("{base}-{suffix}"))
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

/// `<name>-<hostname>-<place>`, `place` a short hash (8 hex digits) of a directory:
/// a name that stays the same across restarts of the same client in the same project
/// (the MCP server's default), and differs between projects and hosts.
///
/// # Errors
/// [`crate::Error::Invalid`] when the name makes the id too long.
pub fn stable(name: &str, place: &std::path::Path) -> Result<AgentId> {
    let place = place.canonicalize().unwrap_or_else(|_| place.to_owned());
    // FNV-1a: stable across builds and platforms (std's hasher is neither).
    let hash = place
        .to_string_lossy()
        .bytes()
        .fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
    let base = generated(name, 0)?;
    let base = base.as_str().strip_suffix("-0").unwrap_or(base.as_str());
    AgentId::new(&format!("{base}-{hash:08x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_names_keep_across_restarts_and_differ_between_projects() {
        let here = std::path::Path::new("/tmp");
        let a = stable("claude-code", here).unwrap();
        assert_eq!(a, stable("claude-code", here).unwrap());
        assert_ne!(a, stable("claude-code", std::path::Path::new("/")).unwrap());
        assert_ne!(a, stable("cursor", here).unwrap());
    }

    #[test]
    fn explicit_wins_and_is_validated() {
        assert_eq!(agent_id(Some("me")).unwrap().as_str(), "me");
        assert!(agent_id(Some("a\nb")).is_err());
    }

    #[test]
    fn workers_of_one_process_get_names_of_their_own() {
        let a = agent_id_for("w", 1).unwrap();
        let b = agent_id_for("w", 2).unwrap();
        assert_ne!(a, b);
        let pid = std::process::id();
        assert!(a.as_str().ends_with(&format!("-{pid}-1")), "{a}");
        let base = AgentId::new("ci").unwrap();
        assert_eq!(derived(&base, "7").unwrap().as_str(), "ci-7");
        assert!(derived(&base, "a\nb").is_err());
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
