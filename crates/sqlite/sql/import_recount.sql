-- waiting_on from scratch, for a task whose dependency edges were replaced: the
-- triggers count edges added, not edges removed. A dependency done or cancelled is
-- satisfied (design.md, "The task graph").
UPDATE tasks SET waiting_on =
    (SELECT count(*) FROM task_deps JOIN tasks d ON d.seq = task_deps.dep
      WHERE task_deps.task = :task AND d.status <> 'done' AND d.status <> 'cancelled')
 WHERE seq = :task
