INSERT INTO tasks (id, title, description, priority, tags, created_at, updated_at)
VALUES (:id, :title, :description, :priority, :tags, :now, :now)
RETURNING seq
