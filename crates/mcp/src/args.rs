//! Tool arguments: what each tool's JSON schema promises, and the checks that turn
//! them into the library's validated types.
//!
//! Fields arrive as plain JSON strings and numbers and are parsed with the same
//! `FromStr` implementations the CLI uses, so a bad id or duration gets the same
//! message naming what is allowed. The schemas list allowed values from the core's
//! own constants (`Status::ALL`, …), so they cannot fall behind it.
//!
//! A call whose arguments do not fit is answered with a tool error (`isError: true`)
//! rather than a JSON-RPC error: the model sees the message and can correct its call.

use std::sync::Arc;

use rmcp::handler::server::common::{FromContextPart, schema_for_input};
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::JsonObject;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tasklease::MAX_ID_LEN;
pub use tasklease::listing::ListView;
use tasklease::{
    AgentId, Error, LeaseDuration, ListFilter, NewTask, Priority, Reason, ReleaseTo, RequestId,
    Result, Status, Tag, TaskId, TaskPatch, Token,
};
use tasklease_shape::json::{ALL_ROW_FIELDS, ROW_FIELDS};

/// The arguments of one call, or why they do not fit the tool's schema.
pub struct Args<T>(pub Result<T>);

impl<S, T: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Args<T> {
    fn from_context_part(cx: &mut ToolCallContext<'_, S>) -> Result<Self, rmcp::ErrorData> {
        let args = cx.arguments.take().unwrap_or_default();
        Ok(Args(parse(args)))
    }
}

fn parse<T: DeserializeOwned>(args: JsonObject) -> Result<T> {
    serde_path_to_error::deserialize(serde_json::Value::Object(args)).map_err(|e| {
        let at = e.path().to_string();
        let why = e.into_inner();
        let message = if at == "." {
            format!("bad arguments: {why}")
        } else {
            format!("bad argument `{at}`: {why}")
        };
        Error::invalid("arguments", message)
    })
}

/// The input schema of a tool taking `T`.
pub fn schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    schema_for_input::<T>().unwrap_or_else(|e| panic!("{}: {e}", std::any::type_name::<T>()))
}

// --- schemas of the values, from the core's own rules --------------------------------

fn task_id_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^[A-Za-z0-9_][A-Za-z0-9._-]*$",
        "minLength": 1,
        "maxLength": MAX_ID_LEN,
    })
}

fn task_ids_schema(g: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "items": task_id_schema(g), "minItems": 1})
}

fn lease_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^([0-9]+(ms|s|m|h|d))+$",
        "default": LeaseDuration::DEFAULT.to_string(),
    })
}

fn token_schema(_: &mut SchemaGenerator) -> Schema {
    // <fence>.<secret>; a bare fence only for a lease from before secrets.
    json_schema!({"type": "string", "pattern": "^[1-9][0-9]*([.][0-9a-z]{16,24})?$"})
}

fn reason_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "minLength": 1, "maxLength": tasklease::MAX_REASON_LEN})
}

fn request_id_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"})
}

fn agent_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "minLength": 1, "maxLength": MAX_ID_LEN})
}

fn bool_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "boolean", "default": false})
}

fn text_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string"})
}

fn names<T: ToString>(all: &[T]) -> Vec<String> {
    all.iter().map(ToString::to_string).collect()
}

fn statuses_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "items": {"type": "string", "enum": names(Status::ALL)}})
}

fn priority_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": names(Priority::ALL), "default": Priority::default().as_str()})
}

fn release_to_schema(_: &mut SchemaGenerator) -> Schema {
    let to = [ReleaseTo::Todo, ReleaseTo::Review, ReleaseTo::Blocked].map(|r| r.status());
    json_schema!({"type": "string", "enum": names(&to), "default": "todo"})
}

fn tags_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {"type": "string", "pattern": "^[A-Za-z0-9._:/-]+$", "minLength": 1, "maxLength": 64},
    })
}

fn tag_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": "^[A-Za-z0-9._:/-]+$", "minLength": 1, "maxLength": 64})
}

// The allowed names are not listed as an enum: 19 names would cost every session
// ~0.3 KB of `tools/list`; a wrong one is refused naming them all.
fn fields_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "items": {"type": "string"}})
}

