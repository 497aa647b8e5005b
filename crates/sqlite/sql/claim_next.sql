-- Claim the highest-priority ready task, oldest first, in one statement.
-- Ready: todo with every dependency done (the tasks_ready index, already in
-- (priority, seq) order), or in_progress under an expired lease (the tasks_lease index).
-- The common case — no lease has expired — is one index probe and one index seek;
-- only when some lease has expired does the statement merge and sort both candidates.
-- It reads the clock itself (one statement sees one instant), so the hot path needs no
-- separate clock query; :now is NULL outside tests.
UPDATE tasks SET
    fence       = fence + 1,
    secret      = :secret,
    attempts    = attempts + (status = 'in_progress'),
    status      = 'in_progress',
    assignee    = :agent,
    assigned_at = coalesce(:now, CAST(round(unixepoch('subsec') * 1000) AS INTEGER)),
    lock_until  = coalesce(:now, CAST(round(unixepoch('subsec') * 1000) AS INTEGER)) + :lease_ms,
    claim_request = :request,
    version     = version + 1,
    -- What this claim cost its claimer, for the tasks_claimed trigger's history row.
    claim_wait_us = :wait_us,
    claim_busy  = :busy,
    updated_at  = coalesce(:now, CAST(round(unixepoch('subsec') * 1000) AS INTEGER))
WHERE seq = CASE
    WHEN NOT EXISTS (SELECT 1 FROM tasks WHERE status = 'in_progress' AND lock_until <= coalesce(:now, CAST(round(unixepoch('subsec') * 1000) AS INTEGER)))
    THEN (SELECT seq FROM tasks WHERE status = 'todo' AND waiting_on = 0
           ORDER BY priority, seq LIMIT 1)
    ELSE (SELECT seq FROM (
              SELECT seq, priority FROM (
                  SELECT seq, priority FROM tasks
                   WHERE status = 'todo' AND waiting_on = 0
                   ORDER BY priority, seq LIMIT 1)
              UNION ALL
              SELECT seq, priority FROM (
                  SELECT seq, priority FROM tasks
                   WHERE status = 'in_progress' AND lock_until <= coalesce(:now, CAST(round(unixepoch('subsec') * 1000) AS INTEGER)) AND waiting_on = 0
                   ORDER BY priority, seq LIMIT 1)
          ) ORDER BY priority, seq LIMIT 1)
END
RETURNING id, fence, secret, assigned_at, lock_until, version
