//! The shared conformance suite against PostgreSQL: each case gets its own schema on
//! the test server (`TASKLEASE_TEST_PG`), so cases run in parallel.

use tasklease_core::Clock;
use tasklease_postgres::testing::{self, Scratch};
use tasklease_postgres::{Options, PgStore};
use tasklease_storetest::{Fixture, Store};

struct Pg(Scratch);

impl Fixture for Pg {
    fn open(&self, clock: &Clock) -> Box<dyn Store> {
        let opts = Options {
            clock: clock.clone(),
            ..Options::default()
        };
        Box::new(PgStore::open(self.0.conn(), &opts).expect("open"))
    }
}

tasklease_storetest::conformance!(optional: || testing::server().map(|s| Pg(Scratch::new(&s))));
