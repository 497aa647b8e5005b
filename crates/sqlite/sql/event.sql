INSERT INTO events (at, task, kind, agent, token, detail)
VALUES (:now, :task, :kind, :agent, :token, :detail)
