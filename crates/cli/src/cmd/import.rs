//! `tasklease import PATH…`: the library's importer, with progress on stderr.

use std::time::Instant;

use tasklease::Result;
use tasklease::import::{self, Options};

use super::Ctx;
use crate::args::ImportArgs;
use crate::output::{Report, note};

pub fn run(cx: &Ctx<'_>, a: &ImportArgs) -> Result<Report> {
    // Every path is checked, and its format told, before the database is opened.
    let sources = a
        .paths
        .iter()
        .map(|p| import::detect(p, a.from))
        .collect::<Result<Vec<_>>>()?;
    let store = cx.store()?;
    let opts = Options {
        dry_run: a.dry_run,
        drop_missing_deps: a.drop_missing_deps,
    };
    let start = Instant::now();
    // Progress only once an import has taken a second: small ones stay quiet.
    let progress = |what: &str| {
        if start.elapsed().as_secs_f64() >= 1.0 || what.starts_with("writing") && big(what) {
            note!(
                "tasklease: import: {what} ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
        }
    };
    let report = import::import(&*store, &sources, &opts, &progress)?;
    if start.elapsed().as_secs_f64() >= 1.0 {
        note!(
            "tasklease: import: done in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    Ok(Report::ok(report.to_json(), report.human()))
}

/// Whether a "writing N tasks" step is big enough to take a second.
fn big(what: &str) -> bool {
    what.split(' ')
        .nth(1)
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n >= 20_000)
}
