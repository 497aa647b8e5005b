-- tasklease schema v1 (PostgreSQL). Applied inside one transaction holding the
-- migration advisory lock, in the first schema of the connection's search_path.
-- Times are epoch milliseconds from the database clock (clock_timestamp()).

CREATE TABLE tasks (
    seq          bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- insertion order: "oldest first"
    id           text    NOT NULL UNIQUE,      -- validated TaskId
    title        text    NOT NULL,
    description  text    NOT NULL DEFAULT '',
    status       text    NOT NULL DEFAULT 'todo'
                 CHECK (status IN ('todo', 'in_progress', 'review', 'done', 'cancelled', 'blocked')),
    priority     bigint  NOT NULL DEFAULT 2 CHECK (priority BETWEEN 0 AND 3),  -- 0 = critical
    tags         text[]  NOT NULL DEFAULT '{}',
    version      bigint  NOT NULL DEFAULT 1,   -- optimistic counter, bumped on every change
    assignee     text,                         -- lease holder (display only)
    assigned_at  bigint,                       -- when the holder first claimed it
    lock_until   bigint,                       -- lease end
    fence        bigint  NOT NULL DEFAULT 0,   -- fencing token of the latest claim
    waiting_on   bigint  NOT NULL DEFAULT 0 CHECK (waiting_on >= 0),  -- deps not done; kept by triggers
    attempts     bigint  NOT NULL DEFAULT 0,   -- leases that ended without done
    created_at   bigint  NOT NULL,
    updated_at   bigint  NOT NULL,
    -- A lease exists exactly when the task is in_progress.
    CHECK ((status = 'in_progress') =
           (assignee IS NOT NULL AND assigned_at IS NOT NULL AND lock_until IS NOT NULL))
);

-- claim --next: the best ready task is the first unlocked entry of this index.
CREATE INDEX tasks_ready ON tasks (priority, seq) WHERE status = 'todo' AND waiting_on = 0;
-- reap, and claim --next over expired leases.
CREATE INDEX tasks_lease ON tasks (lock_until) WHERE status = 'in_progress';

CREATE TABLE task_deps (
    task bigint NOT NULL REFERENCES tasks (seq),
    dep  bigint NOT NULL REFERENCES tasks (seq),
    PRIMARY KEY (task, dep),
    CHECK (task <> dep)
);
CREATE INDEX task_deps_dep ON task_deps (dep, task);

-- The ids of a task's dependencies, oldest first.
CREATE FUNCTION task_deps_of(task_seq bigint) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(d.id ORDER BY d.seq), '{}')
      FROM task_deps JOIN tasks d ON d.seq = task_deps.dep
     WHERE task_deps.task = task_seq
$$;

-- waiting_on counts the dependencies that are not done. An edge added while its
-- dependency is being finished must be seen by one side: `add` locks the dependency
-- FOR SHARE before inserting the edge, and `done`/`update` lock it FOR UPDATE, so the
-- two serialize and the later one's trigger sees the earlier one's commit.
CREATE FUNCTION task_deps_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET waiting_on = waiting_on + 1
     WHERE seq = NEW.task
       AND (SELECT status FROM tasks WHERE seq = NEW.dep) <> 'done';
    RETURN NULL;
END
$$;
CREATE TRIGGER task_deps_added AFTER INSERT ON task_deps
FOR EACH ROW EXECUTE FUNCTION task_deps_added();

CREATE FUNCTION tasks_done_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET waiting_on = waiting_on + (CASE WHEN NEW.status = 'done' THEN -1 ELSE 1 END)
     WHERE seq IN (SELECT task FROM task_deps WHERE dep = NEW.seq);
    RETURN NULL;
END
$$;
CREATE TRIGGER tasks_done_changed AFTER UPDATE OF status ON tasks
FOR EACH ROW WHEN ((OLD.status = 'done') <> (NEW.status = 'done'))
EXECUTE FUNCTION tasks_done_changed();

-- The one clock of a statement: the injected instant (tests), else the server's
-- clock. clock_timestamp(), not now(): now() is the transaction's start, which a
-- statement that waited for a row lock would see as the past.
CREATE FUNCTION clock_ms(injected bigint) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(injected, round(extract(epoch FROM clock_timestamp()) * 1000)::bigint)
$$;

-- An instant as RFC 3339 UTC with milliseconds, as tasklease prints it.
CREATE FUNCTION ms_text(ms bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(to_timestamp(ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- Lease history: one row per lease event.
CREATE TABLE events (
    seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     bigint NOT NULL,
    task   text   NOT NULL,
    kind   text   NOT NULL
           CHECK (kind IN ('claimed', 'reclaimed', 'renewed', 'released', 'done', 'reaped', 'forced')),
    agent  text   NOT NULL,
    token  bigint,
    detail text
);
CREATE INDEX events_task ON events (task, seq);
