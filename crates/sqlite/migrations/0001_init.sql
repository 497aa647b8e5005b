-- tasklease schema v1 (SQLite). Applied inside one BEGIN IMMEDIATE transaction.
-- Times are epoch milliseconds from the database clock.

CREATE TABLE tasks (
    seq          INTEGER PRIMARY KEY,          -- insertion order: "oldest first"
    id           TEXT    NOT NULL UNIQUE,      -- validated TaskId
    title        TEXT    NOT NULL,
    description  TEXT    NOT NULL DEFAULT '',
    -- CHECKs are written as OR chains: SQLite builds a temporary table for every
    -- evaluation of `x IN (<list>)`, on every update of the row.
    status       TEXT    NOT NULL DEFAULT 'todo'
                 CHECK (status = 'todo' OR status = 'in_progress' OR status = 'review'
                        OR status = 'done' OR status = 'cancelled' OR status = 'blocked'),
    priority     INTEGER NOT NULL DEFAULT 2 CHECK (priority BETWEEN 0 AND 3),  -- 0 = critical
    tags         TEXT    NOT NULL DEFAULT '[]',                                -- JSON array
    version      INTEGER NOT NULL DEFAULT 1,   -- optimistic counter, bumped on every change
    assignee     TEXT,                         -- lease holder (display only)
    assigned_at  INTEGER,                      -- when the holder first claimed it
    lock_until   INTEGER,                      -- lease end
    fence        INTEGER NOT NULL DEFAULT 0,   -- fencing token of the latest claim
    waiting_on   INTEGER NOT NULL DEFAULT 0 CHECK (waiting_on >= 0),  -- deps not done; kept by triggers
    attempts     INTEGER NOT NULL DEFAULT 0,   -- leases that ended without done
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    -- A lease exists exactly when the task is in_progress.
    CHECK ((status = 'in_progress') =
           (assignee IS NOT NULL AND assigned_at IS NOT NULL AND lock_until IS NOT NULL))
) STRICT;

-- claim --next: the best ready task is the first entry of this index.
CREATE INDEX tasks_ready ON tasks (priority, seq) WHERE status = 'todo' AND waiting_on = 0;
-- reap, and claim --next over expired leases.
CREATE INDEX tasks_lease ON tasks (lock_until) WHERE status = 'in_progress';

CREATE TABLE task_deps (
    task INTEGER NOT NULL REFERENCES tasks (seq),
    dep  INTEGER NOT NULL REFERENCES tasks (seq),
    PRIMARY KEY (task, dep),
    CHECK (task <> dep)
) STRICT, WITHOUT ROWID;
CREATE INDEX task_deps_dep ON task_deps (dep, task);

-- waiting_on counts the dependencies that are not done.
CREATE TRIGGER task_deps_added AFTER INSERT ON task_deps
BEGIN
    UPDATE tasks SET waiting_on = waiting_on + 1
     WHERE seq = NEW.task
       AND (SELECT status FROM tasks WHERE seq = NEW.dep) <> 'done';
END;

CREATE TRIGGER tasks_done_changed AFTER UPDATE OF status ON tasks
WHEN (OLD.status = 'done') <> (NEW.status = 'done')
BEGIN
    UPDATE tasks SET waiting_on = waiting_on + (CASE WHEN NEW.status = 'done' THEN -1 ELSE 1 END)
     WHERE seq IN (SELECT task FROM task_deps WHERE dep = NEW.seq);
END;

-- Lease history: one row per lease event. No index but the rowid: every claim
-- appends here, and an index would add a page to every commit; `log ID` scans the
-- (retention-bounded) table instead.
CREATE TABLE events (
    seq    INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    task   TEXT    NOT NULL,
    kind   TEXT    NOT NULL
           CHECK (kind = 'claimed' OR kind = 'reclaimed' OR kind = 'renewed' OR kind = 'released'
                  OR kind = 'done' OR kind = 'reaped' OR kind = 'forced'),
    agent  TEXT    NOT NULL,
    token  INTEGER,
    detail TEXT
) STRICT;

-- Every new lease (a new fencing token) is recorded by the statement that grants it,
-- so no claim path can forget to, and no extra statement runs per claim.
CREATE TRIGGER tasks_claimed AFTER UPDATE OF fence ON tasks
WHEN NEW.fence <> OLD.fence
BEGIN
    INSERT INTO events (at, task, kind, agent, token)
    VALUES (NEW.assigned_at, NEW.id, 'claimed', NEW.assignee, NEW.fence);
END;
