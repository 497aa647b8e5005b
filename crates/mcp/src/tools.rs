//! The tools, one per verb, each a thin call into the store. A tool's doc comment is
//! its description: it is written for the model that reads it in `tools/list`.

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CustomRequest, CustomResult,
    ErrorCode, GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation,
    JsonObject, ListPromptsResult, ListResourcesResult, PaginatedRequestParams, Prompt,
    PromptMessage, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, Role, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use tasklease::asynchronous::AsyncStore;
use tasklease::show::Shown;
use tasklease::{AgentId, BatchOutcome, ClaimOutcome, Error, Refusal, Result, Store, project};
use tasklease_shape::json::{
    already_held_json, batch_claimed_json, claimed_task_json, ended_by_token_json, events_json,
    locks_json, mine_json, one_task_json, reaped_json, renewed_json, rows_json, shown_json,
};

use crate::args::{
    AddArgs, Args, Claim, ClaimArgs, DoneArgs, ListArgs, LocksArgs, LogArgs, MineArgs, ReapArgs,
    ReleaseArgs, RenewArgs, ShowArgs, UpdateArgs, schema,
};
use crate::order::Turn;
use crate::{Identity, Stores, reply};

/// What the server tells the model when it connects.
pub const INSTRUCTIONS: &str = "\
tasklease shares one project's tasks between agents: a task is claimed by one agent at a \
time, under a lease that runs out unless renewed.
Workflow: (1) claim (next: true, or an id) with a lease at least as long as the work you \
plan (up to 7d; default 30m) and keep its token; (2) work, calling renew with the token on \
a timer, at about half the lease; (3) done with the token when finished, or release to \
hand it back; update with the token records progress notes.
Never work on a task you have not claimed. Errors are {ok:false,error:{code,…}}: held \
(another agent's until lock_until: pick another), lease_lost (stop: the task is no longer \
yours), outcome_unknown (look with list mine/show before repeating). A done or release \
repeated with the same token is safe; a claim is safe to repeat with the same request_id.";

/// The prompt `tasklease_workflow`: the workflow, step by step, for a client that
/// offers prompts to its user.
pub const WORKFLOW_PROMPT: &str = "\
Work through this project's tasklease tasks. Repeat until claim answers empty:
1. Call claim with next: true and a lease at least as long as the work you expect one \
task to take (for example 1h). Keep the token, and read the title and description it \
returns.
2. Do the work. Every half lease (for example every 30 minutes of a 1h lease), call \
renew with the id and token. Record progress with update (notes) if you may not finish.
3. When finished, call done with the id and token. If you cannot finish, call release \
(status todo, review or blocked) so someone else can take it.
If any call answers lease_lost, stop working on that task at once and move on. If a call \
answers held, choose another task.";

/// The quickstart resource's address.
pub const QUICKSTART_URI: &str = "tasklease://quickstart";

/// The workflow prompt's name.
const WORKFLOW: &str = "tasklease_workflow";

/// The quickstart resource: the workflow and what the errors mean, in one page.
const QUICKSTART: &str = include_str!("quickstart.md");

/// What the server offers besides its own tools.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Offer `reap` (hidden by default: an agent never needs it, and a confused one
    /// could use it to take over leases that only look stale to it).
    pub reap: bool,
    /// Renew the leases this session claimed while the client stays connected
    /// (`--keep-alive`; see `keep.rs` for why it stops at disconnect).
    pub keep_alive: bool,
}

/// The MCP server: tools over one store.
#[derive(Clone)]
pub struct Server {
    /// Shared by every tool call in flight; rmcp clones the server per request.
    state: Arc<State>,
    tool_router: ToolRouter<Server>,
}

struct State {
    stores: Stores,
    identity: Identity,
    /// Where the server was started: `locks` finds the project root from here, afresh
    /// on each call. `None` when embedded without a project.
    dir: Option<PathBuf>,
    options: Options,
    /// The leases this session holds, renewed by the server with `--keep-alive`.
    kept: crate::keep::Kept,
}

