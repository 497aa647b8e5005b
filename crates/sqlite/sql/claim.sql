-- Claim one task by id in one conditional statement.
-- Free: todo/review/blocked, or in_progress under an expired lease.
-- The holder presenting its current token (fence and secret) re-claims: lease extended,
-- token kept. A new lease gets :secret, minted by the claimer.
UPDATE tasks SET
    fence       = CASE WHEN status = 'in_progress' AND fence = :token AND tasklease_secret_eq(secret, :secret) THEN fence ELSE fence + 1 END,
    assigned_at = CASE WHEN status = 'in_progress' AND fence = :token AND tasklease_secret_eq(secret, :secret) THEN assigned_at ELSE :now END,
    attempts    = attempts + (status = 'in_progress'
                           AND NOT (fence IS :token AND tasklease_secret_eq(secret, :secret))),
    secret      = CASE WHEN status = 'in_progress' AND fence = :token AND tasklease_secret_eq(secret, :secret)
                       THEN secret ELSE :new_secret END,
    status      = 'in_progress',
    assignee    = :agent,
    lock_until  = :now + :lease_ms,
    -- The key this lease was granted under; a re-claim keeps it unless given another.
    claim_request = CASE WHEN status = 'in_progress' AND fence = :token AND tasklease_secret_eq(secret, :secret)
                         THEN coalesce(:request, claim_request) ELSE :request END,
    version     = version + 1,
    -- What this claim cost its claimer, for the tasks_claimed trigger's history row.
    claim_wait_us = :wait_us,
    claim_busy  = :busy,
    updated_at  = :now
WHERE id = :id
  AND waiting_on = 0
  AND (status = 'todo' OR status = 'review' OR status = 'blocked'
       OR (status = 'in_progress' AND (lock_until <= :now OR fence = :token AND tasklease_secret_eq(secret, :secret))))
RETURNING fence, secret, assigned_at, lock_until, version
