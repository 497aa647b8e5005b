-- The live leases $1 holds, with their tokens, oldest claim first: how an agent that
-- lost its context (a restart, an unknown outcome) finds its way back. Through the
-- tasks_lease index (every live lease), filtered by holder.
-- $1 agent, $2 injected now
SELECT id, fence, secret, assigned_at, lock_until, version FROM tasks
 WHERE status = 'in_progress' AND lock_until > clock_ms($2) AND assignee = $1
 ORDER BY assigned_at, seq