/// Whether a tool changes the store (its calls keep their order) or only reads it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

#[tool_router]
impl Server {
    /// A server over `stores`, naming its caller per `identity`, for the project
    /// found from `dir` (the directory it was started in), whose file locks `locks`
    /// lists.
    pub fn new(stores: Stores, identity: Identity, dir: Option<PathBuf>) -> Server {
        Server::with_options(stores, identity, dir, Options::default())
    }

    /// [`Server::new`] with `options`.
    pub fn with_options(
        stores: Stores,
        identity: Identity,
        dir: Option<PathBuf>,
        options: Options,
    ) -> Server {
        let mut tool_router = Server::tool_router();
        if !options.reap {
            tool_router.remove_route("reap");
        }
        Server {
            state: Arc::new(State {
                stores,
                identity,
                dir,
                options,
                kept: crate::keep::Kept::default(),
            }),
            tool_router,
        }
    }

    /// The store, opening it if need be (see [`Stores::get`]).
    ///
    /// # Errors
    /// As [`Stores::get`].
    pub async fn store(&self) -> Result<AsyncStore> {
        self.state.stores.get().await
    }

    pub(crate) fn options(&self) -> Options {
        self.state.options
    }

    pub(crate) fn kept(&self) -> &crate::keep::Kept {
        &self.state.kept
    }

    /// Answers a call: arguments that did not check out at once, without touching
    /// the store; otherwise runs `f` with them against the store, on a store thread
    /// ([`AsyncStore`]: store calls block, and tool futures must not).
    ///
    /// Order: every call first waits for the calls sent before it (see
    /// [`crate::order`]). A write keeps its turn until it has finished, so writes
    /// apply in the order sent and a read sees every write sent before it; a read
    /// passes its turn as it starts, and runs on a store of its own
    /// ([`Stores::reads`]), so reads do not wait for one another nor for later writes.
    ///
    /// Cancellation (`notifications/cancelled`): the call is answered at once with
    /// `error.code` `cancelled`, and its turn passes, so the calls behind it go on. A
    /// call not yet handed to the store did nothing; a write already handed over
    /// cannot be withdrawn halfway and may still take effect, and the answer says so.
    async fn run<C, F>(
        &self,
        cx: &RequestContext<RoleServer>,
        kind: Kind,
        checked: Result<C>,
        f: F,
    ) -> CallToolResult
    where
        C: Send + 'static,
        F: FnOnce(&dyn Store, C) -> Result<CallToolResult> + Send + 'static,
    {
        let turn = cx.extensions.get::<Turn>().cloned();
        let handed = std::sync::atomic::AtomicBool::new(false);
        let work = async {
            if let Some(t) = &turn {
                t.wait().await;
            }
            let c = checked?;
            let store = match kind {
                Kind::Read => {
                    if let Some(t) = &turn {
                        t.pass();
                    }
                    self.state.stores.reads().await?
                }
                Kind::Write => self.state.stores.get().await?,
            };
            handed.store(true, std::sync::atomic::Ordering::SeqCst);
            store.call(move |s| f(s, c)).await
        };
        let answer = tokio::select! {
            a = work => a.unwrap_or_else(|e| reply::error(&e)),
            () = cx.ct.cancelled() => {
                reply::cancelled(kind == Kind::Write && handed.load(std::sync::atomic::Ordering::SeqCst))
            }
        };
        if let Some(t) = &turn {
            t.pass();
        }
        answer
    }