fn status_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": names(Status::ALL)})
}

fn log_limit_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "minimum": 1, "maximum": MAX_LIST, "default": DEFAULT_LOG})
}

/// How many events `log` returns when no `limit` is given.
pub const DEFAULT_LOG: u32 = 20;

fn wait_seconds_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "minimum": 0, "maximum": MAX_WAIT_SECONDS})
}

/// The longest `claim` with `wait_seconds` waits: a call blocks that long, and clients
/// time tool calls out (often after a minute or two); wait again after `empty`.
pub const MAX_WAIT_SECONDS: u64 = 120;

fn limit_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "integer", "minimum": 1, "maximum": MAX_LIST, "default": DEFAULT_LIST})
}

/// How many tasks `list` returns when no `limit` is given: enough to choose from,
/// small enough not to flood a model's context on a large project (20 compact rows
/// are about 2 KB).
pub const DEFAULT_LIST: u32 = 20;
/// The largest `limit` accepted.
pub const MAX_LIST: u32 = 10_000;

// --- parsing helpers -------------------------------------------------------------------

/// Names the caller: given the call's own `agent` argument, if any, the agent id to act
/// as (see [`crate::Identity`]).
pub trait Me: FnOnce(Option<AgentId>) -> Result<AgentId> {}
impl<F: FnOnce(Option<AgentId>) -> Result<AgentId>> Me for F {}

fn task_id(s: &str) -> Result<TaskId> {
    TaskId::new(s)
}

fn token(s: &str) -> Result<Token> {
    s.parse()
}

fn lease(s: Option<&str>) -> Result<LeaseDuration> {
    s.map_or(Ok(LeaseDuration::DEFAULT), str::parse)
}

/// The caller's agent id: the `agent` argument `s` if valid, else whom `me` names.
fn agent(s: Option<&str>, me: impl Me) -> Result<AgentId> {
    me(s.map(AgentId::new).transpose()?)
}

// --- the tools' arguments --------------------------------------------------------------

/// `claim`: exactly one of `id`, `ids`, `next`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimArgs {
    /// One task to claim, by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "task_id_schema")]
    pub id: Option<String>,
    /// Several tasks to claim together: you get all of them or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "task_ids_schema")]
    pub ids: Option<Vec<String>>,
    /// true: the most urgent ready task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "bool_schema")]
    pub next: Option<bool>,
    /// How long the lease lasts before you must renew: a number with a unit (ms, s, m, h, d), e.g. 90s, 30m, 2h, 1h30m; at most 7d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "lease_schema")]
    pub lease: Option<String>,
    /// With `id` only: the token you already hold for that task, to extend your lease (the token stays the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "token_schema")]
    pub token: Option<String>,
    /// Your agent name (default: the server's name for you).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "agent_schema")]
    pub agent: Option<String>,
    /// Your key for this claim (1-128 of A-Z a-z 0-9 . _ - :): repeating the call with it returns the lease the first call granted, not a second task. A new one per claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "request_id_schema")]
    pub request_id: Option<String>,
    /// With `next`: wait up to this many seconds for a task to become ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "wait_seconds_schema")]
    pub wait_seconds: Option<u64>,
}

/// What a claim asks for.
pub enum Claim {
    /// One task, re-claimed when a token is given.
    One(TaskId, Option<Token>),
    /// Several tasks, all or none.
    Batch(Vec<TaskId>),
    /// The next ready task, waiting up to the given time for one to become ready.
    Next(Option<std::time::Duration>),
}

