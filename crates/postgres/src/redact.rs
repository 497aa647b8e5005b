//! Connection strings made safe to print.
//!
//! A connection string may hold a password, and it reaches the user in error messages,
//! `status`, `--json` and the MCP server's errors. Redaction therefore parses the
//! string the way the driver does — a `postgres://` URL or libpq `key=value` pairs —
//! rather than cutting it at the first `:` or `/`, and replaces every password value:
//! the URL's user info, `password=` in its query (the key may be percent-encoded), and
//! `password` pairs whether quoted (`'a b\' c'`) or backslash-escaped (`a\ b`).
//!
//! Where the string is ambiguous (an unencoded `@` in a password, `/` or `?` before the
//! last `@`, a query the driver cannot read, pairs that do not parse), no part of it is
//! guessed at: everything between the scheme and the last `@` is `***`, a query piece
//! after a password that is not a known keyword is `***`, and the rest of malformed pairs
//! is `***`. Over-redacting costs a user name in a message; under-redacting a password.
//!
//! The driver's own parse errors can quote a piece of the string (``unknown option
//! `cr3t` `` when a password holds an unencoded `&`), so [`driver_message`] keeps only
//! quoted words that are known keywords.

/// The connection keywords the driver knows (tokio-postgres's `Config::param`).
const KEYWORDS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslmode",
    "sslnegotiation",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

const HIDDEN: &str = "***";

/// A connection string with every password replaced by `***`; a user name is kept
/// where it is unambiguous.
pub fn redact(conn: &str) -> String {
    redact_with(conn, true)
}

/// As [`redact`] for a string the driver refused: the URL's user name goes too, since
/// the driver's reading of it and ours may differ.
pub(crate) fn redact_unparsed(conn: &str) -> String {
    redact_with(conn, false)
}

fn redact_with(conn: &str, keep_user: bool) -> String {
    match url_parts(conn) {
        Some((scheme, rest)) => redact_url(scheme, rest, keep_user),
        None => redact_pairs(conn),
    }
}

/// `("postgres", "user:pw@host/db")` for a URL.
fn url_parts(conn: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = conn.split_once("://")?;
    let is_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme.then_some((scheme, rest))
}

/// Whether a URL has more than one `@`: the driver (like libpq) ends the user info at
/// the first, so the rest of a password would be read as the host and printed.
pub(crate) fn ambiguous_at(conn: &str) -> bool {
    url_parts(conn).is_some_and(|(_, rest)| rest.matches('@').count() > 1)
}

fn redact_url(scheme: &str, rest: &str, keep_user: bool) -> String {
    let mut out = format!("{scheme}://");
    let after = match rest.rsplit_once('@') {
        Some((cred, after)) => {
            let clear = keep_user && !cred.contains(['@', '/', '?', '#']);
            match cred.split_once(':') {
                Some((user, _)) if clear => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(HIDDEN);
                }
                None if clear => out.push_str(cred),
                _ => out.push_str(HIDDEN),
            }
            out.push('@');
            after
        }
        None => rest,
    };
    match after.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            out.push_str(&redact_query(query));
        }
        None => out.push_str(after),
    }
    out
}

/// `a=1&password=x&b=2` with the password hidden; after a password, a piece that is not
/// `known_keyword=…` may be the rest of it (an unencoded `&`), so it is hidden too.
fn redact_query(query: &str) -> String {
    let mut after_password = false;
    let pieces: Vec<String> = query
        .split('&')
        .map(|piece| {
            let key = piece.split_once('=').map(|(k, _)| decode(k));
            match key {
                Some(k) if k.eq_ignore_ascii_case("password") => {
                    after_password = true;
                    format!("{}={HIDDEN}", piece.split_once('=').map_or("", |(k, _)| k))
                }
                Some(k) if KEYWORDS.contains(&k.as_str()) => piece.to_owned(),
                _ if after_password => HIDDEN.to_owned(),
                _ => piece.to_owned(),
            }
        })
        .collect();
    pieces.join("&")
}

