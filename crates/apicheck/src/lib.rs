//! The semver check CI runs on the library crates: each crate's public API as a sorted,
//! readable listing committed under `docs/api/`, and a test that regenerates it and
//! classes every difference as breaking or additive (docs/library.md, "Stability").
//!
//! # Why a committed listing, not cargo-semver-checks
//!
//! cargo-semver-checks knows more rules, but CI starts on a fresh machine: installing
//! it compiles 306 crates in release mode (18 minutes on the 2-core machine, measured
//! in docs/library.md), and each run builds the baseline revision's rustdoc JSON as
//! well as the current one. Its answer is also
//! only "breaking or not": an addition to the API leaves no trace a reviewer sees. A
//! listing in the repository is the reviewable part: every change to the public API,
//! added or removed, shows up as lines in the diff of the commit that made it, and the
//! baseline is simply the file, so blessing a new surface is one command.
//!
//! # How the listing is made
//!
//! `cargo rustdoc -p CRATE -- --output-format json` (stable rustc with
//! `RUSTC_BOOTSTRAP=1`, the flag being unstable) describes every public item; the
//! [`public_api`] crate renders each one as a line with its full signature — functions,
//! fields, variants, trait items, trait and auto-trait impls (losing `Send` is a break),
//! without the blanket impls every type gets (`Into`, `Borrow`, …). `#[doc(hidden)]`
//! items are left out, as rustdoc leaves them out: they are not part of the promise.
//!
//! A line per item catches removals and changed signatures, but some breaking changes
//! only *add*: a variant of an exhaustive enum (every `match` breaks), a field of a
//! struct built with a literal, a required method of a trait (every impl breaks). So
//! the listing adds one **shape line** per such item, naming the whole set
//! (`exhaustive enum P { A, B }`, `constructible struct P { x, y }`,
//! `trait P requires { fn a }`): growing the set changes the line, and a changed line
//! is a removed line. The one change to a shape line that breaks nobody — a trait
//! requiring *fewer* items — is recognised as such.
//!
//! # What counts as breaking, and how a break is acknowledged
//!
//! A line of the committed listing missing from the current one is breaking (removed,
//! or changed: a changed signature is one line out and one in). Lines only added are
//! additive. Either way the test fails until the listing is blessed
//! (`TASKLEASE_BLESS=1`), so the change lands in a commit a reviewer reads. Blessing
//! records a breaking change only if the crate's version was bumped past what semver
//! allows to break (0.1.x → 0.2.0, 1.x → 2.0.0) since the listing was written — its
//! first line records the version — or with `TASKLEASE_BLESS=break`, which accepts a
//! break without a bump (when nothing was released since the last blessing).
//!
//! # Failures
//!
//! rustc changes its JSON format between releases: a listing from a format this crate
//! does not read is refused naming both versions, never half read. A rustdoc run is
//! bounded ([`rustdoc_json`]) and its errors are shown as cargo printed them.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rustdoc_types::{Attribute, Crate, Id, Item, ItemEnum, StructKind, VariantKind};

/// The rustdoc JSON format this checker reads (rustc 1.95 writes 57).
pub const FORMAT_VERSION: u32 = rustdoc_types::FORMAT_VERSION;

/// The command that regenerates the listings, for messages.
pub const BLESS_COMMAND: &str = "TASKLEASE_BLESS=1 cargo nextest run -p tasklease-apicheck";

/// The same, accepting a breaking change without a version bump.
pub const BLESS_BREAK_COMMAND: &str =
    "TASKLEASE_BLESS=break cargo nextest run -p tasklease-apicheck";

