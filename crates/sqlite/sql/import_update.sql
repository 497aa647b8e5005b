-- Overwrite a task an import brings again and that differs. The caller read the row in
-- this same write transaction and left it alone if a live lease holds it; a lease that
-- ran out ends here, as an update ends one.
UPDATE tasks SET
    title       = :title,
    description = :description,
    status      = :status,
    priority    = :priority,
    tags        = :tags,
    attempts    = :attempts,
    assignee    = NULL,
    assigned_at = NULL,
    lock_until  = NULL,
    lease_end   = CASE WHEN status = 'in_progress' THEN 'updated' ELSE lease_end END,
    version     = version + 1,
    updated_at  = :now
WHERE seq = :seq
