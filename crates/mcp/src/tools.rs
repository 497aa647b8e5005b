//! The tools, one per verb, each a thin call into the store. A tool's doc comment is
//! its description: it is written for the model that reads it in `tools/list`.

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CustomRequest, CustomResult,
    ErrorCode, Implementation, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use tasklease::asynchronous::AsyncStore;
use tasklease::json::{
    batch_claimed_json, claimed_json, ended_by_token_json, locks_json, one_task_json, reaped_json,
    renewed_json, shown_json, tasks_json,
};
use tasklease::show::Shown;
use tasklease::{AgentId, BatchOutcome, ClaimOutcome, Error, Result, Store, project};

use crate::args::{
    AddArgs, Args, Claim, ClaimArgs, DoneArgs, ListArgs, ListView, LocksArgs, ReapArgs,
    ReleaseArgs, RenewArgs, ShowArgs, schema,
};
use crate::order::Turn;
use crate::{Identity, Stores, reply};

/// What the server tells the model when it connects.
pub const INSTRUCTIONS: &str = "\
tasklease coordinates several agents working on one project: each task is claimed by \
exactly one agent at a time, under a lease that runs out unless renewed.
How to work: (1) claim a task (next: true for the most urgent ready one, or its id) and \
keep the token it returns; (2) work on it, calling renew with that token before \
lock_until passes; (3) call done with the token when finished, or release to hand it \
back. Never work on a task you have not claimed. If a call answers lease_lost, stop \
working on that task: someone else may hold it now. If a call fails without an answer \
(the outcome is unknown), call it again with the same arguments: done and release \
answer already_done / already_released when your first call went through, and a \
claim repeated with the same request_id returns the lease it granted. A task held by another agent \
(outcome held) is theirs until lock_until: pick another. The `agent` argument is \
optional; by default this server names you after your client, host and process.";

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
}

#[tool_router]
impl Server {
    /// A server over `stores`, naming its caller per `identity`, for the project
    /// found from `dir` (the directory it was started in), whose file locks `locks`
    /// lists.
    pub fn new(stores: Stores, identity: Identity, dir: Option<PathBuf>) -> Server {
        Server {
            state: Arc::new(State {
                stores,
                identity,
                dir,
            }),
            tool_router: Server::tool_router(),
        }
    }

    /// The store, opening it if need be (see [`Stores::get`]).
    ///
    /// # Errors
    /// As [`Stores::get`].
    pub async fn store(&self) -> Result<AsyncStore> {
        self.state.stores.get().await
    }

