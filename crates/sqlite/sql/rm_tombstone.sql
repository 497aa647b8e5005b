-- Keep task :seq's id (and the fence it reached) for ever: `add` refuses it.
INSERT INTO deleted_ids (id, fence, deleted_at) SELECT id, fence, :now FROM tasks WHERE seq = :seq
