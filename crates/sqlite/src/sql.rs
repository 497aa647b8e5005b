//! The SQL this store runs, one file per operation under `sql/`. The PostgreSQL store
//! keeps files of the same names.

macro_rules! sql {
    ($($name:ident = $file:literal;)+) => {
        $(pub(crate) const $name: &str = include_str!(concat!("../sql/", $file));)+
    };
}

sql! {
    ADD = "add.sql";
    ADD_DEP = "add_dep.sql";
    CHILDREN = "children.sql";
    CLAIM = "claim.sql";
    CLAIM_NEXT = "claim_next.sql";
    COUNTS = "counts.sql";
    BLOCKED = "blocked.sql";
    DELETED_ID = "deleted_id.sql";
    DEP_EXISTS = "dep_exists.sql";
    DEP_LIST = "dep_list.sql";
    DEP_REACH = "dep_reach.sql";
    DEP_RM = "dep_rm.sql";
    DEP_TOUCH = "dep_touch.sql";
    DONE = "done.sql";
    EVENT = "event.sql";
    EXPIRED = "expired.sql";
    IMPORT_CLEAR_DEPS = "import_clear_deps.sql";
    IMPORT_INSERT = "import_insert.sql";
    IMPORT_PARENTS = "import_parents.sql";
    IMPORT_RECOUNT = "import_recount.sql";
    IMPORT_UPDATE = "import_update.sql";
    LEASE = "lease.sql";
    LOG = "log.sql";
    LOG_TASK = "log_task.sql";
    NEXT_ID = "next_id.sql";
    NOW = "now.sql";
    PARENT_CHAIN = "parent_chain.sql";
    PRIOR = "prior.sql";
    MINE = "mine.sql";
    READY = "ready.sql";
    READINESS = "readiness.sql";
    PRUNE = "prune.sql";
    PRUNE_SPAN = "prune_span.sql";
    REAP = "reap.sql";
    RELEASE = "release.sql";
    RELEASE_FORCE = "release_force.sql";
    RENEW = "renew.sql";
    RM = "rm.sql";
    RM_DETACH = "rm_detach.sql";
    RM_EDGES = "rm_edges.sql";
    RM_TOMBSTONE = "rm_tombstone.sql";
    SET_PARENT = "set_parent.sql";
    STAMP = "stamp.sql";
    TASK_COLUMNS = "task_columns.sql";
    TASK_SEQ = "task_seq.sql";
    UPDATE = "update.sql";
    WAITING_ON = "waiting_on.sql";
}

/// One task's columns by rowid.
pub(crate) const TASK_BY_SEQ: &str =
    concat!(include_str!("../sql/task_columns.sql"), " WHERE seq = ?1");
/// One task's columns by id.
pub(crate) const TASK_BY_ID: &str =
    concat!(include_str!("../sql/task_columns.sql"), " WHERE id = ?1");
