-- tasklease schema v4: a task graph a team can live with.
--
-- A dependency is satisfied when it is done OR cancelled: a cancelled dependency no
-- longer blocks (before, its dependants waited forever). waiting_on counts the
-- unsatisfied dependencies, kept by triggers on edge insert, edge delete (new: edges
-- can be removed now) and a dependency's status crossing the satisfied line; every
-- row's count is recomputed here under the new rule.

DROP TRIGGER task_deps_added;
DROP TRIGGER tasks_done_changed;

CREATE TRIGGER task_deps_added AFTER INSERT ON task_deps
BEGIN
    UPDATE tasks SET waiting_on = waiting_on + 1
     WHERE seq = NEW.task
       AND (SELECT status <> 'done' AND status <> 'cancelled' FROM tasks WHERE seq = NEW.dep);
END;

CREATE TRIGGER task_deps_removed AFTER DELETE ON task_deps
BEGIN
    UPDATE tasks SET waiting_on = waiting_on - 1
     WHERE seq = OLD.task
       AND (SELECT status <> 'done' AND status <> 'cancelled' FROM tasks WHERE seq = OLD.dep);
END;

CREATE TRIGGER tasks_satisfied_changed AFTER UPDATE OF status ON tasks
WHEN (OLD.status = 'done' OR OLD.status = 'cancelled')
     <> (NEW.status = 'done' OR NEW.status = 'cancelled')
BEGIN
    UPDATE tasks SET waiting_on = waiting_on
           + (CASE WHEN NEW.status = 'done' OR NEW.status = 'cancelled' THEN -1 ELSE 1 END)
     WHERE seq IN (SELECT task FROM task_deps WHERE dep = NEW.seq);
END;

UPDATE tasks SET waiting_on = (
    SELECT count(*) FROM task_deps JOIN tasks d ON d.seq = task_deps.dep
     WHERE task_deps.task = tasks.seq AND d.status <> 'done' AND d.status <> 'cancelled');

-- Deleting tasks. Ids are never reused: a token of a deleted task must never become
-- valid again, and a new task under an old id would restart its fence at 0. The id
-- stays here (with the fence it reached) after its row is gone, and `add` refuses it.
CREATE TABLE deleted_ids (
    id         TEXT    PRIMARY KEY,
    fence      INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- History gains kind 'deleted'. SQLite cannot alter a CHECK constraint, so the table is
-- rebuilt as in 0002; seq values are kept. The trigger names the table: recreated below.
DROP TRIGGER tasks_claimed;

CREATE TABLE events_v4 (
    seq      INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    task     TEXT    NOT NULL,
    kind     TEXT    NOT NULL
             CHECK (kind = 'claimed' OR kind = 'reclaimed' OR kind = 'renewed'
                    OR kind = 'released' OR kind = 'done' OR kind = 'reaped'
                    OR kind = 'forced' OR kind = 'refused' OR kind = 'deleted'),
    agent    TEXT    NOT NULL,
    token    INTEGER,
    detail   TEXT,
    lease_ms INTEGER,
    wait_us  INTEGER,
    busy     INTEGER
) STRICT;

INSERT INTO events_v4 (seq, at, task, kind, agent, token, detail, lease_ms, wait_us, busy)
SELECT seq, at, task, kind, agent, token, detail, lease_ms, wait_us, busy FROM events;

DROP TABLE events;
ALTER TABLE events_v4 RENAME TO events;

CREATE TRIGGER tasks_claimed AFTER UPDATE OF fence ON tasks
WHEN NEW.fence <> OLD.fence
BEGIN
    INSERT INTO events (at, task, kind, agent, token, lease_ms, wait_us, busy)
    VALUES (NEW.assigned_at, NEW.id, 'claimed', NEW.assignee, NEW.fence,
            NEW.lock_until - NEW.assigned_at, NEW.claim_wait_us, NEW.claim_busy);
END;

-- Parents (epics): a non-blocking hierarchy. A child neither waits on its parent nor
-- holds it back; `show` reports a parent's progress. Deleting a parent leaves its
-- children without one. Cycles are refused before they are written.
-- By id, not seq: ids never change and are never reused, and every statement that
-- returns a task returns the parent's id with it, without a join.
ALTER TABLE tasks ADD COLUMN parent TEXT REFERENCES tasks (id);
CREATE INDEX tasks_parent ON tasks (parent, seq) WHERE parent IS NOT NULL;
