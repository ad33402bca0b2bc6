//! The kit proves it can fail: each deliberately broken store is caught by
//! the property meant to catch it.

#![allow(missing_docs, clippy::panic, clippy::unwrap_used)]

use conformance::{Mutation, Property, Scale, Subject, Verdict};

/// The mutant as the kit's subject, built inside `runtime` so that the
/// in-memory store under it runs its sweeper there.
fn subject(runtime: &tokio::runtime::Runtime, mutation: Mutation) -> Subject {
    let _entered = runtime.enter();
    let (backend, peer) = mutation.clients();
    let subject = Subject::from(backend).with_unreachable(mutation.unreachable());
    match peer {
        Some(peer) => subject.with_peer(peer),
        None => subject,
    }
}

fn assert_caught(mutation: Mutation) {
    assert_caught_by(mutation, mutation.caught_by());
}

fn assert_caught_by(mutation: Mutation, property: Property) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let subject = subject(&runtime, mutation);
    let report = runtime.block_on(subject.run(property, Scale::DEFAULT));
    match report.verdict {
        Verdict::Failed { counterexample } => {
            eprintln!("{mutation:?} caught by {}:\n{counterexample}", property.name());
        }
        other => panic!("{mutation:?} was not caught by {}: {other:?} {:?}", property.name(), report.notes),
    }
}

/// Fenced writes in linearizability histories: a store that ignores the
/// fence writes where the lease no longer holds the lock.
#[test]
fn a_store_ignoring_the_fence_fails_the_fenced_histories() {
    assert_caught_by(Mutation::IgnoresFence, Property::LinearizabilityFenced);
}

macro_rules! mutant_tests {
    ($($test:ident => $mutation:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                assert_caught(Mutation::$mutation);
            }
        )*

        #[test]
        fn every_mutation_has_a_test() {
            let tested = [$(Mutation::$mutation),*];
            for mutation in Mutation::ALL {
                assert!(tested.contains(&mutation), "{mutation:?} has no test");
            }
        }
    };
}

mutant_tests! {
    non_atomic_check_and_set_is_caught => NonAtomicCheckAndSet,
    cas_ignoring_the_version_is_caught => CasIgnoresVersion,
    cas_not_bumping_the_version_is_caught => CasKeepsVersion,
    ttl_rounded_to_seconds_is_caught => TtlRoundedToSeconds,
    stale_reads_are_caught => StaleRead,
    expired_entries_still_present_are_caught => ExpiredStillPresent,
    ttl_not_cleared_is_caught => TtlNotCleared,
    scan_dropping_its_last_page_is_caught => ScanDropsLastPage,
    scan_repeating_an_entry_is_caught => ScanRepeatsEntry,
    colliding_key_encoding_is_caught => CollidingKeyEncoding,
    increment_losing_updates_is_caught => IncrementLosesUpdates,
    release_without_owner_check_is_caught => ReleaseWithoutOwnerCheck,
    fencing_token_reused_on_takeover_is_caught => TokenReusedOnTakeover,
    missing_mutual_exclusion_is_caught => NoMutualExclusion,
    undeclared_scan_that_answers_is_caught => UndeclaredScan,
    acquire_panicking_on_a_huge_timeout_is_caught => PanicsOnHugeTimeout,
    declared_wakeups_that_poll_are_caught => NoReleaseWakeups,
    newcomers_barging_ahead_of_waiters_are_caught => Barging,
    clients_racing_for_each_release_are_caught => ClientsRace,
    a_granted_call_left_in_the_line_is_caught => GrantedStaysInLine,
    a_grant_that_wipes_the_other_clients_line_entries_is_caught => GrantWipesLine,
    a_waiter_giving_up_that_wipes_the_line_is_caught => GiveUpWipesLine,
    a_waiter_giving_up_that_stays_in_the_line_is_caught => GiveUpStaysInLine,
    an_unreachable_endpoint_reported_as_permanent_is_caught => UnreachableNotRetryable,
    an_error_revealing_the_password_is_caught => LeaksSecret,
    several_check_and_set_winners_on_an_expired_key_are_caught => ExpiredCheckAndSetRace,
    a_get_deleting_a_fresh_write_behind_an_expired_one_is_caught => GetDeletesFreshWrite,
    increments_losing_updates_across_a_window_expiry_are_caught => IncrementAcrossExpiryLosesUpdates,
    cas_succeeding_on_an_entry_expired_since_its_read_is_caught => CasOnExpiredEntry,
    a_set_that_reads_then_writes_is_caught => SetReadModifyWrite,
    // Issue 12, gaps 2-7.
    a_zero_ttl_taken_as_permanent_is_caught => ZeroTtlPermanent,
    cas_on_version_zero_creating_the_key_is_caught => CasZeroCreates,
    cas_on_the_largest_version_matching_any_is_caught => CasMaxIsWildcard,
    ids_aliasing_through_internal_suffixes_are_caught => SuffixAliasing,
    like_wildcards_in_scan_prefixes_are_caught => LikeWildcardScan,
    scans_missing_counters_are_caught => ScanMissesCounters,
    acquire_overshooting_its_timeout_is_caught => AcquireOvershootsTimeout,
    a_cancelled_acquire_leaking_a_lease_is_caught => CancelledAcquireLeaks,
    extend_computing_now_minus_ttl_is_caught => ExtendFromThePast,
    scan_pages_costing_the_whole_space_are_caught => ScanCostsTheSpace,
    undeclared_binary_values_stored_lossily_are_caught => LossyTextValues,
    increments_reporting_a_stale_version_are_caught => IncrementKeepsVersion,
    // Issue 19.
    a_sweeper_that_never_runs_is_caught => SweeperNeverRuns,
    a_sweep_removing_an_entry_rewritten_after_it_expired_is_caught => SweepRemovesRewritten,
    free_locks_leaving_records_are_caught => FreeLockLeavesRecord,
    an_extend_masking_a_lost_lease_is_caught => ExtendMasksLoss,
    a_store_ignoring_the_fence_is_caught => IgnoresFence,
    a_fence_checked_apart_from_its_write_is_caught => FenceCheckedApart,
    a_fenced_put_ignoring_its_condition_is_caught => FencedPutIgnoresCondition,
    schedule_appending_instead_of_replacing_is_caught => ScheduleAppends,
    a_claim_that_peeks_then_takes_is_caught => ClaimPeeksThenTakes,
    an_expired_claim_that_completes_is_caught => ExpiredClaimCompletes,
    a_schedule_walking_every_item_is_caught => ScheduleWalksEverything,
    two_sequential_defects_are_caught => TWO_SEQUENTIAL_DEFECTS,
    two_ttl_defects_are_caught => TWO_TTL_DEFECTS,
    two_lease_defects_are_caught => TWO_LEASE_DEFECTS,
}

