-- Make task seq $1 depend on task id $2; no row when $2 does not exist.
-- FOR SHARE waits out a concurrent `done` of the dependency (and holds it off until
-- this transaction commits), so the waiting_on trigger counts its final status.
INSERT INTO task_deps (task, dep)
SELECT $1, seq FROM tasks WHERE id = $2 FOR SHARE
