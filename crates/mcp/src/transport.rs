//! Newline-delimited JSON-RPC over any reader and writer: stdin/stdout in production,
//! an in-memory pipe in tests.
//!
//! rmcp ships such a transport, but it drops a line that is not JSON without a word
//! (rust-sdk #938). JSON-RPC 2.0 answers it with a parse error, and a client author
//! debugging a broken integration — or a model typing raw JSON-RPC — needs to see that
//! something arrived and why it was refused. So this transport answers:
//!
//! - a line that is not JSON: `-32700 parse error`;
//! - JSON that is not a JSON-RPC message, or a request whose parameters do not fit its
//!   method: `-32600 invalid request`, echoing the request's id when it has one;
//! - a line longer than [`MAX_LINE`]: `-32600`, and the line is skipped;
//! - a malformed *notification*: nothing, because JSON-RPC never answers those.
//!
//! Everything else goes to rmcp unchanged, and the server keeps reading either way.
//!
//! # Why every write goes through one writer task
//!
//! rmcp polls `receive` inside a `select!` and drops it whenever another branch is
//! ready, and it sends responses from several tasks at once. A write interrupted
//! halfway would leave half a line on stdout and corrupt the stream for good. Queuing
//! whole lines on a channel is instantaneous and cannot be interrupted; one task owns
//! the writer and writes each line whole, in order.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::{ClientRequest, ErrorData, JsonRpcMessage, JsonRpcRequest, RequestId};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use crate::order::Turnstile;

/// The longest message accepted, in bytes (rmcp's own limit): a peer that never sends
/// a newline must not grow the buffer until the process runs out of memory.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// The writing half: a queue of whole lines, drained by one task.
#[derive(Clone)]
pub(crate) struct Lines {
    tx: mpsc::UnboundedSender<Vec<u8>>,
}

impl Lines {
    /// Starts the task that owns `writer`. It ends — after writing everything queued,
    /// flushing and shutting the writer down — once every [`Lines`] is dropped.
    pub(crate) fn start<W>(writer: W) -> (Lines, JoinHandle<std::io::Result<()>>)
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let task = tokio::spawn(async move {
            let mut writer = writer;
            while let Some(line) = rx.recv().await {
                writer.write_all(&line).await?;
                writer.flush().await?;
            }
            writer.shutdown().await
        });
        (Lines { tx }, task)
    }

    fn send(&self, msg: &TxJsonRpcMessage<RoleServer>) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(msg)?;
        line.push(b'\n');
        self.tx
            .send(line)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "output closed"))
    }
}

/// The reading half, kept between [`LineTransport`] handles so that a handshake rmcp
/// gave up on can start over on the same stream (see [`crate::serve`]).
pub(crate) struct LineReader<R> {
    read: BufReader<R>,
    /// The line read so far. It lives here, not in `receive`, because a cancelled
    /// `receive` must leave a partial line for the next call to finish.
    line: Vec<u8>,
    /// Skipping the rest of an over-long line, up to its newline.
    discarding: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(read: R) -> LineReader<R> {
        LineReader {
            read: BufReader::new(read),
            line: Vec::new(),
            discarding: false,
        }
    }

    /// The next whole line, without its newline; `Err(())` for an over-long line
    /// (already skipped), `None` at end of input or on a read error.
    async fn next_line(&mut self) -> Option<Result<Vec<u8>, ()>> {
        loop {
            let buf = match self.read.fill_buf().await {
                Ok(buf) => buf,
                Err(e) => {
                    tracing::error!("reading the input failed: {e}");
                    return None;
                }
            };
            if buf.is_empty() {
                return None;
            }
            let newline = buf.iter().position(|b| *b == b'\n');
            let take = newline.map_or(buf.len(), |i| i + 1);
            let too_long = !self.discarding && self.line.len() + take > MAX_LINE;
            if !self.discarding && !too_long {
                self.line.extend_from_slice(&buf[..take]);
            }
            self.read.consume(take);
            if too_long {
                self.line.clear();
                self.discarding = newline.is_none();
                return Some(Err(()));
            }
            if newline.is_some() {
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                let mut line = std::mem::take(&mut self.line);
                line.pop();
                return Some(Ok(line));
            }
        }
    }
}

/// One rmcp transport over a shared reader and the line queue.
pub(crate) struct LineTransport<R> {
    pub(crate) reader: Arc<Mutex<LineReader<R>>>,
    pub(crate) lines: Lines,
    /// Numbers tool calls as they are read, so they reach the store in that order.
    pub(crate) turns: Arc<Turnstile>,
}

