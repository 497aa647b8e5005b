-- Extend a lease: only the current token (fence and secret) of an in_progress task.
UPDATE tasks SET
    lock_until = :now + :lease_ms,
    version    = version + 1,
    updated_at = :now
WHERE id = :id AND status = 'in_progress' AND fence = :token AND tasklease_secret_eq(secret, :secret)
RETURNING assignee, fence, secret, assigned_at, lock_until, version
