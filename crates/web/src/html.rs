//! The pages, rendered with maud: every interpolated value is HTML-escaped by maud
//! itself, so a title like `<script>` is shown as text. Nothing here builds markup from
//! strings by hand.

use maud::{DOCTYPE, Markup, html};
use tasklease::{DepState, Event, LeaseDuration, Millis, Status, Task};
use tasklease_shape::stats::{Held, Standing};

use crate::read::{Board, Filter, Fleet, LeaseInfo, Query, TaskPage};

/// What every page needs to know about the server.
pub struct Frame<'a> {
    pub db: &'a str,
    /// The secret for the write forms; `None` when writes are off.
    pub secret: Option<&'a str>,
}

/// The page around `body`. `live` marks the part the script swaps on change.
fn page(frame: &Frame<'_>, title: &str, here: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · tasklease" }
                link rel="stylesheet" href="/static/board.css";
                script src="/static/board.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Pages" {
                        strong.brand { "tasklease" }
                        a href="/" aria-current=[(here == "board").then_some("page")] { "Board" }
                        a href="/fleet" aria-current=[(here == "fleet").then_some("page")] { "Fleet" }
                    }
                    span.db title="The store served" { (frame.db) }
                    span #feed .feed role="status" aria-live="polite" { "not live" }
                    @if frame.secret.is_none() {
                        span.readonly title="Start with --allow-writes to change tasks here" { "read-only" }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// A duration for people, to two units: `2h5m`, `45s`, `300ms`.
pub fn human_ms(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        86_400.. => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
        3600.. => format!("{}h{}m", s / 3600, s % 3600 / 60),
        60.. => format!("{}m{}s", s / 60, s % 60),
        1.. => format!("{s}s"),
        _ => format!("{ms}ms"),
    }
}

fn time_left(until: Millis, now: Millis) -> String {
    let d = until.since(now);
    if d > 0 {
        format!("{} left", human_ms(d))
    } else {
        format!("expired {} ago", human_ms(-d))
    }
}

fn lease_str(ms: i64) -> String {
    LeaseDuration::from_millis(ms).map_or_else(|_| human_ms(ms), |d| d.to_string())
}

fn human_us(us: i64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else if us < 10_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else {
        human_ms(us / 1000)
    }
}

fn column_name(s: Status) -> &'static str {
    match s {
        Status::Todo => "To do",
        Status::Blocked => "Blocked",
        Status::InProgress => "In progress",
        Status::Review => "Review",
        Status::Done => "Done",
        Status::Cancelled => "Cancelled",
    }
}

/// The countdown of a held task's lease: counted down by the script from the lease
/// end and the server's clock; red once less than a third of the lease (or, its
/// length unknown, a minute) is left.
fn countdown(until: Millis, now: Millis, lease_ms: Option<i64>) -> Markup {
    let near_ms = lease_ms.map_or(tasklease_shape::stats::NEAR_EXPIRY_MS, |l| l / 3);
    let left = until.since(now);
    let class = if left <= 0 {
        "countdown expired"
    } else if left < near_ms {
        "countdown near"
    } else {
        "countdown"
    };
    html! {
        span class=(class) data-until-ms=(until.as_millis()) data-near-ms=(near_ms)
            title={ "lease ends " (until) } { (time_left(until, now)) }
    }
}

fn lease_line(t: &Task, now: Millis, info: Option<&LeaseInfo>) -> Markup {
    html! {
        @if let (Some(holder), Some(until)) = (&t.assignee, t.lock_until) {
            div.lease {
                span.holder title="Holder" { (holder) }
                " "
                span.fence title="The lease's fencing number" {
                    "fence " @if let Some(f) = info.and_then(|i| i.fence) { (f) } @else { "?" }
                }
                " "
                (countdown(until, now, info.and_then(|i| i.lease_ms)))
                @if let Some(i) = info.filter(|i| i.renewals > 0) {
                    " " span.renewals { "renewed " (i.renewals) "×" }
                }
            }
        }
    }
}

fn card(t: &Task, now: Millis, info: Option<&LeaseInfo>) -> Markup {
    html! {
        li.card data-id=(t.id) data-status=(t.status) {
            div.card-head {
                a.card-id href={ "/tasks/" (t.id) } { (t.id) }
                span class={ "prio prio-" (t.priority) } { (t.priority) }
            }
            div.title { (t.title) }
            @if !t.tags.is_empty() || t.waiting_on > 0 || t.parent.is_some() {
                div.meta {
                    @for tag in &t.tags { a.tag href={ "/?tag=" (tag) } { (tag) } " " }
                    @if t.waiting_on > 0 { span.waiting { "waits on " (t.waiting_on) } " " }
                    @if let Some(p) = &t.parent { span.parent { "in " (p) } }
                }
            }
            (lease_line(t, now, info))
        }
    }
}