/// Runs `cargo rustdoc` for `package` of the workspace (or crate) at `dir`, writing
/// rustdoc JSON under `target_dir`, and returns the JSON file's path.
///
/// # Errors
///
/// Cargo failing (its stderr is in the message), or not finishing within `bound`: the
/// first run builds the package's dependencies, and a second cargo on the same target
/// directory waits for the first.
pub fn rustdoc_json(
    dir: &Path,
    package: &str,
    target_dir: &Path,
    bound: Duration,
) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .current_dir(dir)
        .args(["rustdoc", "--quiet", "--lib", "-p", package, "--target-dir"])
        .arg(target_dir)
        .args(["--", "-Z", "unstable-options", "--output-format", "json"])
        // rustdoc's JSON output is unstable; this lets stable rustc write it.
        .env("RUSTC_BOOTSTRAP", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start cargo rustdoc for {package}: {e}"))?;
    // The end of cargo's stderr is the event waited for: it closes when cargo exits.
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let Ok(stderr) = rx.recv_timeout(bound) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "cargo rustdoc for {package} did not finish within {} s (building its \
             dependencies, or waiting for another cargo's lock on {})",
            bound.as_secs(),
            target_dir.display()
        ));
    };
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo rustdoc for {package}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo rustdoc for {package} failed ({status}):\n{stderr}"
        ));
    }
    Ok(target_dir
        .join("doc")
        .join(format!("{}.json", package.replace('-', "_"))))
}

/// A crate's public API: its name, version, and one line per item, sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The crate's name, as in its `Cargo.toml`.
    pub package: String,
    /// The crate's version when the listing was made.
    pub version: String,
    /// One line per public item, shape lines included, sorted.
    pub lines: Vec<String>,
}

