-- Overwrite the tasks an import brings again and that differ, in one statement. The
-- caller locked and read each row in this transaction (import_rows.sql) and left out
-- those a live lease holds; a lease that ran out ends here, as an update ends one.
-- $1 ids, $2 titles, $3 descriptions, $4 statuses, $5 priority ranks, $6 tags (each list joined by
-- spaces: a tag holds none), $7 attempts, $8 now
UPDATE tasks SET
    title       = u.title,
    description = u.description,
    status      = u.status,
    priority    = u.priority,
    tags        = string_to_array(u.tags, ' '),
    attempts    = u.attempts,
    assignee    = NULL,
    assigned_at = NULL,
    lock_until  = NULL,
    lease_end   = CASE WHEN tasks.status = 'in_progress' THEN 'updated' ELSE tasks.lease_end END,
    version     = tasks.version + 1,
    updated_at  = $8
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
              $7::bigint[]) AS u(id, title, description, status, priority, tags, attempts)
 WHERE tasks.id = u.id
