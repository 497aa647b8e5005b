-- Claim one task by id, in one statement (one round trip, autocommit):
--   cur      locks the row, waiting for a concurrent writer to finish, so a refusal
--            names the holder that actually won;
--   claimed  takes it if it is free: todo/review/blocked, or in_progress under an
--            expired lease; the holder presenting its current token re-claims
--            (lease extended, token and assigned_at kept);
--   event    records the claim, with its lease length and wait;
--   refused  records a claim lost to a live holder (other refusals are not events);
-- and the row that comes back holds the lease, or the locked row's state to say
-- why not (no row from cur: no such task).
-- $1 id, $2 agent, $3 injected now, $4 lease ms, $5 token (NULL: none), $6 re-runs,
-- $7 claim key (NULL: none; a re-claim keeps the lease's key unless given another),
-- $8 the token's secret (NULL: none, or a pre-v5 bare integer), $9 a new lease's secret
WITH now AS MATERIALIZED (SELECT clock_ms($3) AS t),
cur AS MATERIALIZED (
    SELECT seq, status, assignee, lock_until, fence, waiting_on,
           (status = 'in_progress' AND fence IS NOT DISTINCT FROM $5::bigint
            AND tasklease_secret_eq(secret, $8::text)) AS reclaim
      FROM tasks WHERE id = $1
       FOR UPDATE
),
claimed AS (
    UPDATE tasks t SET
        fence       = CASE WHEN cur.reclaim THEN t.fence ELSE t.fence + 1 END,
        assigned_at = CASE WHEN cur.reclaim THEN t.assigned_at ELSE now.t END,
        secret      = CASE WHEN cur.reclaim THEN t.secret ELSE $9::text END,
        attempts    = t.attempts + (t.status = 'in_progress' AND NOT cur.reclaim)::int,
        status      = 'in_progress',
        assignee    = $2,
        lock_until  = now.t + $4,
        claim_request = CASE WHEN cur.reclaim THEN coalesce($7::text, t.claim_request) ELSE $7::text END,
        version     = t.version + 1,
        updated_at  = now.t
      FROM cur, now
     WHERE t.seq = cur.seq
       AND cur.waiting_on = 0
       AND (cur.status IN ('todo', 'review', 'blocked')
            OR (cur.status = 'in_progress' AND (cur.lock_until <= now.t OR cur.reclaim)))
    RETURNING t.fence, t.secret, t.assigned_at, t.lock_until, t.version, cur.reclaim
),
event AS (
    INSERT INTO events (at, task, kind, agent, token, lease_ms, wait_us, busy)
    SELECT now.t, $1, CASE WHEN claimed.reclaim THEN 'reclaimed' ELSE 'claimed' END, $2, claimed.fence,
           $4, waited_us(), $6::bigint
      FROM claimed, now
),
refused AS (
    INSERT INTO events (at, task, kind, agent, detail, wait_us, busy)
    SELECT now.t, $1, 'refused', $2,
           'held by ' || cur.assignee || ' until ' || ms_text(cur.lock_until), waited_us(), $6::bigint
      FROM cur, now
     WHERE NOT EXISTS (SELECT 1 FROM claimed)
       AND cur.status = 'in_progress' AND cur.lock_until > now.t
)
SELECT now.t AS now,
       claimed.fence AS token, claimed.secret, claimed.assigned_at, claimed.lock_until, claimed.version,
       cur.status AS cur_status, cur.assignee AS cur_assignee, cur.lock_until AS cur_lock_until,
       cur.fence AS cur_fence, cur.waiting_on AS cur_waiting_on,
       CASE WHEN claimed.fence IS NULL AND cur.waiting_on > 0 THEN
           ARRAY(SELECT d.id FROM task_deps JOIN tasks d ON d.seq = task_deps.dep
                  WHERE task_deps.task = cur.seq AND d.status NOT IN ('done', 'cancelled') ORDER BY d.seq)
       END AS cur_waiting
  FROM now LEFT JOIN cur ON true LEFT JOIN claimed ON true
