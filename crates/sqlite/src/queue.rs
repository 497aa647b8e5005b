//! The writer queue: how processes take turns at SQLite's single write lock.
//!
//! # Why not SQLite's busy handler
//!
//! A writer that finds the database locked sleeps and retries (1 ms, 2 ms, … up to
//! 100 ms). The holder, meanwhile, commits and starts its next transaction a few
//! microseconds later, long before any sleeper wakes. Under load the same process
//! wins again and again while others starve: with 20 writers the worst wait measured
//! here was seconds.
//!
//! # What we do instead
//!
//! One process writes at a time: the holder of the **turn**, an OS file lock
//! (`<db>-queue/turn`) that is only ever taken exclusively — blocking by ordinary
//! writes, with a try by claimers — so no shared holder can ever make a try fail.
//!
//! Claim-next and done, the contended hot path (an agent's loop), are **combined**
//! (other writes take the turn on their own). A claimer writes its request
//! into its own slot of a shared board (`<db>-queue/board`, fixed 512-byte records),
//! then tries to take the turn. If it gets it, it serves *every* pending request in
//! one transaction — one commit for all of them — writes each reply into its slot, and
//! wakes each waiting claimer. If it does not, it sleeps until woken. A sleeper is
//! woken through its own unix datagram socket (`<db>-queue/slot-NN.sock`): one wake-up
//! per claimer, sent by the process that served it, all in parallel, instead of a chain
//! of hand-offs. Every request is served by the first turn that reads the board after
//! it was posted, so no claimer is passed over, and a commit is shared by all the
//! requests in it. A `done` whose lease does not match changes nothing and is answered
//! "not finished"; its caller then runs it on its own turn, which explains the refusal
//! exactly as an uncombined `done` would. A claim-next carries its claim key on the
//! board (the caller's request id, or one this process makes for the request), and
//! the serving turn looks the caller's key up and stores the key with the lease in
//! the claim's own transaction, so keyed claims (`run`, MCP) are combined too.
//!
//! # Whose files
//!
//! Whoever can write `<db>-queue/` can hold the turn for ever, read every request
//! (agents, tasks, tokens), forge a reply that grants one task to two agents, or plant
//! a symlink as `board` and have every claimer write into a file of its choosing. So
//! the directory and everything in it are the owner's alone
//! ([`tasklease_filelock::private`]): the directory `0700`, files and sockets `0600`,
//! modes set explicitly whatever the umask, files opened with `O_NOFOLLOW` (and
//! `O_EXCL` when created). On every open the directory must be ours, not a symlink,
//! and not writable by group or others — else the open fails (exit 1) with the
//! `chmod`/`chown` that fixes it; files in it must be ours and not symlinks, and are
//! made `0600` if they are not (earlier versions' lock files followed the umask).
//!
//! # Integrity
//!
//! Every byte a reader acts on is inside the record's checksum — the state too — so
//! a record torn, or changed by anything else (a bug, a stray process, a disk), says
//! nothing rather than something false; a state change rewrites the whole record. A
//! reply counts only if its checksum, request number, claimer and operation all match
//! the request. A claimer whose reply never comes readable does not guess: under the
//! turn it takes its record off the board and asks the database — a claim by its key
//! (the grant under that key is its answer, so nothing is left held in the name of an
//! agent never told of it), a `done` by running it on its own turn (finished now, or a
//! repeat of its own committed `done`).
//!
//! # Failure
//!
//! Correctness never rests on the queue: each claim is still one conditional UPDATE in
//! a `BEGIN IMMEDIATE` transaction, so the queue decides *who runs the statement*,
//! never *whether a task is free*. The turn and the slots are OS locks, released when
//! a process dies. A sleeper also wakes on its own after [`NAP`], in case the process
//! serving it died before waking it: a writer that dies before its commit leaves every
//! request pending (the transaction rolls back) for the next turn. Replies are written
//! before the commit, marked *in doubt*, and marked answered after it. A writer killed
//! between the two leaves records in doubt, and the next turn, before serving anything,
//! asks the database which of them committed: a claim committed if its task is held by
//! its claimer under exactly its fencing token and lease end, a `done` if its task is
//! done under its token (nothing else can have written meanwhile: every writer takes
//! the turn, and every turn settles doubts first). Those
//! replies stand and their claimers are woken; the rest go back up as requests. So a
//! claim is never granted twice for one request, however the writer dies. A claim that
//! fails settles its request under the turn — the reply if one came,
//! else the request taken off the board — so no later turn claims for a caller told it
//! failed; a process that takes a slot clears it under the turn, so a turn still
//! answering the slot's dead owner cannot answer the newcomer. A record torn by a
//! concurrent write fails its checksum and is read again. A process that cannot get a
//! slot (more than [`SLOTS`] at once), or that runs where unix sockets are missing,
//! claims on its own turn. A request carries its claimer's durability: a NORMAL server
//! commits at FULL for a claimer that asked for FULL.
//!
//! # Bounded waits, and who holds the turn
//!
//! The OS frees the turn when its holder dies, but not when it is *stopped* (SIGSTOP,
//! a debugger, a frozen VM): every other writer would wait for ever. So every wait here
//! — for the turn, and for a reply on the board — ends at the store's busy timeout with
//! [`Error::Busy`], and after [`NOTICE`] of waiting the store's [`WaitHook`] is told once
//! who holds the turn (the CLI prints it). To know who, whoever takes the turn first
//! writes a [`Holder`] record (the file locks' record: agent, pid, host, since) into
//! the board's first 512 bytes, which no slot uses: one `pwrite` per turn, where a
//! record file beside the lock would cost a create and a rename. Like every holder
//! record it is for people and never evidence: only the OS lock says the turn is held.
//!
//! A claimer that gives up while its request is on the board takes the turn once more
//! (without waiting) to settle it as any failed claim does. If the turn is still held,
//! it clears its record without the turn and gives up its slot; a stopped server that
//! had already read the request may still grant it when it resumes. That claim is then
//! held in the claimer's name until its lease runs out, as for a claimer that died:
//! the error says so. Waiting for the turn blocks in the OS on a helper thread
//! ([`LockFile::lock_within`]), so a bounded wait is woken as soon as the turn is free,
//! like an unbounded one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, named_params};
use tasklease_core::{
    AgentId, Clock, Error, EventKind, Lease, LeaseDuration, Millis, RequestId, Result, Secret,
    Status, TaskId, Token, Version,
};
use tasklease_filelock::{Guard, Holder, LockFile, Mode, private};

use crate::busy::Busy;
use crate::{Ctx, Tx, WaitHook, Waiting, sql, task_id};

/// Who is claiming: the store's clock, and where its wait for the write lock started
/// (for the claim's history row).
pub(crate) struct Claimer<'a> {
    pub(crate) clock: &'a Clock,
    pub(crate) busy: &'a Busy,
    pub(crate) start: std::time::Instant,
}

/// How long a wait goes on before the [`WaitHook`] is told who holds the turn: long
/// past any turn a healthy writer takes (milliseconds), short enough that a person
/// watching learns soon why nothing happens.
pub(crate) const NOTICE: Duration = Duration::from_secs(1);
/// What a writer waits for, in messages.
const TURN: &str = "the database's writer turn";
/// The turn holder's record (see "Bounded waits" above): magic, then the JSON's
/// length (u16, little-endian), then the JSON.
const HOLDER_MAGIC: &[u8; 4] = b"TLH1";

/// Board slots: processes that can have a claim-next request pending at once.
pub(crate) const SLOTS: usize = 64;
/// How long a process that took the turn keeps serving requests that arrive meanwhile.
const SERVE_FOR: Duration = Duration::from_millis(2);
/// How long a process serving claims waits for the claimers it just answered to post
/// again, before giving up its turn.
const LINGER: Duration = Duration::from_micros(200);
/// How long a sleeping claimer waits for a wake-up before looking again by itself.
pub(crate) const NAP: Duration = Duration::from_millis(20);
/// Bytes per board record.
const REC: usize = 512;
/// The board's format. A process of another format sees no requests here and serves
/// its own on its own turn. TLQ4: the state inside the checksum, and a claim key in
/// every claim-next request.
const MAGIC: &[u8; 4] = b"TLQ4";
/// Record states (byte 4). Like every byte a reader acts on, the state is covered by
/// the checksum, so a state change rewrites the whole record (see "Integrity" above).
const PENDING: u8 = 1;
const REPLIED: u8 = 2;
/// Replied, but written before the commit that grants it: see "Failure" above.
const DOUBT: u8 = 3;
const MAX_TEXT: usize = 128;
/// Where the texts live (each at most [`MAX_TEXT`] bytes; lengths at 24, 26, 28): the
/// claimer's agent name, the task (claimed, or to finish), a claim-next's key (its
/// origin at 30: [`KEY_CALLER`] or [`KEY_OURS`]).
const AGENT_AT: usize = 72;
const TASK_AT: usize = 200;
const KEY_AT: usize = 328;
/// Token secrets (each at most [`MAX_SECRET`] bytes): a `done` request's (length at
/// 31), and a granted lease's in a claim reply (length at 504).
const SECRET_AT: usize = 456;
const GRANT_SECRET_AT: usize = 480;
const MAX_SECRET: usize = 24;
/// The caller's own request id: looked up, as for any keyed claim, before claiming.
const KEY_CALLER: u8 = 1;
/// A key this process made for one request, only ever stored: it finds the grant
/// again should the reply be lost (see "Integrity" above).
const KEY_OURS: u8 = 2;

/// One process's handle on the queue.
pub(crate) struct Queue {
    /// Held (exclusively, only ever) by the one process writing.
    turn: LockFile,
    /// The request/reply records, one per slot.
    board: File,
    /// Where the slot locks and sockets live.
    dir: PathBuf,
    /// This process's slot, taken on first claim and kept for the life of the queue.
    slot: Option<Slot>,
    /// Sends wake-ups to other slots' sockets; created on first use.
    sender: Sender,
    /// Numbers this process's requests, so a reply is matched to its request.
    next_request: u64,
    /// Whether to combine claims through the board. A one-shot process (a CLI call)
    /// claims once and exits: setting up a slot would cost more than it saves.
    combine: bool,
    /// Whether this process's connection commits with `synchronous = FULL`; its
    /// requests ask the same of whoever serves them.
    full: bool,
    /// How long to wait, whom to tell, and how to name ourselves to other waiters.
    patience: Patience,
}

/// How a process waits for the turn, and how it names itself while it holds it.
#[derive(Clone, Debug)]
pub(crate) struct Patience {
    /// The longest any one operation waits (the store's busy timeout).
    pub(crate) timeout: Duration,
    /// Told once, after [`NOTICE`], who holds the turn.
    pub(crate) hook: Option<WaitHook>,
    /// Written into the board whenever this process takes the turn.
    pub(crate) me: Holder,
}

impl Patience {
    pub(crate) fn new(timeout: Duration, hook: Option<WaitHook>, agent: AgentId) -> Patience {
        Patience {
            timeout,
            hook,
            me: Holder::me(agent, Mode::Exclusive),
        }
    }
}

/// One operation's wait: when it started and must end, and whether the hook was told.
struct Deadline {
    start: std::time::Instant,
    until: std::time::Instant,
    told: std::cell::Cell<bool>,
}

impl Deadline {
    fn new(bound: Duration) -> Deadline {
        let start = std::time::Instant::now();
        Deadline {
            start,
            until: start + bound,
            told: std::cell::Cell::new(false),
        }
    }

    fn left(&self) -> Duration {
        self.until
            .saturating_duration_since(std::time::Instant::now())
    }

    fn expired(&self) -> bool {
        self.left().is_zero()
    }