impl Listing {
    /// Reads a rustdoc JSON file of `package`.
    ///
    /// # Errors
    ///
    /// The file unreadable, in a format version other than [`FORMAT_VERSION`], or
    /// naming no crate version.
    pub fn from_rustdoc_json(package: &str, path: &Path) -> Result<Listing, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        // The version first, from the one field every format has, so that a rustc
        // upgrade reads as that and not as a parse error deep in the file.
        let found = serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| format!("{} is not JSON: {e}", path.display()))?["format_version"]
            .as_u64();
        if found != Some(u64::from(FORMAT_VERSION)) {
            return Err(format!(
                "{} is rustdoc JSON format {found:?}; this checker reads format \
                 {FORMAT_VERSION} (rustc 1.95). After a rustc upgrade, move public-api and \
                 rustdoc-types in Cargo.toml to the releases that read the new format.",
                path.display()
            ));
        }
        let krate: Crate = serde_json::from_str(&text)
            .map_err(|e| format!("cannot read {} as rustdoc JSON: {e}", path.display()))?;
        let version = krate
            .crate_version
            .clone()
            .ok_or_else(|| format!("{} names no crate version", path.display()))?;
        let api = public_api::Builder::from_rustdoc_json(path)
            .omit_blanket_impls(true)
            .build()
            .map_err(|e| format!("cannot list the public API in {}: {e}", path.display()))?;
        let mut lines: Vec<String> = api
            .items()
            .map(|item| item.to_string())
            .filter(|line| !unstable_auto_trait(line))
            .chain(shapes(&krate))
            .collect();
        lines.sort();
        Ok(Listing {
            package: package.to_owned(),
            version,
            lines,
        })
    }

    /// The listing as committed: a header naming crate and version, then the lines.
    pub fn render(&self) -> String {
        let mut out = format!(
            "# {} {}\n# The public API, generated from rustdoc JSON by crates/apicheck; do not \
             edit.\n# Regenerate: {BLESS_COMMAND} (docs/library.md, \"Stability\").\n",
            self.package, self.version
        );
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// Reads a committed listing back.
    ///
    /// # Errors
    ///
    /// A first line that is not `# PACKAGE VERSION`.
    pub fn parse(text: &str) -> Result<Listing, String> {
        let mut header = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# "))
            .unwrap_or_default()
            .split(' ');
        let (Some(package), Some(version), None) = (header.next(), header.next(), header.next())
        else {
            return Err("the first line is not `# PACKAGE VERSION`".into());
        };
        Ok(Listing {
            package: package.to_owned(),
            version: version.to_owned(),
            lines: text
                .lines()
                .filter(|l| !l.starts_with("# "))
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// `Freeze` and `UnsafeUnpin` are auto traits no stable program can name: rustc adds
/// and renames them, and a listing that followed would change with every toolchain.
fn unstable_auto_trait(line: &str) -> bool {
    line.starts_with("impl")
        && (line.contains(" core::marker::Freeze for ")
            || line.contains(" core::marker::UnsafeUnpin for "))
}

/// The shape lines (see the module docs) of every enum, struct and trait reachable from
/// the crate root, each under the first public path it is reached by.
fn shapes(krate: &Crate) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let root = krate.index[&krate.root].name.clone().unwrap_or_default();
    walk(krate, krate.root, &root, &mut seen, &mut out);
    out
}

fn walk(krate: &Crate, module: Id, path: &str, seen: &mut HashSet<Id>, out: &mut Vec<String>) {
    if !seen.insert(module) {
        return;
    }
    let Some(ItemEnum::Module(m)) = krate.index.get(&module).map(|i| &i.inner) else {
        return;
    };
    for id in &m.items {
        let Some(item) = krate.index.get(id) else {
            continue;
        };
        match &item.inner {
            ItemEnum::Use(u) => {
                // Re-exports of other crates' items are listed by those crates.
                let Some(target) = u.id.and_then(|t| krate.index.get(&t)) else {
                    continue;
                };
                if u.is_glob {
                    walk(krate, target.id, path, seen, out);
                } else {
                    visit(krate, target, &format!("{path}::{}", u.name), seen, out);
                }
            }
            _ => {
                let name = item.name.as_deref().unwrap_or_default();
                visit(krate, item, &format!("{path}::{name}"), seen, out);
            }
        }
    }
}

fn visit(krate: &Crate, item: &Item, path: &str, seen: &mut HashSet<Id>, out: &mut Vec<String>) {
    if let ItemEnum::Module(_) = item.inner {
        return walk(krate, item.id, path, seen, out);
    }
    if !seen.insert(item.id) {
        return;
    }
    let field_name = |id: &Id| {
        krate
            .index
            .get(id)
            .and_then(|f| f.name.clone())
            .unwrap_or_default()
    };
    match &item.inner {
        ItemEnum::Enum(e) => {
            let mut names = Vec::new();
            for v in &e.variants {
                let Some(variant) = krate.index.get(v) else {
                    continue;
                };
                let name = variant.name.clone().unwrap_or_default();
                if let ItemEnum::Variant(var) = &variant.inner
                    && !matches!(var.kind, VariantKind::Plain)
                    && !non_exhaustive(variant)
                {
                    let fields = match &var.kind {
                        VariantKind::Tuple(f) => tuple_shape(f.len()),
                        VariantKind::Struct {
                            fields,
                            has_stripped_fields,
                        } => named_shape(fields.iter().map(field_name), *has_stripped_fields),
                        VariantKind::Plain => String::new(),
                    };
                    out.push(format!("variant {path}::{name}{fields}"));
                }
                names.push(name);
            }
            if !non_exhaustive(item) {
                names.sort();
                if e.has_stripped_variants {
                    names.push("..".into());
                }
                out.push(format!("exhaustive enum {path} {{ {} }}", names.join(", ")));
            }
        }
        ItemEnum::Struct(s) if !non_exhaustive(item) => {
            let shape = match &s.kind {
                StructKind::Unit => Some(String::new()),
                StructKind::Tuple(f) if f.iter().all(Option::is_some) => Some(tuple_shape(f.len())),
                StructKind::Plain {
                    fields,
                    has_stripped_fields: false,
                } => Some(named_shape(fields.iter().map(field_name), false)),
                _ => None,
            };
            if let Some(shape) = shape {
                out.push(format!("constructible struct {path}{shape}"));
            }
        }
        ItemEnum::Trait(t) => {
            let mut required: Vec<String> = t
                .items
                .iter()
                .filter_map(|id| krate.index.get(id))
                .filter_map(|i| {
                    let name = i.name.as_deref().unwrap_or_default();
                    match &i.inner {
                        ItemEnum::Function(f) if !f.has_body => Some(format!("fn {name}")),
                        ItemEnum::AssocType { type_: None, .. } => Some(format!("type {name}")),
                        ItemEnum::AssocConst { value: None, .. } => Some(format!("const {name}")),
                        _ => None,
                    }
                })
                .collect();
            required.sort();
            out.push(format!(
                "trait {path} requires {{ {} }}",
                required.join(", ")
            ));
        }
        _ => {}
    }
}

fn non_exhaustive(item: &Item) -> bool {
    item.attrs.contains(&Attribute::NonExhaustive)
}

fn tuple_shape(n: usize) -> String {
    format!("({})", vec!["_"; n].join(", "))
}

fn named_shape(names: impl Iterator<Item = String>, stripped: bool) -> String {
    let mut names: Vec<String> = names.collect();
    names.sort();
    if stripped {
        names.push("..".into());
    }
    format!(" {{ {} }}", names.join(", "))
}

/// How two listings of one crate differ.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Lines of the old listing not in the new: removed or changed items. Breaking.
    pub removed: Vec<String>,
    /// Lines of the new listing not in the old.
    pub added: Vec<String>,
    /// Trait shape lines that changed without breaking anyone (fewer required items),
    /// old and new.
    pub relaxed: Vec<(String, String)>,
}

impl Diff {
    /// The differences between `old` and `new`.
    pub fn between(old: &Listing, new: &Listing) -> Diff {
        let count = |l: &Listing| {
            let mut m: BTreeMap<String, usize> = BTreeMap::new();
            for line in &l.lines {
                *m.entry(line.clone()).or_default() += 1;
            }
            m
        };
        let (o, n) = (count(old), count(new));
        let minus = |a: &BTreeMap<String, usize>, b: &BTreeMap<String, usize>| {
            a.iter()
                .flat_map(|(line, k)| {
                    std::iter::repeat_n(line.clone(), k.saturating_sub(*b.get(line).unwrap_or(&0)))
                })
                .collect::<Vec<_>>()
        };
        let (mut removed, mut added) = (minus(&o, &n), minus(&n, &o));
        let mut relaxed = Vec::new();
        removed.retain(|r| {
            let Some((key, was)) = trait_requires(r) else {
                return true;
            };
            let found = added.iter().position(|a| {
                trait_requires(a).is_some_and(|(k, now)| k == key && now.is_subset(&was))
            });
            match found {
                Some(i) => {
                    relaxed.push((r.clone(), added.remove(i)));
                    false
                }
                None => true,
            }
        });
        Diff {
            removed,
            added,
            relaxed,
        }
    }

    /// No difference at all.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty() && self.relaxed.is_empty()
    }

    fn describe(&self) -> String {
        let mut out = String::new();
        for line in &self.removed {
            out.push_str(&format!("  - removed or changed: {line}\n"));
        }
        for (old, new) in &self.relaxed {
            out.push_str(&format!(
                "  ~ relaxed (not breaking): {old}\n      now: {new}\n"
            ));
        }
        for line in &self.added {
            out.push_str(&format!("  + added: {line}\n"));
        }
        out
    }
}

/// A trait shape line's trait path and required items.
fn trait_requires(line: &str) -> Option<(&str, BTreeSet<&str>)> {
    let rest = line.strip_prefix("trait ")?;
    let (key, items) = rest.split_once(" requires { ")?;
    let items = items
        .strip_suffix(" }")
        .or_else(|| items.strip_suffix('}'))?;
    Some((key, items.split(", ").filter(|s| !s.is_empty()).collect()))
}

/// Whether going from version `old` to `new` is a bump under which semver allows a
/// breaking change: a new major version, or for 0.x a new minor (0.0.x: any bump).
pub fn allows_break(old: &str, new: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let core = v.split(['-', '+']).next()?;
        let mut it = core.split('.').map(|p| p.parse().ok());
        Some((it.next()??, it.next()??, it.next()??))
    };
    let (Some(o), Some(n)) = (parse(old), parse(new)) else {
        return false;
    };
    match o {
        (0, 0, _) => n > o,
        (0, minor, _) => n.0 > 0 || n.1 > minor,
        (major, _, _) => n.0 > major,
    }
}

