-- Whether task :task waits on task :dep (both by seq).
SELECT EXISTS (SELECT 1 FROM task_deps WHERE task = :task AND dep = :dep)
