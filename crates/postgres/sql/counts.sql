-- How many tasks are in each status.
SELECT status, count(*) AS n FROM tasks GROUP BY status
