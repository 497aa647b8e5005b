-- The last :limit lease events of one task, oldest first.
SELECT seq, at, task, kind, agent, token, detail, lease_ms, wait_us, busy, reason FROM (
    SELECT * FROM events WHERE task = :task ORDER BY seq DESC LIMIT :limit
) ORDER BY seq
