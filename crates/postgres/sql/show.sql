-- One task with its dependency ids.
SELECT tasks.*, task_deps_of(seq) AS deps FROM tasks WHERE id = $1
