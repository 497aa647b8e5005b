//! The one documented JSON shape per outcome, for tasklease's own front ends — the
//! CLI's `--json`, the MCP server's structured tool results and the web board's JSON
//! routes. Not a stable API: a program embedding tasklease depends on the `tasklease`
//! crate, whose types these shapes are built from.
//!
//! # Why a crate of its own
//!
//! The shapes are a contract with the *readers* of tasklease's output (agents, scripts,
//! the published schemas in `docs/json/`), not with Rust callers: they change when a
//! field is added to every front end at once, which must not be a breaking change of
//! the library. Keeping them in one crate that all three front ends use is what keeps
//! the CLI, MCP and the board from drifting (a field added here appears in all of
//! them), and keeping that crate out of `tasklease` keeps the library's public surface
//! to what a program needs.
//!
//! - [`json`]: the JSON object of every result and error, with the exit codes.
//! - [`schema`]: a JSON Schema per verb, byte for byte the files in `docs/json/`
//!   (`schema::tests::docs_json_is_current`; `TASKLEASE_BLESS=1` rewrites them).
//! - [`stats`]: what the lease history says (the `stats` verb and the board's fleet
//!   view), computed from events the stores already write.

pub mod json;
pub mod schema;
pub mod stats;
