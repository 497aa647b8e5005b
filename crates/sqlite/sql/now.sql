-- The one clock read of a transaction: the injected instant, else the database clock.
SELECT coalesce(:now, CAST(round(unixepoch('subsec') * 1000) AS INTEGER))
