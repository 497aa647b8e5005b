//! Support for tests that need a real PostgreSQL: the test server, and a scratch
//! schema per test so tests run in parallel without seeing each other's tasks.
//!
//! The server comes from [`SERVER_VAR`] (a URL or `key=value` string; `scripts/test`
//! starts a throwaway server and sets it). Without it, tests skip with a note — except
//! under `CI=true`, where a missing server is a failure: CI must never pass by
//! skipping.

use std::sync::atomic::{AtomicU32, Ordering};

use postgres::{Client, NoTls};

/// The variable naming the test server.
pub const SERVER_VAR: &str = "TASKLEASE_TEST_PG";

/// The test server's connection string, or `None` (after a note on stderr) when
/// [`SERVER_VAR`] is unset.
///
/// # Panics
/// When [`SERVER_VAR`] is unset and `CI` is `true`.
pub fn server() -> Option<String> {
    match std::env::var(SERVER_VAR) {
        Ok(s) if !s.trim().is_empty() => Some(s),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "{SERVER_VAR} is not set, and CI=true: the PostgreSQL tests must run in CI \
             (scripts/test starts a server and sets it)"
        ),
        _ => {
            eprintln!(
                "note: skipping a PostgreSQL test: {SERVER_VAR} is not set (scripts/test \
                 starts a throwaway server and sets it)"
            );
            record_skip();
            None
        }
    }
}

/// The variable naming a file where a skipped test appends its name, so the run's
/// summary can count what did not run (`scripts/test` sets it): a test runner reports
/// a test that returned early as passed.
pub const SKIP_LOG_VAR: &str = "TASKLEASE_SKIP_LOG";

/// Notes on stderr that a test is skipped and why, and records it for the run's
/// summary (see [`SKIP_LOG_VAR`]).
pub fn skip(why: &str) {
    eprintln!("note: skipping a test: {why}");
    record_skip();
}

fn record_skip() {
    use std::io::Write;
    let Some(path) = std::env::var_os(SKIP_LOG_VAR) else {
        return;
    };
    // libtest and nextest name the test's thread after the test.
    let current = std::thread::current();
    let name = current.name().unwrap_or("unnamed test");
    // One short append per line is atomic enough for parallel tests (O_APPEND).
    let line = format!("{name}\n");
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = appended {
        eprintln!(
            "note: cannot record the skip in {}: {e}",
            path.to_string_lossy()
        );
    }
}

/// A schema of its own on the test server, dropped with everything in it when this
/// value is dropped.
pub struct Scratch {
    /// The server, as given.
    server: String,
    /// The schema's name.
    schema: String,
    /// The server with `search_path` set to the schema.
    conn: String,
}