impl ClaimArgs {
    /// What to claim, for how long, as whom, under which idempotency key (the caller's,
    /// if it gave one).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the argument at fault.
    pub fn check(&self, me: impl Me) -> Result<(Claim, LeaseDuration, AgentId, Option<RequestId>)> {
        let next = self.next.unwrap_or(false);
        let wait = match self.wait_seconds {
            None | Some(0) => None,
            Some(s) if s > MAX_WAIT_SECONDS => {
                return Err(Error::invalid(
                    "wait_seconds",
                    format!(
                        "wait_seconds {s} is too long; allowed: 0 to {MAX_WAIT_SECONDS} (wait \
                         again after an empty answer)"
                    ),
                ));
            }
            Some(s) => Some(std::time::Duration::from_secs(s)),
        };
        if wait.is_some() && !next {
            return Err(Error::invalid(
                "wait_seconds",
                "wait_seconds waits for the next ready task: give it with `next: true`",
            ));
        }
        let what = match (&self.id, &self.ids, next) {
            (Some(id), None, false) => {
                Claim::One(task_id(id)?, self.token.as_deref().map(token).transpose()?)
            }
            (None, Some(ids), false) => {
                if self.token.is_some() {
                    return Err(Error::invalid(
                        "token",
                        "`token` re-claims one task given as `id`; a batch (`ids`) claims \
                         free tasks only",
                    ));
                }
                Claim::Batch(ids.iter().map(|s| task_id(s)).collect::<Result<_>>()?)
            }
            (None, None, true) => {
                if self.token.is_some() {
                    return Err(Error::invalid(
                        "token",
                        "`token` re-claims one task given as `id`; `next` claims a free task",
                    ));
                }
                Claim::Next(wait)
            }
            _ => {
                return Err(Error::invalid(
                    "arguments",
                    "give exactly one of `id` (one task), `ids` (several, all or none) or \
                     `next: true` (the next ready task)",
                ));
            }
        };
        // Only the caller's own key protects a retry: the caller retries a tool call,
        // and a key made here would be new each time. Without one, a claim-next is
        // combined with other processes' through the writer queue's board.
        let request = self.request_id.as_deref().map(RequestId::new).transpose()?;
        Ok((
            what,
            lease(self.lease.as_deref())?,
            agent(self.agent.as_deref(), me)?,
            request,
        ))
    }
}

/// `renew`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewArgs {
    /// The task you hold.
    #[schemars(schema_with = "task_id_schema")]
    pub id: String,
    /// The token your claim returned (`<fence>.<secret>`).
    #[schemars(schema_with = "token_schema")]
    pub token: String,
    /// The new lease length, counted from now: e.g. 90s, 30m, 2h; at most 7d.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "lease_schema")]
    pub lease: Option<String>,
    /// Your agent name (default: the server's name for you).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "agent_schema")]
    pub agent: Option<String>,
}

impl RenewArgs {
    /// # Errors
    /// [`Error::Invalid`] naming the argument at fault.
    pub fn check(&self, me: impl Me) -> Result<(TaskId, Token, LeaseDuration, AgentId)> {
        Ok((
            task_id(&self.id)?,
            token(&self.token)?,
            lease(self.lease.as_deref())?,
            agent(self.agent.as_deref(), me)?,
        ))
    }
}

/// `release`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseArgs {
    /// The task you hold.
    #[schemars(schema_with = "task_id_schema")]
    pub id: String,
    /// The token your claim returned (`<fence>.<secret>`).
    #[schemars(schema_with = "token_schema")]
    pub token: String,
    /// Where the task goes: todo (back to the pool), review (your work awaits a look) or blocked (it cannot go on for now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "release_to_schema")]
    pub status: Option<String>,
    /// Why, in a few words (kept in the history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "reason_schema")]
    pub reason: Option<String>,
    /// Your agent name (default: the server's name for you).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "agent_schema")]
    pub agent: Option<String>,
}

impl ReleaseArgs {
    /// # Errors
    /// [`Error::Invalid`] naming the argument at fault.
    pub fn check(
        &self,
        me: impl Me,
    ) -> Result<(TaskId, Token, ReleaseTo, AgentId, Option<Reason>)> {
        Ok((
            task_id(&self.id)?,
            token(&self.token)?,
            self.status
                .as_deref()
                .map_or(Ok(ReleaseTo::Todo), str::parse)?,
            agent(self.agent.as_deref(), me)?,
            self.reason.as_deref().map(Reason::new).transpose()?,
        ))
    }
}

/// `done`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DoneArgs {
    /// The task you hold.
    #[schemars(schema_with = "task_id_schema")]
    pub id: String,
    /// The token your claim returned (`<fence>.<secret>`).
    #[schemars(schema_with = "token_schema")]
    pub token: String,
    /// Why or how, in a few words (kept in the history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "reason_schema")]
    pub reason: Option<String>,
    /// Your agent name (default: the server's name for you).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "agent_schema")]
    pub agent: Option<String>,
}

