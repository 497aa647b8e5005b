-- Every edge reachable from task :dep (by seq) along dependencies, as (task id, dep id):
-- the caller searches it for a path back to the task that would wait on :dep, which
-- the new edge would close into a cycle. UNION visits each edge once, so the walk is
-- linear in the edges reachable, however many paths lead to them.
WITH RECURSIVE reach(task, dep) AS (
    SELECT task, dep FROM task_deps WHERE task = :dep
    UNION
    SELECT e.task, e.dep FROM reach JOIN task_deps e ON e.task = reach.dep
)
SELECT t.id, d.id FROM reach
  JOIN tasks t ON t.seq = reach.task
  JOIN tasks d ON d.seq = reach.dep