impl Scratch {
    /// Creates a fresh schema on `server`.
    ///
    /// # Panics
    /// When the server cannot be reached or the schema cannot be created.
    pub fn new(server: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let schema = format!(
            "tl_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        admin(server)
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap_or_else(|e| panic!("create test schema {schema}: {e}"));
        let conn = with_search_path(server, &schema);
        Scratch {
            server: server.to_owned(),
            schema,
            conn,
        }
    }

    /// A connection string for the server with `search_path` set to this schema.
    pub fn conn(&self) -> &str {
        &self.conn
    }

    /// The schema's name.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&self.server, NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

fn admin(server: &str) -> Client {
    Client::connect(server, NoTls)
        .unwrap_or_else(|e| panic!("connect to the test server ({SERVER_VAR}): {e}"))
}

/// `server` with `options=-c search_path=<schema>` added, in its own syntax.
pub fn with_search_path(server: &str, schema: &str) -> String {
    if server.contains("://") {
        let sep = if server.contains('?') { '&' } else { '?' };
        format!("{server}{sep}options=-c%20search_path%3D{schema}")
    } else {
        format!("{server} options='-c search_path={schema}'")
    }
}

/// A TCP proxy in front of the test server that a test can freeze, to play a server
/// that stops answering (a frozen postmaster, a stalled network) without disturbing
/// the shared server itself.
///
/// It listens on `127.0.0.1` and forwards each connection to the server named by the
/// connection string it was started with (its unix socket, or host and port).
pub struct Proxy {
    /// Where clients connect.
    addr: std::net::SocketAddr,
    /// What the forwarding threads obey.
    shared: std::sync::Arc<ProxyState>,
}

/// Read by every forwarding thread between chunks.
struct ProxyState {
    /// Hold every byte instead of passing it on; connections stay open.
    frozen: std::sync::atomic::AtomicBool,
    /// Bumped by [`Proxy::cut`]: threads of an older generation close their sockets.
    generation: std::sync::atomic::AtomicU64,
    /// The proxy was dropped: every thread ends.
    closed: std::sync::atomic::AtomicBool,
}

/// Either end of a forwarded connection.
trait Duplex: std::io::Read + std::io::Write + Send {
    fn split(&self) -> std::io::Result<Box<dyn Duplex>>;
    fn shut(&self);
    fn tick(&self) -> std::io::Result<()>;
}

impl Duplex for std::net::TcpStream {
    fn split(&self) -> std::io::Result<Box<dyn Duplex>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shut(&self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
    fn tick(&self) -> std::io::Result<()> {
        self.set_read_timeout(Some(std::time::Duration::from_millis(20)))
    }
}

impl Duplex for std::os::unix::net::UnixStream {
    fn split(&self) -> std::io::Result<Box<dyn Duplex>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shut(&self) {
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
    fn tick(&self) -> std::io::Result<()> {
        self.set_read_timeout(Some(std::time::Duration::from_millis(20)))
    }
}

/// Where the server named by `server` (`key=value` pairs) listens.
enum Upstream {
    Unix(std::path::PathBuf),
    Tcp(String, u16),
}

impl Upstream {
    fn of(server: &str) -> Upstream {
        let config: tokio_postgres::Config = server
            .parse()
            .unwrap_or_else(|e| panic!("{SERVER_VAR} is not a connection string: {e}"));
        let port = config.get_ports().first().copied().unwrap_or(5432);
        match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Unix(dir)) => {
                Upstream::Unix(dir.join(format!(".s.PGSQL.{port}")))
            }
            Some(tokio_postgres::config::Host::Tcp(h)) => Upstream::Tcp(h.clone(), port),
            None => Upstream::Tcp("localhost".into(), port),
        }
    }

    fn connect(&self) -> std::io::Result<Box<dyn Duplex>> {
        Ok(match self {
            Upstream::Unix(p) => Box::new(std::os::unix::net::UnixStream::connect(p)?),
            Upstream::Tcp(h, p) => Box::new(std::net::TcpStream::connect((h.as_str(), *p))?),
        })
    }
}

impl Proxy {
    /// Starts forwarding to `server`, a `key=value` connection string such as the
    /// test server's.
    ///
    /// # Panics
    /// When `server` does not parse or no local port is free.
    pub fn start(server: &str) -> Proxy {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let upstream = Upstream::of(server);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = std::sync::Arc::new(ProxyState {
            frozen: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        let state = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if state.closed.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = upstream.connect() else {
                    continue;
                };
                let client: Box<dyn Duplex> = Box::new(client);
                let generation = state.generation.load(Ordering::SeqCst);
                for (from, to) in [
                    (client.split(), server.split()),
                    (server.split(), client.split()),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let state = state.clone();
                    std::thread::spawn(move || pump(from, to, &state, generation));
                }
            }
        });
        Proxy { addr, shared }
    }

    /// `conn` (a `key=value` connection string to the test server, such as
    /// [`Scratch::conn`]) pointed at this proxy instead.
    ///
    /// # Panics
    /// When `conn` is a URL: only `key=value` strings are rewritten.
    pub fn via(&self, conn: &str) -> String {
        assert!(
            !conn.contains("://"),
            "Proxy::via rewrites key=value connection strings only; {SERVER_VAR} is a URL"
        );
        let mut kept: Vec<&str> = conn
            .split(' ')
            .filter(|w| !(w.starts_with("host=") || w.starts_with("port=")))
            .collect();
        let at = format!("host=127.0.0.1 port={}", self.addr.port());
        kept.push(&at);
        kept.join(" ")
    }

    /// Stops passing bytes on, in both directions, on every connection, present and
    /// future; connections stay open, as with a frozen server.
    pub fn freeze(&self) {
        self.shared
            .frozen
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Passes bytes on again, including those held while frozen.
    pub fn thaw(&self) {
        self.shared
            .frozen
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Closes every connection made so far, dropping any bytes held: a connection
    /// that breaks mid-way.
    pub fn cut(&self) {
        self.shared
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// Copies `from` to `to` until either ends, holding bytes while frozen.
fn pump(mut from: Box<dyn Duplex>, mut to: Box<dyn Duplex>, s: &ProxyState, generation: u64) {
    use std::io::ErrorKind;
    use std::sync::atomic::Ordering;
    let gone = || s.generation.load(Ordering::SeqCst) != generation;
    let _ = from.tick();
    let mut buf = vec![0; 64 * 1024];
    loop {
        if gone() {
            break;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        while s.frozen.load(Ordering::SeqCst) && !gone() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if gone() || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    from.shut();
    to.shut();
}

/// A TCP listener that accepts connections and never says a word: a server that
/// hangs during start-up.
pub struct Silent {
    addr: std::net::SocketAddr,
}

impl Silent {
    /// Starts listening on a free local port.
    ///
    /// # Panics
    /// When no local port is free.
    pub fn start() -> Silent {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("the listener's address");
        std::thread::spawn(move || {
            // Held open, never read: the client's start-up message goes unanswered.
            let mut held = Vec::new();
            for c in listener.incoming().flatten() {
                held.push(c);
            }
        });
        Silent { addr }
    }

    /// A connection string for it, with `rest` (e.g. `connect_timeout=2`) added.
    pub fn conn(&self, rest: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres {rest}",
            self.addr.port()
        )
    }
}
