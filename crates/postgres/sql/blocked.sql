-- Open tasks waiting on at least one unsatisfied dependency, by priority then age.
-- $1 statuses (text[], empty = all), $2 assignee, $3 tag, $4 limit
SELECT tasks.*, task_deps_of(seq) AS deps FROM tasks
 WHERE waiting_on > 0 AND status NOT IN ('done', 'cancelled')
   AND (cardinality($1::text[]) = 0 OR status = ANY ($1))
   AND ($2::text IS NULL OR assignee = $2)
   AND ($3::text IS NULL OR $3 = ANY (tags))
 ORDER BY priority, seq
 LIMIT $4
