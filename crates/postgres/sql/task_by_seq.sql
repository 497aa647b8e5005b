-- One task by its row number, with its dependency ids.
SELECT tasks.*, task_deps_of(seq) AS deps FROM tasks WHERE seq = $1
