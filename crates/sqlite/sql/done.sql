-- Finish a task by its lease's current token.
UPDATE tasks SET
    status      = 'done',
    assignee    = NULL,
    assigned_at = NULL,
    lock_until  = NULL,
    lease_end   = 'done',
    version     = version + 1,
    updated_at  = :now
WHERE id = :id AND status = 'in_progress' AND fence = :token AND tasklease_secret_eq(secret, :secret)
RETURNING seq
