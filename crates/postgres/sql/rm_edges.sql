-- Drop every edge from and to task $1 (by seq) before deleting it, in a statement of
-- its own: the task_deps_removed trigger reads the dependency's status, which must
-- still be there. It recounts the dependants' waiting_on.
DELETE FROM task_deps WHERE task = $1 OR dep = $1
