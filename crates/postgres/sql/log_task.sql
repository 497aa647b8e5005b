-- The last $2 lease events of task $1, oldest first (the events_task index).
SELECT seq, at, task, kind, agent, token, detail, lease_ms, wait_us, busy, reason FROM (
    SELECT * FROM events WHERE task = $1 ORDER BY seq DESC LIMIT $2
) last ORDER BY seq
