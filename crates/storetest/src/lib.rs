//! The conformance suite: every behaviour of the [`Store`] contract, written once and
//! run against every backend.
//!
//! A backend's `tests/conformance.rs` provides a [`Fixture`] — one isolated database
//! (its own file, schema or server database) that can be opened any number of times —
//! and invokes [`conformance!`], which expands to one `#[test]` per case. Cases run
//! on a [`Clock::Manual`] so expiry is tested by moving time, not by sleeping; the one
//! exception checks that the database clock is really used.
//!
//! ```ignore
//! struct Sqlite(tempfile::TempDir);
//! impl tasklease_storetest::Fixture for Sqlite { /* open(&self, clock) */ }
//! tasklease_storetest::conformance!(|| Sqlite::new());
//! ```

pub mod cases;
pub mod graph;
pub mod import_cases;
mod model;
pub mod wait_cases;

pub use tasklease_core::Store;
use tasklease_core::{AgentId, Clock, Millis};

/// One isolated database a case runs against.
pub trait Fixture: Send + Sync {
    /// Opens a new handle (its own connection) on this fixture's database, reading time
    /// from `clock`. Handles opened from one fixture see the same data.
    fn open(&self, clock: &Clock) -> Box<dyn Store>;
}

/// The instant manual clocks start at: 2026-11-27T00:00:00Z.
pub const T0: Millis = Millis::from_millis(1_795_737_600_000);

/// An agent id for tests.
pub fn agent(name: &str) -> AgentId {
    AgentId::new(name).expect("test agent id is valid")
}

/// Expands to one `#[test]` per conformance case, each on a fresh fixture from `$new`.
///
/// `conformance!(optional: $new)` takes a `$new` returning `Option<fixture>`: a case
/// whose fixture is `None` (no server to test against) returns at once. The fixture
/// decides whether that may happen (see `tasklease_postgres::testing::server`).
#[macro_export]
macro_rules! conformance {
    (optional: $new:expr) => {
        $crate::conformance!(@list $new);
    };
    ($new:expr) => {
        $crate::conformance!(@list || Some(($new)()));
    };
    (@list $new:expr) => {
        $crate::conformance!(@cases $new;
            add_and_show, add_generates_ids, add_refuses_bad_input,
            claim_grants_lease, claim_refusals, reclaim_with_token, claim_with_an_unissued_token,
            expiry_lets_another_claim, tokens_increase_per_task, renew_extends,
            release_hands_back, done_unblocks_dependants, stale_token_refused_everywhere,
            a_guessed_token_is_refused, release_and_done_record_their_reason,
            mine_lists_live_leases_with_tokens,
            claim_next_order, claim_next_dependencies, claim_next_takes_expired, claim_next_empty,
            batch_all_or_nothing, batch_bad_input,
            update_optimistic, update_under_lease, reap_expired, release_force,
            one_winner_across_handles, claim_next_across_handles, database_clock,
            list_filters, history_records_each_step, update_ending_a_lease_is_recorded, history_records_refused_claims,
            prune_keeps_the_bound, counts_by_status, state_machine_model,
            waiting_on_exact_under_concurrent_add_and_done,
            retried_done_and_release_are_repeats, lease_ended_by_others_is_no_repeat,
            claim_retried_with_its_request_id_returns_the_first_grant,
            stamp_moves_after_every_commit_by_another_handle
        );
        $crate::conformance!(@graph $new;
            dep_edits_are_reported_and_idempotent, dep_cycles_are_refused_spelled_out,
            cancelled_dependency_no_longer_blocks, ready_lists_what_claim_next_takes,
            blocked_lists_waiting_tasks, graph_model, rm_deletes_and_never_reuses_ids,
            parents_are_a_non_blocking_hierarchy, concurrent_edges_never_close_a_cycle
        );
        $crate::conformance!(@wait $new;
            readiness_says_what_claim_next_would_find,
            every_change_that_can_ready_a_task_wakes_a_waiter,
            done_then_claim_next_wakes_only_for_what_is_left
        );
        $crate::conformance!(@import $new;
            import_creates_every_field_and_twice_changes_nothing,
            import_overwrites_but_never_a_leased_task,
            import_is_all_or_nothing_and_dry_runs_write_nothing,
            import_refuses_deleted_ids,
            import_sets_parents_and_refuses_their_cycles,
            import_counts_a_cancelled_dependency_as_satisfied
        );
    };
    (@graph $new:expr; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                let Some(fixture) = ($new)() else { return };
                $crate::graph::$case(&fixture);
            }
        )+
    };
    (@wait $new:expr; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                let Some(fixture) = ($new)() else { return };
                $crate::wait_cases::$case(&fixture);
            }
        )+
    };
    (@import $new:expr; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                let Some(fixture) = ($new)() else { return };
                $crate::import_cases::$case(&fixture);
            }
        )+
    };
    (@cases $new:expr; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                let Some(fixture) = ($new)() else { return };
                $crate::cases::$case(&fixture);
            }
        )+
    };
}
