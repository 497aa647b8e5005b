-- Whether task $1 waits on task $2 (both by seq).
SELECT EXISTS (SELECT 1 FROM task_deps WHERE task = $1 AND dep = $2)