    /// Tells the hook who holds the turn, once per operation, and only past [`NOTICE`].
    fn tell(&self, patience: &Patience, board: &File) {
        let waited = self.start.elapsed();
        if self.told.get() || waited < NOTICE {
            return;
        }
        self.told.set(true);
        if let Some(hook) = &patience.hook {
            hook.call(&Waiting {
                what: TURN,
                holder: read_holder(board).as_ref(),
                waited,
            });
        }
    }

    /// The error for a wait that ran out, naming the turn's holder.
    fn busy(&self, board: &File) -> Error {
        Error::Busy {
            what: TURN.to_owned(),
            waited: self.start.elapsed(),
            holder: read_holder(board).map(|h| h.to_string()),
        }
    }
}

/// Takes the turn, waiting until `deadline` at most (telling the hook after [`NOTICE`]),
/// and records this process as its holder.
fn take_turn<'t>(
    turn: &'t mut LockFile,
    board: &File,
    patience: &Patience,
    deadline: &Deadline,
) -> Result<Guard<'t>> {
    let notice = NOTICE.saturating_sub(deadline.start.elapsed());
    let got = turn.lock_within(Mode::Exclusive, deadline.left(), notice, || {
        deadline.tell(patience, board);
    })?;
    let Some(guard) = got else {
        return Err(deadline.busy(board));
    };
    write_holder(board, &patience.me);
    Ok(guard)
}

/// Takes the turn if it is free, recording this process as its holder.
fn try_take_turn<'t>(turn: &'t mut LockFile, board: &File, me: &Holder) -> Option<Guard<'t>> {
    let guard = turn.try_lock_exclusive().ok().flatten()?;
    write_holder(board, me);
    Some(guard)
}

/// Sends wake-ups to other slots' sockets; created on first use.
#[cfg(unix)]
type Sender = Option<std::os::unix::net::UnixDatagram>;
#[cfg(not(unix))]
type Sender = Option<()>;

/// What a request asks of the turn that serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Claim the next ready task for a lease of this many milliseconds, under `key`
    /// (stored with the lease; looked up first when it is the caller's).
    ClaimNext { lease_ms: i64, key: Option<Key> },
    /// Finish `task` under the lease whose token is `token` (fence) and `secret`
    /// (none for a token from before secrets).
    Done {
        task: String,
        token: i64,
        secret: Option<String>,
    },
}

/// A claim-next request's key (at most [`MAX_TEXT`] bytes of a request id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    text: String,
    /// The caller's request id, rather than one this process made.
    caller: bool,
}

const OP_CLAIM_NEXT: u8 = 0;
const OP_DONE: u8 = 1;

/// A turn's answer to a request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The task claimed, or `None`: nothing was ready.
    Claimed(Option<Row>),
    /// Whether the task is finished. `false`: its lease did not match and nothing
    /// changed; the caller runs `done` on its own turn to learn why.
    Done(bool),
    /// Not served here (a claim key granted other tasks than one): nothing changed;
    /// the caller runs its request on its own turn, which says why.
    Alone,
}

/// How a request given to [`Queue::submit`] ended.
pub(crate) enum Combined<T> {
    /// This process has no slot (a one-shot process, say): nothing was done; run it
    /// on [`Queue::turn`].
    Off,
    /// The turn was free and nobody waiting: `alone` ran on it.
    Alone(Result<T>),
    /// A turn answered.
    Replied(Reply),
}

/// A board slot owned by this process.
struct Slot {
    index: usize,
    /// Holding this lock makes the slot ours.
    _lock: LockFile,
    /// Where others wake us.
    #[cfg(unix)]
    wake: std::os::unix::net::UnixDatagram,
}

impl Queue {
    /// Opens (creating, owner-only) the queue files beside the database at `db`.
    pub(crate) fn open(db: &Path, combine: bool, full: bool, patience: Patience) -> Result<Queue> {
        let dir = queue_dir(db);
        // Ours alone, checked on every open: whoever can write here can hold the turn,
        // read every request and forge replies (see "Whose files" above).
        private::dir(&dir, "the writer queue's directory")?;
        let turn = open_lock(dir.join("turn"))?;
        let board = private::file_within(&dir.join("board"), "the writer queue's board")?;
        Ok(Queue {
            turn,
            board,
            dir,
            slot: None,
            sender: None,
            next_request: u64::from(std::process::id()) << 32,
            combine,
            full,
            patience,
        })
    }

    /// Runs `f` as the one writer, then wakes claimers that posted meanwhile. Like
    /// every turn, it first settles replies a dead writer left in doubt, before `f`
    /// can change what settling them reads.
    pub(crate) fn turn<T>(
        &mut self,
        conn: &Connection,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let mut answered = Vec::new();
        let deadline = Deadline::new(self.patience.timeout);
        let out = {
            let _turn = take_turn(&mut self.turn, &self.board, &self.patience, &deadline)?;
            resolve_doubts(conn, &self.board).and_then(|slots| {
                answered = slots;
                f()
            })
        };
        wake(&mut self.sender, &self.dir, self.slot.as_ref(), &answered);
        self.wake_pending();
        out
    }

    /// Runs `f` as the one writer if nobody has the turn, without waiting; `None` if
    /// somebody has.
    pub(crate) fn try_turn<T>(&mut self, f: impl FnOnce() -> T) -> Option<T> {
        let turn = try_take_turn(&mut self.turn, &self.board, &self.patience.me)?;
        let out = f();
        drop(turn);
        Some(out)
    }

    /// Claims the next task for `agent`, combined with every other pending request;
    /// with `request`, a retry answers with the grant that key already has.
    pub(crate) fn claim_next(
        &mut self,
        conn: &Connection,
        claimer: &Claimer<'_>,
        agent: &AgentId,
        lease: LeaseDuration,
        request: Option<&RequestId>,
    ) -> Result<Option<Lease>> {
        // Every request on the board carries a key, so that its grant can be found in
        // the database whatever happens to the reply.
        let key = match request {
            Some(k) => Key {
                text: k.as_str().to_owned(),
                caller: true,
            },
            // Unique (the time, then this process's request number, which holds its
            // pid), and rising: each claim's key lands at the end of the key index
            // rather than on a page of its own (measured: random keys cost combined
            // claims ~15 % of their throughput).
            None => Key {
                text: format!("tlq-{:013x}-{:x}", epoch_us(), self.next_request + 1),
                caller: false,
            },
        };
        let op = Op::ClaimNext {
            lease_ms: lease.as_millis(),
            key: Some(key),
        };
        let alone = || serve_one(conn, claimer, agent, lease, request);
        match self.submit(conn, claimer.clock, op, agent, alone)? {
            Combined::Off => self.turn(conn, alone),
            Combined::Alone(got) => got,
            Combined::Replied(Reply::Claimed(row)) => {
                row.map(|r| r.into_lease(agent.clone())).transpose()
            }
            Combined::Replied(Reply::Alone) => self.turn(conn, alone),
            Combined::Replied(Reply::Done(_)) => Err(lost()),
        }
    }

    /// Has `op` done for `agent` by whichever turn comes first: posts it on the board
    /// and waits for a reply, serving the board itself if the turn comes to it. A
    /// process that finds the turn free and nobody waiting runs `alone` on it instead,
    /// as a lone writer would, without the board.
    pub(crate) fn submit<T>(
        &mut self,
        conn: &Connection,
        clock: &Clock,
        op: Op,
        agent: &AgentId,
        alone: impl FnOnce() -> Result<T>,
    ) -> Result<Combined<T>> {
        let deadline = Deadline::new(self.patience.timeout);
        let Some(slot) = self.slot(&deadline)? else {
            return Ok(Combined::Off);
        };
        if agent.as_str().len() > MAX_TEXT {
            // Within the 128 characters of an agent id, but not the record's bytes.
            return Ok(Combined::Off);
        }
        let req = Request {
            id: self.next_request + 1,
            agent: agent.as_str().to_owned(),
            posted_us: epoch_us(),
            full: self.full,
            op,
        };
        let mut rec = [0u8; REC];
        encode_record(&mut rec, PENDING, &req, None);
        /// What happened on a turn taken at the first try.
        enum First<T> {
            /// Nobody was waiting: `alone` ran.
            Alone(Result<T>),
            /// Others were waiting: served them with us.
            Served(Result<Reply>),
        }
        // Only fields other than the turn are touched while the turn is held.
        let first = match try_take_turn(&mut self.turn, &self.board, &self.patience.me) {
            Some(turn) => {
                let first = if idle(&self.board)? {
                    First::Alone(alone())
                } else {
                    self.next_request += 1;
                    write_at(&self.board, &rec, slot)?;
                    First::Served(serve_board(
                        conn,
                        clock,
                        &self.board,
                        self.full,
                        &mut self.sender,
                        &self.dir,
                        self.slot.as_ref(),
                        (slot, &req),
                    ))
                };
                drop(turn);
                Some(first)
            }
            // Busy (or the try failed: the long way meets the failure again).
            None => None,
        };
        Ok(match first {
            Some(First::Alone(got)) => {
                self.wake_pending();
                Combined::Alone(got)
            }
            Some(First::Served(settled)) => Combined::Replied(self.after_turn(settled)?),
            None => {
                self.next_request += 1;
                write_at(&self.board, &rec, slot)?;
                Combined::Replied(self.await_reply(conn, clock, (slot, &req), &deadline)?)
            }
        })
    }

    /// After `e` stopped a claim outside the turn: takes the turn, then settles the
    /// request under it (see [`settle`]). A claim stopped inside its own turn settles
    /// there, before the turn moves on.
    fn withdraw(
        &mut self,
        conn: &Connection,
        clock: &Clock,
        (slot, req): (usize, &Request),
        deadline: &Deadline,
        e: Error,
    ) -> Result<Reply> {
        let mut answered = Vec::new();
        let settled = match take_turn(&mut self.turn, &self.board, &self.patience, deadline) {
            Ok(_turn) => settle(conn, clock, &self.board, (slot, req), e, &mut answered),
            Err(_) => Err(e),
        };
        wake(&mut self.sender, &self.dir, self.slot.as_ref(), &answered);
        if settled.is_err() {
            // Should the request still be up, a new slot keeps its reply from being
            // taken for our next request (a slot is cleared when it is taken).
            self.slot = None;
        }
        self.wake_pending();
        settled
    }

