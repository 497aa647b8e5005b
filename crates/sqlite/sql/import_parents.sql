-- The parent of a task an import wrote, set once every row exists (a child may come
-- before its parent). The caller checked each parent exists and that no cycle forms
-- (check_batch_parents). NULL clears an overwritten task's parent.
UPDATE tasks SET parent = :parent WHERE seq = :seq
