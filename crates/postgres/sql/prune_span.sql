-- What a prune would keep: the oldest and newest event; with a count bound ($1), the
-- oldest of the newest $1 events (NULL when there are fewer); with an age bound ($3
-- ms, against the injected now $2), the oldest event young enough (NULL when none is).
-- Event seqs may have gaps (an identity never hands a value back), so the count bound
-- walks the primary key rather than doing arithmetic.
SELECT (SELECT min(seq) FROM events) AS oldest,
       (SELECT max(seq) FROM events) AS newest,
       CASE WHEN $1::bigint IS NOT NULL THEN
           (SELECT seq FROM events ORDER BY seq DESC OFFSET $1::bigint - 1 LIMIT 1)
       END AS by_count,
       CASE WHEN $3::bigint IS NOT NULL THEN
           (SELECT seq FROM events WHERE at >= clock_ms($2) - $3::bigint ORDER BY seq LIMIT 1)
       END AS by_age
