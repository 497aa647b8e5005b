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