    /// `claim` with `next` and `wait_seconds`: the library's event-driven wait
    /// (`tasklease::wait`, docs/waiting.md) on a thread of its own. It takes its turn
    /// among the session's calls to start, then hands it on: the session's other calls
    /// (reads, ping, other writes) go on while it waits. A cancelled call
    /// (`notifications/cancelled`) drops the wait, which stops within 100 ms.
    async fn claim_waiting(
        &self,
        cx: &RequestContext<RoleServer>,
        lease: tasklease::LeaseDuration,
        agent: AgentId,
        key: Option<tasklease::RequestId>,
        bound: std::time::Duration,
    ) -> CallToolResult {
        let turn = cx.extensions.get::<Turn>().cloned();
        let kept = self.keeping();
        let started = std::sync::atomic::AtomicBool::new(false);
        let work = async {
            if let Some(t) = &turn {
                t.wait().await;
            }
            let store = self.state.stores.get().await?;
            if let Some(t) = &turn {
                t.pass();
            }
            started.store(true, std::sync::atomic::Ordering::SeqCst);
            let opts = tasklease::wait::WaitOptions::new(bound);
            let waited = store.claim_next_waiting(lease, key, opts, agent).await?;
            let Some(l) = waited.lease else {
                return Ok(reply::empty());
            };
            let id = l.task.clone();
            let task = store.call(move |s| s.show(&id)).await?;
            kept.hold(&l, lease);
            Ok::<_, Error>(reply::ok(
                claimed_sentence(&l),
                claimed_task_json(&l, lease, task.as_ref()),
            ))
        };
        let answer = tokio::select! {
            a = work => a.unwrap_or_else(|e| reply::error(&e)),
            () = cx.ct.cancelled() => {
                reply::cancelled(started.load(std::sync::atomic::Ordering::SeqCst))
            }
        };
        if let Some(t) = &turn {
            t.pass();
        }
        answer
    }

    /// The caller's agent id: the call's own `agent`, else the server's.
    fn agent(&self, given: Option<AgentId>, cx: &RequestContext<RoleServer>) -> Result<AgentId> {
        if let Some(a) = given {
            return Ok(a);
        }
        let client = cx
            .peer
            .peer_info()
            .map(|p| p.client_info.name.clone())
            .or_else(|| cx.meta.client_info().map(|i| i.name));
        self.state.identity.resolve(client.as_deref())
    }

    /// Claim a task so that you alone work on it; call this before starting any task. Give one of: `id`, `ids` (all or none) or `next: true` (the most urgent ready task).
    /// Choose `lease` at least as long as the work you plan (default 30m, at most 7d) and keep the `token`: renew, update, release and done need it. Renew before `lock_until`; once the lease runs out anyone may claim the task and your token stops working. Claiming an `id` you hold with its `token` extends the lease. A `request_id` makes a retry safe.
    #[tool(title = "Claim a task", input_schema = schema::<ClaimArgs>(), output_schema = out("claim"), annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false))]
    async fn claim(
        &self,
        Args(args): Args<ClaimArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked = args.and_then(|a| a.check(|g| self.agent(g, &cx)));
        if let Ok((Claim::Next(Some(bound)), lease, agent, key)) = checked {
            return self.claim_waiting(&cx, lease, agent, key, bound).await;
        }
        let kept = self.keeping();
        self.run(
            &cx,
            Kind::Write,
            checked,
            move |store, (what, lease, agent, key)| {
                let key = key.as_ref();
                let one = |l: tasklease::Lease| -> Result<CallToolResult> {
                    let task = store.show(&l.task)?;
                    kept.hold(&l, lease);
                    Ok(reply::ok(
                        claimed_sentence(&l),
                        claimed_task_json(&l, lease, task.as_ref()),
                    ))
                };
                match what {
                    Claim::Next(_) => match store.claim_next_keyed(lease, key, &agent)? {
                        Some(l) => one(l),
                        None => Ok(reply::empty()),
                    },
                    Claim::One(id, token) => {
                        match store.claim_keyed(&id, lease, token.as_ref(), key, &agent)? {
                            ClaimOutcome::Claimed(l) => one(l),
                            // Held by this very name: its own lease, not a refusal (an
                            // agent that lost its context finds its way back).
                            ClaimOutcome::Refused(r) => {
                                let own = match &r {
                                    Refusal::Held { by, .. } if *by == agent => {
                                        store.mine(&agent)?.into_iter().find(|l| l.task == id)
                                    }
                                    _ => None,
                                };
                                Ok(match own {
                                    Some(l) => reply::ok(
                                        already_held_sentence(&l),
                                        already_held_json(&l, store.now()?),
                                    ),
                                    None => reply::refused(&id, &r),
                                })
                            }
                        }
                    }
                    Claim::Batch(ids) => match store.claim_batch_keyed(&ids, lease, key, &agent)? {
                        BatchOutcome::Claimed(leases) => {
                            let each: Vec<String> = leases.iter().map(claimed_sentence).collect();
                            for l in &leases {
                                kept.hold(l, lease);
                            }
                            Ok(reply::ok(each.join(" "), batch_claimed_json(&leases)))
                        }
                        BatchOutcome::Refused(why) => {
                            let held_by_me = why.iter().any(
                                |(_, r)| matches!(r, Refusal::Held { by, .. } if *by == agent),
                            );
                            let mine = if held_by_me {
                                store.mine(&agent)?
                            } else {
                                Vec::new()
                            };
                            Ok(reply::batch_refused(&why, &mine))
                        }
                    },
                }
            },
        )
        .await
    }

