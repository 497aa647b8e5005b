SELECT id, title, description, status, priority, tags,
       (SELECT json_group_array(d.id ORDER BY d.seq) FROM task_deps JOIN tasks d ON d.seq = task_deps.dep
         WHERE task_deps.task = tasks.seq) AS deps,
       waiting_on, version, assignee, assigned_at, lock_until, attempts, created_at, updated_at,
       parent
  FROM tasks
