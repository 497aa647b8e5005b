-- A task's dependencies changed: a change to the task as others see it.
-- $1 seq, $2 injected now
UPDATE tasks SET version = version + 1, updated_at = clock_ms($2) WHERE seq = $1
