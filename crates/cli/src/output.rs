//! Printing results: human text on stdout, or exactly one JSON object on stdout with
//! `--json`. Diagnostics and refusals go to stderr.
//!
//! Every human line passes through [`tasklease::text::escape_lines`] on its way out
//! ([`print_line`], [`note_line`]): text from the database, the environment or the command
//! line may hold terminal controls, and only here is it known to be going to a person
//! (docs/security.md). JSON is written as it is; serde_json escapes controls already.

use std::io::Write;
use std::process::ExitCode;

use serde_json::Value;
// The result objects themselves are built in `tasklease_shape::json`, shared with the MCP
// server; this module only decides where they go.
use tasklease::text::{escape, escape_lines};
use tasklease::{Error, Millis};
use tasklease_shape::json::{error_json, error_said};

use crate::exit::Exit;

/// What a verb produced.
pub struct Report {
    /// The machine-readable result.
    pub json: Value,
    /// The same for people; empty prints nothing.
    pub human: String,
    /// How the run ends.
    pub exit: Exit,
    /// An exit status passed through from a child process (`run`), used instead of
    /// `exit`'s number.
    pub status: Option<u8>,
}

impl Report {
    /// A successful report.
    pub fn ok(json: Value, human: impl Into<String>) -> Report {
        Report {
            json,
            human: human.into(),
            exit: Exit::Ok,
            status: None,
        }
    }

    /// A report of something not done (refusals): human text goes to stderr.
    pub fn refused(exit: Exit, json: Value, human: impl Into<String>) -> Report {
        Report {
            json,
            human: human.into(),
            exit,
            status: None,
        }
    }
}

/// The chosen output format.
pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn report(&self, r: Report) -> ExitCode {
        if self.json {
            print_json(&r.json);
        }
        if r.exit == Exit::Ok {
            if !self.json && !r.human.is_empty() {
                print_line(&r.human);
            }
        } else if !r.human.is_empty() {
            note_line(&format!("tasklease: {}", r.human));
        }
        r.status.map_or_else(|| r.exit.into(), ExitCode::from)
    }

    pub fn error(&self, e: &Error) -> ExitCode {
        let exit = Exit::of(e);
        let message = with_hint(e);
        if self.json {
            print_json(&error_said(e, &message));
        }
        // One line: an error naming a hostile value must not start a line of its own.
        eprintln!("tasklease: {}", escape(&message));
        exit.into()
    }
}

/// The library's message with what to do about it in this CLI's terms: the library
/// names no flags or verbs (docs/library.md, "Errors").
pub fn with_hint(e: &Error) -> String {
    let hint = match e {
        Error::Invalid {
            field: "project", ..
        } => "; run `tasklease init` in the project root, or pass --db PATH".to_owned(),
        Error::Invalid { field: "init", .. } => {
            "; to make this directory a project, run `tasklease init --here`, or run init in \
             the project root, or name the database with --db PATH"
                .to_owned()
        }
        Error::Invalid { field: "store", .. } => {
            " (--db or TASKLEASE_DB names it; `tasklease init` creates it)".to_owned()
        }
        Error::Invalid {
            field: "backup", ..
        } => " (run `tasklease migrate` without --backup)".to_owned(),
        Error::NotHolder { .. } => " (pass its --token)".to_owned(),
        Error::VersionConflict { task, .. } => format!(" (tasklease show {task})"),
        Error::OutcomeUnknown { .. } => " (tasklease show ID / tasklease list --mine)".to_owned(),
        _ => String::new(),
    };
    format!("{e}{hint}")
}

pub fn print_json(v: &Value) {
    write_line(&v.to_string());
}

/// Prints human text on stdout, terminal controls escaped (newlines kept).
pub fn print_line(s: &str) {
    write_line(&escape_lines(s));
}

/// Prints a diagnostic on stderr, terminal controls escaped (newlines kept).
pub fn note_line(s: &str) {
    eprintln!("{}", escape_lines(s));
}

/// `eprintln!` through [`note_line`]: the only way the CLI writes a diagnostic.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::output::note_line(&format!($($arg)*))
    };
}
pub(crate) use note;

fn write_line(s: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`tasklease list | head`) is not an error worth a panic.
    let _ = writeln!(out, "{s}");
}

/// Reports a command-line parse failure (exit 2), or prints help/version (exit 0).
///
/// clap echoes an invalid value whole; a 10 kB argument must not come back as a 10 kB
/// error, so validation errors are re-worded around our own (already shortened)
/// message and any other long line is cut.
pub fn usage_error(e: clap::Error, json: bool) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind as K};
    match e.kind() {
        K::DisplayHelp | K::DisplayVersion => {
            let _ = e.print();
            return Exit::Ok.into();
        }
        K::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return Exit::Usage.into();
        }
        _ => {}
    }
    let rendered = e.render().to_string();
    let message = match (
        e.kind(),
        e.get(ContextKind::InvalidArg),
        std::error::Error::source(&e),
    ) {
        (K::ValueValidation, Some(ContextValue::String(arg)), Some(src)) => {
            format!("invalid value for '{arg}': {src}")
        }
        _ => {
            let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
            let first = lines
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            // "the following required arguments were not provided:" names them below.
            match lines.next().filter(|_| first.ends_with(':')) {
                Some(what) => format!("{first} {}", what.trim()),
                None => first.to_owned(),
            }
        }
    };
    let message = shorten(&message, 400);
    if json {
        print_json(&error_json("usage", &message, Exit::Usage as u8));
    }
    eprintln!("tasklease: {}", escape(&message));
    for line in rendered.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        eprintln!("{}", escape(&shorten(line, 400)));
    }
    Exit::Usage.into()
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// `12m30s left`, `expired 5s ago`.
pub fn time_left(until: Millis, now: Millis) -> String {
    let d = until.since(now);
    if d > 0 {
        format!("{} left", human_ms(d))
    } else {
        format!("expired {} ago", human_ms(-d))
    }
}

/// A duration for people, to two units: `2h5m`, `45s`, `300ms`.
pub fn human_ms(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        86_400.. => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
        3600.. => format!("{}h{}m", s / 3600, s % 3600 / 60),
        60.. => format!("{}m{}s", s / 60, s % 60),
        1.. => format!("{s}s"),
        _ => format!("{ms}ms"),
    }
}
