-- Every dependency edge of the created and overwritten tasks in one statement.
-- $1 dependant ids, $2 dependency ids (pairs)
INSERT INTO task_deps (task, dep)
SELECT t.seq, d.seq
  FROM unnest($1::text[], $2::text[]) AS u(task, dep)
  JOIN tasks t ON t.id = u.task
  JOIN tasks d ON d.id = u.dep
