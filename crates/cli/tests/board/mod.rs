//! A `tasklease ui` process for tests, and a small HTTP/1.1 client to talk to it over
//! real TCP.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::Project;

/// How long the board gets to start (a debug build on a loaded 2-core machine).
const START_BOUND: Duration = Duration::from_secs(30);

/// A running `tasklease ui`, killed when dropped.
pub struct Board {
    child: Child,
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    /// `127.0.0.1:PORT`
    pub host: String,
    /// The write token from the starting line, when writes are on and none was given.
    pub token: Option<String>,
    /// The starting line.
    pub line: String,
}

impl Board {
    /// Starts `tasklease ui --listen 127.0.0.1:0 EXTRA…` in the project and waits for
    /// its starting line.
    pub fn start(p: &Project, extra: &[&str]) -> Board {
        let mut args = vec!["ui", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = p
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tasklease ui");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(l)) = lines.next() {
                let _ = tx.send(l);
            }
            // Keep reading so the board never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_BOUND) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("tasklease ui printed no starting line within {START_BOUND:?}");
            }
        };
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in the starting line: {line}"))
            .to_owned();
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let token = line
            .split("write token ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_owned);
        Board {
            child,
            url,
            host,
            token,
            line,
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], "")
    }

    /// `GET path` as JSON, asserting 200.
    pub fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
    }

    /// Any request, with `headers` added to `Host` and `Connection: close`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        let mut all: Vec<(&str, &str)> = vec![("Host", &self.host)];
        all.extend_from_slice(headers);
        http(&self.host, method, path, &all, body)
    }

    /// Whether the board process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a fresh connection to `addr`, read to its end (bounded
/// by a 30 s read timeout).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect to the board");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A connection to `/events`, read line by line.
pub struct Feed {
    lines: mpsc::Receiver<String>,
}

impl Feed {
    pub fn open(b: &Board) -> Feed {
        let mut s = TcpStream::connect(&b.host).expect("connect to the board");
        write!(
            s,
            "GET /events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            b.host
        )
        .unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(s).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Feed { lines }
    }

    /// Waits up to `bound` for an `event: NAME` line.
    pub fn expect(&self, name: &str, bound: Duration) {
        let end = Instant::now() + bound;
        let want = format!("event: {name}");
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.trim() == want => return,
                Ok(_) => {}
                Err(_) => panic!("no `{want}` on the live feed within {bound:?}"),
            }
        }
    }

    /// Drops what arrived so far.
    pub fn drain(&self) {
        while self.lines.try_recv().is_ok() {}
    }
}
