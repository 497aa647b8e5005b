//! The shared conformance suite against SQLite: each case gets its own database file.

use tasklease_core::Clock;
use tasklease_sqlite::{Options, SqliteStore};
use tasklease_storetest::{Fixture, Store};

struct Sqlite(tempfile::TempDir);

impl Fixture for Sqlite {
    fn open(&self, clock: &Clock) -> Box<dyn Store> {
        let opts = Options {
            clock: clock.clone(),
            ..Options::default()
        };
        Box::new(SqliteStore::open(&self.0.path().join("tasks.db"), &opts).expect("open"))
    }
}

tasklease_storetest::conformance!(|| Sqlite(tempfile::tempdir().expect("tempdir")));
