-- Make :parent (an id, or NULL for none) the parent of task :seq.
UPDATE tasks SET parent = :parent WHERE seq = :seq