/// What the test was asked to do with a changed listing (`TASKLEASE_BLESS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bless {
    /// Compare only (unset).
    No,
    /// Rewrite, unless the change breaks the API without a version bump (any value).
    Yes,
    /// Rewrite, breaking or not (`break`).
    Break,
}

impl Bless {
    /// From `TASKLEASE_BLESS`.
    pub fn from_env() -> Bless {
        match std::env::var("TASKLEASE_BLESS") {
            Err(_) => Bless::No,
            Ok(v) if v == "break" => Bless::Break,
            Ok(_) => Bless::Yes,
        }
    }
}

/// What [`check`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// The committed listing is the current API.
    Current,
    /// The listing was rewritten (blessed); what changed.
    Written(Diff),
}

/// Compares the listing committed at `path` with `current`; with `bless`, rewrites it.
///
/// # Errors
///
/// The check failing, in a message for the person who made the change: what changed,
/// whether it breaks the API, and how to acknowledge it.
pub fn check(path: &Path, current: &Listing, bless: Bless) -> Result<Checked, String> {
    let shown = path.display();
    let committed = match std::fs::read_to_string(path) {
        Ok(text) => Some(Listing::parse(&text).map_err(|e| format!("{shown}: {e}"))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {shown}: {e}")),
    };
    let Some(committed) = committed else {
        if bless == Bless::No {
            return Err(format!(
                "{shown} does not exist: no listing of {}'s public API yet. Write it: \
                 {BLESS_COMMAND}",
                current.package
            ));
        }
        return write(path, current, Diff::between(&empty(current), current));
    };
    if committed == *current {
        return Ok(Checked::Current);
    }
    let diff = Diff::between(&committed, current);
    let (pkg, old, new) = (&current.package, &committed.version, &current.version);
    let bumped = allows_break(old, new);
    if !diff.removed.is_empty() && !bumped && bless != Bless::Break {
        return Err(format!(
            "{shown}: BREAKING change to the public API of {pkg} {new}:\n{}\
             Semver wants a new major version for this (for 0.x, a new minor: {old} → {}).\n\
             If the change is meant, acknowledge it: bump workspace.package.version in \
             Cargo.toml and record the new API with\n    {BLESS_COMMAND}\n\
             or, if {old} was not released since this listing was last blessed, keep the \
             version and record it with\n    {BLESS_BREAK_COMMAND}\n\
             If it is not meant, undo it.{}",
            diff.describe(),
            next_breaking(old),
            if bless == Bless::Yes {
                "\n(TASKLEASE_BLESS=1 does not record a breaking change without a version bump.)"
            } else {
                ""
            }
        ));
    }
    if bless != Bless::No {
        return write(path, current, diff);
    }
    let what = if !diff.removed.is_empty() {
        format!("a BREAKING change, acknowledged by the version bump {old} → {new}")
    } else if diff.is_empty() {
        format!("no change to the API, but the version moved {old} → {new}")
    } else {
        "additive changes only (not breaking)".to_owned()
    };
    Err(format!(
        "{shown} is out of date: the public API of {pkg} has {what}:\n{}\
         Record it, so that the change shows in review: {BLESS_COMMAND}",
        diff.describe()
    ))
}

fn empty(like: &Listing) -> Listing {
    Listing {
        lines: Vec::new(),
        ..like.clone()
    }
}

fn write(path: &Path, current: &Listing, diff: Diff) -> Result<Checked, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, current.render())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(Checked::Written(diff))
}