    fn await_reply(
        &mut self,
        conn: &Connection,
        clock: &Clock,
        (slot, req): (usize, &Request),
        deadline: &Deadline,
    ) -> Result<Reply> {
        loop {
            // A failure out here, without the turn, takes the turn to settle the request.
            match read_reply(&self.board, slot, req) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(e) => return self.withdraw(conn, clock, (slot, req), deadline, e),
            }
            let mut failed = None;
            let Some(turn) = (match self.turn.try_lock_exclusive() {
                Ok(tried) => tried,
                Err(e) => {
                    failed = Some(e);
                    None
                }
            }) else {
                if let Some(e) = failed {
                    return self.withdraw(conn, clock, (slot, req), deadline, e);
                }
                if deadline.expired() {
                    return self.give_up(conn, clock, (slot, req), deadline);
                }
                deadline.tell(&self.patience, &self.board);
                self.sleep();
                continue;
            };
            write_holder(&self.board, &self.patience.me);
            let settled = serve_board(
                conn,
                clock,
                &self.board,
                self.full,
                &mut self.sender,
                &self.dir,
                self.slot.as_ref(),
                (slot, req),
            );
            drop(turn);
            return self.after_turn(settled);
        }
    }

    /// Ends a wait for a reply that ran out: settles the request on the turn if it is
    /// free now; else takes it off the board without the turn, and gives up the slot
    /// (see "Bounded waits" above for what a stopped server may still do with it).
    fn give_up(
        &mut self,
        conn: &Connection,
        clock: &Clock,
        (slot, req): (usize, &Request),
        deadline: &Deadline,
    ) -> Result<Reply> {
        let busy = deadline.busy(&self.board);
        let mut answered = Vec::new();
        let settled = match try_take_turn(&mut self.turn, &self.board, &self.patience.me) {
            // Freed just now: settle as any failed claim does.
            Some(_turn) => settle(conn, clock, &self.board, (slot, req), busy, &mut answered),
            None => {
                let _ = write_at(&self.board, &[0u8; REC], slot);
                Err(in_doubt_busy(busy))
            }
        };
        wake(&mut self.sender, &self.dir, self.slot.as_ref(), &answered);
        if settled.is_err() {
            self.slot = None;
        }
        self.wake_pending();
        settled
    }

    /// After serving on our turn (now given up): wakes whoever posted meanwhile, and
    /// gives up a slot whose request may still be up after a failure.
    fn after_turn(&mut self, settled: Result<Reply>) -> Result<Reply> {
        self.wake_pending();
        if settled.is_err() {
            // Should the request still be up, a new slot keeps its reply from being
            // taken for our next request (a slot is cleared when it is taken).
            self.slot = None;
        }
        settled
    }

    /// Takes this process's slot now rather than at its first claim: taking one scans
    /// the slot locks and waits for a turn, and 20 agents starting at once made their
    /// first claims wait for each other's (up to ~90 ms at 20 agents on 2 cores).
    ///
    /// It waits for the turn no longer than [`NOTICE`], and silently: a turn held
    /// longer than that is stuck, and the first claim, taking the slot then, will wait
    /// its own busy timeout and say why.
    pub(crate) fn take_slot(&mut self) {
        let _ = self.slot(&Deadline::new(NOTICE.min(self.patience.timeout)));
    }

    /// This process's slot, taken on first use and kept for the life of the queue.
    fn slot(&mut self, deadline: &Deadline) -> Result<Option<usize>> {
        if let Some(s) = &self.slot {
            return Ok(Some(s.index));
        }
        if !self.combine || cfg!(not(unix)) {
            // Without unix sockets nobody could wake us: claim on our own turn.
            return Ok(None);
        }
        for index in 0..SLOTS {
            let mut lock = open_lock(self.dir.join(format!("slot-{index:02}")))?;
            let mine = lock.try_lock_exclusive()?.map(Guard::keep).is_some();
            if !mine {
                continue;
            }
            // The slot's last owner may have died with a request on the board, and a
            // turn may have read it and be claiming for it right now: its reply would
            // land on our first request. Every turn writes its replies before it ends,
            // so clear the record under the turn: whatever the old owner left is gone,
            // and nobody is still about to answer it.
            {
                let _turn = take_turn(&mut self.turn, &self.board, &self.patience, deadline)?;
                write_at(&self.board, &[0u8; REC], index)?;
            }
            self.wake_pending();
            #[cfg(unix)]
            {
                // The slot is ours, so a socket file left by its last (dead) owner
                // can go.
                let path = self.dir.join(format!("slot-{index:02}.sock"));
                let _ = std::fs::remove_file(&path);
                // The socket's mode comes from the umask; set it, like every file here.
                let wake = std::os::unix::net::UnixDatagram::bind(&path)
                    .and_then(|w| w.set_read_timeout(Some(NAP)).map(|()| w))
                    .and_then(|w| {
                        use std::os::unix::fs::PermissionsExt;
                        let mode = std::fs::Permissions::from_mode(private::FILE_MODE);
                        std::fs::set_permissions(&path, mode).map(|()| w)
                    });
                let Ok(wake) = wake else {
                    // No wake-up channel (a path too long for a socket, say): claim on
                    // our own turn from now on, rather than try again at every claim.
                    self.combine = false;
                    return Ok(None);
                };
                self.slot = Some(Slot {
                    index,
                    _lock: lock,
                    wake,
                });
                return Ok(Some(index));
            }
            #[cfg(not(unix))]
            {
                drop(lock);
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Sleeps until woken or [`NAP`] passes.
    fn sleep(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &self.slot {
            let mut b = [0u8; 1];
            let _ = s.wake.recv(&mut b);
        }
    }

    /// Wakes every claimer with a request still pending (posted during someone else's
    /// turn), so one of them takes the next turn.
    fn wake_pending(&mut self) {
        if let Ok(pending) = pending(&self.board) {
            let slots: Vec<usize> = pending.iter().map(|(slot, _)| *slot).collect();
            wake(&mut self.sender, &self.dir, self.slot.as_ref(), &slots);
        }
    }
}

/// Serves the board on our turn, our own pending `request` (in `slot`) included, and
/// settles it before the turn is given up. `me`: our slot, never woken.
#[allow(clippy::too_many_arguments)]
fn serve_board(
    conn: &Connection,
    clock: &Clock,
    board: &File,
    full: bool,
    sender: &mut Sender,
    dir: &Path,
    me: Option<&Slot>,
    (slot, req): (usize, &Request),
) -> Result<Reply> {
    {
        // Our turn: serve the board, and keep serving while requests keep coming —
        // the claimers we just answered post their next ones at once, and a server
        // already running is cheaper than a hand-off. Bounded, so this caller's
        // own claim is not held up for long.
        let until = std::time::Instant::now() + SERVE_FOR;
        let mut served = Ok(());
        let mut woke_others = false;
        // At least once, however late this thread runs: our own request is on the
        // board and this turn must answer it.
        loop {
            match serve_all(conn, clock, board, full) {
                // Claimers just woken are about to post again: give them the CPU
                // for a moment rather than hand the turn over with nothing queued.
                Ok(slots) if slots.is_empty() && woke_others => {
                    woke_others = false;
                    match linger(board) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            served = Err(e);
                            break;
                        }
                    }
                }
                Ok(slots) if slots.is_empty() => break,
                Ok(slots) => {
                    woke_others = slots.iter().any(|&s| s != slot);
                    wake(sender, dir, me, &slots);
                }
                Err(e) => {
                    served = Err(e);
                    break;
                }
            }
            if std::time::Instant::now() >= until {
                break;
            }
        }
        // Still our turn: nobody else writes our slot, and no other turn can read
        // it before it is settled. Our request was up before we took the turn, so
        // this turn answered it unless an earlier one had; either way the reply is
        // there now, or the request was lost and waiting longer would never end.
        let mut answered = Vec::new();
        let reply = match served.and_then(|()| read_reply(board, slot, req)) {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => settle(conn, clock, board, (slot, req), lost(), &mut answered),
            Err(e) => settle(conn, clock, board, (slot, req), e, &mut answered),
        };
        wake(sender, dir, me, &answered);
        reply
    }
}

/// Wakes the claimers in `slots` (never `me`).
#[cfg(unix)]
fn wake(sender: &mut Sender, dir: &Path, me: Option<&Slot>, slots: &[usize]) {
    if sender.is_none() {
        *sender = std::os::unix::net::UnixDatagram::unbound()
            .ok()
            .filter(|s| s.set_nonblocking(true).is_ok());
    }
    let me = me.map(|s| s.index);
    if let Some(sender) = sender {
        for &i in slots.iter().filter(|&&i| Some(i) != me) {
            // A full or missing socket means that claimer is awake or gone.
            let _ = sender.send_to(&[1], dir.join(format!("slot-{i:02}.sock")));
        }
    }
}

#[cfg(not(unix))]
fn wake(_: &mut Sender, _: &Path, _: Option<&Slot>, _: &[usize]) {}

/// One claim-next on its own, as the store runs it: the statement, then the row
/// mapped. With `request`, a live grant under that key answers instead (see
/// [`keyed_grant`]).
pub(crate) fn serve_one(
    conn: &Connection,
    claimer: &Claimer<'_>,
    agent: &AgentId,
    lease: LeaseDuration,
    request: Option<&RequestId>,
) -> Result<Option<Lease>> {
    let tx = Tx::begin(conn, Tx::IMMEDIATE)?;
    if let Some(key) = request {
        let now = crate::read_now(&tx, claimer.clock)?;
        let prior = crate::prior_leases(&tx, now, agent, key)?;
        if !prior.is_empty() {
            return Ok(Some(
                tasklease_core::retried_grant(key, prior, &[])?.remove(0),
            ));
        }
    }
    let wait = claimer.busy.waited(claimer.start);
    let got = claim_next_stmt(
        &tx,
        claimer.clock,
        agent.as_str(),
        lease.as_millis(),
        (wait.us, wait.busy),
        request.map(RequestId::as_str),
    )?;
    tx.commit()?;
    got.map(|r| r.into_lease(agent.clone())).transpose()
}

/// The live grant to `agent` under `key`, as a reply: `Some(Claimed)` for exactly
/// one, `Some(Alone)` for several (a key used for a batch: the caller's own turn says
/// why), `None` for none.
fn keyed_grant(conn: &Connection, clock: &Clock, agent: &str, key: &str) -> Result<Option<Reply>> {
    let (Ok(agent), Ok(key)) = (AgentId::new(agent), RequestId::new(key)) else {
        return Ok(None);
    };
    let now = crate::read_now(conn, clock)?;
    let mut prior = crate::prior_leases(conn, now, &agent, &key)?;
    Ok(match prior.len() {
        0 => None,
        1 => Some(Reply::Claimed(Some(Row::from(prior.remove(0))))),
        _ => Some(Reply::Alone),
    })
}

/// What the claim statement returned.
#[derive(Debug)]
pub(crate) struct Row {
    id: String,
    token: i64,
    /// The granted token's secret (minted by the serving turn; a keyed retry's is its
    /// first grant's).
    secret: Option<String>,
    assigned_at: i64,
    lock_until: i64,
    version: i64,
}

impl From<Lease> for Row {
    fn from(l: Lease) -> Row {
        Row {
            id: l.task.to_string(),
            token: l.token.fence(),
            secret: l.token.secret().map(str::to_owned),
            assigned_at: l.assigned_at.as_millis(),
            lock_until: l.lock_until.as_millis(),
            version: l.version.get(),
        }
    }
}

impl Row {
    pub(crate) fn into_lease(self, agent: AgentId) -> Result<Lease> {
        Ok(Lease {
            task: task_id(&self.id)?,
            agent,
            token: Token::from_parts(self.token, self.secret.as_deref())?,
            assigned_at: Millis::from_millis(self.assigned_at),
            lock_until: Millis::from_millis(self.lock_until),
            version: Version::new(self.version),
        })
    }
}

/// The claim statement; `wait` is (microseconds waited, busy retries) for the history;
/// `request` the claim's idempotency key, stored with the lease.
pub(crate) fn claim_next_stmt(
    conn: &Connection,
    clock: &Clock,
    agent: &str,
    lease_ms: i64,
    wait: (i64, i64),
    request: Option<&str>,
) -> Result<Option<Row>> {
    // Minted here, by whoever runs the statement: a combined claim's turn hands the
    // secret back in its reply.
    let secret = Secret::random()?;
    conn.prepare_cached(sql::CLAIM_NEXT)
        .and_then(|mut s| {
            s.query_row(
                named_params! {
                    ":agent": agent, ":now": clock.injected(), ":lease_ms": lease_ms,
                    ":wait_us": wait.0, ":busy": wait.1, ":request": request,
                    ":secret": secret.as_str(),
                },
                |r| {
                    Ok(Row {
                        id: r.get(0)?,
                        token: r.get(1)?,
                        secret: r.get(2)?,
                        assigned_at: r.get(3)?,
                        lock_until: r.get(4)?,
                        version: r.get(5)?,
                    })
                },
            )
            .optional()
        })
        .ctx("claim the next task")
}

