-- A mark of the committed state (Store::stamp): the snapshot a new transaction would
-- take (its xmin, xmax and the transactions still running). Any write that commits
-- moves it; it reads no table. It is cluster-wide, so writes to other databases move
-- it too, which only costs a watcher a re-read that finds nothing new.
SELECT pg_current_snapshot()::text
