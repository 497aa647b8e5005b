-- The parents of the tasks an import wrote, set once every row exists (a child may
-- come before its parent). The caller checked each parent exists and that no cycle
-- forms (check_batch_parents). NULL clears an overwritten task's parent.
-- $1 ids, $2 parent ids (NULL for none)
UPDATE tasks SET parent = u.parent
  FROM unnest($1::text[], $2::text[]) AS u(id, parent)
 WHERE tasks.id = u.id
