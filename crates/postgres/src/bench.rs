//! Support for `tasklease bench` on PostgreSQL: a scratch schema filled fast (and
//! dropped afterwards), and the raw baseline — an `UPDATE … FOR UPDATE SKIP LOCKED`
//! claim written by hand, as an application would, without tasklease's history row or
//! result mapping — so a benchmark reports tasklease's claims/s as a ratio of what the
//! server itself does with the same table.

use postgres::{Client, NoTls, Statement};
use tasklease_core::{Error, Result};

use crate::{Options, PgStore, testing::with_search_path};

/// A schema of its own on the server, filled with bench tasks; dropped on drop.
pub struct Scratch {
    server: String,
    schema: String,
    conn: String,
}

impl Scratch {
    /// Creates schema `schema` on `server` with the tasklease tables and `tasks` todo
    /// tasks `B-1` … `B-<n>` of mixed priorities; with `deps`, every fifth task
    /// depends on the two before it.
    ///
    /// # Errors
    /// [`Error::Store`] when the server refuses.
    pub fn create(server: &str, schema: &str, tasks: u64, deps: bool) -> Result<Scratch> {
        let mut admin = connect(server)?;
        admin
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
            ))
            .map_err(|e| Error::store("create the bench schema", e))?;
        let scratch = Scratch {
            server: server.to_owned(),
            schema: schema.to_owned(),
            conn: with_search_path(server, schema),
        };
        drop(PgStore::open(&scratch.conn, &Options::default())?);
        let mut c = connect(&scratch.conn)?;
        let n = i64::try_from(tasks).unwrap_or(i64::MAX);
        c.execute(
            "INSERT INTO tasks (id, title, priority, created_at, updated_at)
             SELECT 'B-' || s, 'bench task', (s - 1) % 4, clock_ms(NULL), clock_ms(NULL)
               FROM generate_series(1::bigint, $1::bigint) s ORDER BY s",
            &[&n],
        )
        .map_err(|e| Error::store("fill the bench schema", e))?;
        if deps {
            c.execute(
                "INSERT INTO task_deps (task, dep)
                 SELECT t.seq, d.seq FROM tasks t JOIN tasks d ON d.seq IN (t.seq - 1, t.seq - 2)
                  WHERE t.seq % 5 = 0",
                &[],
            )
            .map_err(|e| Error::store("fill the bench dependencies", e))?;
        }
        c.batch_execute("ANALYZE tasks; ANALYZE task_deps")
            .map_err(|e| Error::store("analyze the bench schema", e))?;
        Ok(scratch)
    }

    /// A connection string for the server with `search_path` set to the schema.
    pub fn conn(&self) -> &str {
        &self.conn
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut c) = connect(&self.server) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

fn connect(conn: &str) -> Result<Client> {
    Client::connect(conn, NoTls).map_err(|e| Error::store("connect for the bench", e))
}

/// The claim an application would write by hand: `sql/claim_next.sql` without the
/// history row.
const RAW_CLAIM_NEXT: &str = "
WITH now AS MATERIALIZED (SELECT round(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS t),
ready AS (
    SELECT seq, priority FROM tasks WHERE status = 'todo' AND waiting_on = 0
     ORDER BY priority, seq LIMIT 1 FOR UPDATE SKIP LOCKED),
expired AS (
    SELECT seq, priority FROM tasks
     WHERE status = 'in_progress' AND lock_until <= (SELECT t FROM now) AND waiting_on = 0
     ORDER BY priority, seq LIMIT 1 FOR UPDATE SKIP LOCKED),
pick AS (
    SELECT seq FROM (SELECT * FROM ready UNION ALL SELECT * FROM expired) c
     ORDER BY priority, seq LIMIT 1)
UPDATE tasks t SET
    fence = t.fence + 1, attempts = t.attempts + (t.status = 'in_progress')::int,
    status = 'in_progress', assignee = $1, assigned_at = now.t, lock_until = now.t + $2,
    version = t.version + 1, updated_at = now.t
  FROM pick, now
 WHERE t.seq = pick.seq
RETURNING t.id, t.fence";

const RAW_DONE: &str = "
UPDATE tasks SET status = 'done', assignee = NULL, assigned_at = NULL, lock_until = NULL,
       version = version + 1, updated_at = round(extract(epoch FROM clock_timestamp()) * 1000)::bigint
 WHERE id = $1 AND status = 'in_progress' AND fence = $2";

/// A connection that claims with the bare statement, for the baseline.
pub struct RawClaimer {
    client: Client,
    claim: Statement,
    done: Statement,
}

impl RawClaimer {
    /// Connects and prepares the statements.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn open(conn: &str) -> Result<RawClaimer> {
        let mut client = connect(conn)?;
        let claim = client
            .prepare(RAW_CLAIM_NEXT)
            .map_err(|e| Error::store("prepare the baseline claim", e))?;
        let done = client
            .prepare(RAW_DONE)
            .map_err(|e| Error::store("prepare the baseline done", e))?;
        Ok(RawClaimer {
            client,
            claim,
            done,
        })
    }

    /// One autocommit claim: the id and token claimed, if any.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn claim_next(&mut self, lease_ms: i64, agent: &str) -> Result<Option<(String, i64)>> {
        let row = self
            .client
            .query_opt(&self.claim, &[&agent, &lease_ms])
            .map_err(|e| Error::store("baseline claim", e))?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// One autocommit done.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn done(&mut self, id: &str, token: i64) -> Result<()> {
        self.client
            .execute(&self.done, &[&id, &token])
            .map(drop)
            .map_err(|e| Error::store("baseline done", e))
    }
}
