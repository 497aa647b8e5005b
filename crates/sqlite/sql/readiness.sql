-- Whether claim_next would find a task at :now (its two candidate sets, see
-- claim_next.sql), and the earliest end of a lease still live: a waiter's look before
-- it claims, and its timer. Two index probes (tasks_ready, tasks_lease), claiming nothing.
SELECT (EXISTS (SELECT 1 FROM tasks WHERE status = 'todo' AND waiting_on = 0)
        OR EXISTS (SELECT 1 FROM tasks WHERE status = 'in_progress' AND lock_until <= :now
                                         AND waiting_on = 0)),
       (SELECT min(lock_until) FROM tasks WHERE status = 'in_progress' AND lock_until > :now)
