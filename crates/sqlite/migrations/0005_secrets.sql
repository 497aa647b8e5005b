-- tasklease schema v5: tokens become bearer secrets; release and done carry a reason.
--
-- secret: the secret half of the token issued under the row's fence (a token is
-- <fence>.<secret>; see crates/core/src/token.rs). Every claim that raises the fence
-- sets it; renew, release, done and update match it (tasklease_secret_eq, a
-- constant-time comparison the store registers on its connections) as well as the
-- fence. Kept after the lease ends, so a retried done or release by the same token is
-- still recognised. Rows migrated here have none: a lease live now keeps working with
-- its old bare-integer token until it ends (a bare integer matches only a lease without
-- a secret), and every later claim mints a secret. Nothing else changes for them.
ALTER TABLE tasks ADD COLUMN secret TEXT;

-- reason: the short text a release or done gave (`--reason`), shown by show and log.
ALTER TABLE events ADD COLUMN reason TEXT;
