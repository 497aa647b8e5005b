-- claim_next.sql for done_then_claim_next, whose done woke nobody: the same claim,
-- and a NOTIFY when a task other than the one claimed is ready too. Spliced onto
-- claim_next.sql's CTEs in place of its final SELECT (sql.rs), so the everyday claim
-- pays nothing for it. Counted in the answer so that it runs.
more AS MATERIALIZED (
    SELECT pg_notify('tasklease_ready_' || md5(current_schema()), '')
      FROM claimed, now
     WHERE EXISTS (SELECT 1 FROM tasks WHERE status = 'todo' AND waiting_on = 0 AND id <> claimed.id)
        OR EXISTS (SELECT 1 FROM tasks WHERE status = 'in_progress' AND lock_until <= now.t
                                         AND waiting_on = 0 AND id <> claimed.id)
)
SELECT id, fence, secret, assigned_at, lock_until, version, (SELECT count(*) FROM more) AS woke
  FROM claimed
