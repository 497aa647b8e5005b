-- Open tasks waiting on at least one unsatisfied dependency, as a condition on
-- task_columns.sql.
waiting_on > 0 AND status <> 'done' AND status <> 'cancelled'
