//! The SQL this store runs, one file per operation under `sql/`, named as the SQLite
//! store's files where the operation is the same.

use std::sync::LazyLock;

macro_rules! sql {
    ($($name:ident = $file:literal;)+) => {
        $(pub(crate) const $name: &str = include_str!(concat!("../sql/", $file));)+
    };
}

sql! {
    ADD = "add.sql";
    ADD_DEP = "add_dep.sql";
    ADD_UNDO = "add_undo.sql";
    CHILDREN = "children.sql";
    CLAIM = "claim.sql";
    CLAIM_BATCH = "claim_batch.sql";
    CLAIM_NEXT = "claim_next.sql";
    CLAIM_NEXT_WAKING_TAIL = "claim_next_waking.sql";
    COUNTS = "counts.sql";
    BLOCKED = "blocked.sql";
    DELETED_ID = "deleted_id.sql";
    DEP_EXISTS = "dep_exists.sql";
    DEP_LIST = "dep_list.sql";
    DEP_REACH = "dep_reach.sql";
    DEP_RM = "dep_rm.sql";
    DEP_TOUCH = "dep_touch.sql";
    DONE = "done.sql";
    GRAPH_LOCK = "graph_lock.sql";
    IMPORT_ANALYZE = "import_analyze.sql";
    IMPORT_CLEAR_DEPS = "import_clear_deps.sql";
    IMPORT_COUNTING_OFF = "import_counting_off.sql";
    IMPORT_COUNTING_ON = "import_counting_on.sql";
    IMPORT_DEPS = "import_deps.sql";
    IMPORT_DEPS_PRESENT = "import_deps_present.sql";
    IMPORT_INSERT = "import_insert.sql";
    IMPORT_PARENTS = "import_parents.sql";
    IMPORT_RECOUNT = "import_recount.sql";
    IMPORT_ROWS = "import_rows.sql";
    IMPORT_UPDATE = "import_update.sql";
    LIST = "list.sql";
    LOG = "log.sql";
    LOG_TASK = "log_task.sql";
    NEXT_ID = "next_id.sql";
    NOW = "now.sql";
    PARENT_CHAIN = "parent_chain.sql";
    PRIOR = "prior.sql";
    MINE = "mine.sql";
    READY = "ready.sql";
    READINESS = "readiness.sql";
    NOTIFY = "notify.sql";
    LISTEN_CHANNEL = "listen_channel.sql";
    PRUNE = "prune.sql";
    PRUNE_SPAN = "prune_span.sql";
    REAP = "reap.sql";
    RELEASE = "release.sql";
    RELEASE_FORCE = "release_force.sql";
    RENEW = "renew.sql";
    RM = "rm.sql";
    RM_DETACH = "rm_detach.sql";
    RM_EDGES = "rm_edges.sql";
    RM_LOCK = "rm_lock.sql";
    SET_PARENT = "set_parent.sql";
    SHOW = "show.sql";
    STAMP = "stamp.sql";
    TASK_BY_SEQ = "task_by_seq.sql";
    TASK_SEQ = "task_seq.sql";
    UPDATE = "update.sql";
}

/// `claim_batch.sql` waiting for row locks instead of skipping them: the last resort
/// when rows stay locked by others across several tries. Derived, so the two cannot
/// drift apart.
/// claim_next.sql whose answer also wakes waiters when another task is ready
/// (`claim_next_waking.sql` in place of its final SELECT).
pub(crate) static CLAIM_NEXT_WAKING: LazyLock<&'static str> = LazyLock::new(|| {
    let answer = CLAIM_NEXT
        .rfind("\nSELECT ")
        .expect("claim_next.sql ends with its answer, a SELECT");
    let tail = CLAIM_NEXT_WAKING_TAIL
        .find("\nmore AS")
        .expect("claim_next_waking.sql starts its CTE with `more AS`");
    let waking = format!(
        "{},{}",
        &CLAIM_NEXT[..answer],
        &CLAIM_NEXT_WAKING_TAIL[tail..]
    );
    Box::leak(waking.into_boxed_str())
});

pub(crate) static CLAIM_BATCH_WAIT: LazyLock<&'static str> = LazyLock::new(|| {
    let wait = CLAIM_BATCH.replace("FOR UPDATE SKIP LOCKED", "FOR UPDATE");
    assert_ne!(
        wait, CLAIM_BATCH,
        "claim_batch.sql must lock with SKIP LOCKED"
    );
    Box::leak(wait.into_boxed_str())
});
