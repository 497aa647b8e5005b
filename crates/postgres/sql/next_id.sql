-- The smallest n above every row so far; T-<n> is tried first for a new task.
SELECT coalesce(max(seq), 0) + 1 FROM tasks
