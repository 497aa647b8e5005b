-- The oldest and newest event, and the first event young enough to keep (:cutoff is
-- NULL without an age bound). Each subquery is one index probe, except the age probe,
-- which walks only the events it will delete.
SELECT (SELECT min(seq) FROM events),
       (SELECT max(seq) FROM events),
       (SELECT seq FROM events WHERE at >= :cutoff ORDER BY seq LIMIT 1)
