-- Insert a task unless its id is taken (then no row comes back: a concurrent add of
-- the same id is waited for, never an error).
-- $1 id, $2 title, $3 description, $4 priority rank, $5 tags, $6 injected now
INSERT INTO tasks (id, title, description, priority, tags, created_at, updated_at)
SELECT $1, $2, $3, $4, $5, now.t, now.t FROM (SELECT clock_ms($6) AS t) now
ON CONFLICT (id) DO NOTHING
RETURNING seq
