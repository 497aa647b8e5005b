-- The edge-counting trigger back on, before the import commits.
ALTER TABLE task_deps ENABLE TRIGGER task_deps_added
