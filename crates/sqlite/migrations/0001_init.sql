-- tasklease schema v1 (SQLite). Applied inside one BEGIN IMMEDIATE transaction.
-- Times are epoch milliseconds from the database clock.

CREATE TABLE tasks (
    seq          INTEGER PRIMARY KEY,          -- insertion order: "oldest first"
    id           TEXT    NOT NULL UNIQUE,      -- validated TaskId
    title        TEXT    NOT NULL,
    description  TEXT    NOT NULL DEFAULT '',
    status       TEXT    NOT NULL DEFAULT 'todo'
                 CHECK (status IN ('todo', 'in_progress', 'review', 'done', 'cancelled', 'blocked')),
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

-- Lease history: one row per lease event.
CREATE TABLE events (
    seq    INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    task   TEXT    NOT NULL,
    kind   TEXT    NOT NULL
           CHECK (kind IN ('claimed', 'reclaimed', 'renewed', 'released', 'done', 'reaped', 'forced')),
    agent  TEXT    NOT NULL,
    token  INTEGER,
    detail TEXT
) STRICT;
CREATE INDEX events_task ON events (task, seq);
