-- Delete one bounded slice of the oldest lease events: every seq below $1.
DELETE FROM events WHERE seq < $1
