//! The semver check (docs/library.md, "Stability"): the library crates' public API is
//! the listing committed in docs/api/, and the check fails, naming the item, when an
//! item is removed or changed — shown on scratch crates built by the same rustdoc.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tasklease_apicheck::{Bless, Checked, Listing, check, rustdoc_json};

/// The crates whose API is promised. `tasklease` re-exports `tasklease-core` (a glob
/// rustdoc does not expand across crates), so core's items are listed under core.
const CRATES: &[&str] = &[
    "tasklease",
    "tasklease-core",
    "tasklease-sqlite",
    "tasklease-postgres",
];

/// The first run builds the crates' dependencies in a target directory of its own.
const BOUND: Duration = Duration::from_secs(20 * 60);

fn workspace() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// A target directory apart from the one the tests run from (`<target>/apicheck`, found
/// from this test's own path, wherever cargo was told to build), so the nested cargo
/// never waits for the outer one's lock and rustdoc's unstable flag touches none of its
/// builds.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // <target>/debug/deps/api-HASH
    exe.ancestors()
        .nth(3)
        .expect("a test binary under <target>/debug/deps")
        .join("apicheck")
}

/// `docs/api/<crate>.txt` is each library crate's public API as of now; a breaking
/// change fails naming the item and how to acknowledge it, an additive one fails until
/// recorded. `TASKLEASE_BLESS=1` rewrites (refusing a break without a version bump),
/// `TASKLEASE_BLESS=break` rewrites whatever changed.
#[test]
fn public_api_is_current() {
    let root = workspace();
    let bless = Bless::from_env();
    let mut failures = Vec::new();
    for package in CRATES {
        let listing = rustdoc_json(&root, package, &target_dir(), BOUND)
            .and_then(|json| Listing::from_rustdoc_json(package, &json));
        let path = root.join("docs/api").join(format!("{package}.txt"));
        match listing.and_then(|l| check(&path, &l, bless)) {
            Ok(Checked::Written(diff)) => eprintln!(
                "wrote {}: {} lines out, {} in, {} relaxed",
                path.display(),
                diff.removed.len(),
                diff.added.len(),
                diff.relaxed.len()
            ),
            Ok(Checked::Current) => {}
            Err(e) => failures.push(e),
        }
    }
    let mut listed: Vec<String> = std::fs::read_dir(root.join("docs/api"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    listed.sort();
    let mut want: Vec<String> = CRATES.iter().map(|c| format!("{c}.txt")).collect();
    want.sort();
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    assert_eq!(
        listed, want,
        "docs/api holds a listing of no checked crate, or lacks one"
    );
}

/// A crate of one file, built in a temporary directory.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        Scratch { dir }
    }

    /// Writes the crate at `version` with `source` and lists its public API.
    fn listing(&self, version: &str, source: &str) -> Listing {
        let root = self.dir.path();
        std::fs::write(
            root.join("Cargo.toml"),
            format!(
                "[package]\nname = \"scratch\"\nversion = \"{version}\"\nedition = \"2024\"\n\n[workspace]\n"
            ),
        )
        .unwrap();
        std::fs::write(root.join("src/lib.rs"), source).unwrap();
        let json = rustdoc_json(root, "scratch", &root.join("target"), BOUND).unwrap();
        Listing::from_rustdoc_json("scratch", &json).unwrap()
    }

    fn committed(&self) -> PathBuf {
        self.dir.path().join("scratch.txt")
    }

    /// Blesses the listing of `source` as the baseline.
    fn baseline(&self, source: &str) {
        let l = self.listing("0.1.0", source);
        assert!(matches!(
            check(&self.committed(), &l, Bless::Yes),
            Ok(Checked::Written(_))
        ));
        assert_eq!(
            check(&self.committed(), &l, Bless::No),
            Ok(Checked::Current)
        );
    }

    /// The check of `source` at `version` against the baseline: it must fail; its message.
    fn fails(&self, version: &str, source: &str) -> String {
        let l = self.listing(version, source);
        check(&self.committed(), &l, Bless::No).expect_err("the check passed")
    }
}

const BASE: &str = "
/// A function.
pub fn claim(id: &str, seconds: u32) -> bool { id.len() as u32 > seconds }
/// A function that goes away.
pub fn prune() {}
/// An exhaustive enum.
pub enum Status { Open, Done }
/// A struct callers build with a literal.
pub struct Options { pub busy_ms: u32 }
/// A trait callers implement.
pub trait Store { fn now(&self) -> i64; }
";

