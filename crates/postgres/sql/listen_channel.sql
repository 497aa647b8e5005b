-- The channel a waiter LISTENs on: one per schema, so stores sharing a database
-- do not wake each other's waiters (notify.sql and the wake CTEs name the same).
SELECT 'tasklease_ready_' || md5(current_schema())