    /// Extend your lease on a task you claimed to `lease` from now (default 30m); call it on a timer, at about half the lease, while you work. Needs the `token` claim returned (it stays the same).
    /// Error `lease_lost`: the token no longer holds the task; stop working on it and call show.
    #[tool(title = "Renew a lease", input_schema = schema::<RenewArgs>(), output_schema = out("renew"), annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false))]
    async fn renew(
        &self,
        Args(args): Args<RenewArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked = args.and_then(|a| a.check(|g| self.agent(g, &cx)));
        let kept = self.keeping();
        self.run(
            &cx,
            Kind::Write,
            checked,
            move |store, (id, token, lease, agent)| {
                let l = kept.settle(&id, store.renew(&id, &token, lease, &agent))?;
                kept.hold(&l, lease);
                Ok(reply::ok(
                    format!("Renewed {id} until {}.", l.lock_until),
                    renewed_json(&l, store.now()?),
                ))
            },
        )
        .await
    }

    /// Hand back a task you hold without finishing it: `status` todo (default: anyone may claim it), review (your work awaits a look) or blocked. Needs your `token`. Finished? Call done instead.
    /// A repeat by the same token answers `already_released` (your earlier call went through). Error `lease_lost`: you no longer hold it; nothing was changed.
    #[tool(title = "Release a task", input_schema = schema::<ReleaseArgs>(), output_schema = out("release"), annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false))]
    async fn release(
        &self,
        Args(args): Args<ReleaseArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked = args.and_then(|a| a.check(|g| self.agent(g, &cx)));
        let kept = self.keeping();
        self.run(
            &cx,
            Kind::Write,
            checked,
            move |store, (id, token, to, agent, reason)| {
                let ended = store.release_with_reason(&id, &token, to, reason.as_ref(), &agent);
                kept.drop_task(&id);
                let ended = ended?;
                Ok(reply::ok(
                    format!("Released {id}; it is {} now.", ended.task.status),
                    ended_by_token_json("released", &ended, store.now()?),
                ))
            },
        )
        .await
    }

