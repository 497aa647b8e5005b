-- The live leases granted to $2 under the claim key $1, in claim order: what a retried
-- claim answers with instead of claiming again. Read in the claim's own transaction,
-- after an advisory lock on the key, so a retry waits for a first attempt still running
-- (see docs/reliability.md).
-- $1 claim key, $2 agent, $3 injected now
SELECT id, fence, secret, assigned_at, lock_until, version FROM tasks
 WHERE claim_request = $1 AND assignee = $2
   AND status = 'in_progress' AND lock_until > clock_ms($3)
 ORDER BY seq
