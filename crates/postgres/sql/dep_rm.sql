-- Stop task $1 waiting on task $2 (both by seq); the task_deps_removed trigger
-- recounts waiting_on. FOR SHARE waits out a concurrent status change of the
-- dependency (see add_dep.sql), so exactly one trigger counts the edge's end.
WITH d AS (SELECT seq FROM tasks WHERE seq = $2 FOR SHARE)
DELETE FROM task_deps USING d WHERE task_deps.task = $1 AND task_deps.dep = d.seq
