-- A task's row number, by id.
SELECT seq FROM tasks WHERE id = :id
