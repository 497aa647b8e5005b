-- Extend a lease: only the current token of an in_progress task.
UPDATE tasks SET
    lock_until = :now + :lease_ms,
    version    = version + 1,
    updated_at = :now
WHERE id = :id AND status = 'in_progress' AND fence = :token
RETURNING assignee, fence, assigned_at, lock_until, version
