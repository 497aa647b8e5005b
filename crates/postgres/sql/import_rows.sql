-- The import's tasks that exist already, locked (in seq order, so two imports cannot
-- deadlock) until the import commits: nobody can claim one between the look and the
-- decision.
-- $1 ids
SELECT tasks.*, task_deps_of(seq) AS deps FROM tasks
 WHERE id = ANY ($1)
 ORDER BY seq
   FOR UPDATE