    /// Mark a task you hold as finished, ending your lease; nothing reopens it through MCP. Tasks waiting on it may become ready. Needs your `token`.
    /// A repeat by the same token answers `already_done`. Error `lease_lost`: your lease was lost before you finished (someone may have redone the work): call show before anything else.
    #[tool(title = "Finish a task", input_schema = schema::<DoneArgs>(), output_schema = out("done"), annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn done(
        &self,
        Args(args): Args<DoneArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked = args.and_then(|a| a.check(|g| self.agent(g, &cx)));
        let kept = self.keeping();
        self.run(
            &cx,
            Kind::Write,
            checked,
            move |store, (id, token, agent, reason)| {
                let ended = store.done_with_reason(&id, &token, reason.as_ref(), &agent);
                kept.drop_task(&id);
                let ended = ended?;
                Ok(reply::ok(
                    format!("Done {id}."),
                    ended_by_token_json("done", &ended, store.now()?),
                ))
            },
        )
        .await
    }

    /// Record progress on a task you hold: `notes` (appended to its description, for whoever comes next), `status` or `priority`. Needs your `token`. To finish or hand back, call done or release.
    #[tool(title = "Update a task you hold", input_schema = schema::<UpdateArgs>(), output_schema = out("update"), annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false))]
    async fn update(
        &self,
        Args(args): Args<UpdateArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked = args.and_then(|a| a.check(|g| self.agent(g, &cx)));
        self.run(&cx, Kind::Write, checked, |store, mut u| {
            let task = store
                .show(&u.id)?
                .ok_or_else(|| Error::NotFound(u.id.clone()))?;
            if let Some(notes) = u.notes.take() {
                u.patch.description = Some(if task.description.is_empty() {
                    notes
                } else {
                    format!("{}\n\n{notes}", task.description)
                });
            }
            let t = store.update(&u.id, task.version, &u.patch, Some(&u.token), &u.agent)?;
            Ok(reply::ok(
                format!("Updated {} (version {}).", t.id, t.version),
                one_task_json("updated", &t, store.now()?),
            ))
        })
        .await
    }

    /// Create a task, in todo: a one-line `title`; optionally `id` (default the next free T-<n>), `description`, `priority`, `tags`, and `deps` (ids that must be done first). Adding does not claim it.
    #[tool(title = "Add a task", input_schema = schema::<AddArgs>(), output_schema = out("add"), annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false))]
    async fn add(
        &self,
        Args(args): Args<AddArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.run(
            &cx,
            Kind::Write,
            args.and_then(|a| a.check()),
            |store, new| {
                let task = store.add(&new)?;
                Ok(reply::ok(
                    format!("Added {}.", task.id),
                    one_task_json("added", &task, store.now()?),
                ))
            },
        )
        .await
    }

    /// List tasks, most urgent first, as compact rows (no descriptions: call show for one task's). Filters: `status`, `assignee`, `mine: true` (yours), `tag`; `ready: true` is exactly what claim next would take, in order; `blocked: true` open tasks waiting on a dependency; `parent` a task's children. `limit` (default 20); `more` says how many more matched. `fields` picks the row fields.
    #[tool(title = "List tasks", input_schema = schema::<ListArgs>(), output_schema = out("list"), annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false))]
    async fn list(
        &self,
        Args(args): Args<ListArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked =
            args.and_then(|a| Ok((a.view()?, a.check(|g| self.agent(g, &cx))?, a.fields()?)));
        self.run(&cx, Kind::Read, checked, |store, (view, filter, fields)| {
            let page = tasklease::listing::page(store, &view, &filter)?;
            let sentence = match page.more {
                0 => format!("{} tasks.", page.tasks.len()),
                n => format!(
                    "{} tasks; {}{n} more matched (raise limit, or filter).",
                    page.tasks.len(),
                    if page.more_at_least { "at least " } else { "" }
                ),
            };
            Ok(reply::ok(sentence, rows_json(&page, store.now()?, &fields)))
        })
        .await
    }

    /// Your live leases with their tokens. Call it first after a restart, a lost context or an `outcome_unknown` error.
    #[tool(title = "Your leases", input_schema = schema::<MineArgs>(), output_schema = out("mine"), annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false))]
    async fn mine(
        &self,
        Args(args): Args<MineArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked = args.and_then(|a| a.check(|g| self.agent(g, &cx)));
        self.run(&cx, Kind::Read, checked, |store, agent| {
            let leases = store.mine(&agent)?;
            Ok(reply::ok(
                format!("You hold {} live lease(s).", leases.len()),
                mine_json(&leases, store.now()?),
            ))
        })
        .await
    }

    /// One task with every field, its description, dependencies and children. Use it before claiming a specific task, or after lease_lost to see who holds it now.
    #[tool(title = "Show a task", input_schema = schema::<ShowArgs>(), output_schema = out("show"), annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false))]
    async fn show(
        &self,
        Args(args): Args<ShowArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.run(
            &cx,
            Kind::Read,
            args.and_then(|a| a.check()),
            |store, id| {
                let shown = Shown::read(store, &id)?;
                Ok(reply::ok(
                    format!("{id} is {}.", shown.task.status),
                    shown_json(&shown),
                ))
            },
        )
        .await
    }

    /// The lease history, oldest first: claims, renewals, releases, done, refusals, reaps — of one task (`id`) or all; the last `limit` events (default 20).
    #[tool(title = "Lease history", input_schema = schema::<LogArgs>(), output_schema = out("log"), annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false))]
    async fn log(
        &self,
        Args(args): Args<LogArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.run(
            &cx,
            Kind::Read,
            args.and_then(|a| a.check()),
            |store, (id, limit)| {
                let events = store.log(id.as_ref(), limit)?;
                if let Some(id) = &id
                    && events.is_empty()
                    && store.show(id)?.is_none()
                {
                    return Err(Error::NotFound(id.clone()));
                }
                Ok(reply::ok(
                    format!("{} events.", events.len()),
                    events_json(&events),
                ))
            },
        )
        .await
    }

    /// Housekeeping: return every task whose lease ran out to todo, and list them. Never needed before claiming: a claim already treats an expired lease as free.
    #[tool(title = "Reap expired leases", input_schema = schema::<ReapArgs>(), output_schema = out("reap"), annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false))]
    async fn reap(
        &self,
        Args(args): Args<ReapArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked = args.and_then(|a| a.check(|g| self.agent(g, &cx)));
        self.run(&cx, Kind::Write, checked, |store, agent| {
            let reaped = store.reap(&agent)?;
            Ok(reply::ok(
                format!("Reaped {} expired leases.", reaped.len()),
                reaped_json(&reaped),
            ))
        })
        .await
    }

    /// The project's file locks (the git lock, the state lock, one per task) and who holds each, and the SQLite writer turn. File locks are not task leases: processes hold them while a `tasklease lock … -- COMMAND` or `tasklease git …` runs. Check here before waiting for one.
    #[tool(title = "File locks", input_schema = schema::<LocksArgs>(), output_schema = out("locks"), annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false))]
    async fn locks(&self, Args(args): Args<LocksArgs>) -> CallToolResult {
        if let Err(e) = args {
            return reply::error(&e);
        }
        let dir = self.state.dir.clone();
        let listed = tokio::task::spawn_blocking(move || {
            let dir = dir.ok_or_else(|| {
                Error::invalid(
                    "project",
                    "this server was started without a project directory",
                )
            })?;
            let root = project::find_root(&dir).ok_or_else(|| {
                Error::invalid(
                    "project",
                    format!(
                        "{} is not inside a project (no .tasklease or .git above it); run \
                         `tasklease init` in the project root",
                        dir.display()
                    ),
                )
            })?;
            let locks = tasklease::locks::list(&root)?;
            let json = locks_json(&locks);
            // The project database's writer turn, as `tasklease locks` shows it (a
            // build without SQLite has none).
            #[cfg(feature = "sqlite")]
            let json = {
                let mut json = json;
                let db = tasklease::open::DbSpec::Sqlite {
                    path: project::db_path(&root),
                    explicit: true,
                };
                let turn = tasklease::open::writer_turn(&db)?;
                json["writer_turn"] = tasklease_shape::json::writer_turn_json(turn.as_ref());
                json
            };
            Ok(json)
        })
        .await;
        match listed {
            Ok(Ok(json)) => {
                let held = json["locks"]
                    .as_array()
                    .map_or(0, |l| l.iter().filter(|l| l["held"] == true).count());
                reply::ok(format!("{held} file locks held."), json)
            }
            Ok(Err(e)) => reply::error(&e),
            Err(e) => reply::error(&Error::store("the tool call failed", e)),
        }
    }
}

