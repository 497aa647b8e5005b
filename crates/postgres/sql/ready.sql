-- What claim_next takes, in the order it takes them, claiming nothing: its two
-- candidate sets (see claim_next.sql), by priority then age.
-- $1 tag, $2 limit, $3 injected now
WITH now AS MATERIALIZED (SELECT clock_ms($3) AS t)
SELECT tasks.*, task_deps_of(seq) AS deps FROM tasks, now
 WHERE waiting_on = 0 AND (status = 'todo' OR (status = 'in_progress' AND lock_until <= now.t))
   AND ($1::text IS NULL OR $1 = ANY (tags))
 ORDER BY priority, seq
 LIMIT $2
