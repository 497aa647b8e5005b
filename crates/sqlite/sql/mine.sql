-- The live leases :agent holds, with their tokens, oldest claim first: how an agent
-- that lost its context (a restart, an unknown outcome) finds its way back. Through the
-- tasks_lease index (every live lease), filtered by holder.
SELECT id, fence, secret, assigned_at, lock_until, version FROM tasks
 WHERE status = 'in_progress' AND lock_until > :now AND assignee = :agent
 ORDER BY assigned_at, seq
