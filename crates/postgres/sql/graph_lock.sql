-- Serializes dependency additions in this schema for the rest of the transaction, so
-- the cycle check sees every edge committed before it and none can appear meanwhile.
SELECT pg_advisory_xact_lock(x'7467'::int, hashtext(current_schema()))
