-- Delete one bounded slice of the oldest lease events: every seq below :below.
DELETE FROM events WHERE seq < :below