fn query_string(q: &Query, show_all: bool) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("tag", &q.tag),
        ("assignee", &q.assignee),
        ("parent", &q.parent),
        ("q", &q.q),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            parts.push(format!("{k}={}", percent(v)));
        }
    }
    if show_all {
        parts.push("show=all".to_owned());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Percent-encodes everything but unreserved characters, for a query value.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The part of the board the script swaps on change.
pub fn board_live(b: &Board, filter: &Filter, q: &Query) -> Markup {
    let total: u64 = b.counts.iter().map(|c| c.1).sum();
    html! {
        div #live data-now-ms=(b.now.as_millis()) {
            p.summary {
                (total) " tasks"
                @for (s, n) in &b.counts { " · " (n) " " (s) }
                @if filter.narrows() { " — filtered" }
            }
            div.columns {
                @for c in &b.columns {
                    section.column data-status=(c.status) aria-labelledby={ "col-" (c.status) } {
                        h2 id={ "col-" (c.status) } {
                            (column_name(c.status)) " " span.count { (c.total) }
                        }
                        ol.cards {
                            @for t in &c.cards { (card(t, b.now, b.leases.get(&t.id))) }
                        }
                        @if c.cards.len() < c.total {
                            p.more {
                                (c.total - c.cards.len()) " more "
                                @if matches!(c.status, Status::Done | Status::Cancelled) { "older " }
                                "— " a href={ "/" (query_string(q, true)) } { "show all" }
                            }
                        }
                    }
                }
            }
            section.recent aria-labelledby="recent-h" {
                h2 #recent-h { "Just now" }
                @if b.recent.is_empty() { p { "No lease events yet." } }
                ol { @for e in &b.recent { li { (event_line(e, b.now)) } } }
            }
        }
    }
}

fn event_line(e: &Event, now: Millis) -> Markup {
    html! {
        span.ago title=(e.at) { (human_ms(now.since(e.at).max(0))) " ago" }
        " " span class={ "kind kind-" (e.kind) } { (e.kind) }
        " " a href={ "/tasks/" (e.task) } { (e.task) }
        " " span.agent { (e.agent) }
        @if let Some(t) = e.fence { " " span.fence { "fence " (t) } }
    }
}

/// The board page.
pub fn board(frame: &Frame<'_>, b: &Board, filter: &Filter, q: &Query) -> Markup {
    let v = |s: &Option<String>| s.clone().unwrap_or_default();
    page(
        frame,
        "Board",
        "board",
        html! {
            form.filters method="get" action="/" role="search" {
                label { "Text " input type="search" name="q" value=(v(&q.q)); }
                label { "Tag " input name="tag" value=(v(&q.tag)) size="10"; }
                label { "Assignee " input name="assignee" value=(v(&q.assignee)) size="14"; }
                label { "Parent " input name="parent" value=(v(&q.parent)) size="8"; }
                button type="submit" { "Filter" }
                @if filter.narrows() { " " a href="/" { "Clear" } }
            }
            (board_live(b, filter, q))
            @if let Some(secret) = frame.secret {
                details.add {
                    summary { "Add a task" }
                    form method="post" action="/tasks" {
                        input type="hidden" name="secret" value=(secret);
                        label { "Title " input name="title" required size="40"; }
                        label { "Priority " (priority_select(tasklease::Priority::Medium)) }
                        label { "Tags " input name="tags" size="16" placeholder="comma,separated"; }
                        label { "Parent " input name="parent" size="8"; }
                        button type="submit" { "Add" }
                    }
                }
            }
        },
    )
}

fn priority_select(current: tasklease::Priority) -> Markup {
    html! {
        select name="priority" {
            @for p in tasklease::Priority::ALL {
                option value=(p) selected[*p == current] { (p) }
            }
        }
    }
}

fn dep_rows(deps: &[DepState]) -> Markup {
    html! {
        @if deps.is_empty() { p.none { "None." } } @else {
            table {
                thead { tr { th { "Task" } th { "Status" } th { "Holder" } th { "Holds back?" } } }
                tbody {
                    @for d in deps {
                        tr {
                            td { a href={ "/tasks/" (d.id) } { (d.id) } }
                            td { (d.status) }
                            td { @if let Some(h) = &d.holder { (h) } }
                            td { @match d.why() { Some(w) => (w), None => "no" } }
                        }
                    }
                }
            }
        }
    }
}