impl DoneArgs {
    /// # Errors
    /// [`Error::Invalid`] naming the argument at fault.
    pub fn check(&self, me: impl Me) -> Result<(TaskId, Token, AgentId, Option<Reason>)> {
        Ok((
            task_id(&self.id)?,
            token(&self.token)?,
            agent(self.agent.as_deref(), me)?,
            self.reason.as_deref().map(Reason::new).transpose()?,
        ))
    }
}

/// `add`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddArgs {
    /// One line saying what to do.
    #[schemars(length(min = 1))]
    pub title: String,
    /// The new task's id; omit it to get the next free T-<n>.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "task_id_schema")]
    pub id: Option<String>,
    /// Longer text: what done looks like, pointers, context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "text_schema")]
    pub description: Option<String>,
    /// How urgent: `claim` with `next` takes critical, then high, medium, low.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "priority_schema")]
    pub priority: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "tags_schema")]
    pub tags: Option<Vec<String>>,
    /// Ids of existing tasks that must be done before this one is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "task_ids_schema")]
    pub deps: Option<Vec<String>>,
}

impl AddArgs {
    /// # Errors
    /// [`Error::Invalid`] naming the argument at fault.
    pub fn check(&self) -> Result<NewTask> {
        let task = NewTask {
            id: self.id.as_deref().map(task_id).transpose()?,
            title: self.title.clone(),
            description: self.description.clone().unwrap_or_default(),
            priority: self
                .priority
                .as_deref()
                .map_or(Ok(Priority::default()), str::parse)?,
            tags: self
                .tags
                .iter()
                .flatten()
                .map(|t| Tag::new(t))
                .collect::<Result<_>>()?,
            deps: self
                .deps
                .iter()
                .flatten()
                .map(|d| task_id(d))
                .collect::<Result<_>>()?,
            parent: None,
        };
        task.validate()?;
        Ok(task)
    }
}

/// `list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Only tasks in one of these statuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "statuses_schema")]
    pub status: Option<Vec<String>>,
    /// Only tasks held by this agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "agent_schema")]
    pub assignee: Option<String>,
    /// true: only tasks you hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "bool_schema")]
    pub mine: Option<bool>,
    /// Only tasks with this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "tag_schema")]
    pub tag: Option<String>,
    /// At most this many tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "limit_schema")]
    pub limit: Option<u32>,
    /// Your agent name, for `mine` (default: the server's name for you).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "agent_schema")]
    pub agent: Option<String>,
    /// true: exactly what `claim` with `next` would take, in its order (claims
    /// nothing). Only `tag` and `limit` combine with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "bool_schema")]
    pub ready: Option<bool>,
    /// true: only open tasks waiting on a dependency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "bool_schema")]
    pub blocked: Option<bool>,
    /// Only the children of this task (its epic's parts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "task_id_schema")]
    pub parent: Option<String>,
    /// The fields of each row (`id` always): any field show gives a task, or `holder`; default status, priority, title, holder, lease_left_ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "fields_schema")]
    pub fields: Option<Vec<String>>,
}

impl ListArgs {
    /// Which tasks to look at: at most one of `ready`, `blocked`, `parent`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when more than one is given.
    pub fn view(&self) -> Result<ListView> {
        let ready = self.ready.unwrap_or(false);
        let blocked = self.blocked.unwrap_or(false);
        match (ready, blocked, &self.parent) {
            (false, false, None) => Ok(ListView::All),
            (true, false, None) => Ok(ListView::Ready),
            (false, true, None) => Ok(ListView::Blocked),
            (false, false, Some(p)) => Ok(ListView::Children(task_id(p)?)),
            _ => Err(Error::invalid(
                "list",
                "give at most one of `ready`, `blocked` and `parent`",
            )),
        }
    }

