-- End a lease by its current token and hand the task back in :status.
UPDATE tasks SET
    status      = :status,
    assignee    = NULL,
    assigned_at = NULL,
    lock_until  = NULL,
    attempts    = attempts + (:status <> 'review'),
    lease_end   = 'released',
    version     = version + 1,
    updated_at  = :now
WHERE id = :id AND status = 'in_progress' AND fence = :token AND tasklease_secret_eq(secret, :secret)
RETURNING seq
