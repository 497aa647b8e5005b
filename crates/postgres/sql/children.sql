-- The children of task $1, by priority then age.
-- $1 parent id, $2 statuses (text[], empty = all), $3 assignee, $4 tag, $5 limit
SELECT tasks.*, task_deps_of(seq) AS deps FROM tasks
 WHERE parent = $1
   AND (cardinality($2::text[]) = 0 OR status = ANY ($2))
   AND ($3::text IS NULL OR assignee = $3)
   AND ($4::text IS NULL OR $4 = ANY (tags))
 ORDER BY priority, seq
 LIMIT $5
