-- waiting_on from scratch for tasks whose dependency edges were replaced: the
-- triggers count edges added, not edges removed. A dependency done or cancelled is
-- satisfied (design.md, "The task graph").
-- $1 ids
UPDATE tasks SET waiting_on =
    (SELECT count(*) FROM task_deps JOIN tasks d ON d.seq = task_deps.dep
      WHERE task_deps.task = tasks.seq AND d.status NOT IN ('done', 'cancelled'))
 WHERE id = ANY ($1)
