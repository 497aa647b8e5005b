INSERT INTO task_deps (task, dep) SELECT :task, seq FROM tasks WHERE id = :dep
