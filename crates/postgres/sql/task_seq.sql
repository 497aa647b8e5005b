-- A task's row number, by id. $1 id
SELECT seq FROM tasks WHERE id = $1
