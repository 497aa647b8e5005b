-- Task $1 (by seq) is about to be deleted: its children are left without a parent.
-- $2 injected now
UPDATE tasks SET parent = NULL, version = version + 1, updated_at = clock_ms($2)
 WHERE parent = (SELECT id FROM tasks WHERE seq = $1)
