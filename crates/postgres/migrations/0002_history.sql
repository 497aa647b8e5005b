-- tasklease schema v2 (PostgreSQL): what `tasklease status` reports from, written by
-- the statements that already write each event, so no operation gains a round trip.
--   kind 'refused'  a claim lost to a live holder (detail names the holder)
--   lease_ms        the lease length granted (claimed, reclaimed, renewed)
--   wait_us, busy   claim attempts only: how long the statement waited for its row
--                   locks (µs, from the statement's start to its history INSERT), and
--                   how often the store re-ran it (deadlock or serialization failure)
--                   or retried a batch whose rows other claimers held

ALTER TABLE events DROP CONSTRAINT events_kind_check;
ALTER TABLE events ADD CONSTRAINT events_kind_check
    CHECK (kind IN ('claimed', 'reclaimed', 'renewed', 'released', 'done', 'reaped', 'forced',
                    'refused'));
ALTER TABLE events ADD COLUMN lease_ms bigint,
                   ADD COLUMN wait_us  bigint,
                   ADD COLUMN busy     bigint;

-- Microseconds from the statement's start until now (the caller's row locks are
-- held by then).
CREATE FUNCTION waited_us() RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT (extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000000)::bigint
$$;
