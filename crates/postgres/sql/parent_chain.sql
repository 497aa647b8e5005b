-- Task $1 and its ancestors, nearest first: setting $1 as the parent of a task on this
-- chain would close a cycle. The depth bound only guards against a cycle written by
-- hand; tasklease never writes one.
WITH RECURSIVE up(id, depth) AS (
    SELECT $1::text, 0
    UNION ALL
    SELECT t.parent, up.depth + 1 FROM up JOIN tasks t ON t.id = up.id
     WHERE t.parent IS NOT NULL AND up.depth < 100000
)
SELECT id FROM up ORDER BY depth
