-- Optimistic update: only at :expect version, and under a live lease only with its token.
-- Leaving in_progress ends the lease.
UPDATE tasks SET
    title       = coalesce(:title, title),
    description = coalesce(:description, description),
    priority    = coalesce(:priority, priority),
    tags        = coalesce(:tags, tags),
    status      = coalesce(:status, status),
    assignee    = CASE WHEN coalesce(:status, status) = 'in_progress' THEN assignee END,
    assigned_at = CASE WHEN coalesce(:status, status) = 'in_progress' THEN assigned_at END,
    lock_until  = CASE WHEN coalesce(:status, status) = 'in_progress' THEN lock_until END,
    -- Not the holder's done or release: a retry of either must not take it for its own.
    lease_end   = CASE WHEN coalesce(:status, status) <> status THEN 'updated' ELSE lease_end END,
    version     = version + 1,
    updated_at  = :now
WHERE id = :id
  AND version = :expect
  AND NOT (status = 'in_progress' AND lock_until > :now
           AND NOT (fence IS :token AND tasklease_secret_eq(secret, :secret)))
RETURNING seq
