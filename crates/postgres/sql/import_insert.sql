-- Create imported tasks, all in one statement, in the order given (their age), with the
-- source's status, times, version and attempts. Never a lease.
-- $1 ids, $2 titles, $3 descriptions, $4 statuses, $5 priority ranks, $6 tags (each list
-- joined by spaces: a tag holds none), $7 versions, $8 attempts, $9 created (NULL = now), $10 updated (NULL =
-- created), $11 now, $12 waiting_on (counted by the caller against the final
-- statuses, since the edges go in with the counting trigger off)
INSERT INTO tasks (id, title, description, status, priority, tags, version, attempts,
                   created_at, updated_at, waiting_on)
SELECT u.id, u.title, u.description, u.status, u.priority,
       string_to_array(u.tags, ' '), u.version, u.attempts,
       coalesce(u.created, $11), coalesce(u.updated, u.created, $11), u.waiting_on
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
              $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $12::bigint[])
       WITH ORDINALITY AS u(id, title, description, status, priority, tags, version,
                            attempts, created, updated, waiting_on, ord)
 ORDER BY u.ord
