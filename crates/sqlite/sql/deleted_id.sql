-- Whether :id belonged to a deleted task: ids are never reused.
SELECT EXISTS (SELECT 1 FROM deleted_ids WHERE id = :id)
