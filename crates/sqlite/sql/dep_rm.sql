-- Stop task :task waiting on task :dep (both by seq); the task_deps_removed trigger
-- recounts waiting_on.
DELETE FROM task_deps WHERE task = :task AND dep = :dep
