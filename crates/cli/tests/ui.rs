//! `tasklease ui`: the web board, served by the real binary on a real port, over both
//! stores; agents are real `tasklease` processes; the browser tests drive headless
//! Chromium.

mod board;
mod chromium;
mod common;

use std::time::{Duration, Instant};

use board::{Board, Feed};
use chromium::Chrome;
use common::Project;
use serde_json::json;

/// How long the live feed may take to report a change in these tests: the board
/// promises a second; a loaded CI machine gets more.
const LIVE_BOUND: Duration = Duration::from_secs(5);

const XSS: &str = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>";

fn board_loads_and_shows_titles_as_text(p: &Project) {
    p.ok(&["add", XSS, "--id", "X-1", "--tag", "web"]);
    p.ok(&["add", "plain", "--id", "P-1", "--priority", "high"]);
    let b = Board::start(p, &[]);
    let page = b.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("<img src=x"),
        "the title reached the page as markup"
    );
    assert!(
        !page.body.contains("<script>window"),
        "the title reached the page as markup"
    );
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    // The API is the CLI's list --json, title as given.
    let api = b.json("/api/tasks?tag=web");
    assert_eq!(api["count"], 1);
    assert_eq!(api["tasks"][0]["title"], XSS);
    let cli = common::parse_one(p.ok(&["list", "--tag", "web", "--json"]).as_bytes());
    assert_eq!(api, cli, "the API answers with the CLI's --json shape");
    let shown = b.json("/api/tasks/X-1");
    assert_eq!(shown["task"]["id"], "X-1");
    assert!(b.get("/tasks/X-1").body.contains("&lt;script&gt;"));
    // Static files are embedded.
    assert!(b.get("/static/board.js").body.contains("EventSource"));
    assert!(
        b.get("/static/board.css")
            .body
            .contains("prefers-color-scheme")
    );
}

fn a_cli_claim_reaches_the_live_feed_and_the_board(p: &Project) {
    p.ok(&["add", "work", "--id", "W-1"]);
    let b = Board::start(p, &[]);
    let feed = Feed::open(&b);
    feed.expect("hello", LIVE_BOUND);
    // The poller's first read after idling counts as a change; let it pass.
    std::thread::sleep(Duration::from_millis(600));
    feed.drain();
    let start = Instant::now();
    p.ok(&["claim", "W-1", "--agent", "alice"]);
    feed.expect("change", LIVE_BOUND);
    eprintln!("a CLI claim reached the feed in {:?}", start.elapsed());
    let page = b.get("/").body;
    let card = page
        .split("data-id=\"W-1\"")
        .nth(1)
        .expect("the card")
        .split("</li>")
        .next()
        .unwrap();
    assert!(card.contains("data-status=\"in_progress\""), "{card}");
    assert!(card.contains("alice"), "{card}");
    assert!(card.contains("fence 1"), "{card}");
    assert!(card.contains("data-until-ms"), "{card}");
    // A renewal and a done reach it too.
    feed.drain();
    p.ok(&["renew", "W-1", "--token", "1"]);
    feed.expect("change", LIVE_BOUND);
    assert!(b.get("/").body.contains("renewed 1×"));
    feed.drain();
    p.ok(&["done", "W-1", "--token", "1"]);
    feed.expect("change", LIVE_BOUND);
    let figures = b.json("/api/feed");
    assert_eq!(figures["failures"], 0);
    assert!(figures["polls"].as_u64().unwrap() > 0);
}

