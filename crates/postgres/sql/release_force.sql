-- The admin escape hatch: end whatever lease the task has, without a token, and
-- record whose it was. One statement; returns the task after, or the locked row's
-- state (no lease, or no such task).
-- $1 id, $2 injected now, $3 agent, $4 status (todo, review, blocked)
WITH now AS MATERIALIZED (SELECT clock_ms($2) AS t),
cur AS MATERIALIZED (
    SELECT seq, status, assignee, lock_until, fence, waiting_on FROM tasks WHERE id = $1 FOR UPDATE
),
ended AS (
    UPDATE tasks t SET
        status      = $4,
        assignee    = NULL,
        assigned_at = NULL,
        lock_until  = NULL,
        attempts    = t.attempts + 1,
        lease_end   = 'forced',
        version     = t.version + 1,
        updated_at  = now.t
      FROM cur, now
     WHERE t.seq = cur.seq AND cur.status = 'in_progress'
    RETURNING t.*
),
event AS (
    INSERT INTO events (at, task, kind, agent, token, detail)
    SELECT now.t, $1, 'forced', $3, cur.fence,
           'held by ' || cur.assignee || ' until ' || ms_text(cur.lock_until) || '; to ' || $4
      FROM ended, cur, now
),
-- Wakes waiters (LISTEN on the schema's channel, see listen.rs) at commit.
wake AS MATERIALIZED (SELECT pg_notify('tasklease_ready_' || md5(current_schema()), '') FROM ended WHERE $4 = 'todo')
SELECT now.t AS now, ended.*, task_deps_of(ended.seq) AS deps,
       cur.status AS cur_status, cur.assignee AS cur_assignee, cur.lock_until AS cur_lock_until,
       cur.fence AS cur_fence, cur.waiting_on AS cur_waiting_on,
       (SELECT count(*) FROM wake) AS woke
  FROM now LEFT JOIN cur ON true LEFT JOIN ended ON true
