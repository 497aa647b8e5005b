-- Delete task :seq (its edges and tombstone are written first).
DELETE FROM tasks WHERE seq = :seq
