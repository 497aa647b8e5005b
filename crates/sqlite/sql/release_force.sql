-- The admin escape hatch: end whatever lease the task has, without a token.
-- Runs after lease.sql read the holder in the same write transaction.
UPDATE tasks SET
    status      = :status,
    assignee    = NULL,
    assigned_at = NULL,
    lock_until  = NULL,
    attempts    = attempts + 1,
    lease_end   = 'forced',
    version     = version + 1,
    updated_at  = :now
WHERE id = :id AND status = 'in_progress' AND fence = :token AND tasklease_secret_eq(secret, :secret)
RETURNING seq
