-- An overwritten task's dependencies are replaced by the import's (recounted after).
DELETE FROM task_deps WHERE task = :task
