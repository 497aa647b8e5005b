-- Create an imported task with the source's status, times, version and attempts.
-- No lease: an import never creates one (nobody would hold its token).
INSERT INTO tasks (id, title, description, status, priority, tags, version, attempts,
                   created_at, updated_at)
VALUES (:id, :title, :description, :status, :priority, :tags, :version, :attempts,
        coalesce(:created, :now), coalesce(:updated, :created, :now))
RETURNING seq
