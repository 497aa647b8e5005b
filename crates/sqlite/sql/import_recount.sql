-- waiting_on from scratch, for a task whose dependency edges were replaced: the
-- triggers count edges added, not edges removed.
UPDATE tasks SET waiting_on =
    (SELECT count(*) FROM task_deps JOIN tasks d ON d.seq = task_deps.dep
      WHERE task_deps.task = :task AND d.status <> 'done')
 WHERE seq = :task
