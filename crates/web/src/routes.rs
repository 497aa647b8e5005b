//! The routes: pages, `/api/…` JSON (the CLI's `--json` shapes, from
//! `tasklease_shape::json`), the live feed, static files and the writes.
//!
//! | Route | What |
//! |---|---|
//! | `GET /` | the board; `?tag=&assignee=&parent=&q=&show=all` |
//! | `GET /tasks/{id}` | a task: fields, dependencies both ways, children, lease history |
//! | `GET /fleet` | agents, contention over time, lease-length advice |
//! | `GET /events` | the live feed (server-sent events: `hello`, then `change`) |
//! | `GET /api/tasks` | `list --json`, with the board's filters |
//! | `GET /api/tasks/{id}` | `show --json` |
//! | `GET /api/tasks/{id}/deps` | `dep list --json` |
//! | `GET /api/log?task=&limit=` | `log --json` |
//! | `GET /api/fleet` | what the fleet page shows |
//! | `GET /api/feed` | the live feed's own figures (its idle cost) |
//! | `POST /tasks`, `/tasks/{id}/{release,cancel,priority}` | the write forms |
//! | `POST /api/tasks`, `/api/tasks/{id}/{release,cancel,priority}` | the same, JSON, `Authorization: Bearer` |

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query as QueryParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tasklease::{
    Error, ErrorKind, NewTask, Priority, ReleaseTo, Result, Status, Store, Tag, TaskId, TaskPatch,
};
use tasklease_shape::json as tj;

use crate::html::{self, Frame};
use crate::read::{self, Filter, Query};
use crate::{App, guard};

type Shared = Arc<App>;

const CSS: &str = include_str!("../assets/board.css");
const JS: &str = include_str!("../assets/board.js");

/// Scripts and styles from this server only; no frames, no other targets for forms.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(board_page))
        .route("/tasks/{id}", get(task_page))
        .route("/fleet", get(fleet_page))
        .route("/events", get(events))
        .route(
            "/static/board.css",
            get(|| async { asset("text/css", CSS) }),
        )
        .route(
            "/static/board.js",
            get(|| async { asset("text/javascript", JS) }),
        )
        .route("/api/tasks", get(api_tasks).post(api_add))
        .route("/api/tasks/{id}", get(api_task))
        .route("/api/tasks/{id}/deps", get(api_deps))
        .route("/api/log", get(api_log))
        .route("/api/fleet", get(api_fleet))
        .route("/api/feed", get(api_feed))
        .route("/api/tasks/{id}/release", post(api_release))
        .route("/api/tasks/{id}/cancel", post(api_cancel))
        .route("/api/tasks/{id}/priority", post(api_priority))
        .route("/tasks", post(form_add))
        .route("/tasks/{id}/release", post(form_release))
        .route("/tasks/{id}/cancel", post(form_cancel))
        .route("/tasks/{id}/priority", post(form_priority))
        .layer(middleware::from_fn_with_state(app.clone(), guard_host))
        .with_state(app)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Refuses a request whose `Host` is not the address served (DNS rebinding), and
