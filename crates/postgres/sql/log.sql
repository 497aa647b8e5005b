-- The last $1 lease events, oldest first.
SELECT seq, at, task, kind, agent, token, detail, lease_ms, wait_us, busy, reason FROM (
    SELECT * FROM events ORDER BY seq DESC LIMIT $1
) last ORDER BY seq