impl<R> Transport<RoleServer> for LineTransport<R>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
        std::future::ready(self.lines.send(&item))
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        let mut reader = self.reader.lock().await;
        loop {
            let reply = match reader.next_line().await? {
                Ok(line) => match decode(&line) {
                    Decoded::Message(mut m) => {
                        if let JsonRpcMessage::Request(JsonRpcRequest {
                            request: ClientRequest::CallToolRequest(call),
                            ..
                        }) = &mut *m
                        {
                            call.extensions.insert(self.turns.take());
                        }
                        return Some(*m);
                    }
                    Decoded::Skip => continue,
                    Decoded::Refuse(reply) => *reply,
                },
                Err(()) => refusal(
                    ErrorData::invalid_request(
                        format!("message longer than {MAX_LINE} bytes; it was skipped"),
                        None,
                    ),
                    None,
                ),
            };
            if self.lines.send(&reply).is_err() {
                return None;
            }
        }
    }

    async fn close(&mut self) -> std::io::Result<()> {
        // The writer task flushes and closes once every handle is dropped; `serve`
        // waits for it.
        Ok(())
    }
}

enum Decoded {
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// Nothing to deliver and nothing to answer (a blank line, a bad notification).
    Skip,
    Refuse(Box<TxJsonRpcMessage<RoleServer>>),
}

fn refusal(error: ErrorData, id: Option<RequestId>) -> TxJsonRpcMessage<RoleServer> {
    TxJsonRpcMessage::<RoleServer>::error(error, id)
}

fn refuse(error: ErrorData, id: Option<RequestId>) -> Decoded {
    Decoded::Refuse(Box::new(refusal(error, id)))
}

fn decode(line: &[u8]) -> Decoded {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Decoded::Skip;
    }
    let value: serde_json::Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!("unparsable input: {e}");
            return refuse(ErrorData::parse_error(format!("not JSON: {e}"), None), None);
        }
    };
    let e = match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(line) {
        Ok(m) => return Decoded::Message(Box::new(m)),
        Err(e) => e,
    };
    let id = value.get("id");
    if value.get("method").is_some() && id.is_none() {
        // A notification: JSON-RPC forbids answering it, even to refuse it. Clients
        // also send notifications this server does not know; those are ignored too.
        tracing::debug!("ignoring a notification that does not parse: {e}");
        return Decoded::Skip;
    }
    if value.get("method").is_none()
        && (value.get("result").is_some() || value.get("error").is_some())
    {
        // A response to nothing we asked: there is no one to answer.
        tracing::debug!("ignoring a response that does not parse: {e}");
        return Decoded::Skip;
    }
    let id = id.and_then(|id| serde_json::from_value::<RequestId>(id.clone()).ok());
    refuse(
        ErrorData::invalid_request(
            format!(
                "not a valid JSON-RPC 2.0 request for this server: {e}; expected \
                 {{\"jsonrpc\":\"2.0\",\"id\":…,\"method\":…,\"params\":{{…}}}}"
            ),
            None,
        ),
        id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(line: &str) -> serde_json::Value {
        match decode(line.as_bytes()) {
            Decoded::Refuse(m) => serde_json::to_value(*m).unwrap(),
            Decoded::Skip => panic!("{line}: skipped"),
            Decoded::Message(m) => panic!("{line}: accepted as {m:?}"),
        }
    }

    #[test]
    fn bad_lines_are_answered_or_skipped() {
        let r = refused("{not json");
        assert_eq!(r["error"]["code"], -32700, "{r}");
        assert!(r.get("id").is_none(), "{r}");
        let r = refused(r#"{"jsonrpc":"2.0","id":7,"result":{},"method":"x"}"#);
        assert_eq!(r["error"]["code"], -32600, "{r}");
        assert_eq!(r["id"], 7, "{r}");
        let r = refused("[1,2]");
        assert_eq!(r["error"]["code"], -32600, "{r}");
        assert!(matches!(decode(b"   "), Decoded::Skip));
        assert!(matches!(
            decode(br#"{"jsonrpc":"2.0","method":"notifications/whatever","params":5}"#),
            Decoded::Skip
        ));
        assert!(matches!(
            decode(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Decoded::Message(_)
        ));
        assert!(matches!(
            decode(b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r"),
            Decoded::Message(_)
        ));
    }

    #[tokio::test]
    async fn over_long_lines_are_skipped_and_reading_goes_on() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\nnext\n");
        let mut r = LineReader::new(&input[..]);
        assert_eq!(r.next_line().await, Some(Err(())));
        assert_eq!(r.next_line().await, Some(Ok(b"next".to_vec())));
        assert_eq!(r.next_line().await, None);
    }
}