/// adds the security headers to every answer.
async fn guard_host(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let mut resp = if guard::host_allowed(host, &app.config.listen) {
        next.run(req).await
    } else {
        (
            StatusCode::MISDIRECTED_REQUEST,
            "this board answers only to the address it serves (the Host header named \
             another)\n",
        )
            .into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        // Not `no-referrer`: with it a browser sends `Origin: null` on form posts,
        // and the origin check could not tell this server's forms from others.
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

fn frame(app: &App) -> Frame<'_> {
    Frame {
        db: &app.config.db_display,
        secret: app.config.allow_writes.then(|| app.config.secret.expose()),
    }
}

fn http_status(e: &Error) -> StatusCode {
    match (e, e.kind()) {
        (Error::NotFound(_), _) => StatusCode::NOT_FOUND,
        (_, ErrorKind::Invalid) => StatusCode::BAD_REQUEST,
        (_, ErrorKind::Conflict | ErrorKind::LeaseLost) => StatusCode::CONFLICT,
        (Error::Busy { .. } | Error::Unavailable { .. }, _) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn page_error(app: &App, e: &Error) -> Response {
    (
        http_status(e),
        html::problem(&frame(app), "Could not do that", &e.to_string()),
    )
        .into_response()
}

fn api_error(e: &Error) -> Response {
    (http_status(e), Json(tj::error_of(e))).into_response()
}

// ---- pages

async fn board_page(State(app): State<Shared>, QueryParams(q): QueryParams<Query>) -> Response {
    let filter = match Filter::parse(&q) {
        Ok(f) => f,
        Err(e) => return page_error(&app, &e),
    };
    let (page, closed, f) = (
        app.config.column_page,
        app.config.closed_shown,
        filter.clone(),
    );
    let started = std::time::Instant::now();
    match app
        .store
        .call(move |s| read::board(s, &f, page, closed))
        .await
    {
        Ok(b) => timed(started, html::board(&frame(&app), &b, &filter, &q)),
        Err(e) => page_error(&app, &e),
    }
}

/// A page with `Server-Timing: read;dur=MS`, the time its store read and render
/// took: the script spaces its refetches by it, so that a board over a big store
/// under load keeps to a small share of the machine (see `board.js`).
fn timed(started: std::time::Instant, page: maud::Markup) -> Response {
    let mut resp = page.into_response();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("read;dur={ms:.1}")) {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}

async fn task_page(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    let id = match TaskId::new(&id) {
        Ok(id) => id,
        Err(e) => return page_error(&app, &e),
    };
    let started = std::time::Instant::now();
    match app.store.call(move |s| read::task(s, &id)).await {
        Ok(p) => timed(started, html::task(&frame(&app), &p)),
        Err(e) => page_error(&app, &e),
    }
}

async fn fleet_page(State(app): State<Shared>) -> Response {
    let started = std::time::Instant::now();
    match app.store.call(|s| read::fleet(s, read::FLEET_WINDOW)).await {
        Ok(f) => timed(started, html::fleet(&frame(&app), &f)),
        Err(e) => page_error(&app, &e),
    }
}

/// The live feed: `hello` at once (the script fetches then, in case it missed a
/// change before subscribing), then `change` with a growing count after each change.
async fn events(
    State(app): State<Shared>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = app.feed.subscribe();
    let stopping = app.stopping.clone();
    let hello = stream::once(async { Ok(SseEvent::default().event("hello").data("0")) });
    let changes = stream::unfold((rx, stopping), |(mut rx, mut stopping)| async move {
        if *stopping.borrow() {
            return None;
        }
        tokio::select! {
            r = rx.changed() => {
                r.ok()?;
                let n = *rx.borrow_and_update();
                Some((Ok(SseEvent::default().event("change").data(n.to_string())), (rx, stopping)))
            }
            _ = stopping.changed() => None,
        }
    });
    Sse::new(hello.chain(changes)).keep_alive(KeepAlive::default())
}

// ---- JSON reads

async fn api_tasks(State(app): State<Shared>, QueryParams(q): QueryParams<Query>) -> Response {
    let filter = match Filter::parse(&q) {
        Ok(f) => f,
        Err(e) => return api_error(&e),
    };
    let read = app.store.call(move |s| {
        let tasks = filter.tasks(s)?;
        Ok(tj::tasks_json(&tasks, s.now()?))
    });
    answer(read.await)
}

fn answer(r: Result<Value>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => api_error(&e),
    }
}

async fn api_task(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    let id = match TaskId::new(&id) {
        Ok(id) => id,
        Err(e) => return api_error(&e),
    };
    let read = app.store.call(move |s| {
        let shown = tasklease::show::Shown::read(s, &id)?;
        Ok(tj::shown_json(&shown))
    });
    answer(read.await)
}

async fn api_deps(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    let id = match TaskId::new(&id) {
        Ok(id) => id,
        Err(e) => return api_error(&e),
    };
    let read = app.store.call(move |s| {
        let d = s.deps(&id)?.ok_or_else(|| Error::NotFound(id.clone()))?;
        Ok(tj::deps_json(&id, &d))
    });
    answer(read.await)
}

#[derive(Deserialize)]
struct LogQuery {
    task: Option<String>,
    limit: Option<u32>,
}

async fn api_log(State(app): State<Shared>, QueryParams(q): QueryParams<LogQuery>) -> Response {
    let task = match q
        .task
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(TaskId::new)
        .transpose()
    {
        Ok(t) => t,
        Err(e) => return api_error(&e),
    };
    let limit = q.limit.unwrap_or(100);
    let read = app
        .store
        .call(move |s| Ok(tj::events_json(&s.log(task.as_ref(), limit)?)));
    answer(read.await)
}

async fn api_fleet(State(app): State<Shared>) -> Response {
    let read = app.store.call(|s| {
        let f = read::fleet(s, read::FLEET_WINDOW)?;
        Ok(json!({
            "ok": true,
            "now": f.now.to_rfc3339(),
            "now_ms": f.now.as_millis(),
            "tasks": f.counts.iter().map(|(s, n)| (s.as_str().to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "agents": f.agents.iter().map(|a| json!({
                "agent": a.id,
                "holds": a.holds.iter().map(|h| &h.id).collect::<Vec<_>>(),
                "last_seen": a.last_seen.map(|t| t.to_rfc3339()),
                "claims": a.claims,
            })).collect::<Vec<_>>(),
            "held": f.held.iter().map(|h| {
                let mut j = json!(h);
                j["lock_until"] = json!(h.lock_until.to_rfc3339());
                j
            }).collect::<Vec<_>>(),
            "contention": f.contention,
            "series": {
                "bucket_ms": f.bucket_ms,
                "claims_per_s": f.buckets.iter().map(|b| b.claims_per_s).collect::<Vec<_>>(),
                "wait_us_p50": f.buckets.iter().map(|b| b.wait_us_p50).collect::<Vec<_>>(),
                "wait_us_p99": f.buckets.iter().map(|b| b.wait_us_p99).collect::<Vec<_>>(),
            },
            "leases": f.fits,
            "window": {"events": f.events, "since": f.since.map(|t| t.to_rfc3339())},
        }))
    });
    answer(read.await)
}

async fn api_feed(State(app): State<Shared>) -> Response {
    let mut v = app.feed.figures();
    v["ok"] = json!(true);
    Json(v).into_response()
}

// ---- writes

/// Why a write was refused before it reached the store.
struct Refused {
    status: StatusCode,
    message: &'static str,
}

/// Writes on, `Origin` this server, and the secret presented (in the form, or as a
/// bearer token).
fn authorize(app: &App, headers: &HeaderMap, form_secret: Option<&str>) -> Result<(), Refused> {
    if !app.config.allow_writes {
        return Err(Refused {
            status: StatusCode::FORBIDDEN,
            message: "writes are off: start the board with `tasklease ui --allow-writes`",
        });
    }
    let get = |name| {
        headers
            .get(name)
            .and_then(|h: &HeaderValue| h.to_str().ok())
    };
    if !guard::origin_allowed(get(header::ORIGIN), get(header::HOST)) {
        return Err(Refused {
            status: StatusCode::FORBIDDEN,
            message: "refused: the request came from a page of another origin",
        });
    }
    let bearer = get(header::AUTHORIZATION).and_then(|a| a.strip_prefix("Bearer "));
    let presented = form_secret.or(bearer);
    match presented {
        Some(p) if app.config.secret.matches(p) => Ok(()),
        Some(_) => Err(Refused {
            status: StatusCode::FORBIDDEN,
            message: "refused: wrong write token (the one `tasklease ui` printed at start)",
        }),
        None => Err(Refused {
            status: StatusCode::UNAUTHORIZED,
            message: "refused: a write needs the token `tasklease ui` printed at start, in \
                      the form or as `Authorization: Bearer <token>`",
        }),
    }
}

fn refused_page(app: &App, r: &Refused) -> Response {
    (r.status, html::problem(&frame(app), "Refused", r.message)).into_response()
}

fn refused_json(r: &Refused) -> Response {
    let code = if r.status == StatusCode::UNAUTHORIZED {
        "unauthorized"
    } else {
        "forbidden"
    };
    let mut resp = (
        r.status,
        Json(tj::error_json(code, r.message, tj::EXIT_USAGE)),
    )
        .into_response();
    if r.status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// The store operations behind the writes, each one call on the store thread.
mod op {
    use super::*;

    pub fn release(s: &dyn Store, id: &TaskId, agent: &tasklease::AgentId) -> Result<Value> {
        let task = s.release_force(id, ReleaseTo::Todo, agent)?;
        Ok(tj::ended_json("forced", &task, s.now()?))
    }

    /// Cancels `id`; a task in progress is force-released first, so the history
    /// says whose lease was ended.
    pub fn cancel(s: &dyn Store, id: &TaskId, agent: &tasklease::AgentId) -> Result<Value> {
        let mut task = s.show(id)?.ok_or_else(|| Error::NotFound(id.clone()))?;
        if task.status == Status::InProgress {
            task = s.release_force(id, ReleaseTo::Todo, agent)?;
        }
        let patch = TaskPatch {
            status: Some(Status::Cancelled),
            ..TaskPatch::default()
        };
        let task = s.update(id, task.version, &patch, None, agent)?;
        Ok(tj::one_task_json("updated", &task, s.now()?))
    }

    pub fn priority(
        s: &dyn Store,
        id: &TaskId,
        priority: Priority,
        agent: &tasklease::AgentId,
    ) -> Result<Value> {
        let task = s.show(id)?.ok_or_else(|| Error::NotFound(id.clone()))?;
        let patch = TaskPatch {
            priority: Some(priority),
            ..TaskPatch::default()
        };
        let task = s.update(id, task.version, &patch, None, agent)?;
        Ok(tj::one_task_json("updated", &task, s.now()?))
    }

    pub fn add(s: &dyn Store, new: &NewTask) -> Result<Value> {
        new.validate()?;
        let task = s.add(new)?;
        Ok(tj::one_task_json("added", &task, s.now()?))
    }
}

/// Runs a write on the store thread and tells the boards.
async fn write(
    app: &App,
    f: impl FnOnce(&dyn Store) -> Result<Value> + Send + 'static,
) -> Result<Value> {
    let done = app.store.call(f).await;
    if done.is_ok() {
        app.feed.changed();
    }
    done
}

#[derive(Deserialize)]
struct SecretForm {
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Deserialize)]
struct PriorityForm {
    #[serde(default)]
    secret: Option<String>,
    priority: String,
}

#[derive(Deserialize)]
struct AddForm {
    #[serde(default)]
    secret: Option<String>,
    title: String,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    tags: Option<String>,
    #[serde(default)]
    parent: Option<String>,
}

fn task_id(id: &str) -> Result<TaskId> {
    TaskId::new(id)
}

fn back_to(id: &TaskId) -> Response {
    Redirect::to(&format!("/tasks/{id}")).into_response()
}

async fn form_release(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<SecretForm>,
) -> Response {
    form_lease_end(app, &id, &headers, f, op::release).await
}

async fn form_cancel(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<SecretForm>,
) -> Response {
    form_lease_end(app, &id, &headers, f, op::cancel).await
}

/// A form that ends what is going on with one task (a forced release, a cancel): the
/// run's secret checked, the write done as the board's agent, back to the task page.
async fn form_lease_end(
    app: Shared,
    id: &str,
    headers: &HeaderMap,
    f: SecretForm,
    write_op: fn(&dyn Store, &TaskId, &tasklease::AgentId) -> Result<Value>,
) -> Response {
    if let Err(r) = authorize(&app, headers, f.secret.as_deref()) {
        return refused_page(&app, &r);
    }
    let agent = app.config.agent.clone();
    let id = match task_id(id) {
        Ok(id) => id,
        Err(e) => return page_error(&app, &e),
    };
    let target = id.clone();
    match write(&app, move |s| write_op(s, &target, &agent)).await {
        Ok(_) => back_to(&id),
        Err(e) => page_error(&app, &e),
    }
}

async fn form_priority(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<PriorityForm>,
) -> Response {
    if let Err(r) = authorize(&app, &headers, f.secret.as_deref()) {
        return refused_page(&app, &r);
    }
    let agent = app.config.agent.clone();
    let parsed = task_id(&id).and_then(|id| Ok((id, f.priority.parse::<Priority>()?)));
    let (id, priority) = match parsed {
        Ok(p) => p,
        Err(e) => return page_error(&app, &e),
    };
    let target = id.clone();
    match write(&app, move |s| op::priority(s, &target, priority, &agent)).await {
        Ok(_) => back_to(&id),
        Err(e) => page_error(&app, &e),
    }
}

fn new_task(f: &AddForm) -> Result<NewTask> {
    let given = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(NewTask {
        title: f.title.trim().to_owned(),
        priority: given(&f.priority)
            .map(|p| p.parse())
            .transpose()?
            .unwrap_or_default(),
        tags: given(&f.tags)
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(Tag::new)
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default(),
        parent: given(&f.parent).map(|p| TaskId::new(&p)).transpose()?,
        ..NewTask::default()
    })
}

async fn form_add(
    State(app): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<AddForm>,
) -> Response {
    if let Err(r) = authorize(&app, &headers, f.secret.as_deref()) {
        return refused_page(&app, &r);
    }
    let new = match new_task(&f) {
        Ok(n) => n,
        Err(e) => return page_error(&app, &e),
    };
    match write(&app, move |s| op::add(s, &new)).await {
        Ok(v) => match v["task"]["id"].as_str().map(TaskId::new) {
            Some(Ok(id)) => back_to(&id),
            _ => Redirect::to("/").into_response(),
        },
        Err(e) => page_error(&app, &e),
    }
}

async fn api_release(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&app, &headers, None) {
        return refused_json(&r);
    }
    let agent = app.config.agent.clone();
    match task_id(&id) {
        Ok(id) => answer(write(&app, move |s| op::release(s, &id, &agent)).await),
        Err(e) => api_error(&e),
    }
}

async fn api_cancel(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&app, &headers, None) {
        return refused_json(&r);
    }
    let agent = app.config.agent.clone();
    match task_id(&id) {
        Ok(id) => answer(write(&app, move |s| op::cancel(s, &id, &agent)).await),
        Err(e) => api_error(&e),
    }
}

#[derive(Deserialize)]
struct PriorityBody {
    priority: String,
}

async fn api_priority(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<PriorityBody>, JsonRejection>,
) -> Response {
    if let Err(r) = authorize(&app, &headers, None) {
        return refused_json(&r);
    }
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => return bad_body(&e, "{\"priority\": \"critical|high|medium|low\"}"),
    };
    let agent = app.config.agent.clone();
    match task_id(&id).and_then(|id| Ok((id, body.priority.parse::<Priority>()?))) {
        Ok((id, p)) => answer(write(&app, move |s| op::priority(s, &id, p, &agent)).await),
        Err(e) => api_error(&e),
    }
}

async fn api_add(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Result<Json<NewTask>, JsonRejection>,
) -> Response {
    if let Err(r) = authorize(&app, &headers, None) {
        return refused_json(&r);
    }
    let new = match body {
        Ok(Json(n)) => n,
        Err(e) => {
            return bad_body(
                &e,
                "a JSON object with \"title\" and optionally id, description, priority, \
                 tags, deps, parent",
            );
        }
    };
    answer(write(&app, move |s| op::add(s, &new)).await)
}

/// A JSON body that could not be read: what was wrong, and what is allowed.
fn bad_body(e: &JsonRejection, allowed: &str) -> Response {
    let message = format!(
        "the request body was refused ({}); allowed: {allowed}",
        e.body_text()
    );
    (
        StatusCode::BAD_REQUEST,
        Json(tj::error_json("invalid", &message, tj::EXIT_USAGE)),
    )
        .into_response()
}
