-- Return every expired lease's task to todo, record each, and list them, in one
-- statement. SKIP LOCKED: a row someone is writing right now (most likely claiming
-- or renewing it) is left for them; claims treat expired leases as free anyway.
-- $1 injected now, $2 agent
WITH now AS MATERIALIZED (SELECT clock_ms($1) AS t),
expired AS (
    SELECT seq, id, assignee, fence, lock_until FROM tasks
     WHERE status = 'in_progress' AND lock_until <= (SELECT t FROM now)
     ORDER BY lock_until, seq
       FOR UPDATE SKIP LOCKED
),
reaped AS (
    UPDATE tasks t SET
        status      = 'todo',
        assignee    = NULL,
        assigned_at = NULL,
        lock_until  = NULL,
        attempts    = t.attempts + 1,
        lease_end   = 'reaped',
        version     = t.version + 1,
        updated_at  = now.t
      FROM expired, now
     WHERE t.seq = expired.seq
    RETURNING expired.*
),
event AS (
    INSERT INTO events (at, task, kind, agent, token, detail)
    SELECT now.t, id, 'reaped', $2, fence,
           'lease of ' || assignee || ' ran out at ' || ms_text(lock_until)
      FROM reaped, now
     ORDER BY lock_until, seq
),
-- Wakes waiters (LISTEN on the schema's channel, see listen.rs) at commit.
wake AS MATERIALIZED (SELECT pg_notify('tasklease_ready_' || md5(current_schema()), '') FROM reaped)
SELECT id, assignee, fence, lock_until, (SELECT count(*) FROM wake) AS woke FROM reaped ORDER BY lock_until, seq