/// Runs `mutation`'s property and returns its counterexample.
fn counterexample(mutation: Mutation) -> String {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let report = runtime.block_on(subject(&runtime, mutation).run(mutation.caught_by(), Scale::DEFAULT));
    match report.verdict {
        Verdict::Failed { counterexample } => counterexample,
        other => panic!("{mutation:?} was not caught by {}: {other:?}", mutation.caught_by().name()),
    }
}

/// Asserts that one run of a two-defect mutant's property reports each
/// defect: one finding must not mask the other.
fn assert_both_reported(mutation: Mutation, signs: [&str; 2]) {
    let report = counterexample(mutation);
    for sign in signs {
        assert!(report.contains(sign), "{mutation:?}: the report does not mention {sign:?}:\n{report}");
    }
}

#[test]
fn a_frequent_sequential_defect_does_not_hide_another() {
    // The increment defect fails nearly every sequence; the search goes on
    // without increments and finds the compare-and-swap that ignores its
    // version.
    let report = counterexample(Mutation::TWO_SEQUENTIAL_DEFECTS);
    assert!(report.contains("distinct counterexamples"), "one counterexample only:\n{report}");
    let failing: Vec<&str> = report.lines().filter(|line| line.contains(" returned ")).collect();
    assert!(failing.iter().any(|line| line.contains("(Increment {")), "no increment defect:\n{report}");
    assert!(failing.iter().any(|line| line.contains("IfVersion(")), "no compare-and-swap defect:\n{report}");
}

#[test]
fn both_ttl_defects_are_reported_in_one_run() {
    assert_both_reported(
        Mutation::TWO_TTL_DEFECTS,
        ["remaining right after the write", "did not clear the earlier TTL"],
    );
}

#[test]
fn a_wrong_takeover_token_does_not_hide_a_stale_release() {
    assert_both_reported(Mutation::TWO_LEASE_DEFECTS, ["takeover token", "stale release returned Ok"]);
}

/// Not a check: prints, for each mutant, every property that catches it
/// (`cargo test -p conformance --test mutants -- --ignored --nocapture`),
/// to see how specific each mutation is.
#[test]
#[ignore = "a report that runs the whole kit against every mutant"]
fn report_every_property_that_catches_each_mutant() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for mutation in Mutation::ALL {
        let subject = subject(&runtime, mutation);
        let mut caught = Vec::new();
        for property in conformance::Property::ALL {
            let report = runtime.block_on(subject.run(property, Scale::DEFAULT));
            if report.failed() {
                caught.push(property.name());
            }
        }
        eprintln!("{mutation:?} (meant for {}): caught by {}", mutation.caught_by().name(), caught.join(", "));
    }
}
