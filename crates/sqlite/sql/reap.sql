-- Return every expired lease's task to todo. Runs after expired.sql listed the
-- same rows in the same write transaction, with the same :now.
UPDATE tasks SET
    status      = 'todo',
    assignee    = NULL,
    assigned_at = NULL,
    lock_until  = NULL,
    attempts    = attempts + 1,
    lease_end   = 'reaped',
    version     = version + 1,
    updated_at  = :now
WHERE status = 'in_progress' AND lock_until <= :now
