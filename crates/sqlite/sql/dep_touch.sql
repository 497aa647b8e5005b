-- A task's dependencies changed: a change to the task as others see it.
UPDATE tasks SET version = version + 1, updated_at = :now WHERE seq = :task
