-- Wakes waiters (LISTEN on the schema's channel, see listen.rs) when the transaction
-- this runs in commits; nothing if it rolls back.
SELECT pg_notify('tasklease_ready_' || md5(current_schema()), '')
