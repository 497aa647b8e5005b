-- Which of the dependencies an import names outside itself exist, each locked FOR
-- SHARE as add_dep.sql locks one, so the waiting_on trigger counts final statuses.
-- $1 ids
SELECT id FROM tasks WHERE id = ANY ($1) ORDER BY seq FOR SHARE
