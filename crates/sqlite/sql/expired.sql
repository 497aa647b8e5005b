-- Every lease that has run out at :now (the tasks_lease index).
SELECT id, assignee, fence, lock_until FROM tasks
 WHERE status = 'in_progress' AND lock_until <= :now
 ORDER BY lock_until, seq
