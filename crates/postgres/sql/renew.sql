-- Extend a lease: only the current token (fence and secret) of an in_progress task. One statement:
-- lock the row, extend, record; or return the locked row's state to explain why not.
-- $1 id, $2 token's fence, $3 injected now, $4 lease ms, $5 agent, $6 token's secret
WITH now AS MATERIALIZED (SELECT clock_ms($3) AS t),
cur AS MATERIALIZED (
    SELECT seq, status, assignee, lock_until, fence, secret, waiting_on FROM tasks WHERE id = $1 FOR UPDATE
),
renewed AS (
    UPDATE tasks t SET
        lock_until = now.t + $4,
        version    = t.version + 1,
        updated_at = now.t
      FROM cur, now
     WHERE t.seq = cur.seq AND cur.status = 'in_progress' AND cur.fence = $2
       AND tasklease_secret_eq(cur.secret, $6::text)
    RETURNING t.assignee, t.fence, t.secret, t.assigned_at, t.lock_until, t.version
),
event AS (
    INSERT INTO events (at, task, kind, agent, token, lease_ms)
    SELECT now.t, $1, 'renewed', $5, renewed.fence, $4 FROM renewed, now
)
SELECT now.t AS now, renewed.*,
       cur.status AS cur_status, cur.assignee AS cur_assignee, cur.lock_until AS cur_lock_until,
       cur.fence AS cur_fence, cur.secret AS cur_secret, cur.waiting_on AS cur_waiting_on
  FROM now LEFT JOIN cur ON true LEFT JOIN renewed ON true