    /// The filter; with `mine`, for the caller's own tasks.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the argument at fault.
    pub fn check(&self, me: impl Me) -> Result<ListFilter> {
        let mine = self.mine.unwrap_or(false);
        if mine && self.assignee.is_some() {
            return Err(Error::invalid(
                "assignee",
                "give `assignee` or `mine: true`, not both",
            ));
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIST);
        if !(1..=MAX_LIST).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("limit {limit} is out of range; allowed: 1 to {MAX_LIST}"),
            ));
        }
        let mut filter = ListFilter {
            statuses: self
                .status
                .iter()
                .flatten()
                .map(|s| s.parse())
                .collect::<Result<_>>()?,
            assignee: self.assignee.as_deref().map(AgentId::new).transpose()?,
            tag: self.tag.as_deref().map(Tag::new).transpose()?,
            limit: Some(limit),
        };
        let me = agent(self.agent.as_deref(), me)?;
        if mine {
            filter.assignee = Some(me);
        }
        Ok(filter)
    }
}

impl ListArgs {
    /// The fields of each row.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming a field rows do not have.
    pub fn fields(&self) -> Result<Vec<&'static str>> {
        let Some(asked) = &self.fields else {
            return Ok(ROW_FIELDS.to_vec());
        };
        asked
            .iter()
            .map(|f| {
                ALL_ROW_FIELDS
                    .iter()
                    .find(|a| **a == f.as_str())
                    .copied()
                    .ok_or_else(|| {
                        Error::invalid(
                            "fields",
                            format!(
                                "no field {}; allowed: {}",
                                tasklease::text::quote(f),
                                ALL_ROW_FIELDS.join(", ")
                            ),
                        )
                    })
            })
            .collect()
    }
}

/// `update`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// The task you hold.
    #[schemars(schema_with = "task_id_schema")]
    pub id: String,
    /// The token your claim returned (`<fence>.<secret>`).
    #[schemars(schema_with = "token_schema")]
    pub token: String,
    /// Text appended to the task's description (a progress note for whoever comes next).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "text_schema")]
    pub notes: Option<String>,
    /// A new status; to finish or hand back, call done or release instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "status_schema")]
    pub status: Option<String>,
    /// A new priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "priority_schema")]
    pub priority: Option<String>,
    /// Your agent name (default: the server's name for you).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "agent_schema")]
    pub agent: Option<String>,
}

/// What an update asks for.
pub struct Update {
    /// The task.
    pub id: TaskId,
    /// The caller's token.
    pub token: Token,
    /// A note to append to the description.
    pub notes: Option<String>,
    /// The rest of the change.
    pub patch: TaskPatch,
    /// The caller.
    pub agent: AgentId,
}

impl UpdateArgs {
    /// # Errors
    /// [`Error::Invalid`] naming the argument at fault, or when nothing is asked.
    pub fn check(&self, me: impl Me) -> Result<Update> {
        let patch = TaskPatch {
            status: self.status.as_deref().map(str::parse).transpose()?,
            priority: self.priority.as_deref().map(str::parse).transpose()?,
            ..TaskPatch::default()
        };
        if self.notes.is_none() && patch.status.is_none() && patch.priority.is_none() {
            return Err(Error::invalid(
                "arguments",
                "give at least one of `notes`, `status` and `priority`",
            ));
        }
        patch.validate()?;
        Ok(Update {
            id: task_id(&self.id)?,
            token: token(&self.token)?,
            notes: self.notes.clone(),
            patch,
            agent: agent(self.agent.as_deref(), me)?,
        })
    }
}

/// `log`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogArgs {
    /// Only this task's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "task_id_schema")]
    pub id: Option<String>,
    /// The last this many events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "log_limit_schema")]
    pub limit: Option<u32>,
}

impl LogArgs {
    /// # Errors
    /// [`Error::Invalid`] naming the argument at fault.
    pub fn check(&self) -> Result<(Option<TaskId>, u32)> {
        let limit = self.limit.unwrap_or(DEFAULT_LOG);
        if !(1..=MAX_LIST).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("limit {limit} is out of range; allowed: 1 to {MAX_LIST}"),
            ));
        }
        Ok((self.id.as_deref().map(task_id).transpose()?, limit))
    }
}

/// `show`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowArgs {
    /// The task.
    #[schemars(schema_with = "task_id_schema")]
    pub id: String,
}