fn writes_are_off_unless_asked_and_need_the_token(p: &Project) {
    p.ok(&["add", "held", "--id", "H-1"]);
    p.ok(&["claim", "H-1", "--agent", "bob"]);
    let ro = Board::start(p, &[]);
    assert!(
        ro.token.is_none(),
        "a read-only board printed a token: {}",
        ro.line
    );
    let r = ro.request("POST", "/api/tasks/H-1/release", &[], "");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("--allow-writes"), "{}", r.body);
    assert!(!ro.get("/tasks/H-1").body.contains("name=\"secret\""));
    drop(ro);

    let b = Board::start(p, &["--allow-writes"]);
    let token = b
        .token
        .clone()
        .expect("the starting line names the write token");
    let bearer = format!("Bearer {token}");
    // No token, a wrong one, the right one from another origin: refused, nothing changed.
    let none = b.request("POST", "/api/tasks/H-1/release", &[], "");
    assert_eq!(none.status, 401, "{}", none.body);
    let wrong = b.request(
        "POST",
        "/api/tasks/H-1/release",
        &[("Authorization", "Bearer 00")],
        "",
    );
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    let elsewhere = b.request(
        "POST",
        "/api/tasks/H-1/release",
        &[
            ("Authorization", &bearer),
            ("Origin", "http://evil.example"),
        ],
        "",
    );
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.body);
    let form = b.request(
        "POST",
        "/tasks/H-1/release",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "secret=nope",
    );
    assert_eq!(form.status, 403);
    for r in [&none, &wrong, &elsewhere, &form] {
        assert!(!r.body.contains(&token), "a refusal showed the token");
    }
    let shown = p.json(&["show", "H-1"], 0);
    assert_eq!(
        shown["task"]["status"], "in_progress",
        "a refused write changed the task"
    );

    // With the token: forced, as `release --force --json` says it.
    let ok = b.request(
        "POST",
        "/api/tasks/H-1/release",
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let v: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(v["outcome"], "forced");
    assert_eq!(p.json(&["show", "H-1"], 0)["task"]["status"], "todo");
    let log = p.json(&["log", "H-1"], 0);
    assert_eq!(
        log["events"].as_array().unwrap().last().unwrap()["kind"],
        "forced"
    );

    // Re-prioritise, add and cancel, by form (same origin) and by JSON.
    let form = b.request(
        "POST",
        "/tasks/H-1/priority",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", &format!("http://{}", b.host)),
        ],
        &format!("secret={token}&priority=critical"),
    );
    assert_eq!(form.status, 303, "{}", form.body);
    assert_eq!(p.json(&["show", "H-1"], 0)["task"]["priority"], "critical");
    let added = b.request(
        "POST",
        "/api/tasks",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        &json!({"title": "from the web", "tags": ["ui"]}).to_string(),
    );
    assert_eq!(added.status, 200, "{}", added.body);
    let added: serde_json::Value = serde_json::from_str(&added.body).unwrap();
    let new_id = added["task"]["id"].as_str().unwrap().to_owned();
    assert_eq!(p.json(&["show", &new_id], 0)["task"]["tags"], json!(["ui"]));
    p.ok(&["claim", &new_id, "--agent", "carol"]);
    let cancelled = b.request(
        "POST",
        &format!("/api/tasks/{new_id}/cancel"),
        &[("Authorization", &bearer)],
        "",
    );
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(p.json(&["show", &new_id], 0)["task"]["status"], "cancelled");
    let bad = b.request(
        "POST",
        "/api/tasks/H-1/priority",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        r#"{"priority":"urgent"}"#,
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.body.contains("critical, high, medium, low"),
        "{}",
        bad.body
    );
}

fn the_task_and_fleet_pages_say_everything(p: &Project) {
    p.ok(&["add", "epic", "--id", "E-1"]);
    p.ok(&["add", "base", "--id", "B-1", "--parent", "E-1"]);
    p.ok(&["add", "top", "--id", "T-9", "--dep", "B-1"]);
    p.ok(&["claim", "B-1", "--agent", "dora"]);
    let b = Board::start(p, &[]);
    let page = b.get("/tasks/B-1").body;
    for want in [
        "Needed by",
        "T-9",
        "dora",
        "fence 1",
        "Lease history",
        "claimed",
        "E-1",
    ] {
        assert!(page.contains(want), "the task page lacks {want}: {page}");
    }
    let top = b.get("/tasks/T-9").body;
    assert!(top.contains("Waits on"), "{top}");
    assert!(top.contains("held by dora"), "{top}");
    let epic = b.get("/tasks/E-1").body;
    assert!(epic.contains("0 of 1 done"), "{epic}");
    assert_eq!(b.get("/tasks/NOPE").status, 404);
    assert_eq!(b.get("/tasks/..%2F").status, 400);
    let fleet = b.get("/fleet").body;
    assert!(fleet.contains("dora") && fleet.contains("<svg"), "{fleet}");
    let api = b.json("/api/fleet");
    assert_eq!(api["agents"][0]["agent"], "dora");
    assert_eq!(api["agents"][0]["holds"], json!(["B-1"]));
    // Filters.
    assert_eq!(b.json("/api/tasks?parent=E-1")["count"], 1);
    assert_eq!(b.json("/api/tasks?assignee=dora")["count"], 1);
    assert_eq!(b.json("/api/tasks?q=TOP")["count"], 1);
    let bad = b.get("/api/tasks?tag=a%20b");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(b.json("/api/log?task=B-1")["events"][0]["kind"], "claimed");
}

