-- tasklease schema v2 (SQLite): what `tasklease status` reports from, all of it written
-- by the statements that already write the event, so the claim path gains no statement.
--   kind 'refused'  a claim lost to a live holder (detail names the holder)
--   lease_ms        the lease length granted (claimed, reclaimed, renewed)
--   wait_us, busy   claim attempts only: how long the claimer waited for the write lock
--                   (in µs, measured by the claimer) and how many busy retries SQLite made
-- SQLite cannot alter a CHECK constraint, so the table is rebuilt; seq values are kept.
-- Still no index but the rowid (see 0001).

-- The trigger names the table; it is recreated below, after the rebuild.
DROP TRIGGER tasks_claimed;

CREATE TABLE events_v2 (
    seq      INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    task     TEXT    NOT NULL,
    kind     TEXT    NOT NULL
             CHECK (kind = 'claimed' OR kind = 'reclaimed' OR kind = 'renewed'
                    OR kind = 'released' OR kind = 'done' OR kind = 'reaped'
                    OR kind = 'forced' OR kind = 'refused'),
    agent    TEXT    NOT NULL,
    token    INTEGER,
    detail   TEXT,
    lease_ms INTEGER,
    wait_us  INTEGER,
    busy     INTEGER
) STRICT;

INSERT INTO events_v2 (seq, at, task, kind, agent, token, detail)
SELECT seq, at, task, kind, agent, token, detail FROM events;

DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;

-- Scratch for the trigger, not task state: the claim statement that sets `fence`
-- also sets what taking the write lock cost its claimer, in the row it writes anyway,
-- and the trigger copies it into the history row.
ALTER TABLE tasks ADD COLUMN claim_wait_us INTEGER;
ALTER TABLE tasks ADD COLUMN claim_busy INTEGER;

CREATE TRIGGER tasks_claimed AFTER UPDATE OF fence ON tasks
WHEN NEW.fence <> OLD.fence
BEGIN
    INSERT INTO events (at, task, kind, agent, token, lease_ms, wait_us, busy)
    VALUES (NEW.assigned_at, NEW.id, 'claimed', NEW.assignee, NEW.fence,
            NEW.lock_until - NEW.assigned_at, NEW.claim_wait_us, NEW.claim_busy);
END;
