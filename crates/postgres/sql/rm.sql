-- Delete task $1 (by seq): keep its id and fence for ever (`add` refuses the id),
-- record the deletion, delete the row. Its edges are gone already (rm_edges.sql).
-- $1 seq, $2 now (ms), $3 agent, $4 token (NULL: no lease ended), $5 detail
WITH tomb AS (
    INSERT INTO deleted_ids (id, fence, deleted_at)
    SELECT id, fence, $2 FROM tasks WHERE seq = $1
),
event AS (
    INSERT INTO events (at, task, kind, agent, token, detail)
    SELECT $2, id, 'deleted', $3, $4::bigint, $5::text FROM tasks WHERE seq = $1
)
DELETE FROM tasks WHERE seq = $1
