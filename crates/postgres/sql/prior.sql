-- The live leases granted to $2 under the claim key $1, in claim order: what a retried
-- claim answers with instead of claiming again. A read before the claim statement: a
-- retry is safe once the first attempt has ended on the server (see docs/reliability.md).
-- $1 claim key, $2 agent, $3 injected now
SELECT id, fence, assigned_at, lock_until, version FROM tasks
 WHERE claim_request = $1 AND assignee = $2
   AND status = 'in_progress' AND lock_until > clock_ms($3)
 ORDER BY seq