/// The smallest version after `v` that may break: `0.1.3` → `0.2.0`, `1.4.0` → `2.0.0`.
fn next_breaking(v: &str) -> String {
    let parts: Vec<u64> = v
        .split(['-', '+'])
        .next()
        .unwrap_or_default()
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    match parts.as_slice() {
        [0, 0, patch] => format!("0.0.{}", patch + 1),
        [0, minor, _] => format!("0.{}.0", minor + 1),
        [major, _, _] => format!("{}.0.0", major + 1),
        _ => "a new major version".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(version: &str, lines: &[&str]) -> Listing {
        Listing {
            package: "demo".into(),
            version: version.into(),
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn semver_bumps_that_allow_a_break() {
        for (old, new, allows) in [
            ("0.1.0", "0.1.1", false),
            ("0.1.0", "0.2.0", true),
            ("0.1.0", "1.0.0", true),
            ("0.0.3", "0.0.4", true),
            ("1.2.3", "1.3.0", false),
            ("1.2.3", "2.0.0", true),
            ("1.2.3", "1.2.3", false),
            ("2.0.0", "1.9.0", false),
        ] {
            assert_eq!(allows_break(old, new), allows, "{old} → {new}");
        }
        assert_eq!(next_breaking("0.1.3"), "0.2.0");
        assert_eq!(next_breaking("1.4.0"), "2.0.0");
    }

    #[test]
    fn a_changed_line_is_removed_and_added() {
        let old = listing("0.1.0", &["pub fn demo::a(u32)", "pub fn demo::b()"]);
        let new = listing("0.1.0", &["pub fn demo::a(u64)", "pub fn demo::b()"]);
        let d = Diff::between(&old, &new);
        assert_eq!(d.removed, ["pub fn demo::a(u32)"]);
        assert_eq!(d.added, ["pub fn demo::a(u64)"]);
    }

    #[test]
    fn a_trait_requiring_fewer_items_is_not_breaking_but_more_is() {
        let old = listing("0.1.0", &["trait demo::T requires { fn a, fn b }"]);
        let fewer = listing("0.1.0", &["trait demo::T requires { fn a }"]);
        let more = listing("0.1.0", &["trait demo::T requires { fn a, fn b, fn c }"]);
        let d = Diff::between(&old, &fewer);
        assert!(d.removed.is_empty() && d.added.is_empty(), "{d:?}");
        assert_eq!(d.relaxed.len(), 1);
        let d = Diff::between(&old, &more);
        assert_eq!(d.removed, ["trait demo::T requires { fn a, fn b }"]);
        let none = listing("0.1.0", &["trait demo::T requires {  }"]);
        assert!(Diff::between(&old, &none).removed.is_empty());
    }

    #[test]
    fn a_rendered_listing_reads_back() {
        let l = listing(
            "0.3.1",
            &["pub fn demo::a()", "#[non_exhaustive] pub enum demo::E"],
        );
        assert_eq!(Listing::parse(&l.render()).unwrap(), l);
    }

    #[test]
    fn blessing_refuses_a_break_without_a_bump() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.txt");
        let old = listing("0.1.0", &["pub fn demo::a()", "pub fn demo::b()"]);
        std::fs::write(&path, old.render()).unwrap();
        let new = listing("0.1.0", &["pub fn demo::b()"]);
        for bless in [Bless::No, Bless::Yes] {
            let e = check(&path, &new, bless).unwrap_err();
            assert!(
                e.contains("BREAKING") && e.contains("pub fn demo::a()"),
                "{e}"
            );
            assert!(
                e.contains("0.1.0 → 0.2.0") && e.contains("TASKLEASE_BLESS=break"),
                "{e}"
            );
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), old.render());
        let Checked::Written(d) = check(&path, &new, Bless::Break).unwrap() else {
            panic!("not written")
        };
        assert_eq!(d.removed, ["pub fn demo::a()"]);
        assert_eq!(check(&path, &new, Bless::No).unwrap(), Checked::Current);
    }

    #[test]
    fn a_version_bump_acknowledges_a_break_and_additions_need_only_a_bless() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.txt");
        std::fs::write(&path, listing("0.1.0", &["pub fn demo::a()"]).render()).unwrap();
        let grown = listing("0.1.0", &["pub fn demo::a()", "pub fn demo::c()"]);
        let e = check(&path, &grown, Bless::No).unwrap_err();
        assert!(
            e.contains("additive") && e.contains("+ added: pub fn demo::c()"),
            "{e}"
        );
        assert!(!e.contains("BREAKING"), "{e}");
        assert!(matches!(
            check(&path, &grown, Bless::Yes),
            Ok(Checked::Written(_))
        ));
        let broken = listing("0.2.0", &["pub fn demo::c()"]);
        let e = check(&path, &broken, Bless::No).unwrap_err();
        assert!(
            e.contains("acknowledged by the version bump 0.1.0 → 0.2.0"),
            "{e}"
        );
        assert!(matches!(
            check(&path, &broken, Bless::Yes),
            Ok(Checked::Written(_))
        ));
        assert_eq!(
            Listing::parse(&std::fs::read_to_string(&path).unwrap()).unwrap(),
            broken
        );
    }
}
