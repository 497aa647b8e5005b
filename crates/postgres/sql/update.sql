-- Optimistic update: only at version $2, and under a live lease only with its token
-- ($4). Leaving in_progress ends the lease. One statement; returns the task after,
-- or the locked row's state to explain why not.
-- $1 id, $2 expected version, $3 injected now, $4 token, $5 title, $6 description,
-- $7 priority rank, $8 status, $9 tags (each NULL: unchanged), $10 agent (history),
-- $11 the token's secret
WITH now AS MATERIALIZED (SELECT clock_ms($3) AS t),
cur AS MATERIALIZED (
    SELECT seq, status, assignee, lock_until, fence, secret, waiting_on, version FROM tasks WHERE id = $1 FOR UPDATE
),
updated AS (
    UPDATE tasks t SET
        title       = coalesce($5, t.title),
        description = coalesce($6, t.description),
        priority    = coalesce($7, t.priority),
        tags        = coalesce($9, t.tags),
        status      = coalesce($8, t.status),
        assignee    = CASE WHEN coalesce($8, t.status) = 'in_progress' THEN t.assignee END,
        assigned_at = CASE WHEN coalesce($8, t.status) = 'in_progress' THEN t.assigned_at END,
        lock_until  = CASE WHEN coalesce($8, t.status) = 'in_progress' THEN t.lock_until END,
        -- Not the holder's done or release: a retry of either must not take it for its own.
        lease_end   = CASE WHEN coalesce($8, t.status) <> t.status THEN 'updated' ELSE t.lease_end END,
        version     = t.version + 1,
        updated_at  = now.t
      FROM cur, now
     WHERE t.seq = cur.seq
       AND cur.version = $2
       AND NOT (cur.status = 'in_progress' AND cur.lock_until > now.t
                AND NOT (cur.fence IS NOT DISTINCT FROM $4::bigint
                         AND tasklease_secret_eq(cur.secret, $11::text)))
    RETURNING t.*
),
-- An update that moves a task out of in_progress ends its lease: a lease event.
event AS (
    INSERT INTO events (at, task, kind, agent, token, detail)
    SELECT now.t, updated.id,
           CASE WHEN updated.status = 'done' THEN 'done' ELSE 'released' END,
           $10, cur.fence, 'by update to ' || updated.status
      FROM updated, cur, now
     WHERE cur.status = 'in_progress' AND updated.status <> 'in_progress'
),
-- Wakes waiters (LISTEN on the schema's channel, see listen.rs) at commit: the task
-- itself may be ready now, or (done, cancelled) its dependants.
wake AS MATERIALIZED (SELECT pg_notify('tasklease_ready_' || md5(current_schema()), '') FROM updated
                       WHERE updated.status IN ('todo', 'done', 'cancelled'))
SELECT now.t AS now, updated.*, task_deps_of(updated.seq) AS deps,
       cur.status AS cur_status, cur.assignee AS cur_assignee, cur.lock_until AS cur_lock_until,
       cur.fence AS cur_fence, cur.secret AS cur_secret, cur.waiting_on AS cur_waiting_on, cur.version AS cur_version,
       (SELECT count(*) FROM wake) AS woke
  FROM now LEFT JOIN cur ON true LEFT JOIN updated ON true
