-- Finish a task by its lease's current token. One statement: lock the row, finish
-- it (the tasks_done_changed trigger unblocks dependants), record; returns the task
-- after, or the locked row's state to explain why not.
-- $1 id, $2 token's fence, $3 injected now, $4 agent, $5 token's secret (NULL: a pre-v5
-- bare integer), $6 the reason given (NULL: none), $7 wake waiters (false: the caller
-- claims next itself and wakes them only if more is ready, see done_then_claim_next)
WITH now AS MATERIALIZED (SELECT clock_ms($3) AS t),
cur AS MATERIALIZED (
    SELECT seq, status, assignee, lock_until, fence, secret, waiting_on, lease_end FROM tasks WHERE id = $1 FOR UPDATE
),
ended AS (
    UPDATE tasks t SET
        status      = 'done',
        assignee    = NULL,
        assigned_at = NULL,
        lock_until  = NULL,
        lease_end   = 'done',
        version     = t.version + 1,
        updated_at  = now.t
      FROM cur, now
     WHERE t.seq = cur.seq AND cur.status = 'in_progress' AND cur.fence = $2
       AND tasklease_secret_eq(cur.secret, $5::text)
    RETURNING t.*
),
event AS (
    INSERT INTO events (at, task, kind, agent, token, reason)
    SELECT now.t, $1, 'done', $4, $2, $6::text FROM ended, now
),
-- Wakes waiters (LISTEN on the schema's channel, see listen.rs) at commit.
wake AS MATERIALIZED (SELECT pg_notify('tasklease_ready_' || md5(current_schema()), '') FROM ended WHERE $7::bool AND EXISTS (SELECT 1 FROM task_deps d WHERE d.dep = ended.seq))
SELECT now.t AS now, ended.*, task_deps_of(ended.seq) AS deps,
       cur.status AS cur_status, cur.assignee AS cur_assignee, cur.lock_until AS cur_lock_until,
       cur.fence AS cur_fence, cur.secret AS cur_secret, cur.waiting_on AS cur_waiting_on, cur.lease_end AS cur_lease_end,
       (SELECT count(*) FROM wake) AS woke
  FROM now LEFT JOIN cur ON true LEFT JOIN ended ON true
