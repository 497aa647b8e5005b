INSERT INTO events (at, task, kind, agent, token, detail, lease_ms, wait_us, busy, reason)
VALUES (:now, :task, :kind, :agent, :token, :detail, :lease_ms, :wait_us, :busy, :reason)
