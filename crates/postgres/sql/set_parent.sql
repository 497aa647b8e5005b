-- Make $2 (an id, or NULL for none) the parent of task $1 (by seq).
UPDATE tasks SET parent = $2::text WHERE seq = $1
