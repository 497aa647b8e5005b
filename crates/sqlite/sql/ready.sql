-- What claim_next takes (see claim_next.sql: the same two candidate sets), as a
-- condition on task_columns.sql, ordered as claim_next orders them by the caller's
-- ORDER BY priority, seq. :now is the read's clock.
waiting_on = 0 AND (status = 'todo' OR (status = 'in_progress' AND lock_until <= :now))
