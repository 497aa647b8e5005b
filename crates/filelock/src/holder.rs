//! Who holds a lock: a record kept beside the lock file, never inside it.
//!
//! The record is for people (a waiter's message, `tasklease locks`). It is never
//! evidence that a lock is held: only the OS lock says that. A holder that dies leaves
//! its record behind, and it is ignored because the lock is free; the next holder
//! replaces it.
//!
//! Why a separate file: on Windows a locked file cannot be read by anyone else, so the
//! lock file itself must stay empty. Why temp + rename: a reader must see the old
//! record or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize, Serializer};
use tasklease_core::{AgentId, Error, Millis, Result};

use crate::Mode;

/// The process holding (or, in a record, last taking) a lock.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Holder {
    /// The agent name of the holding process.
    pub agent: AgentId,
    /// Its process id.
    pub pid: u32,
    /// Its host name.
    pub host: String,
    /// When it took the lock, by its own clock (for display only).
    #[serde(rename = "since_ms")]
    pub since: Millis,
    /// How it holds the lock. With several shared holders, the record names the one
    /// that took it last.
    pub mode: Mode,
}

impl Holder {
    /// This process, as `agent`, taking a lock in `mode` now.
    pub fn me(agent: AgentId, mode: Mode) -> Holder {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Holder {
            agent,
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            since: Millis::from_millis(since),
            mode,
        }
    }
}

impl Serialize for Holder {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            agent: &'a AgentId,
            pid: u32,
            host: &'a str,
            since: String,
            since_ms: i64,
            mode: Mode,
        }
        Out {
            agent: &self.agent,
            pid: self.pid,
            host: &self.host,
            since: self.since.to_rfc3339(),
            since_ms: self.since.as_millis(),
            mode: self.mode,
        }
        .serialize(s)
    }
}

/// `alice (pid 42 on build-1) since 2026-11-27T14:03:32.123Z`.
impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (pid {} on {}) since {}",
            self.agent, self.pid, self.host, self.since
        )
    }
}

/// The record beside a lock file: `git.lock` → `git.holder.json`.
pub(crate) fn record_path(lock: &Path) -> PathBuf {
    lock.with_extension("holder.json")
}

/// Reads a record; a missing, unreadable or malformed one is no record.
pub(crate) fn read(record: &Path) -> Option<Holder> {
    let bytes = std::fs::read(record).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Replaces the record atomically.
pub(crate) fn write(record: &Path, holder: &Holder) -> Result<()> {
    // Unique per writer: shared holders may write at the same time.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = record.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let fail = |e: std::io::Error| {
        Error::store(
            format!("cannot write the lock holder record {}", record.display()),
            e,
        )
    };
    let body = serde_json::to_vec(holder).map_err(|e| fail(e.into()))?;
    // Created new, never through a symlink, owner-only whatever the umask.
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, crate::private::FILE_MODE);
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut o, libc::O_NOFOLLOW);
    }
    let written = o.open(&tmp).and_then(|mut f| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(crate::private::FILE_MODE))?;
        }
        f.write_all(&body)?;
        f.write_all(b"\n")
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, record)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

/// Removes the record (an exclusive holder does this before unlocking).
pub(crate) fn clear(record: &Path) {
    let _ = std::fs::remove_file(record);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_garbage_is_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let rec = record_path(&dir.path().join("git.lock"));
        assert_eq!(rec, dir.path().join("git.holder.json"));
        assert_eq!(read(&rec), None);
        let h = Holder::me(AgentId::new("alice").unwrap(), Mode::Exclusive);
        write(&rec, &h).unwrap();
        assert_eq!(read(&rec), Some(h.clone()));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&rec).unwrap()).unwrap();
        assert_eq!(json["agent"], "alice");
        assert_eq!(json["mode"], "exclusive");
        assert!(json["since"].as_str().unwrap().ends_with('Z'));
        std::fs::write(&rec, "{not json").unwrap();
        assert_eq!(read(&rec), None);
        std::fs::write(
            &rec,
            r#"{"agent":"a\nb","pid":1,"host":"h","since_ms":0,"mode":"shared"}"#,
        )
        .unwrap();
        assert_eq!(read(&rec), None, "an invalid agent id is no record");
        // No temp files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn display_names_agent_pid_host_and_since() {
        let h = Holder {
            agent: AgentId::new("alice").unwrap(),
            pid: 42,
            host: "build-1".into(),
            since: Millis::from_millis(0),
            mode: Mode::Shared,
        };
        assert_eq!(
            h.to_string(),
            "alice (pid 42 on build-1) since 1970-01-01T00:00:00.000Z"
        );
    }
}
