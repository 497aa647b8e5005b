-- Take back a row `add` just inserted under a generated id that turned out to belong
-- to a deleted task (a delete that committed while the insert waited). $1 id
DELETE FROM tasks WHERE id = $1
