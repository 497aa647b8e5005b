-- tasklease schema v3: what makes retrying after an unknown outcome safe.
--
-- lease_end: how the lease under the row's current fence ended — 'done', 'released',
-- 'reaped', 'forced' or 'updated' — so a done or release retried by the token that
-- already did exactly that answers success instead of "lease lost". NULL while the
-- lease is live, before any claim, and on rows finished before this migration (their
-- retries still answer "lease lost", as before). The history cannot tell: it is pruned.
ALTER TABLE tasks ADD COLUMN lease_end TEXT;

-- claim_request: the idempotency key of the claim that granted the current lease, so a
-- claim retried with the same key (by the same agent, while that lease is live)
-- answers with that lease instead of claiming a second task.
ALTER TABLE tasks ADD COLUMN claim_request TEXT;
CREATE INDEX tasks_claim_request ON tasks (claim_request) WHERE claim_request IS NOT NULL;
