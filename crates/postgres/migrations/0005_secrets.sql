-- tasklease schema v5: tokens become bearer secrets; release and done carry a reason.
--
-- secret: the secret half of the token issued under the row's fence (a token is
-- <fence>.<secret>; see crates/core/src/token.rs). Every claim that raises the fence
-- sets it; renew, release, done and update match it with tasklease_secret_eq as well as
-- the fence. Kept after the lease ends, so a retried done or release by the same token
-- is still recognised. Rows migrated here have none: a lease live now keeps working with
-- its old bare-integer token until it ends (a bare integer matches only a lease without
-- a secret), and every later claim mints a secret. Nothing else changes for them.
ALTER TABLE tasks ADD COLUMN secret text;

-- Two secrets match when both are absent (a pre-v5 lease and its bare integer), or when
-- their SHA-256 digests are equal: text equality stops at the first differing byte, a
-- digest comparison's timing says nothing about the secret.
CREATE FUNCTION tasklease_secret_eq(stored text, given text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN stored IS NULL OR given IS NULL
                      THEN stored IS NULL AND given IS NULL
                      ELSE sha256(convert_to(stored, 'UTF8')) = sha256(convert_to(given, 'UTF8'))
                 END $$;

-- reason: the short text a release or done gave (`--reason`), shown by show and log.
ALTER TABLE events ADD COLUMN reason text;
