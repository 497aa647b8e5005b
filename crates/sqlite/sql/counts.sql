-- How many tasks are in each status.
SELECT status, count(*) FROM tasks GROUP BY status
