-- The dependencies of a task that are not satisfied (neither done nor cancelled).
SELECT d.id FROM task_deps
  JOIN tasks d ON d.seq = task_deps.dep
  JOIN tasks t ON t.seq = task_deps.task
 WHERE t.id = :id AND d.status <> 'done' AND d.status <> 'cancelled'
 ORDER BY d.seq
