//! `tasklease export`: every task as JSON Lines, to stdout or a file written whole.

use std::io::Write;
use std::time::Instant;

use serde_json::json;
use tasklease::import::tasklease::{Exported, export};
use tasklease::{Error, Result};

use super::Ctx;
use crate::args::ExportArgs;
use crate::output::{Report, note};

pub fn run(cx: &Ctx<'_>, a: &ExportArgs) -> Result<Report> {
    let Some(out) = &a.out else {
        if cx.cli.json {
            return Err(Error::invalid(
                "json",
                "--json needs --out FILE: without it, stdout carries the export itself",
            ));
        }
        let store = cx.store()?;
        let start = Instant::now();
        let done = export(&*store, &mut std::io::stdout().lock(), a.with_history)?;
        say(start, done);
        return Ok(Report::ok(json!({}), ""));
    };
    let store = cx.store()?;
    let start = Instant::now();
    // Written beside the target and renamed once complete: a failed export never
    // leaves half a file where the last good one was.
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = out.file_name().ok_or_else(|| {
        Error::invalid(
            "out",
            format!("{} names no file; allowed: a file path", out.display()),
        )
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let failed = |e: std::io::Error| Error::store(format!("cannot write {}", out.display()), e);
    let mut f = std::fs::File::create(&tmp).map_err(failed)?;
    let done = export(&*store, &mut f, a.with_history).and_then(|done| {
        f.flush().and_then(|()| f.sync_all()).map_err(failed)?;
        Ok(done)
    });
    let done = match done {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, out).map_err(failed)?;
    say(start, done);
    Ok(Report::ok(
        json!({"ok": true, "outcome": "exported", "tasks": done.tasks, "out": out.display().to_string()}),
        format!("exported {} tasks to {}", done.tasks, out.display()),
    ))
}

/// Progress for a slow export.
fn say(start: Instant, done: Exported) {
    let s = start.elapsed().as_secs_f64();
    if s >= 1.0 {
        note!("tasklease: export: {} tasks in {s:.1} s", done.tasks);
    }
}
