-- The store's clock: the injected instant ($1), else the server's.
SELECT clock_ms($1)
