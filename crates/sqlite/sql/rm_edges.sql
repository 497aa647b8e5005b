-- Drop every edge from and to task :seq before deleting it; the task_deps_removed
-- trigger recounts its dependants' waiting_on.
DELETE FROM task_deps WHERE task = :seq OR dep = :seq
