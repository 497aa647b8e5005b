-- The children of task ?, as a condition on task_columns.sql.
parent = ?
