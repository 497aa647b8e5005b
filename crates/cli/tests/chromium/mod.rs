//! Headless Chromium driven over the DevTools protocol: the browser is a real process
//! (`--remote-debugging-port=0`), and the tests talk to its page over a websocket
//! (tungstenite): evaluate script, navigate, screenshot. No crate with a generated
//! protocol is needed for that much.
//!
//! Without a Chromium on the machine the tests skip with a note (and a line in
//! `$TASKLEASE_SKIP_LOG`); under `CI=true` that is a failure instead, as for the
//! PostgreSQL tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long the browser gets to start, and any one protocol call to answer.
const BOUND: Duration = Duration::from_secs(30);

/// The Chromium to use: `$TASKLEASE_CHROMIUM`, else the first of the usual names on
/// `PATH` or in `/usr/bin`.
fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TASKLEASE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .collect();
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for d in &dirs {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// A headless browser with one page, killed when dropped.
pub struct Chrome {
    child: Child,
    ws: WebSocket<TcpStream>,
    next: u64,
    _profile: tempfile::TempDir,
}

impl Chrome {
    /// Starts the browser, or returns `None` (after noting the skip) when there is
    /// none; panics under `CI=true` then.
    pub fn launch() -> Option<Chrome> {
        let Some(exe) = find() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "no Chromium found (install Debian's `chromium`), and CI=true: the browser tests must run in CI"
                );
            }
            tasklease_postgres::testing::skip(
                "no Chromium found (install Debian's `chromium`, or set TASKLEASE_CHROMIUM)",
            );
            return None;
        };
        let profile = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(&exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-port=0",
                "--window-size=1280,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", exe.display()));
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines() {
                let Ok(l) = l else { return };
                if let Some(url) = l.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let Ok(browser_ws) = rx.recv_timeout(BOUND) else {
            let _ = child.kill();
            panic!("Chromium did not say where DevTools listens within {BOUND:?}");
        };
        // ws://127.0.0.1:PORT/devtools/browser/… → the page's own socket.
        let host = browser_ws
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("host")
            .to_owned();
        let page_ws = page_socket(&host);
        let path = page_ws
            .trim_start_matches("ws://")
            .split_once('/')
            .map_or("", |x| x.1);
        let stream = TcpStream::connect(&host).expect("connect to DevTools");
        stream.set_read_timeout(Some(BOUND)).unwrap();
        let (ws, _) = tungstenite::client(format!("ws://{host}/{path}"), stream)
            .expect("DevTools websocket handshake");
        let mut c = Chrome {
            child,
            ws,
            next: 0,
            _profile: profile,
        };
        c.call("Page.enable", json!({}));
        c.call("Runtime.enable", json!({}));
        Some(c)
    }

    /// Sends one protocol call and waits (bounded by the socket's read timeout) for
    /// its answer, skipping the events in between.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).expect("send to DevTools");
        let end = Instant::now() + BOUND;
        loop {
            assert!(Instant::now() < end, "{method}: no answer within {BOUND:?}");
            let m = self.ws.read().unwrap_or_else(|e| panic!("{method}: {e}"));
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).expect("DevTools JSON");
            if v["id"] == json!(id) {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("script `{expr}` threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Polls `expr` every 50 ms until it is truthy; panics after `bound`, naming
    /// `what` it waited for. Returns how long it took.
    pub fn wait_for(&mut self, expr: &str, bound: Duration, what: &str) -> Duration {
        let start = Instant::now();
        loop {
            let v = self.eval(&format!("!!({expr})"));
            if v == json!(true) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < bound,
                "waited {bound:?} for {what} (`{expr}`)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Loads `url` and waits for its document to be complete.
    pub fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        let expect = serde_json::to_string(url).unwrap();
        self.wait_for(
            &format!("location.href === {expect} && document.readyState === 'complete'"),
            BOUND,
            &format!("{url} to load"),
        );
    }

    /// A PNG of the viewport.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        base64_decode(r["data"].as_str().expect("screenshot data"))
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The websocket URL of the browser's first page, from `/json/list`.
fn page_socket(host: &str) -> String {
    let end = Instant::now() + BOUND;
    loop {
        let mut s = TcpStream::connect(host).expect("connect to DevTools");
        s.set_read_timeout(Some(BOUND)).unwrap();
        write!(
            s,
            "GET /json/list HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        // DevTools keeps the connection open: read the length it announces.
        let mut r = BufReader::new(s);
        let mut len = 0;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).expect("read /json/list");
            let line = line.trim();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut raw = vec![0; len];
        r.read_exact(&mut raw).expect("read /json/list");
        let body = String::from_utf8_lossy(&raw);
        let body = body.as_ref();
        if let Ok(Value::Array(targets)) = serde_json::from_str::<Value>(body)
            && let Some(ws) = targets
                .iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        {
            return ws.to_owned();
        }
        assert!(
            Instant::now() < end,
            "Chromium listed no page within {BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &c)| {
            acc | (u32::from(val(c)) << (18 - 6 * i))
        });
        let take = chunk.len() - 1;
        for i in 0..take {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}
