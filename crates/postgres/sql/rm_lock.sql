-- The row `rm` is about to delete, locked: a concurrent claim either committed before
-- (and its live lease is seen) or waits and then finds no row.
-- $1 id, $2 injected now
SELECT seq, status, assignee, lock_until, fence, clock_ms($2) AS now
  FROM tasks WHERE id = $1 FOR UPDATE
