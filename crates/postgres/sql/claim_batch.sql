-- Claim every task in $1, or none, in one statement. SKIP LOCKED: a row another
-- agent is writing right now is not waited for; it comes back as `skipped` (it
-- exists but we could not look at it) and the caller tries again. Nothing is claimed
-- unless every id asked for was locked here and is free.
-- A refused batch records each id held under a live lease as `refused`.
-- $1 ids (text[], no repeats), $2 agent, $3 injected now, $4 lease ms, $5 tries so far,
-- $6 claim key (NULL: none), $7 the new leases' secrets, one per id of $1 in order
WITH now AS MATERIALIZED (SELECT clock_ms($3) AS t),
asked AS (SELECT id, ord FROM unnest($1::text[]) WITH ORDINALITY AS a (id, ord)),
cur AS MATERIALIZED (
    SELECT seq, id, status, assignee, lock_until, fence, waiting_on FROM tasks
     WHERE id = ANY ($1::text[])
     ORDER BY seq
       FOR UPDATE SKIP LOCKED
),
free AS (
    SELECT cur.seq FROM cur, now
     WHERE cur.waiting_on = 0
       AND (cur.status IN ('todo', 'review', 'blocked')
            OR (cur.status = 'in_progress' AND cur.lock_until <= now.t))
),
every AS (SELECT count(*) = cardinality($1::text[]) AS ok FROM free),
claimed AS (
    UPDATE tasks t SET
        fence       = t.fence + 1,
        secret      = ($7::text[])[array_position($1::text[], t.id)],
        attempts    = t.attempts + (t.status = 'in_progress')::int,
        status      = 'in_progress',
        assignee    = $2,
        assigned_at = now.t,
        lock_until  = now.t + $4,
        claim_request = $6::text,
        version     = t.version + 1,
        updated_at  = now.t
      FROM free, now, every
     WHERE t.seq = free.seq AND every.ok
    RETURNING t.id, t.fence, t.secret, t.assigned_at, t.lock_until, t.version
),
event AS (
    -- The statement's one wait goes on its first claim event only.
    INSERT INTO events (at, task, kind, agent, token, lease_ms, wait_us, busy)
    SELECT now.t, claimed.id, 'claimed', $2, claimed.fence, $4,
           CASE WHEN asked.ord = 1 THEN waited_us() END, CASE WHEN asked.ord = 1 THEN $5::bigint END
      FROM claimed JOIN asked USING (id), now
     ORDER BY asked.ord
),
refused AS (
    INSERT INTO events (at, task, kind, agent, detail, wait_us, busy)
    SELECT now.t, cur.id, 'refused', $2,
           'held by ' || cur.assignee || ' until ' || ms_text(cur.lock_until),
           CASE WHEN row_number() OVER (ORDER BY asked.ord) = 1 THEN waited_us() END,
           CASE WHEN row_number() OVER (ORDER BY asked.ord) = 1 THEN $5::bigint END
      FROM cur JOIN asked USING (id), now, every
     WHERE NOT every.ok AND cur.status = 'in_progress' AND cur.lock_until > now.t
     ORDER BY asked.ord
)
SELECT asked.id, now.t AS now,
       claimed.fence AS token, claimed.secret, claimed.assigned_at, claimed.lock_until, claimed.version,
       cur.status AS cur_status, cur.assignee AS cur_assignee, cur.lock_until AS cur_lock_until,
       cur.fence AS cur_fence, cur.waiting_on AS cur_waiting_on,
       free.seq IS NOT NULL AS free,
       (cur.seq IS NULL AND EXISTS (SELECT 1 FROM tasks WHERE tasks.id = asked.id)) AS skipped,
       CASE WHEN claimed.fence IS NULL AND cur.waiting_on > 0 THEN
           ARRAY(SELECT d.id FROM task_deps JOIN tasks d ON d.seq = task_deps.dep
                  WHERE task_deps.task = cur.seq AND d.status NOT IN ('done', 'cancelled') ORDER BY d.seq)
       END AS cur_waiting
  FROM asked CROSS JOIN now
  LEFT JOIN cur ON cur.id = asked.id
  LEFT JOIN free ON free.seq = cur.seq
  LEFT JOIN claimed ON claimed.id = asked.id
 ORDER BY asked.ord
