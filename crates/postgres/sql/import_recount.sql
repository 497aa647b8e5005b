-- waiting_on from scratch for tasks whose dependency edges were replaced: the
-- triggers count edges added, not edges removed.
-- $1 ids
UPDATE tasks SET waiting_on =
    (SELECT count(*) FROM task_deps JOIN tasks d ON d.seq = task_deps.dep
      WHERE task_deps.task = tasks.seq AND d.status <> 'done')
 WHERE id = ANY ($1)