impl ShowArgs {
    /// # Errors
    /// [`Error::Invalid`] for a malformed id.
    pub fn check(&self) -> Result<TaskId> {
        task_id(&self.id)
    }
}

/// `reap`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReapArgs {
    /// Your agent name (default: the server's name for you).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "agent_schema")]
    pub agent: Option<String>,
}

impl ReapArgs {
    /// # Errors
    /// [`Error::Invalid`] for a malformed agent name.
    pub fn check(&self, me: impl Me) -> Result<AgentId> {
        agent(self.agent.as_deref(), me)
    }
}

/// `mine`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MineArgs {
    /// Whose leases. Omit it to use the name this server gave you.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "agent_schema")]
    pub agent: Option<String>,
}

impl MineArgs {
    /// # Errors
    /// [`Error::Invalid`] for a malformed agent name.
    pub fn check(&self, me: impl Me) -> Result<AgentId> {
        agent(self.agent.as_deref(), me)
    }
}

/// `locks`: no arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocksArgs {}

#[cfg(test)]
mod tests {
    use super::*;

    fn args<T: DeserializeOwned>(v: serde_json::Value) -> Result<T> {
        match v {
            serde_json::Value::Object(m) => parse(m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn mistyped_and_unknown_arguments_name_the_field() {
        let e = args::<RenewArgs>(serde_json::json!({"id": "a", "token": 3}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`token`"), "{e}");
        let e = args::<RenewArgs>(serde_json::json!({"id": "a"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `token`"), "{e}");
        let e = args::<ShowArgs>(serde_json::json!({"id": "a", "tok": 1}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `tok`"), "{e}");
    }

    #[test]
    fn claim_takes_exactly_one_form() {
        let me = |a: Option<AgentId>| Ok(a.unwrap_or_else(|| AgentId::new("me").unwrap()));
        let c = |v| args::<ClaimArgs>(v).unwrap().check(me);
        assert!(matches!(
            c(serde_json::json!({"next": true})),
            Ok((Claim::Next(None), _, _, _))
        ));
        assert!(matches!(
            c(serde_json::json!({"next": true, "wait_seconds": 30})),
            Ok((Claim::Next(Some(w)), _, _, _)) if w.as_secs() == 30
        ));
        for bad in [
            serde_json::json!({"next": true, "wait_seconds": 121}),
            serde_json::json!({"id": "a", "wait_seconds": 5}),
        ] {
            let Err(e) = c(bad.clone()) else {
                panic!("{bad}: accepted");
            };
            assert!(e.to_string().contains("wait_seconds"), "{bad}: {e}");
        }
        assert!(matches!(
            c(serde_json::json!({"id": "a", "token": "3.k3f9q2m8x1c4v6b0"})),
            Ok((Claim::One(_, Some(t)), _, _, _)) if t.fence() == 3
        ));
        assert!(matches!(
            c(serde_json::json!({"ids": ["a", "b"]})),
            Ok((Claim::Batch(_), _, _, _))
        ));
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"id": "a", "next": true}),
            serde_json::json!({"id": "a", "ids": ["b"]}),
            serde_json::json!({"ids": ["a", "b"], "token": "1"}),
            serde_json::json!({"id": "../x"}),
            serde_json::json!({"id": "a", "lease": "forever"}),
            serde_json::json!({"id": "a", "token": "0"}),
            serde_json::json!({"id": "a", "token": "3.short"}),
            serde_json::json!({"next": true, "request_id": "no spaces"}),
            serde_json::json!({"next": true, "request_id": ""}),
        ] {
            assert!(c(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn schemas_are_objects_with_the_core_values() {
        let s = serde_json::Value::Object((*schema::<ListArgs>()).clone());
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        let statuses = s["properties"]["status"]["items"]["enum"].to_string();
        assert!(statuses.contains("in_progress"), "{s}");
        let r = serde_json::Value::Object((*schema::<ReleaseArgs>()).clone());
        assert_eq!(r["required"], serde_json::json!(["id", "token"]), "{r}");
        assert_eq!(
            r["properties"]["status"]["enum"],
            serde_json::json!(["todo", "review", "blocked"])
        );
    }
}