#[test]
fn a_removed_function_fails_naming_it() {
    let s = Scratch::new();
    s.baseline(BASE);
    let e = s.fails("0.1.0", &BASE.replace("pub fn prune() {}", ""));
    assert!(
        e.contains("BREAKING") && e.contains("removed or changed: pub fn scratch::prune()"),
        "{e}"
    );
    assert!(
        e.contains("TASKLEASE_BLESS=1") && e.contains("0.1.0 → 0.2.0"),
        "{e}"
    );
}

#[test]
fn a_changed_signature_fails_naming_old_and_new() {
    let s = Scratch::new();
    s.baseline(BASE);
    let e = s.fails("0.1.0", &BASE.replace("seconds: u32", "seconds: u64"));
    assert!(e.contains("BREAKING"), "{e}");
    assert!(
        e.contains("removed or changed: pub fn scratch::claim(&str, u32) -> bool"),
        "{e}"
    );
    assert!(
        e.contains("+ added: pub fn scratch::claim(&str, u64) -> bool"),
        "{e}"
    );
}

/// Breaking changes that only add: each changes a shape line.
#[test]
fn additions_that_break_fail_naming_the_item() {
    let s = Scratch::new();
    s.baseline(BASE);
    for (change, names) in [
        (
            BASE.replace("Open, Done", "Open, Done, Failed"),
            "exhaustive enum scratch::Status { Done, Open }",
        ),
        (
            BASE.replace("pub busy_ms: u32", "pub busy_ms: u32, pub pool: u8"),
            "constructible struct scratch::Options { busy_ms }",
        ),
        (
            BASE.replace("pub busy_ms: u32", "pub busy_ms: u32, pool: u8"),
            "constructible struct scratch::Options { busy_ms }",
        ),
        (
            BASE.replace(
                "fn now(&self) -> i64;",
                "fn now(&self) -> i64; fn wake(&self);",
            ),
            "trait scratch::Store requires { fn now }",
        ),
        (
            BASE.replace("pub struct Options", "#[non_exhaustive] pub struct Options"),
            "pub struct scratch::Options",
        ),
    ] {
        let e = s.fails("0.1.0", &change);
        assert!(
            e.contains("BREAKING") && e.contains(&format!("removed or changed: {names}")),
            "{e}"
        );
    }
}

#[test]
fn an_addition_is_shown_and_recorded_without_a_bump() {
    let s = Scratch::new();
    s.baseline(BASE);
    let grown = format!(
        "{BASE}\n/// New.\npub fn renew(seconds: u32) -> u32 {{ seconds }}\n/// Default.\n\
         pub trait Clock {{ fn now(&self) -> i64 {{ 0 }} }}"
    );
    let e = s.fails("0.1.0", &grown);
    assert!(!e.contains("BREAKING") && e.contains("additive"), "{e}");
    assert!(
        e.contains("+ added: pub fn scratch::renew(u32) -> u32"),
        "{e}"
    );
    let l = s.listing("0.1.0", &grown);
    assert!(matches!(
        check(&s.committed(), &l, Bless::Yes),
        Ok(Checked::Written(_))
    ));
    assert_eq!(check(&s.committed(), &l, Bless::No), Ok(Checked::Current));
    // A required method given a default breaks nobody.
    let relaxed = grown.replace("fn now(&self) -> i64;", "fn now(&self) -> i64 { 0 }");
    let e = s.fails("0.1.0", &relaxed);
    assert!(!e.contains("BREAKING") && e.contains("relaxed"), "{e}");
}

#[test]
fn a_version_bump_acknowledges_a_break() {
    let s = Scratch::new();
    s.baseline(BASE);
    let broken = BASE.replace("pub fn prune() {}", "");
    let e = s.fails("0.2.0", &broken);
    assert!(
        e.contains("acknowledged by the version bump 0.1.0 → 0.2.0"),
        "{e}"
    );
    let l = s.listing("0.2.0", &broken);
    assert!(matches!(
        check(&s.committed(), &l, Bless::Yes),
        Ok(Checked::Written(_))
    ));
    assert!(
        std::fs::read_to_string(s.committed())
            .unwrap()
            .starts_with("# scratch 0.2.0\n")
    );
}