/// The error for a request that is no longer on the board, answered or not.
fn lost() -> Error {
    Error::store(
        "claim or finish through the writer queue",
        "the writer queue lost this request (was its board file written by something \
         else?); whether it took effect is unknown: look with `tasklease list --status \
         in_progress` (a claim) before claiming again; a done may simply be run again with \
         the same token (if the first went through, it answers already_done)",
    )
}

/// Settles `req` after `e` stopped its claim, under the turn (so no turn is serving
/// the board meanwhile): if a turn answered it already (a reply in doubt is first
/// checked against the database), that reply stands and is the answer — the task is
/// claimed, and the caller must learn it. If the slot holds our request still pending,
/// it comes off the board, so no later turn claims for a caller told it failed, and
/// `e` is the answer. Anything else in the slot — a record torn for good, tampered
/// with, or someone else's — says nothing about our request, so the database is asked
/// (see "Integrity" above): a claim by its key, a `done` by running it again on the
/// caller's own turn. Other slots whose replies it settles from doubt are added to
/// `answered`, to be woken.
fn settle(
    conn: &Connection,
    clock: &Clock,
    board: &File,
    (slot, req): (usize, &Request),
    e: Error,
    answered: &mut Vec<usize>,
) -> Result<Reply> {
    match resolve_doubts(conn, board) {
        Ok(slots) => answered.extend(slots),
        // Committed or not, nobody can tell now: say so rather than drop it.
        Err(_) if in_doubt(board, slot, req.id) => return Err(lost()),
        Err(_) => {}
    }
    if let Ok(Some(reply)) = read_reply(board, slot, req) {
        return Ok(reply);
    }
    let still_pending = {
        let mut rec = [0u8; REC];
        read_at(board, &mut rec, (slot + 1) * REC)? == REC
            && decode_request(&rec).is_some_and(|r| r.id == req.id && r.agent == req.agent)
    };
    write_at(board, &[0u8; REC], slot)?;
    if still_pending {
        return Err(e);
    }
    match &req.op {
        Op::ClaimNext { key: Some(key), .. } => {
            match keyed_grant(conn, clock, &req.agent, &key.text)? {
                Some(reply) => Ok(reply),
                None => Err(e),
            }
        }
        Op::ClaimNext { key: None, .. } => Err(e),
        Op::Done { .. } => Ok(Reply::Done(false)),
    }
}

/// Whether this slot's record answers `request` in doubt (or cannot be read).
fn in_doubt(board: &File, slot: usize, request: u64) -> bool {
    let mut rec = [0u8; REC];
    match read_at(board, &mut rec, (slot + 1) * REC) {
        Ok(n) if n == REC => {
            rec[4] == DOUBT
                && valid(&rec)
                && u64::from_le_bytes(rec[8..16].try_into().unwrap_or_default()) == request
        }
        _ => true,
    }
}

