-- Claim the highest-priority ready task, oldest first, in one statement.
-- Ready: todo with every dependency done (the tasks_ready index), or in_progress
-- under an expired lease (the tasks_lease index).
UPDATE tasks SET
    fence       = fence + 1,
    attempts    = attempts + (status = 'in_progress'),
    status      = 'in_progress',
    assignee    = :agent,
    assigned_at = :now,
    lock_until  = :now + :lease_ms,
    version     = version + 1,
    updated_at  = :now
WHERE seq = (
    SELECT seq FROM (
        SELECT seq, priority FROM (
            SELECT seq, priority FROM tasks
             WHERE status = 'todo' AND waiting_on = 0
             ORDER BY priority, seq LIMIT 1)
        UNION ALL
        SELECT seq, priority FROM (
            SELECT seq, priority FROM tasks
             WHERE status = 'in_progress' AND lock_until <= :now AND waiting_on = 0
             ORDER BY priority, seq LIMIT 1)
    ) ORDER BY priority, seq LIMIT 1)
RETURNING id, fence, assigned_at, lock_until, version
