-- After a big import: fresh planner statistics, or the first list after it plans
-- task_deps_of() against the empty tables it saw before and runs for minutes
-- (100,000 tasks ran past the 30 s statement timeout). Runs inside the import's
-- transaction, which it sees; a role that may not analyze gets a warning, not an error.
ANALYZE tasks, task_deps
