-- Claim the highest-priority ready task, oldest first, in one statement (one round
-- trip, autocommit). Ready: todo with every dependency done (the tasks_ready index),
-- or in_progress under an expired lease (the tasks_lease index). SKIP LOCKED: a row
-- another claimer is taking right now is passed over, never waited for. Each branch
-- locks at most one row; the better of the two is taken.
-- $1 agent, $2 injected now, $3 lease ms, $4 re-runs, $5 claim key (NULL: none),
-- $6 the new lease's secret
WITH now AS MATERIALIZED (SELECT clock_ms($2) AS t),
ready AS (
    SELECT seq, priority FROM tasks
     WHERE status = 'todo' AND waiting_on = 0
     ORDER BY priority, seq
     LIMIT 1
       FOR UPDATE SKIP LOCKED
),
expired AS (
    SELECT seq, priority FROM tasks
     WHERE status = 'in_progress' AND lock_until <= (SELECT t FROM now) AND waiting_on = 0
     ORDER BY priority, seq
     LIMIT 1
       FOR UPDATE SKIP LOCKED
),
pick AS (
    SELECT seq FROM (SELECT * FROM ready UNION ALL SELECT * FROM expired) c
     ORDER BY priority, seq
     LIMIT 1
),
claimed AS (
    UPDATE tasks t SET
        fence       = t.fence + 1,
        secret      = $6::text,
        attempts    = t.attempts + (t.status = 'in_progress')::int,
        status      = 'in_progress',
        assignee    = $1,
        assigned_at = now.t,
        lock_until  = now.t + $3,
        claim_request = $5::text,
        version     = t.version + 1,
        updated_at  = now.t
      FROM pick, now
     WHERE t.seq = pick.seq
    RETURNING t.id, t.fence, t.secret, t.assigned_at, t.lock_until, t.version
),
event AS (
    INSERT INTO events (at, task, kind, agent, token, lease_ms, wait_us, busy)
    SELECT now.t, claimed.id, 'claimed', $1, claimed.fence, $3, waited_us(), $4::bigint
      FROM claimed, now
)
SELECT id, fence, secret, assigned_at, lock_until, version FROM claimed
