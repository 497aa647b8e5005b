-- Overwritten tasks' dependencies are replaced by the import's (recounted after).
-- $1 ids
DELETE FROM task_deps WHERE task IN (SELECT seq FROM tasks WHERE id = ANY ($1))