/// Percent-decoding, lossy: only used to recognise a key.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// libpq `key = value` pairs, read the way the driver reads them, with the value of
/// every `password` hidden; from the first thing that is not a pair on, all is hidden.
fn redact_pairs(conn: &str) -> String {
    let mut out = String::with_capacity(conn.len());
    let mut rest = conn;
    loop {
        let ws = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..ws]);
        rest = &rest[ws..];
        if rest.is_empty() {
            return out;
        }
        let key_len = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let key = &rest[..key_len];
        let after_key = &rest[key_len..];
        let eq = after_key.trim_start();
        let Some(value) = eq.strip_prefix('=').filter(|_| !key.is_empty()) else {
            out.push_str(HIDDEN);
            return out;
        };
        let value_start = value.trim_start();
        let Some(len) = value_len(value_start) else {
            out.push_str(&rest[..rest.len() - value_start.len()]);
            out.push_str(HIDDEN);
            return out;
        };
        out.push_str(&rest[..rest.len() - value_start.len()]);
        if key.eq_ignore_ascii_case("password") {
            out.push_str(HIDDEN);
        } else {
            out.push_str(&value_start[..len]);
        }
        rest = &value_start[len..];
    }
}

/// The length of the value at the start of `s`: `'quoted'` (with `\` escapes) or up to
/// whitespace (with `\` escapes). `None` when it does not end (or is missing).
fn value_len(s: &str) -> Option<usize> {
    let quoted = s.starts_with('\'');
    let mut chars = s.char_indices().skip(usize::from(quoted));
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '\'' if quoted => return Some(i + 1),
            c if !quoted && c.is_whitespace() => return (i > 0).then_some(i),
            _ => {}
        }
    }
    (!quoted && !s.is_empty()).then_some(s.len())
}

/// A parse error from the driver with every `quoted` word that is not a connection
/// keyword hidden: such a word may be a piece of a password.
pub(crate) fn driver_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut parts = msg.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        out.push('`');
        let quoted = i % 2 == 0;
        if quoted && !KEYWORDS.contains(&part) && part != "=" {
            out.push_str(HIDDEN);
        } else {
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for (given, want) in [
            (
                "postgres://bob:s3cret@db.example:5432/tasks?sslmode=disable",
                "postgres://bob:***@db.example:5432/tasks?sslmode=disable",
            ),
            (
                "postgresql://db.example/tasks?user=bob&password=s3cret",
                "postgresql://db.example/tasks?user=bob&password=***",
            ),
            ("postgres://db.example/tasks", "postgres://db.example/tasks"),
            (
                "postgres://bob@db.example/tasks",
                "postgres://bob@db.example/tasks",
            ),
            ("postgres://bob:p@s3cret@h:1/db", "postgres://***@h:1/db"),
            ("postgres://bob:a/b@c@h/db", "postgres://***@h/db"),
            ("postgres://bob:s3/cret@h/db", "postgres://***@h/db"),
            ("postgres://bob:s3%40cret@h/db", "postgres://bob:***@h/db"),
            (
                "postgres://h/db?pass%77ord=s3cret",
                "postgres://h/db?pass%77ord=***",
            ),
            (
                "postgres://h/db?password=s3&cret=1&sslmode=disable",
                "postgres://h/db?password=***&***&sslmode=disable",
            ),
        ] {
            assert_eq!(redact(given), want, "{given}");
        }
        assert_eq!(
            redact_unparsed("postgres://bob:s3cret@h:x/db"),
            "postgres://***@h:x/db"
        );
        assert!(ambiguous_at("postgres://bob:p@s3cret@h/db"));
        assert!(!ambiguous_at("postgres://bob:p%40s3cret@h/db"));
        assert!(!ambiguous_at("host=a@b"));
    }

    #[test]
    fn pairs() {
        for (given, want) in [
            (
                "host=db user=bob password=s3cret dbname=tasks",
                "host=db user=bob password=*** dbname=tasks",
            ),
            (
                "host=db password = 's3 c\\'ret' dbname=tasks",
                "host=db password = *** dbname=tasks",
            ),
            ("host=db password=s3\\ cret x=1", "host=db password=*** x=1"),
            ("host=db\tpassword=s3cret", "host=db\tpassword=***"),
            ("PASSWORD=x", "PASSWORD=***"),
            ("host=db mypassword=x", "host=db mypassword=x"),
            ("host=db password='s3cret", "host=db password=***"),
            ("host=db junk password=s3cret", "host=db ***"),
            ("host=db password=", "host=db password=***"),
        ] {
            assert_eq!(redact(given), want, "{given}");
        }
    }

    #[test]
    fn driver_messages_keep_only_keywords() {
        assert_eq!(
            driver_message("unknown option `cret`"),
            "unknown option `***`"
        );
        assert_eq!(
            driver_message("invalid value for option `port`"),
            "invalid value for option `port`"
        );
        assert_eq!(
            driver_message("expected `=` but got `s`"),
            "expected `=` but got `***`"
        );
    }
}