/// Waits up to [`LINGER`] for a request to appear on the board, yielding the CPU to
/// the claimers that were just woken; whether one did.
fn linger(board: &File) -> Result<bool> {
    let until = std::time::Instant::now() + LINGER;
    while std::time::Instant::now() < until {
        std::thread::yield_now();
        if !pending(board)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether no request is waiting on the board (nor a reply in doubt, which the serving
/// path settles).
fn idle(board: &File) -> Result<bool> {
    Ok(read_board(board)?
        .chunks_exact(REC)
        .all(|rec| !matches!(rec[4], PENDING | DOUBT) || !valid(rec)))
}

/// The pending requests on the board, with their slots.
fn pending(board: &File) -> Result<Vec<(usize, Request)>> {
    Ok(read_board(board)?
        .chunks_exact(REC)
        .enumerate()
        .filter_map(|(slot, rec)| decode_request(rec).map(|req| (slot, req)))
        .collect())
}

/// Every slot record, whole records only (the file grows as slots are first used).
fn read_board(board: &File) -> Result<Vec<u8>> {
    let mut all = vec![0u8; REC * SLOTS];
    let n = read_at(board, &mut all, REC)?;
    all.truncate(n - n % REC);
    Ok(all)
}

/// Serves every pending request on the board in one transaction, then replies.
/// Returns the slots it answered, to be woken. `full`: this connection commits with
/// `synchronous = FULL`. First settles replies a dead writer left in doubt.
fn serve_all(conn: &Connection, clock: &Clock, board: &File, full: bool) -> Result<Vec<usize>> {
    let all = read_board(board)?;
    let mut wake = Vec::new();
    let mut pending = Vec::new();
    for (slot, rec) in all.chunks_exact(REC).enumerate() {
        if rec[4] == DOUBT && valid(rec) {
            if settle_doubt(conn, board, slot, rec)? {
                wake.push(slot);
                continue;
            }
        } else if rec[4] != PENDING || !valid(rec) {
            continue;
        }
        if let Some(req) = decode_request_fields(rec) {
            pending.push((slot, req));
        }
    }
    if pending.is_empty() {
        return Ok(wake);
    }
    // A claim is only as durable as the commit that grants it, and that commit is ours:
    // a claimer that asked for FULL gets FULL (lost on power loss, its token could be
    // issued again). The level can only change outside a transaction.
    let raise = !full && pending.iter().any(|(_, req)| req.full);
    if raise {
        set_synchronous(conn, "FULL")?;
    }
    let committed = commit_claims(conn, clock, board, pending);
    if raise {
        // Only slower if it stays FULL: not worth failing claims that committed.
        let _ = set_synchronous(conn, "NORMAL");
    }
    wake.extend(committed?);
    Ok(wake)
}

/// Claims for each pending request in one transaction, and replies: the replies are
/// written in doubt before the commit and marked answered after it. Returns the slots
/// answered.
fn commit_claims(
    conn: &Connection,
    clock: &Clock,
    board: &File,
    pending: Vec<(usize, Request)>,
) -> Result<Vec<usize>> {
    let tx = Tx::begin(conn, Tx::IMMEDIATE)?;
    let mut now = None;
    let mut slots = Vec::with_capacity(pending.len());
    #[cfg(debug_assertions)]
    let mut agents = Vec::with_capacity(pending.len());
    for (slot, req) in pending {
        // Waiting in the queue is a combined claim's wait; nobody retried.
        let wait = (epoch_us() - req.posted_us).max(0);
        let reply = match &req.op {
            Op::ClaimNext { lease_ms, key } => {
                let prior = match key {
                    Some(k) if k.caller => keyed_grant(&tx, clock, &req.agent, &k.text)?,
                    _ => None,
                };
                match prior {
                    Some(reply) => reply,
                    None => Reply::Claimed(claim_next_stmt(
                        &tx,
                        clock,
                        &req.agent,
                        *lease_ms,
                        (wait, 0),
                        key.as_ref().map(|k| k.text.as_str()),
                    )?),
                }
            }
            Op::Done {
                task,
                token,
                secret,
            } => {
                // Claims read the clock in their statement; `done` takes the
                // transaction's instant, read once.
                let now = match now {
                    Some(now) => now,
                    None => *now.insert(crate::read_now(&tx, clock)?),
                };
                Reply::Done(crate::done_in(
                    &tx,
                    now,
                    task,
                    *token,
                    secret.as_deref(),
                    &req.agent,
                )?)
            }
        };
        let mut rec = [0u8; REC];
        encode_record(&mut rec, DOUBT, &req, Some(&reply));
        write_at(board, &rec, slot)?;
        slots.push((slot, rec));
        #[cfg(debug_assertions)]
        agents.push(req.agent);
    }
    #[cfg(debug_assertions)]
    failpoint("queue-before-commit", &agents);
    if let Err(e) = tx.commit() {
        // Most likely rolled back, but the database, not the error, says which.
        let _ = resolve_doubts(conn, board);
        return Err(e);
    }
    #[cfg(debug_assertions)]
    failpoint("queue-after-commit", &agents);
    for (slot, rec) in &mut slots {
        restate(board, *slot, rec, REPLIED)?;
    }
    Ok(slots.into_iter().map(|(slot, _)| slot).collect())
}

/// Test builds only: with `TASKLEASE_FAILPOINT=queue-after-commit`, a serving process
/// dies right after its commit, before any reply is marked answered — the instant the
/// doubt records exist for; with `queue-before-commit`, right before it, its replies
/// written in doubt and its transaction to be rolled back. It names the agents it
/// served on stderr first, so a test can tell that it served others.
#[cfg(debug_assertions)]
fn failpoint(name: &str, agents: &[String]) {
    if std::env::var_os("TASKLEASE_FAILPOINT").is_some_and(|v| v == name) {
        eprintln!("failpoint {name}: served {}", agents.join(" "));
        std::process::abort();
    }
}

/// Settles every reply left in doubt (see "Failure" above), under the turn: answered
/// if its claim committed, back up as a request if not. Returns the slots answered.
fn resolve_doubts(conn: &Connection, board: &File) -> Result<Vec<usize>> {
    let mut answered = Vec::new();
    for (slot, rec) in read_board(board)?.chunks_exact(REC).enumerate() {
        if rec[4] == DOUBT && valid(rec) && settle_doubt(conn, board, slot, rec)? {
            answered.push(slot);
        }
    }
    Ok(answered)
}

/// Settles one reply in doubt: marks it answered if its claim committed (and says so),
/// else puts it back up as a request.
fn settle_doubt(conn: &Connection, board: &File, slot: usize, rec: &[u8]) -> Result<bool> {
    let committed = match decode_request_fields(rec) {
        Some(req) => took_effect(conn, &req, &decode_reply_fields(rec)?)?,
        None => false,
    };
    let mut rec: [u8; REC] = rec
        .try_into()
        .map_err(|_| Error::store("read a queue record", "a record of the wrong size"))?;
    restate(
        board,
        slot,
        &mut rec,
        if committed { REPLIED } else { PENDING },
    )?;
    Ok(committed)
}

/// Whether the database shows `reply` to `req` committed: a claim if its task is held
/// by its claimer under exactly that token and lease end, a `done` if its task is done
/// under its token. "Nothing ready" and "not finished" changed nothing; serving them
/// again is as good an answer.
fn took_effect(conn: &Connection, req: &Request, reply: &Reply) -> Result<bool> {
    let (task, token) = match (&req.op, reply) {
        (Op::ClaimNext { .. }, Reply::Claimed(Some(row))) => (row.id.as_str(), row.token),
        (Op::Done { task, token, .. }, Reply::Done(true)) => (task.as_str(), *token),
        _ => return Ok(false),
    };
    let Ok(id) = TaskId::new(task) else {
        return Ok(false);
    };
    let Some(now) = crate::lease_row(conn, &id)?.map(|r| r.lease) else {
        return Ok(false);
    };
    Ok(now.fence == token
        && match reply {
            Reply::Claimed(Some(row)) => {
                now.status == Status::InProgress
                    && now.assignee.as_ref().map(AgentId::as_str) == Some(req.agent.as_str())
                    && now.lock_until == Some(Millis::from_millis(row.lock_until))
            }
            // Done by this very request: not an `update` to done meanwhile.
            _ => now.status == Status::Done && now.ended_by == Some(EventKind::Done),
        })
}

fn set_synchronous(conn: &Connection, level: &str) -> Result<()> {
    conn.pragma_update(None, "synchronous", level)
        .ctx("set the commit durability")
}

/// Writes a record: the request, and (unless pending) its reply beside it, so a reply
/// in doubt can go back up as the request it answers.
///
/// Layout, little-endian: 0..4 magic, 4 state, 5 the reply (0 nothing claimed or not
/// finished, 1 claimed or finished, 2 run it alone), 6 FULL asked, 7 the operation,
/// 8..16 request number, 16..24 lease ms, 24..26 agent length, 26..28 task id length,
/// 28..30 key length, 30 key origin, 32..40 posted (µs), 40..48 token, 48..56
/// assigned at, 56..64 lease end, 64..72 version, 72..200 agent, 200..328 task id (the
/// task claimed, or the task to finish and its token), 328..456 key; 508..512
/// checksum of everything before it.
fn encode_record(rec: &mut [u8; REC], state: u8, req: &Request, reply: Option<&Reply>) {
    fn put_task(rec: &mut [u8; REC], id: &str, token: i64) {
        let id = id.as_bytes();
        let len = id.len().min(MAX_TEXT);
        rec[26..28].copy_from_slice(&(len as u16).to_le_bytes());
        rec[40..48].copy_from_slice(&token.to_le_bytes());
        rec[TASK_AT..TASK_AT + len].copy_from_slice(&id[..len]);
    }
    fn put_secret(rec: &mut [u8; REC], len_at: usize, at: usize, secret: Option<&str>) {
        // Too long never fits a task's secret: such a `done` is sent alone (`fits`).
        let s = secret.map_or(&[][..], str::as_bytes);
        let len = s.len().min(MAX_SECRET);
        rec[len_at] = len as u8;
        rec[at..at + len].copy_from_slice(&s[..len]);
    }
    let a = req.agent.as_bytes();
    let a = &a[..a.len().min(MAX_TEXT)];
    rec.fill(0);
    rec[0..4].copy_from_slice(MAGIC);
    rec[4] = state;
    rec[6] = u8::from(req.full);
    rec[8..16].copy_from_slice(&req.id.to_le_bytes());
    rec[24..26].copy_from_slice(&(a.len() as u16).to_le_bytes());
    rec[32..40].copy_from_slice(&req.posted_us.to_le_bytes());
    rec[AGENT_AT..AGENT_AT + a.len()].copy_from_slice(a);
    match &req.op {
        Op::ClaimNext { lease_ms, key } => {
            rec[7] = OP_CLAIM_NEXT;
            rec[16..24].copy_from_slice(&lease_ms.to_le_bytes());
            if let Some(key) = key {
                let k = &key.text.as_bytes()[..key.text.len().min(MAX_TEXT)];
                rec[28..30].copy_from_slice(&(k.len() as u16).to_le_bytes());
                rec[30] = if key.caller { KEY_CALLER } else { KEY_OURS };
                rec[KEY_AT..KEY_AT + k.len()].copy_from_slice(k);
            }
        }
        Op::Done {
            task,
            token,
            secret,
        } => {
            rec[7] = OP_DONE;
            put_task(rec, task, *token);
            put_secret(rec, 31, SECRET_AT, secret.as_deref());
        }
    }
    match reply {
        Some(Reply::Claimed(Some(r))) => {
            rec[5] = 1;
            put_task(rec, &r.id, r.token);
            put_secret(rec, 504, GRANT_SECRET_AT, r.secret.as_deref());
            rec[48..56].copy_from_slice(&r.assigned_at.to_le_bytes());
            rec[56..64].copy_from_slice(&r.lock_until.to_le_bytes());
            rec[64..72].copy_from_slice(&r.version.to_le_bytes());
        }
        Some(Reply::Done(finished)) => rec[5] = u8::from(*finished),
        Some(Reply::Alone) => rec[5] = 2,
        Some(Reply::Claimed(None)) | None => {}
    }
    seal(rec);
}

/// A request read from the board.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    /// Its number, echoed in the reply.
    id: u64,
    agent: String,
    /// When it was posted, microseconds since the epoch (host clock: all processes on
    /// one host), for the claim's recorded wait.
    posted_us: i64,
    /// The claimer commits with `synchronous = FULL`, and its request must too.
    full: bool,
    op: Op,
}

fn epoch_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn decode_request(rec: &[u8]) -> Option<Request> {
    // Cheap tests first: most records are empty or answered.
    if rec.len() != REC || rec[4] != PENDING || !valid(rec) {
        return None;
    }
    decode_request_fields(rec)
}

/// The request part of a record already checked.
fn decode_request_fields(rec: &[u8]) -> Option<Request> {
    let field =
        |r: std::ops::Range<usize>| i64::from_le_bytes(rec[r].try_into().unwrap_or_default());
    let len = usize::from(u16::from_le_bytes([rec[24], rec[25]])).min(MAX_TEXT);
    let agent = std::str::from_utf8(&rec[AGENT_AT..AGENT_AT + len])
        .ok()?
        .to_owned();
    let op = match rec[7] {
        OP_CLAIM_NEXT => {
            let len = usize::from(u16::from_le_bytes([rec[28], rec[29]]));
            let key = match rec[30] {
                _ if len == 0 || len > MAX_TEXT => None,
                origin @ (KEY_CALLER | KEY_OURS) => Some(Key {
                    text: std::str::from_utf8(&rec[KEY_AT..KEY_AT + len])
                        .ok()?
                        .to_owned(),
                    caller: origin == KEY_CALLER,
                }),
                _ => return None,
            };
            Op::ClaimNext {
                lease_ms: field(16..24),
                key,
            }
        }
        OP_DONE => Op::Done {
            task: task_text(rec).ok()?,
            token: field(40..48),
            secret: secret_text(rec, 31, SECRET_AT)?,
        },
        _ => return None,
    };
    Some(Request {
        id: u64::from_le_bytes(rec[8..16].try_into().ok()?),
        agent,
        posted_us: field(32..40),
        full: rec[6] == 1,
        op,
    })
}

/// A secret of a record: `Some(None)` for none, `None` when unreadable.
#[allow(clippy::option_option)]
fn secret_text(rec: &[u8], len_at: usize, at: usize) -> Option<Option<String>> {
    let len = usize::from(rec[len_at]);
    if len == 0 {
        return Some(None);
    }
    if len > MAX_SECRET {
        return None;
    }
    std::str::from_utf8(&rec[at..at + len])
        .ok()
        .map(|s| Some(s.to_owned()))
}

/// The task id of a record (claimed, or to finish).
fn task_text(rec: &[u8]) -> Result<String> {
    let len = usize::from(u16::from_le_bytes([rec[26], rec[27]])).min(MAX_TEXT);
    std::str::from_utf8(&rec[TASK_AT..TASK_AT + len])
        .map(str::to_owned)
        .map_err(|_| Error::store("read a queue record", "the task id is not UTF-8"))
}

/// This slot's reply to `req`, if it has arrived: `Some(None)` means "nothing was
/// ready". A reply counts only when its checksum, request number, claimer and
/// operation all match the request.
fn read_reply(board: &File, slot: usize, req: &Request) -> Result<Option<Reply>> {
    let mut rec = [0u8; REC];
    if read_at(board, &mut rec, (slot + 1) * REC)? < REC || rec[4] != REPLIED || !valid(&rec) {
        return Ok(None);
    }
    match decode_request_fields(&rec) {
        Some(r) if r.id == req.id && r.agent == req.agent && r.op == req.op => {}
        _ => return Ok(None),
    }
    decode_reply_fields(&rec).map(Some)
}

/// The reply part of a record already checked.
fn decode_reply_fields(rec: &[u8]) -> Result<Reply> {
    if rec[7] == OP_DONE {
        return Ok(Reply::Done(rec[5] == 1));
    }
    match rec[5] {
        0 => return Ok(Reply::Claimed(None)),
        2 => return Ok(Reply::Alone),
        _ => {}
    }
    let field =
        |r: std::ops::Range<usize>| i64::from_le_bytes(rec[r].try_into().unwrap_or_default());
    Ok(Reply::Claimed(Some(Row {
        id: task_text(rec)?,
        token: field(40..48),
        secret: secret_text(rec, 504, GRANT_SECRET_AT).ok_or_else(|| {
            Error::store("read a queue record", "the granted secret is unreadable")
        })?,
        assigned_at: field(48..56),
        lock_until: field(56..64),
        version: field(64..72),
    })))
}

/// FNV-1a over the whole record but the checksum itself, stored in its last four
/// bytes. Every byte a reader acts on is covered — the state too — so a torn read (a
/// record read while another process rewrites it) or a byte changed by anything else
/// fails the check, and the record says nothing. (FNV-1a changes with any one byte.)
fn checksum(rec: &[u8]) -> u32 {
    let fnv = |h: u32, b: &u8| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    rec[..REC - 4].iter().fold(0x811c_9dc5u32, fnv)
}

fn seal(rec: &mut [u8; REC]) {
    let sum = checksum(rec);
    rec[REC - 4..].copy_from_slice(&sum.to_le_bytes());
}

fn valid(rec: &[u8]) -> bool {
    rec.len() == REC && &rec[0..4] == MAGIC && rec[REC - 4..] == checksum(rec).to_le_bytes()
}

/// Changes a slot's record state: the whole record, sealed again (the state is inside
/// the checksum).
fn restate(board: &File, slot: usize, rec: &mut [u8; REC], state: u8) -> Result<()> {
    rec[4] = state;
    seal(rec);
    write_at(board, rec, slot)
}

/// `busy`, saying that a stopped server may still grant the request it gave up on.
fn in_doubt_busy(busy: Error) -> Error {
    let Error::Busy {
        what,
        waited,
        holder,
    } = busy
    else {
        return busy;
    };
    Error::Busy {
        what: format!(
            "{what} (if the holder had already read this request, it may still grant it \
             when it resumes: look with `tasklease list --status in_progress`)"
        ),
        waited,
        holder,
    }
}

/// Opens one of the queue's lock files. Its directory missing is not bad input (the
/// caller named no path): the queue directory was removed while this process ran.
fn open_lock(path: PathBuf) -> Result<LockFile> {
    LockFile::open_private(&path, "the writer queue's lock file").map_err(|e| match e {
        Error::Store { context, source }
            if std::fs::metadata(path.parent().unwrap_or(Path::new("."))).is_err() =>
        {
            Error::Store {
                context: format!(
                    "{context} (was the queue directory removed while tasklease ran? it \
                     is recreated by the next process to open the database)"
                ),
                source,
            }
        }
        e => e,
    })
}

/// Refuses the writer queue's directory beside the database at `db` if it exists and
/// is not ours alone (see [`private::check`]).
pub(crate) fn check_dir(db: &Path) -> Result<()> {
    private::check(&queue_dir(db), "the writer queue's directory").map(|_| ())
}

/// The writer queue's directory beside the database at `db`.
fn queue_dir(db: &Path) -> PathBuf {
    let mut dir = db.as_os_str().to_owned();
    dir.push("-queue");
    PathBuf::from(dir)
}

/// Records `me` as the turn's holder, in the board's first record. Best effort: the
/// record is for people, and a write that fails leaves waiters saying less.
fn write_holder(board: &File, me: &Holder) {
    let mut me = me.clone();
    me.since = Millis::from_millis(epoch_us() / 1000);
    let Ok(json) = serde_json::to_vec(&me) else {
        return;
    };
    let Ok(len) = u16::try_from(json.len()) else {
        return;
    };
    let mut rec = [0u8; REC];
    if json.len() + 6 > REC {
        return;
    }
    rec[..4].copy_from_slice(HOLDER_MAGIC);
    rec[4..6].copy_from_slice(&len.to_le_bytes());
    rec[6..6 + json.len()].copy_from_slice(&json);
    let _ = write_record(board, &rec, 0);
}

/// The turn holder's record; `None` when there is none or it cannot be read. Read
/// again when torn by a concurrent write (it then fails to parse).
fn read_holder(board: &File) -> Option<Holder> {
    for _ in 0..3 {
        let mut rec = [0u8; REC];
        if read_at(board, &mut rec, 0).ok()? < 6 || &rec[..4] != HOLDER_MAGIC {
            return None;
        }
        let len = usize::from(u16::from_le_bytes([rec[4], rec[5]]));
        if let Some(h) = rec
            .get(6..6 + len)
            .and_then(|json| serde_json::from_slice(json).ok())
        {
            return Some(h);
        }
    }
    None
}

/// The writer turn of the database at `db`: whether it is held, and by whom.
pub(crate) fn turn_state(db: &Path) -> Result<Option<(bool, Option<Holder>, PathBuf)>> {
    let dir = queue_dir(db);
    let path = dir.join("turn");
    // On a read-only mount nobody can write, so nobody holds a turn worth showing, and
    // the lock file could not be opened to look: reads must keep working there.
    if !path.exists() || crate::fs::read_only(&dir) {
        return Ok(None);
    }
    let mut turn = open_lock(path.clone())?;
    // Trying the turn for an instant, as `tasklease locks` probes file locks: a writer
    // trying it meanwhile goes the long way, which is correct, only slower.
    if turn.try_lock_exclusive()?.is_some() {
        return Ok(Some((false, None, path)));
    }
    let board = File::open(dir.join("board"))
        .map_err(|e| Error::store(format!("cannot open {}", dir.join("board").display()), e))?;
    Ok(Some((true, read_holder(&board), path)))
}

/// Slot records follow the header record (the turn holder's, see [`write_holder`]).
fn write_at(board: &File, rec: &[u8; REC], slot: usize) -> Result<()> {
    write_record(board, rec, (slot + 1) * REC)
}

fn write_record(board: &File, rec: &[u8; REC], offset: usize) -> Result<()> {
    let offset = offset as u64;
    #[cfg(unix)]
    let r = std::os::unix::fs::FileExt::write_all_at(board, rec, offset);
    #[cfg(windows)]
    let r = std::os::windows::fs::FileExt::seek_write(board, rec, offset).and_then(|n| {
        if n == REC {
            Ok(())
        } else {
            Err(std::io::Error::other("short write"))
        }
    });
    r.map_err(|e| Error::store("write the writer queue's board", e))
}

fn read_at(board: &File, buf: &mut [u8], offset: usize) -> Result<usize> {
    #[cfg(unix)]
    let r = std::os::unix::fs::FileExt::read_at(board, buf, offset as u64);
    #[cfg(windows)]
    let r = std::os::windows::fs::FileExt::seek_read(board, buf, offset as u64);
    r.map_err(|e| Error::store("read the writer queue's board", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_patience() -> Patience {
        Patience::new(
            Duration::from_secs(60),
            None,
            AgentId::new("queue-test").unwrap(),
        )
    }

    /// A request as `agent` would post it.
    fn request(id: u64, agent: &str, op: Op) -> Request {
        Request {
            id,
            agent: agent.into(),
            posted_us: epoch_us(),
            full: false,
            op,
        }
    }

    /// A claim-next request for the default lease.
    fn claim_request(id: u64, agent: &str, full: bool) -> Request {
        let lease_ms = LeaseDuration::DEFAULT.as_millis();
        Request {
            full,
            ..request(
                id,
                agent,
                Op::ClaimNext {
                    lease_ms,
                    key: None,
                },
            )
        }
    }

    fn encode_request(rec: &mut [u8; REC], id: u64, agent: &AgentId, full: bool) {
        encode_record(rec, PENDING, &claim_request(id, agent.as_str(), full), None);
    }

    #[test]
    fn records_round_trip_and_tears_are_caught() {
        let agent = AgentId::new("agent-x").unwrap();
        let mut rec = [0u8; REC];
        encode_request(&mut rec, 7, &agent, true);
        let req = decode_request(&rec).expect("a request");
        let lease_ms = LeaseDuration::DEFAULT.as_millis();
        assert_eq!(
            (req.id, req.agent.as_str(), &req.op, req.full),
            (
                7,
                "agent-x",
                &Op::ClaimNext {
                    lease_ms,
                    key: None
                },
                true
            )
        );
        assert!((epoch_us() - req.posted_us).abs() < 60_000_000);
        rec[AGENT_AT + 6] ^= 1;
        assert_eq!(decode_request(&rec), None, "a torn record must not decode");
        let row = Row {
            id: "T-9".into(),
            token: 3,
            secret: Some("k3f9q2m8x1c4v6b0".into()),
            assigned_at: 10,
            lock_until: 20,
            version: 5,
        };
        encode_record(&mut rec, REPLIED, &req, Some(&Reply::Claimed(Some(row))));
        assert_eq!(decode_request(&rec), None, "a reply is not a request");
        assert!(valid(&rec));
        let got = claimed(decode_reply_fields(&rec).unwrap()).expect("a row");
        assert_eq!(
            (
                got.id.as_str(),
                got.token,
                got.secret.as_deref(),
                got.lock_until
            ),
            ("T-9", 3, Some("k3f9q2m8x1c4v6b0"), 20)
        );
        // The state is inside the checksum: changing it alone makes the record say
        // nothing; restated and sealed, the request is back beside the reply.
        rec[4] = PENDING;
        assert_eq!(
            decode_request(&rec),
            None,
            "a state changed alone must not decode"
        );
        seal(&mut rec);
        assert_eq!(decode_request(&rec), Some(req));
        // A done request keeps its task and token beside its answer.
        let task = "T-9".to_owned();
        let secret = Some("k3f9q2m8x1c4v6b0".to_owned());
        let done = request(
            8,
            "agent-x",
            Op::Done {
                task,
                token: 3,
                secret,
            },
        );
        encode_record(&mut rec, DOUBT, &done, Some(&Reply::Done(true)));
        assert!(matches!(
            decode_reply_fields(&rec).unwrap(),
            Reply::Done(true)
        ));
        rec[4] = PENDING;
        seal(&mut rec);
        assert_eq!(decode_request(&rec), Some(done));
    }

    /// The claim in a reply; panics on a reply to a `done`.
    fn claimed(reply: Reply) -> Option<Row> {
        match reply {
            Reply::Claimed(row) => row,
            Reply::Done(_) | Reply::Alone => panic!("{reply:?} where a claim was expected"),
        }
    }

    use std::sync::mpsc;
    use std::time::Instant;

    /// A fresh database with `tasks` todo tasks, and the queue directory beside it.
    fn fixture(tasks: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        crate::bench::prefill(&path, tasks, false, false, crate::Synchronous::Normal).unwrap();
        (dir, path)
    }

    fn connect(path: &Path, busy: Duration) -> Connection {
        let c = Connection::open(path).unwrap();
        c.busy_timeout(busy).unwrap();
        crate::register_functions(&c).unwrap();
        c
    }

    /// Who holds which task, from the database.
    fn assignees(path: &Path) -> Vec<(String, String)> {
        let c = connect(path, Duration::from_secs(5));
        let mut s = c
            .prepare("SELECT id, assignee FROM tasks WHERE status = 'in_progress' ORDER BY seq")
            .unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// One claim-next through a queue of its own, on a thread; the answer comes back on
    /// the channel.
    fn claim_on_thread(
        path: &Path,
        agent: &str,
        busy: Duration,
    ) -> mpsc::Receiver<Result<Option<Lease>>> {
        let (tx, rx) = mpsc::channel();
        let path = path.to_owned();
        let agent = AgentId::new(agent).unwrap();
        std::thread::spawn(move || {
            let conn = connect(&path, busy);
            let mut q = Queue::open(&path, true, false, test_patience()).unwrap();
            let b = Busy::default();
            let claimer = Claimer {
                clock: &Clock::Database,
                busy: &b,
                start: Instant::now(),
            };
            let got = q.claim_next(&conn, &claimer, &agent, LeaseDuration::DEFAULT, None);
            let _ = tx.send(got);
        });
        rx
    }

    /// A claimer whose turn failed (here: SQLite's write lock held past its busy
    /// timeout) is told so; its request must be off the board before any other turn
    /// can read it. It used to be withdrawn only after the turn was handed on (and the
    /// next claimer woken), so the next turn could claim a task for a caller that had
    /// been told its claim failed — or, once that caller posted again, overwrite its
    /// new request with the old reply.
    #[test]
    fn a_failed_claim_leaves_no_request_for_the_next_turn() {
        let (_dir, path) = fixture(20);
        let board = {
            let q = Queue::open(&path, true, false, test_patience()).unwrap();
            q.board
        };
        let mut rival = LockFile::open(path.with_extension("db-queue").join("turn")).unwrap();
        let mut rival_conn = Some(connect(&path, Duration::from_secs(30)));
        for round in 0..5 {
            let blocker = connect(&path, Duration::from_secs(5));
            blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
            // Another claimer is waiting, so the failing one posts its request too (a
            // claimer finding the turn free and nobody waiting claims alone).
            let mut rec = [0u8; REC];
            let other = AgentId::new("other").unwrap();
            encode_request(&mut rec, round, &other, false);
            write_at(&board, &rec, SLOTS - 1).unwrap();
            let failing = claim_on_thread(&path, "failing", Duration::from_millis(200));
            // Its request is up, and it holds the turn, waiting for the write lock.
            let posted = Instant::now();
            while pending(&board).unwrap().len() < 2 {
                assert!(posted.elapsed() < Duration::from_secs(5), "never posted");
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(30));
            // The next turn, taken the moment it is free, serves what the board holds
            // then: the write lock is still held, so it waits inside its transaction.
            let conn = rival_conn.take().unwrap();
            let (board, rival) = (&board, &mut rival);
            let (conn, serving) = std::thread::scope(|s| {
                let serving = s.spawn(move || {
                    let _turn = loop {
                        if let Some(turn) = rival.try_lock_exclusive().unwrap() {
                            break turn;
                        }
                        std::hint::spin_loop();
                    };
                    let served = serve_all(&conn, &Clock::Database, board, false);
                    (conn, served)
                });
                let told = failing.recv_timeout(Duration::from_secs(10)).unwrap();
                assert!(told.is_err(), "round {round}: {told:?}");
                blocker.execute_batch("COMMIT").unwrap();
                serving.join().unwrap()
            });
            rival_conn = Some(conn);
            let served = serving.unwrap();
            let held = assignees(&path);
            assert!(
                held.iter().all(|(_, who)| who != "failing"),
                "round {round}: a task was claimed for a caller told its claim failed \
                 (slots served: {served:?}, held: {held:?})"
            );
        }
    }

    /// Whatever takes a request off the board (here: a stray write over it), the
    /// claimer must not wait for ever: it used to take the free turn, find nothing
    /// pending, and go round again at full CPU without end.
    #[test]
    fn a_claim_whose_request_vanished_fails_instead_of_spinning() {
        let (_dir, path) = fixture(10);
        let (board, mut turn) = {
            let q = Queue::open(&path, true, false, test_patience()).unwrap();
            (q.board, q.turn)
        };
        let (ready, has_slot) = mpsc::channel();
        let (go, gone) = mpsc::channel::<()>();
        let (tx, claim) = mpsc::channel();
        let thread_path = path.clone();
        std::thread::spawn(move || {
            let conn = connect(&thread_path, Duration::from_secs(30));
            let mut q = Queue::open(&thread_path, true, false, test_patience()).unwrap();
            let (b, agent) = (Busy::default(), AgentId::new("lost").unwrap());
            let claimer = Claimer {
                clock: &Clock::Database,
                busy: &b,
                start: Instant::now(),
            };
            // A first claim takes the slot; the second is the one that gets lost.
            let first = q.claim_next(&conn, &claimer, &agent, LeaseDuration::DEFAULT, None);
            ready.send(first.unwrap().unwrap().task).unwrap();
            gone.recv().unwrap();
            let _ = tx.send(q.claim_next(&conn, &claimer, &agent, LeaseDuration::DEFAULT, None));
        });
        let first = has_slot.recv_timeout(Duration::from_secs(10)).unwrap();
        let held = turn.lock_exclusive().unwrap();
        go.send(()).unwrap();
        let posted = Instant::now();
        let slot = loop {
            if let Some((slot, _)) = pending(&board).unwrap().first() {
                break *slot;
            }
            assert!(posted.elapsed() < Duration::from_secs(5), "never posted");
            std::thread::sleep(Duration::from_millis(1));
        };
        let mut rec = [0u8; REC];
        let stray = request(
            12_345,
            "someone",
            Op::ClaimNext {
                lease_ms: 1,
                key: None,
            },
        );
        encode_record(&mut rec, REPLIED, &stray, None);
        write_at(&board, &rec, slot).unwrap();
        drop(held);
        let got = claim
            .recv_timeout(Duration::from_secs(10))
            .expect("the claim never came back");
        let e = got.expect_err("nothing was served for the request");
        assert!(e.to_string().contains("lost"), "{e}");
        assert_eq!(assignees(&path), [(first.to_string(), "lost".to_owned())]);
    }

    /// A turn held past the busy timeout (by a process stopped while holding it, say)
    /// fails the wait with `Error::Busy` naming the holder from its record, after
    /// telling the hook once; it used to wait for ever.
    #[test]
    fn a_turn_held_past_the_busy_timeout_fails_naming_its_holder() {
        let (_dir, path) = fixture(1);
        let holder = Patience::new(
            Duration::from_secs(60),
            None,
            AgentId::new("stuck").unwrap(),
        );
        let mut stuck = Queue::open(&path, false, false, holder).unwrap();
        let held = try_take_turn(&mut stuck.turn, &stuck.board, &stuck.patience.me)
            .expect("the turn is free");
        let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let log = told.clone();
        let waiter = Patience::new(
            NOTICE + Duration::from_millis(500),
            Some(WaitHook::new(move |w| {
                log.lock().unwrap().push(w.to_string())
            })),
            AgentId::new("waiter").unwrap(),
        );
        let mut queue = Queue::open(&path, false, false, waiter).unwrap();
        let conn = connect(&path, Duration::from_secs(5));
        let start = std::time::Instant::now();
        let e = queue.turn(&conn, || Ok(())).expect_err("the turn is held");
        assert!(start.elapsed() >= NOTICE, "{:?}", start.elapsed());
        assert_eq!(e.code(), "busy");
        let pid = format!("pid {}", std::process::id());
        let msg = e.to_string();
        assert!(msg.contains("stuck") && msg.contains(&pid), "{msg}");
        let told = told.lock().unwrap();
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(
            told[0].contains("stuck") && told[0].contains(&pid),
            "{told:?}"
        );
        drop(held);
        queue.turn(&conn, || Ok(())).expect("free again");
    }

    /// A combined claim is committed by the process serving the board. A claimer that
    /// asked for `synchronous = FULL` must get a FULL commit from a server running
    /// NORMAL: a claim lost on power loss would have its token issued again.
    #[test]
    fn a_full_claim_is_committed_at_full_by_a_normal_server() {
        use rusqlite::trace::{TraceEvent, TraceEventCodes};
        let (_dir, path) = fixture(10);
        let board = Queue::open(&path, true, false, test_patience())
            .unwrap()
            .board;
        let mut conn = connect(&path, Duration::from_secs(5));
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        conn.trace_v2(
            TraceEventCodes::SQLITE_TRACE_STMT,
            Some(move |e: TraceEvent<'_>| {
                if let TraceEvent::Stmt(_, sql) = e {
                    log.lock().unwrap().push(sql.to_owned());
                }
            }),
        )
        .unwrap();
        let mut rec = [0u8; REC];
        let (durable, casual) = (
            AgentId::new("durable").unwrap(),
            AgentId::new("casual").unwrap(),
        );
        encode_request(&mut rec, 1, &durable, true);
        write_at(&board, &rec, 0).unwrap();
        encode_request(&mut rec, 2, &casual, false);
        write_at(&board, &rec, 1).unwrap();
        assert_eq!(
            serve_all(&conn, &Clock::Database, &board, false).unwrap(),
            [0, 1]
        );
        let steps: Vec<String> = std::mem::take(&mut *seen.lock().unwrap())
            .into_iter()
            .filter_map(|sql| {
                let sql = sql.to_uppercase();
                ["SYNCHRONOUS", "BEGIN", "COMMIT"]
                    .iter()
                    .any(|w| sql.contains(w))
                    .then_some(sql)
            })
            .collect();
        assert!(steps.len() == 4, "{steps:?}");
        assert!(
            steps[0].contains("SYNCHRONOUS") && steps[0].contains("FULL"),
            "{steps:?}"
        );
        assert!(
            steps[1].contains("BEGIN") && steps[2].contains("COMMIT"),
            "{steps:?}"
        );
        assert!(steps[3].contains("NORMAL"), "{steps:?}");
        let level: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(level, 1, "the server is back at NORMAL");
        seen.lock().unwrap().clear();
        // Requests that ask for nothing more leave the server's level alone.
        encode_request(&mut rec, 3, &casual, false);
        write_at(&board, &rec, 1).unwrap();
        assert_eq!(
            serve_all(&conn, &Clock::Database, &board, false).unwrap(),
            [1]
        );
        let seen = seen.lock().unwrap();
        assert!(
            !seen
                .iter()
                .any(|s| s.to_uppercase().contains("SYNCHRONOUS")),
            "{seen:?}"
        );
    }

    /// A claimer that dies with its request on the board leaves its slot free; a
    /// process that takes the slot next must not have its own request overwritten by
    /// the reply to the dead one's (served by a turn that read the board before). That
    /// left the new owner waiting for a reply that could never come, spinning on the
    /// turn for ever.
    #[test]
    fn a_new_slot_owner_is_not_answered_for_the_dead_owner() {
        let (_dir, path) = fixture(10);
        let mut server = Queue::open(&path, true, false, test_patience()).unwrap();
        // The dead claimer: its request is pending in slot 0, whose lock is free.
        let mut rec = [0u8; REC];
        let dead = AgentId::new("dead").unwrap();
        encode_request(&mut rec, 1, &dead, false);
        write_at(&server.board, &rec, 0).unwrap();
        // SQLite's write lock is held elsewhere, so the server stops between reading
        // the board and replying.
        let blocker = connect(&path, Duration::from_secs(5));
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (held, turn_held) = mpsc::channel();
        let serving = {
            let path = path.clone();
            std::thread::spawn(move || {
                let conn = connect(&path, Duration::from_secs(30));
                let _turn = server.turn.lock_exclusive().unwrap();
                held.send(()).unwrap();
                serve_all(&conn, &Clock::Database, &server.board, false).unwrap()
            })
        };
        turn_held.recv().unwrap();
        // Let the server read the board and block on the write lock.
        std::thread::sleep(Duration::from_millis(100));
        let newcomer = claim_on_thread(&path, "newcomer", Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(100));
        blocker.execute_batch("COMMIT").unwrap();
        assert_eq!(
            serving.join().unwrap(),
            vec![0],
            "the dead claimer was served"
        );
        let got = newcomer
            .recv_timeout(Duration::from_secs(10))
            .expect("the newcomer's claim never came back")
            .unwrap()
            .expect("a task");
        assert_eq!(got.agent.as_str(), "newcomer");
        let held = assignees(&path);
        assert_eq!(held.len(), 2, "{held:?}");
        assert!(
            held.contains(&(got.task.to_string(), "newcomer".into())),
            "{held:?}"
        );
    }

    /// A writer killed after its commit but before marking its replies answered: the
    /// claims it committed stand and reach their claimers, and those it did not commit
    /// are served again. Its claimers used to be served twice, the first task held in
    /// their name until the lease ran out.
    #[test]
    fn replies_left_in_doubt_are_settled_by_the_database() {
        let (_dir, path) = fixture(10);
        let board = Queue::open(&path, true, false, test_patience())
            .unwrap()
            .board;
        let conn = connect(&path, Duration::from_secs(5));
        let mut rec = [0u8; REC];
        // Slot 0's claim committed, slot 1's did not (the writer died first); both
        // replies were written in doubt.
        let (committed, lost) = (
            claim_request(1, "committed", false),
            claim_request(2, "rolled-back", false),
        );
        let mut granted = None;
        for (slot, req, commit) in [(0, &committed, true), (1, &lost, false)] {
            let tx = Tx::begin(&conn, Tx::IMMEDIATE).unwrap();
            let lease_ms = LeaseDuration::DEFAULT.as_millis();
            let row = claim_next_stmt(&tx, &Clock::Database, &req.agent, lease_ms, (0, 0), None)
                .unwrap()
                .expect("a task");
            let reply = Reply::Claimed(Some(Row {
                id: row.id.clone(),
                secret: row.secret.clone(),
                ..row
            }));
            encode_record(&mut rec, DOUBT, req, Some(&reply));
            write_at(&board, &rec, slot).unwrap();
            if commit {
                tx.commit().unwrap();
                granted = Some(row);
            }
        }
        let granted = granted.unwrap();
        // Neither claimer may take a reply in doubt.
        assert!(read_reply(&board, 0, &committed).unwrap().is_none());
        assert!(read_reply(&board, 1, &lost).unwrap().is_none());
        let mut woken = serve_all(&conn, &Clock::Database, &board, false).unwrap();
        woken.sort_unstable();
        assert_eq!(woken, [0, 1]);
        let first = claimed(read_reply(&board, 0, &committed).unwrap().unwrap()).unwrap();
        assert_eq!(
            (first.id.as_str(), first.token),
            (granted.id.as_str(), granted.token)
        );
        let second = claimed(read_reply(&board, 1, &lost).unwrap().unwrap()).unwrap();
        let mut held = assignees(&path);
        held.sort();
        let mut want = vec![
            (first.id.clone(), "committed".to_owned()),
            (second.id.clone(), "rolled-back".to_owned()),
        ];
        want.sort();
        assert_eq!(
            held, want,
            "each claimer holds exactly the task it was told of"
        );
    }

    /// A reply a plain turn (a renew, say) settles from doubt wakes its claimer, which
    /// otherwise slept on until its nap ran out.
    #[cfg(unix)]
    #[test]
    fn a_reply_settled_from_doubt_wakes_its_claimer() {
        let (_dir, path) = fixture(10);
        let mut queue = Queue::open(&path, true, false, test_patience()).unwrap();
        let conn = connect(&path, Duration::from_secs(5));
        let req = claim_request(1, "sleeper", false);
        let lease_ms = LeaseDuration::DEFAULT.as_millis();
        let row = claim_next_stmt(&conn, &Clock::Database, &req.agent, lease_ms, (0, 0), None)
            .unwrap()
            .expect("a task");
        let mut rec = [0u8; REC];
        encode_record(&mut rec, DOUBT, &req, Some(&Reply::Claimed(Some(row))));
        write_at(&queue.board, &rec, 3).unwrap();
        let sleeper =
            std::os::unix::net::UnixDatagram::bind(queue.dir.join("slot-03.sock")).unwrap();
        sleeper.set_nonblocking(true).unwrap();

        queue.turn(&conn, || Ok(())).unwrap();

        assert!(
            read_reply(&queue.board, 3, &req).unwrap().is_some(),
            "settled"
        );
        let mut b = [0u8; 1];
        sleeper.recv(&mut b).expect("the claimer was woken");
    }

    /// `done` through the board: a turn finishes the tasks whose lease matches, answers
    /// "not finished" (nothing changed) for the rest, and settles dones a dead writer
    /// left in doubt against the database — each task finished once, with one history
    /// row.
    #[test]
    fn dones_are_served_from_the_board_and_settled_after_a_crash() {
        let (_dir, path) = fixture(10);
        let board = Queue::open(&path, true, false, test_patience())
            .unwrap()
            .board;
        let conn = connect(&path, Duration::from_secs(5));
        let lease_ms = LeaseDuration::DEFAULT.as_millis();
        let claim = || {
            claim_next_stmt(&conn, &Clock::Database, "a", lease_ms, (0, 0), None)
                .unwrap()
                .expect("a task")
        };
        let (t1, t2, t3) = (claim(), claim(), claim());
        let done = |id: u64, task: &Row, token: i64| {
            let (secret, task) = (task.secret.clone(), task.id.clone());
            request(
                id,
                "a",
                Op::Done {
                    task,
                    token,
                    secret,
                },
            )
        };
        let reply = |slot: usize, req: &Request| match read_reply(&board, slot, req).unwrap() {
            Some(Reply::Done(finished)) => finished,
            other => panic!("slot {slot}: {other:?}"),
        };
        let status = |task: &Row| -> String {
            conn.query_row("SELECT status FROM tasks WHERE id = ?1", [&task.id], |r| {
                r.get(0)
            })
            .unwrap()
        };
        let mut rec = [0u8; REC];
        let (r1, r2) = (done(1, &t1, t1.token), done(2, &t2, t2.token + 1));
        encode_record(&mut rec, PENDING, &r1, None);
        write_at(&board, &rec, 0).unwrap();
        encode_record(&mut rec, PENDING, &r2, None);
        write_at(&board, &rec, 1).unwrap();
        assert_eq!(
            serve_all(&conn, &Clock::Database, &board, false).unwrap(),
            [0, 1]
        );
        assert!(reply(0, &r1), "the matching lease is finished");
        assert!(!reply(1, &r2), "a stale token finishes nothing");
        assert_eq!(
            (status(&t1), status(&t2)),
            ("done".into(), "in_progress".into())
        );
        // A writer that died after committing t3's done, and one that died before
        // committing t2's: both replies in doubt.
        let (r3, r4) = (done(3, &t3, t3.token), done(4, &t2, t2.token));
        for (slot, req, task, commit) in [(0, &r3, &t3, true), (1, &r4, &t2, false)] {
            let tx = Tx::begin(&conn, Tx::IMMEDIATE).unwrap();
            let now = crate::read_now(&tx, &Clock::Database).unwrap();
            let secret = task.secret.as_deref();
            assert!(crate::done_in(&tx, now, &task.id, task.token, secret, "a").unwrap());
            encode_record(&mut rec, DOUBT, req, Some(&Reply::Done(true)));
            write_at(&board, &rec, slot).unwrap();
            if commit {
                tx.commit().unwrap();
            }
        }
        assert!(read_reply(&board, 0, &r3).unwrap().is_none());
        let mut woken = serve_all(&conn, &Clock::Database, &board, false).unwrap();
        woken.sort_unstable();
        assert_eq!(woken, [0, 1]);
        assert!(reply(0, &r3) && reply(1, &r4));
        for t in [&t1, &t2, &t3] {
            assert_eq!(status(t), "done");
            let dones: i64 = conn
                .query_row(
                    "SELECT count(*) FROM events WHERE task = ?1 AND kind = 'done'",
                    [&t.id],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(dones, 1, "{}: one history row per done", t.id);
        }
    }

    /// A doubt is settled by the exact claim, not by who holds the task: an agent
    /// re-claiming its own expired lease, rolled back, still holds the task — under
    /// the old token — and must not be told of the new one.
    #[test]
    fn a_rolled_back_reclaim_of_ones_own_expired_lease_is_served_again() {
        let (_dir, path) = fixture(1);
        let board = Queue::open(&path, true, false, test_patience())
            .unwrap()
            .board;
        let conn = connect(&path, Duration::from_secs(5));
        let clock = Clock::manual(Millis::from_millis(1_000_000));
        let first = claim_next_stmt(&conn, &clock, "a", 1000, (0, 0), None)
            .unwrap()
            .expect("a task");
        clock.advance(5000);
        let tx = Tx::begin(&conn, Tx::IMMEDIATE).unwrap();
        let again = claim_next_stmt(&tx, &clock, "a", 1000, (0, 0), None)
            .unwrap()
            .expect("the expired task");
        assert_eq!(
            (again.id.as_str(), again.token),
            (first.id.as_str(), first.token + 1)
        );
        let req = request(
            1,
            "a",
            Op::ClaimNext {
                lease_ms: 1000,
                key: None,
            },
        );
        let mut rec = [0u8; REC];
        encode_record(&mut rec, DOUBT, &req, Some(&Reply::Claimed(Some(again))));
        write_at(&board, &rec, 0).unwrap();
        drop(tx);
        clock.advance(1);
        assert_eq!(serve_all(&conn, &clock, &board, false).unwrap(), [0]);
        let told = claimed(read_reply(&board, 0, &req).unwrap().unwrap()).expect("a task");
        let fence: i64 = conn
            .query_row("SELECT fence FROM tasks WHERE id = ?1", [&told.id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            told.token, fence,
            "the claimer was told of a token nobody holds"
        );
    }

    /// Every byte of a board record changed (each bit flipped, and the whole byte), at
    /// each step of a claim-next and of a `done` — request pending, reply in doubt
    /// (committed, and rolled back), replied — and then the next turn and the claimer
    /// play their part: nobody is told anything the database does not say, and
    /// nothing is left held in the name of an agent never told of it. The state byte
    /// used to sit outside the checksum: one byte made a rolled-back claim "replied"
    /// (a grant the database never made), and a lost reply left a phantom lease.
    #[test]
    fn a_changed_byte_never_makes_the_board_lie() {
        #[derive(Clone, Copy, Debug)]
        enum Step {
            Pending,
            Doubt { commit: bool },
            Replied,
        }
        let (_dir, path) = fixture(9000);
        let board = Queue::open(&path, true, false, test_patience())
            .unwrap()
            .board;
        let conn = connect(&path, Duration::from_secs(5));
        let clock = Clock::Database;
        let lease_ms = LeaseDuration::DEFAULT.as_millis();
        // (task, fence, lock_until, status) of the tasks `agent` holds or finished.
        conn.pragma_update(None, "synchronous", "OFF").unwrap();
        conn.execute_batch("CREATE INDEX test_assignee ON tasks (assignee)")
            .unwrap();
        // (task, fence, lock_until, status) of the tasks `agent` holds, and of `task`
        // (the one its `done` was for) if done.
        let rows_of = |agent: &str, task: Option<&str>| -> Vec<(String, i64, i64, String)> {
            let mut s = conn
                .prepare_cached(
                    "SELECT id, fence, coalesce(lock_until, 0), status FROM tasks \
                     WHERE assignee = ?1 \
                     UNION ALL SELECT id, fence, 0, status FROM tasks \
                     WHERE id = ?2 AND status = 'done'",
                )
                .unwrap();
            s.query_map(rusqlite::params![agent, task], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
        };
        let steps = [
            Step::Pending,
            Step::Doubt { commit: true },
            Step::Doubt { commit: false },
            Step::Replied,
        ];
        let mut n = 0u64;
        for done_op in [false, true] {
            for step in steps {
                for at in 0..REC {
                    for flip in [0x01u8, 0xff] {
                        n += 1;
                        let agent = format!("a{n}");
                        let what = format!("{step:?} done={done_op} byte {at} ^{flip:#x}");
                        // A done needs a lease to finish: the agent's own, claimed now.
                        let held = done_op.then(|| {
                            claim_next_stmt(&conn, &clock, &agent, lease_ms, (0, 0), None)
                                .unwrap()
                                .expect("a task")
                        });
                        let op = match &held {
                            None => Op::ClaimNext {
                                lease_ms,
                                key: Some(Key {
                                    text: format!("tlq-test-{n:x}"),
                                    caller: false,
                                }),
                            },
                            Some(row) => Op::Done {
                                task: row.id.clone(),
                                token: row.token,
                                secret: row.secret.clone(),
                            },
                        };
                        let req = Request {
                            id: n,
                            agent: agent.clone(),
                            posted_us: epoch_us(),
                            full: false,
                            op,
                        };
                        let mut rec = [0u8; REC];
                        if let Step::Pending = step {
                            encode_record(&mut rec, PENDING, &req, None);
                            write_at(&board, &rec, 0).unwrap();
                        } else {
                            // As `commit_claims` does: the reply in doubt, the commit,
                            // then the record restated as answered.
                            let tx = Tx::begin(&conn, Tx::IMMEDIATE).unwrap();
                            let reply = match (&req.op, &held) {
                                (Op::ClaimNext { key, .. }, _) => Reply::Claimed(
                                    claim_next_stmt(
                                        &tx,
                                        &clock,
                                        &agent,
                                        lease_ms,
                                        (0, 0),
                                        key.as_ref().map(|k| k.text.as_str()),
                                    )
                                    .unwrap(),
                                ),
                                (
                                    Op::Done {
                                        task,
                                        token,
                                        secret,
                                    },
                                    _,
                                ) => {
                                    let now = crate::read_now(&tx, &clock).unwrap();
                                    let secret = secret.as_deref();
                                    Reply::Done(
                                        crate::done_in(&tx, now, task, *token, secret, &agent)
                                            .unwrap(),
                                    )
                                }
                            };
                            encode_record(&mut rec, DOUBT, &req, Some(&reply));
                            write_at(&board, &rec, 0).unwrap();
                            match step {
                                Step::Doubt { commit: false } => drop(tx),
                                _ => tx.commit().unwrap(),
                            }
                            if let Step::Replied = step {
                                restate(&board, 0, &mut rec, REPLIED).unwrap();
                            }
                        }
                        // The change: a bug, a stray process, a disk.
                        read_at(&board, &mut rec, REC).unwrap();
                        rec[at] ^= flip;
                        write_at(&board, &rec, 0).unwrap();
                        // The next turn serves the board; the claimer then reads its
                        // reply, or settles its request on a turn of its own.
                        serve_all(&conn, &clock, &board, false).unwrap();
                        let told = match read_reply(&board, 0, &req).unwrap() {
                            Some(reply) => Ok(reply),
                            None => {
                                settle(&conn, &clock, &board, (0, &req), lost(), &mut Vec::new())
                            }
                        };
                        let rows = rows_of(&agent, held.as_ref().map(|h| h.id.as_str()));
                        match (told, &held) {
                            (Ok(Reply::Claimed(Some(got))), None) => assert_eq!(
                                rows,
                                [(
                                    got.id.clone(),
                                    got.token,
                                    got.lock_until,
                                    "in_progress".into()
                                )],
                                "{what}: told of a claim the database does not show"
                            ),
                            (Ok(Reply::Claimed(None)), None) => {
                                panic!("{what}: told nothing was ready (tasks were)")
                            }
                            (Err(_), None) => assert!(
                                rows.is_empty(),
                                "{what}: {rows:?} held in the name of an agent told its \
                                 claim failed"
                            ),
                            (Ok(Reply::Done(true)), Some(h)) => assert_eq!(
                                rows,
                                [(h.id.clone(), h.token, 0, "done".into())],
                                "{what}: told of a done the database does not show"
                            ),
                            // Run again on the caller's turn: finished now, or a repeat
                            // of its own done — never "lease lost".
                            (Ok(Reply::Done(false)), Some(h)) => {
                                let row = crate::lease_row(&conn, &task_id(&h.id).unwrap())
                                    .unwrap()
                                    .unwrap()
                                    .lease;
                                assert!(
                                    row.fence == h.token
                                        && (row.status == Status::InProgress
                                            || row.ended_by == Some(EventKind::Done)),
                                    "{what}: a rerun of the done would not succeed: {row:?}"
                                );
                            }
                            (told, _) => panic!("{what}: told {told:?}"),
                        }
                        write_at(&board, &[0u8; REC], 0).unwrap();
                    }
                }
            }
        }
    }
}
