-- Which of the dependencies an import names outside itself exist, and their statuses,
-- each row locked FOR SHARE as add_dep.sql locks one, so the status read is the one
-- the created tasks' waiting_on is counted against until the import commits.
-- $1 ids
SELECT id, status FROM tasks WHERE id = ANY ($1) ORDER BY seq FOR SHARE
