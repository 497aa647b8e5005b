-- Task :seq is about to be deleted: its children are left without a parent.
UPDATE tasks SET parent = NULL, version = version + 1, updated_at = :now
 WHERE parent = (SELECT id FROM tasks WHERE seq = :seq)
