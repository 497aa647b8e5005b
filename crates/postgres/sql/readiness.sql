-- Whether claim_next would find a task now (its two candidate sets, see
-- claim_next.sql), and the earliest end of a lease still live: a waiter's look before
-- it claims, and its timer. Two index probes (tasks_ready, tasks_lease), claiming nothing.
-- $1 injected now
WITH now AS MATERIALIZED (SELECT clock_ms($1) AS t)
SELECT now.t AS now,
       (EXISTS (SELECT 1 FROM tasks WHERE status = 'todo' AND waiting_on = 0)
        OR EXISTS (SELECT 1 FROM tasks, now WHERE status = 'in_progress' AND lock_until <= now.t
                                              AND waiting_on = 0)) AS ready,
       (SELECT min(lock_until) FROM tasks, now WHERE status = 'in_progress' AND lock_until > now.t)
           AS next_expiry
  FROM now