/// The output schema of the tool of `verb`'s name: the lean form of the schema in
/// `docs/json/` (`tasklease_shape::schema::lean`), to keep `tools/list` small.
fn out(verb: &str) -> Arc<JsonObject> {
    match tasklease_shape::schema::lean(verb) {
        Some(serde_json::Value::Object(o)) => Arc::new(o),
        _ => unreachable!("no output schema for {verb}"),
    }
}

impl Server {
    /// The session's kept leases if `--keep-alive` is on, else a handle that keeps
    /// nothing.
    fn keeping(&self) -> crate::keep::Keeping {
        self.state.kept.handle(self.state.options.keep_alive)
    }
}

fn already_held_sentence(l: &tasklease::Lease) -> String {
    format!(
        "You already hold {} (token {}) until {}: nothing was changed; keep working, renew \
         before then, finish with done.",
        l.task, l.token, l.lock_until
    )
}

fn claimed_sentence(l: &tasklease::Lease) -> String {
    format!(
        "You hold {} until {} with token {}: renew before then while you work, and finish \
         with done.",
        l.task, l.lock_until, l.token
    )
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .build();
        ServerConfig::new(caps)
            .with_server_info(Implementation::new("tasklease", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(vec![Prompt::new(
            WORKFLOW,
            Some("How to work through this project's tasks with tasklease"),
            None,
        )]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name != WORKFLOW {
            return Err(ErrorData::invalid_params(
                format!(
                    "no prompt named {}; the prompts are: {WORKFLOW}",
                    tasklease::text::quote(&request.name)
                ),
                None,
            ));
        }
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, WORKFLOW_PROMPT)])
                .with_description("The tasklease workflow")
                .into(),
        )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new(QUICKSTART_URI, "quickstart")
                .with_title("tasklease quickstart")
                .with_description("The workflow, the tools, and what each error means")
                .with_mime_type("text/markdown"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri != QUICKSTART_URI {
            return Err(ErrorData::resource_not_found(
                format!(
                    "no resource {}; the resources are: {QUICKSTART_URI}",
                    tasklease::text::quote(&request.uri)
                ),
                None,
            ));
        }
        Ok(
            ReadResourceResult::new(vec![ResourceContents::text(QUICKSTART, QUICKSTART_URI)])
                .into(),
        )
    }

    // Written out rather than generated so that an unknown tool's error names the
    // tools there are.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !self.tool_router.has_route(&request.name) {
            let names: Vec<String> = self
                .tool_router
                .list_all()
                .into_iter()
                .map(|t| t.name.into_owned())
                .collect();
            return Err(ErrorData::invalid_params(
                format!(
                    "no tool named {}; the tools are: {}",
                    tasklease::text::quote(&request.name),
                    names.join(", ")
                ),
                None,
            ));
        }
        let cx = ToolCallContext::new(self, request, context);
        self.tool_router.call(cx).await
    }

    // rmcp hands over as "custom" any request it could not parse, including a known
    // method whose params do not fit; its default answer, "method not found: tools/call",
    // would send a client author looking in the wrong place.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let method = request.method.as_str();
        if method == "tools/call" {
            let params = request.params.unwrap_or(serde_json::Value::Null);
            let why = serde_json::from_value::<CallToolRequestParams>(params)
                .err()
                .map_or_else(String::new, |e| format!(": {e}"));
            return Err(ErrorData::invalid_params(
                format!(
                    "the params of tools/call do not fit{why}; expected {{\"name\": <tool>, \
                     \"arguments\": {{…}}}}"
                ),
                None,
            ));
        }
        if KNOWN.contains(&method) {
            return Err(ErrorData::invalid_params(
                format!("the params of {method} do not fit its schema"),
                None,
            ));
        }
        Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!(
                "no method {}; this server answers initialize, ping, tools/list, tools/call, \
                 prompts/list, prompts/get, resources/list and resources/read",
                tasklease::text::quote(method)
            ),
            None,
        ))
    }
}

/// Standard requests a client may send; the ones rmcp could not parse are malformed,
/// not unknown.
const KNOWN: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
];
