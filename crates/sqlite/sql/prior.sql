-- The live leases granted to :agent under the claim key :request, in claim order: what
-- a retried claim answers with instead of claiming again. Read in the claim's write
-- transaction, with its :now.
SELECT id, fence, secret, assigned_at, lock_until, version FROM tasks
 WHERE claim_request = :request AND assignee = :agent
   AND status = 'in_progress' AND lock_until > :now
 ORDER BY seq
