-- Claim one task by id in one conditional statement.
-- Free: todo/review/blocked, or in_progress under an expired lease.
-- The holder presenting its current token re-claims: lease extended, token kept.
UPDATE tasks SET
    fence       = CASE WHEN status = 'in_progress' AND fence = :token THEN fence ELSE fence + 1 END,
    assigned_at = CASE WHEN status = 'in_progress' AND fence = :token THEN assigned_at ELSE :now END,
    attempts    = attempts + (status = 'in_progress' AND fence IS NOT :token),
    status      = 'in_progress',
    assignee    = :agent,
    lock_until  = :now + :lease_ms,
    -- The key this lease was granted under; a re-claim keeps it unless given another.
    claim_request = CASE WHEN status = 'in_progress' AND fence = :token
                         THEN coalesce(:request, claim_request) ELSE :request END,
    version     = version + 1,
    -- What this claim cost its claimer, for the tasks_claimed trigger's history row.
    claim_wait_us = :wait_us,
    claim_busy  = :busy,
    updated_at  = :now
WHERE id = :id
  AND waiting_on = 0
  AND (status = 'todo' OR status = 'review' OR status = 'blocked'
       OR (status = 'in_progress' AND (lock_until <= :now OR fence = :token)))
RETURNING fence, assigned_at, lock_until, version
