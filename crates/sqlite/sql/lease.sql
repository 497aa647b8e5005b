-- The lease state of one task, to explain a refusal or a lost lease.
SELECT status, assignee, lock_until, fence, waiting_on, version, lease_end, secret FROM tasks WHERE id = :id
