-- tasklease schema v4: a task graph a team can live with.
--
-- A dependency is satisfied when it is done OR cancelled: a cancelled dependency no
-- longer blocks (before, its dependants waited forever). waiting_on counts the
-- unsatisfied dependencies, kept by triggers on edge insert, edge delete (new: edges
-- can be removed now) and a dependency's status crossing the satisfied line; every
-- row's count is recomputed here under the new rule. Whoever inserts or deletes an
-- edge locks the dependency FOR SHARE first, and status changes lock it FOR UPDATE, so
-- the two serialize and the later trigger sees the earlier commit.

CREATE OR REPLACE FUNCTION task_deps_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET waiting_on = waiting_on + 1
     WHERE seq = NEW.task
       AND (SELECT status NOT IN ('done', 'cancelled') FROM tasks WHERE seq = NEW.dep);
    RETURN NULL;
END
$$;

CREATE FUNCTION task_deps_removed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET waiting_on = waiting_on - 1
     WHERE seq = OLD.task
       AND (SELECT status NOT IN ('done', 'cancelled') FROM tasks WHERE seq = OLD.dep);
    RETURN NULL;
END
$$;
CREATE TRIGGER task_deps_removed AFTER DELETE ON task_deps
FOR EACH ROW EXECUTE FUNCTION task_deps_removed();

CREATE OR REPLACE FUNCTION tasks_done_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks SET waiting_on = waiting_on
           + (CASE WHEN NEW.status IN ('done', 'cancelled') THEN -1 ELSE 1 END)
     WHERE seq IN (SELECT task FROM task_deps WHERE dep = NEW.seq);
    RETURN NULL;
END
$$;
DROP TRIGGER tasks_done_changed ON tasks;
CREATE TRIGGER tasks_done_changed AFTER UPDATE OF status ON tasks
FOR EACH ROW WHEN ((OLD.status IN ('done', 'cancelled')) <> (NEW.status IN ('done', 'cancelled')))
EXECUTE FUNCTION tasks_done_changed();

UPDATE tasks SET waiting_on = (
    SELECT count(*) FROM task_deps JOIN tasks d ON d.seq = task_deps.dep
     WHERE task_deps.task = tasks.seq AND d.status NOT IN ('done', 'cancelled'));

-- Deleting tasks. Ids are never reused: a token of a deleted task must never become
-- valid again, and a new task under an old id would restart its fence at 0. The id
-- stays here (with the fence it reached) after its row is gone, and `add` refuses it.
CREATE TABLE deleted_ids (
    id         text   PRIMARY KEY,
    fence      bigint NOT NULL,
    deleted_at bigint NOT NULL
);

ALTER TABLE events DROP CONSTRAINT events_kind_check;
ALTER TABLE events ADD CONSTRAINT events_kind_check
    CHECK (kind IN ('claimed', 'reclaimed', 'renewed', 'released', 'done', 'reaped', 'forced',
                    'refused', 'deleted'));

-- Parents (epics): a non-blocking hierarchy. A child neither waits on its parent nor
-- holds it back; `show` reports a parent's progress. Deleting a parent leaves its
-- children without one. Cycles are refused before they are written.
-- By id, not seq: ids never change and are never reused, and every statement that
-- returns a task returns the parent's id with it, without a join.
ALTER TABLE tasks ADD COLUMN parent text REFERENCES tasks (id);
CREATE INDEX tasks_parent ON tasks (parent, seq) WHERE parent IS NOT NULL;
