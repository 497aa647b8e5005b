-- Both directions of task $1's dependencies (by seq), each oldest first: 'on' rows are
-- what it waits on, 'by' rows what waits on it.
SELECT 'on' AS dir, d.seq, d.id, d.status, d.assignee, d.lock_until
  FROM task_deps JOIN tasks d ON d.seq = task_deps.dep WHERE task_deps.task = $1
UNION ALL
SELECT 'by' AS dir, t.seq, t.id, t.status, t.assignee, t.lock_until
  FROM task_deps JOIN tasks t ON t.seq = task_deps.task WHERE task_deps.dep = $1
ORDER BY dir DESC, seq
