-- Edges an import inserts are counted by the importer, not by the per-row trigger (a
-- row update per edge: 100,000 edges took 8 s). Transactional: a rolled-back import
-- turns it back on. Takes task_deps ACCESS EXCLUSIVE until the import commits, so no
-- other edge can be inserted (uncounted) meanwhile; concurrent add and done wait.
ALTER TABLE task_deps DISABLE TRIGGER task_deps_added