    /// Answers a call: arguments that did not check out at once, without touching
    /// the store; otherwise runs `f` with them against the store, on the store's own
    /// thread ([`AsyncStore`]: store calls block, and tool futures must not). The call
    /// is queued in the order the client sent it (see [`crate::order`]).
    async fn run<C, F>(
        &self,
        cx: &RequestContext<RoleServer>,
        checked: Result<C>,
        f: F,
    ) -> CallToolResult
    where
        C: Send + 'static,
        F: FnOnce(&dyn Store, C) -> Result<CallToolResult> + Send + 'static,
    {
        let turn = cx.extensions.get::<Turn>().cloned();
        if let Some(t) = &turn {
            t.wait().await;
        }
        let answer = match checked {
            Ok(c) => match self.state.stores.get().await {
                Ok(store) => Ok(store.call(move |s| f(s, c))),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Some(t) = &turn {
            t.pass();
        }
        match answer {
            Ok(answer) => answer.await.unwrap_or_else(|e| reply::error(&e)),
            Err(e) => reply::error(&e),
        }
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

    /// Claim a task so that you alone work on it. Call this before starting any task: of all agents claiming one task exactly one wins, so no two agents do the same work.
    /// Give exactly one of: `id` (one task), `ids` (several tasks: you get all of them or none), or `next: true` (the highest-priority ready task — todo with every dependency done — oldest first).
    /// Success: `id`, `token`, `lock_until` (RFC 3339, UTC), `lock_until_ms`, `lease_ms`, `agent`, `version` (a batch: `leases`, a list of these).
    /// Keep the token: renew, release and done require it, and it proves the task is still yours. The lease runs out at `lock_until` (`lease`, default 30m); call renew before then while you still work on it. Once it runs out anyone may claim the task, and your token then stops working.
    /// To extend a lease you hold, claim the same `id` with your `token` (the token stays the same).
    /// Retrying: pass a `request_id` of your own; if the call fails without an answer, call again with the same `request_id` to get the lease the first call granted (same task and token) rather than a second task.
    /// Refusals are errors with `outcome`: `held` (another agent, `holder`, has it until `lock_until`: do not work on it; claim another task), `not_claimable` (`reason` `closed`: it is done or cancelled; `waiting`: the tasks in `waiting_on` must be done first), `not_found` (no such id: call list), `empty` (next: nothing is ready now), `refused` (a batch: nothing was claimed; `refused` lists each id and why).
    #[tool(input_schema = schema::<ClaimArgs>(), annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false))]
    async fn claim(
        &self,
        Args(args): Args<ClaimArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked = args.and_then(|a| a.check(|g| self.agent(g, &cx)));
        self.run(&cx, checked, |store, (what, lease, agent, key)| {
            let key = key.as_ref();
            Ok(match what {
                Claim::Next => match store.claim_next_keyed(&agent, lease, key)? {
                    Some(l) => reply::ok_saying(claimed_sentence(&l), claimed_json(&l, lease)),
                    None => reply::empty(),
                },
                Claim::One(id, token) => match store.claim_keyed(&id, &agent, lease, token, key)? {
                    ClaimOutcome::Claimed(l) => {
                        reply::ok_saying(claimed_sentence(&l), claimed_json(&l, lease))
                    }
                    ClaimOutcome::Refused(r) => reply::refused(&id, &r),
                },
                Claim::Batch(ids) => match store.claim_batch_keyed(&ids, &agent, lease, key)? {
                    BatchOutcome::Claimed(leases) => {
                        let each: Vec<String> = leases.iter().map(claimed_sentence).collect();
                        reply::ok_saying(each.join(" "), batch_claimed_json(&leases))
                    }
                    BatchOutcome::Refused(why) => reply::batch_refused(&why),
                },
            })
        })
        .await
    }

    /// Extend your lease on a task you claimed, to `lease` from now (default 30m). Call it before `lock_until` passes — for example at half the lease — for as long as you work on the task. Requires the `token` claim returned; the token stays the same.
    /// Success: the lease (`id`, `token`, `lock_until`, `lock_until_ms`, `agent`, `version`), `outcome: renewed`.
    /// Error `lease_lost`: the token no longer holds the task (another agent claimed it after your lease ran out, or it was released or done). Stop working on it, and check with show before doing anything else with it.
    #[tool(input_schema = schema::<RenewArgs>(), annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false))]
    async fn renew(
        &self,
        Args(args): Args<RenewArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked = args.and_then(|a| a.check(|g| self.agent(g, &cx)));
        self.run(&cx, checked, |store, (id, token, lease, agent)| {
            let l = store.renew(&id, token, lease, &agent)?;
            Ok(reply::ok(renewed_json(&l, store.now()?)))
        })
        .await
    }

    /// Hand back a task you hold without finishing it, ending your lease. `status` says where it goes: `todo` (default: anyone may claim it again), `review` (your work is ready for someone to look at) or `blocked` (it cannot go on for now). Requires your `token`. When the task is finished, call done instead.
    /// Success: `outcome: released` and the `task` as it is now; `outcome: already_released` when this same token already released the task to this same status (your earlier call went through: nothing was changed now, and the task is handed back as you asked).
    /// Error `lease_lost`: you no longer hold the task; nothing was changed.
    /// There is no way to end another agent's lease here: that is for a person, with `tasklease release ID --force`.
    #[tool(input_schema = schema::<ReleaseArgs>(), annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false))]
    async fn release(
        &self,
        Args(args): Args<ReleaseArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked = args.and_then(|a| a.check(|g| self.agent(g, &cx)));
        self.run(&cx, checked, |store, (id, token, to, agent)| {
            let ended = store.release(&id, token, to, &agent)?;
            Ok(reply::ok(ended_by_token_json(
                "released",
                &ended,
                store.now()?,
            )))
        })
        .await
    }

    /// Mark a task you hold as finished, ending your lease; tasks that depend on it may become ready. Requires your `token`.
    /// Success: `outcome: done` and the `task` as it is now; `outcome: already_done` when this same token already finished the task (your earlier call went through: your work counts, nothing was changed now).
    /// Error `lease_lost`: your lease was lost before you finished (another agent claimed the task after your lease ran out, or it was released, reaped or force-released); nothing was changed. Your work may overlap with theirs: call show and check before doing anything else.
    #[tool(input_schema = schema::<DoneArgs>(), annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false))]
    async fn done(
        &self,
        Args(args): Args<DoneArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked = args.and_then(|a| a.check(|g| self.agent(g, &cx)));
        self.run(&cx, checked, |store, (id, token, agent)| {
            let ended = store.done(&id, token, &agent)?;
            Ok(reply::ok(ended_by_token_json("done", &ended, store.now()?)))
        })
        .await
    }

    /// Create a task, in todo. Give a one-line `title`; optionally an `id` (default: the next free T-<n>), a `description`, a `priority` (critical, high, medium (default), low), `tags`, and `deps`: ids of existing tasks that must be done before this one is ready.
    /// Adding does not claim: call claim to work on the task yourself.
    /// Success: the `task` (`id`, `title`, `status`, `priority`, `deps`, `waiting_on`, `version`, …). Errors: `exists` (the id is taken), `invalid` (a bad field, or a dependency that does not exist).
    #[tool(input_schema = schema::<AddArgs>(), annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false))]
    async fn add(
        &self,
        Args(args): Args<AddArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.run(&cx, args.and_then(|a| a.check()), |store, new| {
            let task = store.add(&new)?;
            Ok(reply::ok(one_task_json("added", &task, store.now()?)))
        })
        .await
    }

    /// List tasks, most urgent first (priority, then age), with who holds each and until when. Filter by `status` (todo, in_progress, review, done, cancelled, blocked), `assignee`, `mine: true` (the tasks you hold) or `tag`; `ready: true` lists exactly what claim with `next` would take, in its order; `blocked: true` the open tasks waiting on a dependency; `parent` the children of a task. Returns at most `limit` tasks (default 100); `truncated: true` means more matched.
    /// Each task: `id`, `title`, `status`, `priority`, `assignee` and `lock_until` (the holder and its lease end), `lease_live`, `lease_left_ms`, `deps`, `waiting_on` (dependencies neither done nor cancelled yet), `parent`, `tags`, `version`, `attempts`. Tokens are never listed: only claim hands one out.
    #[tool(input_schema = schema::<ListArgs>(), annotations(read_only_hint = true, open_world_hint = false))]
    async fn list(
        &self,
        Args(args): Args<ListArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked = args.and_then(|a| Ok((a.view()?, a.check(|g| self.agent(g, &cx))?)));
        self.run(&cx, checked, |store, (view, mut filter)| {
            let limit = filter.limit.unwrap_or(u32::MAX) as usize;
            // One more than asked says whether there are more, without counting them all.
            filter.limit = filter.limit.map(|l| l.saturating_add(1));
            let mut tasks = match &view {
                ListView::All => store.list(&filter)?,
                ListView::Ready => store.ready(&filter)?,
                ListView::Blocked => store.blocked(&filter)?,
                ListView::Children(p) => store.children(p, &filter)?,
            };
            let truncated = tasks.len() > limit;
            tasks.truncate(limit);
            let mut j = tasks_json(&tasks, store.now()?);
            j["truncated"] = truncated.into();
            Ok(reply::ok(j))
        })
        .await
    }

    /// One task with every field: `status`, the holder (`assignee`) and its `lock_until`, `deps` and `waiting_on` (how many are neither done nor cancelled), `cancelled_deps`, `parent`, `children` with `progress`, `description`, `version`, `attempts` (leases that ended without done). Use it before claiming a specific task, or after a lease_lost error to see who holds it now.
    /// Error `not_found`: no task has that id.
    #[tool(input_schema = schema::<ShowArgs>(), annotations(read_only_hint = true, open_world_hint = false))]
    async fn show(
        &self,
        Args(args): Args<ShowArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.run(&cx, args.and_then(|a| a.check()), |store, id| {
            Ok(reply::ok(shown_json(&Shown::read(store, &id)?)))
        })
        .await
    }

    /// Housekeeping: return every task whose lease ran out to todo, and list them (`reaped`: `id`, the former holder `agent`, its now-stale `token`, `lock_until`; and `count`). You never need this before claiming — a claim already treats an expired lease as free.
    #[tool(input_schema = schema::<ReapArgs>(), annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false))]
    async fn reap(
        &self,
        Args(args): Args<ReapArgs>,
        cx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let checked = args.and_then(|a| a.check(|g| self.agent(g, &cx)));
        self.run(&cx, checked, |store, agent| {
            Ok(reply::ok(reaped_json(&store.reap(&agent)?)))
        })
        .await
    }

    /// List the project's file locks — the repository-wide git lock, the state lock, and one lock per task — and who holds each: `locks`, each with `name`, `kind` (git, state, task), `task`, `held`, `mode` (exclusive or shared) and `holder` (`agent`, `pid`, `host`, `since`); and `writer_turn` (`held`, `holder`, `held_for_ms`), the SQLite database's writer turn, whose holder every write waits for (null without one).
    /// File locks are separate from task leases. Processes take them with the `tasklease lock … -- COMMAND` and `tasklease git …` commands, holding them while that command runs; they end when it ends, so a held lock always has a live holder. Use this to see who is committing (`git`) or changing shared state before you wait for a lock.
    #[tool(input_schema = schema::<LocksArgs>(), annotations(read_only_hint = true, open_world_hint = false))]
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
            // The project database's writer turn, as `tasklease locks` shows it.
            let db = tasklease::open::DbSpec::Sqlite {
                path: project::db_path(&root),
                explicit: true,
            };
            let turn = tasklease::open::writer_turn(&db)?;
            let mut json = locks_json(&locks);
            json["writer_turn"] = tasklease::json::writer_turn_json(turn.as_ref());
            Ok(json)
        })
        .await;
        match listed {
            Ok(Ok(json)) => reply::ok(json),
            Ok(Err(e)) => reply::error(&e),
            Err(e) => reply::error(&Error::store("the tool call failed", e)),
        }
    }
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
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("tasklease", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
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
                    tasklease::id::quote(&request.name),
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
                "no method {}; this server answers initialize, ping, tools/list and tools/call",
                tasklease::id::quote(method)
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