/// The part of a task page the script swaps on change.
pub fn task_live(p: &TaskPage) -> Markup {
    let t = &p.shown.task;
    let now = p.shown.now;
    let progress = p.shown.progress();
    html! {
        div #live data-now-ms=(now.as_millis()) {
            h1 { span.card-id { (t.id) } " " (t.title) }
            dl.fields data-id=(t.id) data-status=(t.status) {
                dt { "Status" } dd.status { (t.status) }
                dt { "Priority" } dd { (t.priority) }
                dt { "Tags" } dd { @for tag in &t.tags { a.tag href={ "/?tag=" (tag) } { (tag) } " " } }
                dt { "Parent" } dd { @if let Some(pa) = &t.parent { a href={ "/tasks/" (pa) } { (pa) } } }
                @if t.assignee.is_some() {
                    dt { "Lease" } dd { (lease_line(t, now, p.lease.as_ref())) }
                }
                dt { "Attempts" } dd { (t.attempts) }
                dt { "Version" } dd { (t.version) }
                dt { "Created" } dd { (t.created_at) }
                dt { "Updated" } dd { (t.updated_at) }
            }
            @if !t.description.is_empty() { pre.description { (t.description) } }
            section {
                h2 { "Waits on" @if t.waiting_on > 0 { " (" (t.waiting_on) " not done)" } }
                (dep_rows(&p.deps.on))
                @let cancelled = p.shown.cancelled();
                @if !cancelled.is_empty() {
                    p.note { "Cancelled, not done: " @for c in cancelled { (c) " " } }
                }
                h2 { "Needed by" }
                (dep_rows(&p.deps.needed_by))
            }
            section {
                h2 { "Children" @if progress.total > 0 { " (" (progress.done) " of " (progress.total) " done)" } }
                @if p.shown.children.is_empty() { p.none { "None." } } @else {
                    ul { @for c in &p.shown.children {
                        li { a href={ "/tasks/" (c.id) } { (c.id) } " " (c.title) " — " (c.status) }
                    } }
                }
            }
            section {
                h2 { "Lease history" }
                @if p.history.is_empty() { p.none { "No lease events." } } @else {
                    table.history {
                        thead { tr { th { "#" } th { "When" } th { "What" } th { "Agent" } th { "Fence" } th { "Lease" } th { "Detail" } } }
                        tbody {
                            @for e in p.history.iter().rev() {
                                tr {
                                    td { (e.seq) }
                                    td title=(e.at) { (human_ms(now.since(e.at).max(0))) " ago" }
                                    td { span class={ "kind kind-" (e.kind) } { (e.kind) } }
                                    td { (e.agent) }
                                    td { @if let Some(tk) = e.fence { (tk) } }
                                    td { @if let Some(l) = e.lease_ms { (lease_str(l)) } }
                                    td { @if let Some(d) = &e.detail { (d) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A task's page.
pub fn task(frame: &Frame<'_>, p: &TaskPage) -> Markup {
    let t = &p.shown.task;
    let closed = matches!(t.status, Status::Done | Status::Cancelled);
    page(
        frame,
        t.id.as_ref(),
        "task",
        html! {
            p { a href="/" { "← Board" } }
            (task_live(p))
            @if let Some(secret) = frame.secret {
                section.actions aria-labelledby="actions-h" {
                    h2 #actions-h { "Change" }
                    form method="post" action={ "/tasks/" (t.id) "/release" } {
                        input type="hidden" name="secret" value=(secret);
                        button #force-release type="submit" { "Force-release" }
                        " ends whatever lease it has, without the holder's token"
                    }
                    @if !closed {
                        form method="post" action={ "/tasks/" (t.id) "/cancel" } {
                            input type="hidden" name="secret" value=(secret);
                            button #cancel type="submit" { "Cancel the task" }
                        }
                    }
                    form method="post" action={ "/tasks/" (t.id) "/priority" } {
                        input type="hidden" name="secret" value=(secret);
                        label { "Priority " (priority_select(t.priority)) }
                        " " button #reprioritise type="submit" { "Set" }
                    }
                }
            }
        },
    )
}

/// A bar chart of `values` (no bar where one is `None`), scaled to its largest.
fn chart(label: &str, values: &[Option<f64>], unit: impl Fn(f64) -> String) -> Markup {
    const W: f64 = 300.0;
    const H: f64 = 60.0;
    let max = values.iter().flatten().copied().fold(0.0_f64, f64::max);
    let width = W / values.len().max(1) as f64;
    let bars: Vec<(f64, f64, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let v = (*v)?;
            let h = if max > 0.0 {
                (H * v / max).max(1.0)
            } else {
                1.0
            };
            Some((width * i as f64, H - h, h))
        })
        .collect();
    let caption = format!("{label}, peak {}", unit(max));
    html! {
        figure.chart {
            figcaption { (caption) }
            svg viewBox="0 0 300 60" role="img" aria-label=(caption) preserveAspectRatio="none" {
                @for (x, y, h) in &bars {
                    rect.bar x=(format!("{x:.1}")) y=(format!("{y:.1}")) width=(format!("{:.1}", (width - 1.0).max(1.0))) height=(format!("{h:.1}")) {}
                }
            }
        }
    }
}

fn held_cell(h: &Held, now: Millis) -> Markup {
    html! {
        a href={ "/tasks/" (h.id) } { (h.id) } " "
        (countdown(h.lock_until, now, h.lease_ms))
        @if h.standing == Standing::Expired { " " span.expired { "anyone may claim it" } }
    }
}

/// The part of the fleet page the script swaps on change.
pub fn fleet_live(f: &Fleet) -> Markup {
    let claims: Vec<Option<f64>> = f.buckets.iter().map(|b| Some(b.claims_per_s)).collect();
    let p50: Vec<Option<f64>> = f
        .buckets
        .iter()
        .map(|b| b.wait_us_p50.map(|v| v as f64))
        .collect();
    let p99: Vec<Option<f64>> = f
        .buckets
        .iter()
        .map(|b| b.wait_us_p99.map(|v| v as f64))
        .collect();
    let c = &f.contention;
    html! {
        div #live data-now-ms=(f.now.as_millis()) {
            h1 { "Fleet" }
            p.summary {
                (f.agents.len()) " agents seen · " (f.held.len()) " leases held"
                @if let Some(s) = f.since { " · history since " (s) " (" (f.events) " events)" }
            }
            section aria-labelledby="agents-h" {
                h2 #agents-h { "Agents" }
                @if f.agents.is_empty() { p.none { "No agent seen yet." } } @else {
                    table.agents {
                        thead { tr { th { "Agent" } th { "Holds" } th { "Last seen" } th { "Claims" } } }
                        tbody {
                            @for a in &f.agents {
                                tr {
                                    td { a href={ "/?assignee=" (percent(a.id.as_str())) } { (a.id) } }
                                    td { @for h in &a.holds { div { (held_cell(h, f.now)) } } }
                                    td { @match a.last_seen {
                                        Some(t) => span title=(t) { (human_ms(f.now.since(t).max(0))) " ago" },
                                        None => "not in the window",
                                    } }
                                    td { (a.claims) }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="contention-h" {
                h2 #contention-h { "Contention" }
                p {
                    (c.won) " claims won, " (c.lost) " lost to a holder; "
                    (c.busy_retries) " busy retries in " (c.retried) " claims"
                    @if let (Some(p50), Some(p99)) = (c.wait_us_p50, c.wait_us_p99) {
                        "; wait for the write lock p50 " (human_us(p50)) ", p99 " (human_us(p99))
                    }
                }
                @if !f.buckets.is_empty() {
                    div.charts {
                        (chart("Claims/s", &claims, |v| format!("{v:.1}/s")))
                        (chart("Wait p50", &p50, |v| human_us(v as i64)))
                        (chart("Wait p99", &p99, |v| human_us(v as i64)))
                    }
                    p.note { "Each point is " (human_ms(f.bucket_ms)) " of history." }
                }
            }
            section aria-labelledby="leases-h" {
                h2 #leases-h { "Lease lengths" }
                @if f.fits.is_empty() { p.none { "No finished leases in the history yet." } } @else {
                    table {
                        thead { tr { th { "Lease" } th { "Leases" } th { "Held p50 / p90" } th { "Advice" } } }
                        tbody {
                            @for fit in &f.fits {
                                tr {
                                    td { (lease_str(fit.lease_ms)) }
                                    td { (fit.leases) " (" (fit.done) " done, " (fit.expired) " ran out)" }
                                    td { @if let (Some(a), Some(b)) = (fit.held_ms_p50, fit.held_ms_p90) { (human_ms(a)) " / " (human_ms(b)) } }
                                    td class={ "verdict-" (serde_json::to_value(fit.verdict).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) } { (fit.advice()) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The fleet page.
pub fn fleet(frame: &Frame<'_>, f: &Fleet) -> Markup {
    page(frame, "Fleet", "fleet", fleet_live(f))
}

/// A refusal or failure, as a page: what went wrong and the way back.
pub fn problem(frame: &Frame<'_>, title: &str, message: &str) -> Markup {
    page(
        frame,
        title,
        "",
        html! {
            h1 { (title) }
            p.problem role="alert" { (message) }
            p { a href="/" { "← Board" } }
        },
    )
}