each_store!(
    board_loads_and_shows_titles_as_text,
    a_cli_claim_reaches_the_live_feed_and_the_board,
    writes_are_off_unless_asked_and_need_the_token,
    the_task_and_fleet_pages_say_everything,
);

#[test]
fn another_host_name_is_refused() {
    let p = Project::new();
    let b = Board::start(&p, &[]);
    let r = board::http(
        &b.host,
        "GET",
        "/api/tasks",
        &[("Host", "rebound.example:80")],
        "",
    );
    assert_eq!(r.status, 421, "{}", r.body);
    let r = board::http(&b.host, "GET", "/api/tasks", &[("Host", &b.host)], "");
    assert_eq!(r.status, 200);
}

#[test]
fn bad_arguments_exit_2_and_a_given_token_is_never_printed() {
    let p = Project::new();
    let out = p.run(&["ui", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
    let out = p.run(&["ui", "--listen", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("allowed: IP:PORT"));
    let out = p.run(&["ui", "--token", "short"]);
    assert_eq!(out.status.code(), Some(2));
    let secret = "a-secret-of-our-own-0123456789";
    let b = Board::start(&p, &["--allow-writes", "--token", secret]);
    assert!(!b.line.contains(secret), "{}", b.line);
    let r = b.request(
        "POST",
        "/api/tasks",
        &[
            ("Authorization", &format!("Bearer {secret}")),
            ("Content-Type", "application/json"),
        ],
        r#"{"title":"t"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn no_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["ui", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("missing.db"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("serving"));
}

// ---- in a real browser

/// The board in Chromium: a CLI claim turns the card "in progress" without a reload,
/// the countdown moves, a title is text.
fn browser_sees_a_claim_live(p: &Project) {
    let Some(mut c) = Chrome::launch() else {
        return;
    };
    p.ok(&["add", XSS, "--id", "X-1"]);
    p.ok(&["add", "live one", "--id", "L-1", "--priority", "critical"]);
    let b = Board::start(p, &[]);
    c.goto(&b.url);
    c.wait_for(
        "document.getElementById('feed').textContent === 'live'",
        LIVE_BOUND,
        "the feed to connect",
    );
    assert_eq!(
        c.eval("document.querySelector('[data-id=\"X-1\"] .title').textContent"),
        json!(XSS)
    );
    assert_eq!(
        c.eval("document.querySelectorAll('[data-id=\"X-1\"] .title *').length"),
        json!(0)
    );
    assert_eq!(
        c.eval("typeof window.__xss"),
        json!("undefined"),
        "the title ran as script"
    );
    // A mark that a reload would wipe.
    c.eval("window.__same_page = 1");
    assert_eq!(
        c.eval("document.querySelector('[data-id=\"L-1\"]').closest('.column').dataset.status"),
        json!("todo")
    );
    let start = Instant::now();
    p.ok(&["claim", "L-1", "--agent", "zed", "--lease", "10m"]);
    let took = c.wait_for(
        "document.querySelector('[data-id=\"L-1\"]')?.closest('.column')?.dataset.status === 'in_progress'",
        LIVE_BOUND,
        "the claimed card to move to in progress",
    );
    eprintln!(
        "claim to card in the browser: {:?} (after the CLI returned: {took:?})",
        start.elapsed()
    );
    assert!(
        took < Duration::from_secs(2) || std::env::var("CI").is_ok(),
        "took {took:?}, over the 2 s asked"
    );
    assert_eq!(
        c.eval("window.__same_page"),
        json!(1),
        "the page was reloaded"
    );
    assert_eq!(
        c.eval("document.querySelector('[data-id=\"L-1\"] .holder').textContent"),
        json!("zed")
    );
    assert_eq!(
        c.eval("document.querySelector('[data-id=\"L-1\"] .fence').textContent"),
        json!("fence 1")
    );
    let first = c.eval("document.querySelector('[data-id=\"L-1\"] .countdown').textContent");
    c.wait_for(
        &format!("document.querySelector('[data-id=\"L-1\"] .countdown').textContent !== {first}"),
        LIVE_BOUND,
        "the countdown to move",
    );
    assert!(first.as_str().unwrap().contains("left"), "{first}");
}

/// Forced release from the task page with the token works; without it, refused.
fn browser_forces_a_release_only_with_the_token(p: &Project) {
    let Some(mut c) = Chrome::launch() else {
        return;
    };
    p.ok(&["add", "stuck", "--id", "S-1"]);
    p.ok(&["claim", "S-1", "--agent", "gone"]);
    let b = Board::start(p, &["--allow-writes"]);
    c.goto(&format!("{}tasks/S-1", b.url));
    // Without the token (a script posting on its own), refused.
    let status = c.eval("fetch('/tasks/S-1/release', {method: 'POST', body: new URLSearchParams({secret: 'guess'})}).then(r => r.status)");
    assert_eq!(status, json!(403));
    let status = c.eval("fetch('/api/tasks/S-1/release', {method: 'POST'}).then(r => r.status)");
    assert_eq!(status, json!(401));
    assert_eq!(p.json(&["show", "S-1"], 0)["task"]["status"], "in_progress");
    // The form carries it.
    c.eval("document.getElementById('force-release').click()");
    c.wait_for(
        "document.readyState === 'complete' && document.querySelector('dd.status')?.textContent === 'todo'",
        LIVE_BOUND,
        "the task page to show the task released",
    );
    assert_eq!(p.json(&["show", "S-1"], 0)["task"]["status"], "todo");
    // Keyboard: the first Tab reaches the skip link.
    c.call(
        "Input.dispatchKeyEvent",
        json!({"type": "keyDown", "key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9}),
    );
    c.call(
        "Input.dispatchKeyEvent",
        json!({"type": "keyUp", "key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9}),
    );
    assert_eq!(c.eval("document.activeElement.className"), json!("skip"));
}

each_store!(
    browser_sees_a_claim_live,
    browser_forces_a_release_only_with_the_token
);

/// Big columns are paged: 100 cards of an open column, the latest 50 done; the rest
/// are counted and one link away.
fn columns_are_paged_and_closed_ones_collapsed(p: &Project) {
    let line = |id: String, status: &str, at: String| {
        json!({
            "tasklease": 2, "id": id, "title": "t", "description": "", "status": status,
            "priority": "medium", "tags": [], "deps": [], "parent": null, "waiting_on": 0,
            "version": 1, "attempts": 0, "assignee": null, "assigned_at": null,
            "lock_until": null, "created_at": at, "updated_at": at,
        })
        .to_string()
            + "\n"
    };
    let mut lines = String::new();
    for i in 0..101 {
        lines.push_str(&line(
            format!("O-{i:03}"),
            "todo",
            "2026-01-01T00:00:00.000Z".into(),
        ));
    }
    for i in 0..60 {
        lines.push_str(&line(
            format!("D-{i:03}"),
            "done",
            format!("2026-01-01T00:{i:02}:00.000Z"),
        ));
    }
    let file = p.root().join("tasks.jsonl");
    std::fs::write(&file, lines).unwrap();
    p.ok(&["import", file.to_str().unwrap()]);
    let b = Board::start(p, &[]);
    let page = b.get("/").body;
    let cards = |status: &str, body: &str| {
        body.split(&format!("data-status=\"{status}\" aria-labelledby"))
            .nth(1)
            .unwrap()
            .split("</section>")
            .next()
            .unwrap()
            .matches("class=\"card\"")
            .count()
    };
    assert_eq!(cards("todo", &page), 100);
    assert_eq!(cards("done", &page), 50);
    assert!(page.contains("1 more"), "{page}");
    assert!(page.contains("10 more older"), "{page}");
    // The latest done are shown: D-059 (newest) yes, D-000 (oldest) no.
    assert!(page.contains("data-id=\"D-059\"") && !page.contains("data-id=\"D-000\""));
    let all = b.get("/?show=all").body;
    assert_eq!(cards("todo", &all), 101);
    assert_eq!(cards("done", &all), 60);
}

each_store!(columns_are_paged_and_closed_ones_collapsed);
