//! The backend conformance suite: every behaviour the crate documentation
//! promises (its "Semantics" section) and every call of the
//! port ([`JobQueue`](crate::JobQueue) and its capability traits), written once, run by any backend with
//! one macro call (feature `testing`).
//!
//! ```text
//! jobs_core::conformance_suite!(|| async { jobs_core::MemoryQueue::new() });
//! ```
//!
//! The factory returns, for each test, a handle on a store no other test
//! uses at the same time: a fresh `MemoryQueue`, or a fresh key prefix on a
//! shared server (queue names are unique per test, but schedules and pool
//! presence are store-wide). Tests wait on conditions
//! with deadlines, never on fixed sleeps.

// Test support: a failed expectation panics, which is how a test fails.
#![allow(clippy::unwrap_used)]

pub mod cases;
mod faulty;
mod harness;
pub mod jobs;
mod split;

pub use faulty::Faulty;
pub use harness::*;
pub use split::split_router;

/// Adds the suite's own jobs ([`jobs::descriptors`]), with the schedule
/// declared on `conformance.nightly`, to the registries, pools and
/// schedulers this process builds from now on. They are linked into every
/// binary built with the `testing` feature but left out of the link-time
/// registry: a program built in the same workspace never runs them nor
/// adds their schedules, and its own jobs may use their names until a test
/// asks. [`run`] and [`test_pool`] call it; calling it again changes
/// nothing.
pub fn use_suite_jobs() {
    crate::registry::add_descriptors(&jobs::descriptors());
}

/// Expands to one `#[test]` per behaviour of the suite, each running
/// `cases::NAME(queue)` on a fresh multi-thread runtime with the queue the
/// factory returns. The factory is an expression callable as
/// `factory().await -> Q` with `Q: Clone`.
///
/// `conformance_suite!(factory)` runs every case: `Q` must be a full
/// [`Backend`](crate::Backend). A backend with fewer capabilities names the
/// ones it claims after a `;`, and runs the cases of those only:
///
/// | name | cases of | `Q` must implement |
/// | --- | --- | --- |
/// | `hot` | enqueue, run, fail, lease, cancel, pause, limits, progress | `JobQueue + QueueInspect + QueueAdmin` |
/// | `admin` | counts, dead-letter set, per-queue retention, archive backlogs ([`JobQueue::archive`](crate::JobQueue::archive) must answer) | `JobQueue + QueueInspect + QueueAdmin` |
/// | `presence` | pool presence | and `PoolPresence` (one case wraps `Q` in [`Faulty`]: a full `Backend`) |
/// | `history` | listing and throughput | and `QueueHistory` |
/// | `schedules` | cron schedules | and `ScheduleStore` (`+ PoolPresence` for orphans) |
/// | `events` | job events (progress among them), typed waits | and `QueueEvents` |
/// | `queue_wide` | what needs all of a queue's jobs in one place: strict priority and order across the whole queue, and queue-wide bounds (`max_jobs`, which the all-or-nothing batch cases are refused by, `max_running`, `rate`, the queue's breaker, retention and archive counts) | a full [`Backend`](crate::Backend) |
/// | `workflows` | workflows and batches (not in the full set: [`JobQueue::flow_store`](crate::JobQueue::flow_store) must answer) | `JobQueue + QueueInspect` |
///
/// ```text
/// jobs_core::conformance_suite!(|| async { MyQueue::new() }; hot, admin);
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!($factory; hot, admin, presence, history, schedules, events, queue_wide);
    };
    ($factory:expr; $($capability:ident),+ $(,)?) => {
        $( $crate::conformance_suite!(@capability $capability, $factory); )+
    };
    (@capability hot, $factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            enqueue_stores_pending_job,
            enqueue_validation_error_writes_nothing,
            enqueue_many_keeps_order,
            headers_travel_with_the_job,
            job_unknown_id_is_none,
            job_runs_once_and_succeeds,
            job_result_is_stored,
            oversized_result_is_refused,
            context_describes_the_attempt,
            delayed_job_starts_on_time,
            schedule_at_starts_on_time,
            retry_then_succeed_records_errors,
            retries_exhausted_goes_dead,
            permanent_error_goes_dead_at_once,
            panic_is_a_failed_attempt,
            panic_in_payload_check_is_a_failed_attempt,
            timeout_is_a_failed_attempt,
            undecodable_payload_goes_dead,
            unknown_job_name_goes_dead,
            unknown_job_name_can_be_handed_back,
            max_retries_precedence,
            cancel_pending_job,
            cancel_scheduled_job,
            cancel_running_job,
            cancel_finished_job_changes_nothing,
            stale_ack_is_refused,
            reclaimed_job_counts_an_attempt,
            lost_lease_before_start_is_not_an_attempt,
            jobs_that_crashed_before_starting_run_alone,
            poison_job_ends_dead,
            killed_pool_job_runs_elsewhere,
            heartbeat_keeps_long_job_leased,
            two_pools_run_each_job_once,
            shutdown_waits_for_running_jobs,
            shutdown_hands_back_after_grace,
            prefetched_jobs_wait_for_a_worker_and_run_once,
            prefetched_job_goes_back_when_no_worker_frees,
            shutdown_hands_back_jobs_taken_ahead,
            fetch_reports_a_queue_that_serves_groups,
            a_pool_takes_few_jobs_ahead_of_a_queue_with_groups,
            pause_and_resume,
            priority_levels_refuse_other_priorities,
            unique_for_deduplicates,
            attempt_log_is_bounded,
            queue_override_routes_job,
            weighted_queues_do_not_starve,
            reclaimed_dead_jobs_are_reported_once,
            on_failure_and_on_dead_see_every_failure,
            on_dead_reports_the_job_of_a_killed_pool,
            layers_wrap_every_attempt,
            hooked_queue_stamps_and_refuses,
            snooze_spends_no_attempt,
            snooze_due_time_is_honoured,
            snooze_past_the_limit_ends_dead,
            expired_job_never_runs,
            retry_after_expiry_still_runs,
            progress_needs_the_lease_and_stays_with_the_job,
            a_running_job_shows_whether_its_handler_started,
            held_back_progress_is_written_when_the_interval_passes,
            caller_id_returns_the_stored_job,
            caller_id_is_free_once_the_job_is_gone,
            key_keep_returns_the_waiting_job,
            key_replace_debounces,
            group_concurrency_holds_across_pools,
            groups_take_turns,
            grouped_jobs_are_counted_and_cancelled,
            groups_are_listed_by_what_is_still_pending,
            group_rate_holds_in_every_window,
            rate_limited_holds_the_group,
            queue_group_bounds_override_the_jobs,
            priorities_are_strict_within_a_group,
            group_breakers_stop_only_their_group,
        );
    };
    (@capability admin, $factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            stats_count_per_priority,
            dead_jobs_newest_first,
            retry_dead_runs_again,
            purge_dead_deletes,
        );
    };
    (@capability queue_wide, $factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            strict_priority_within_queue,
            fifo_within_priority,
            jobs_handed_back_keep_their_place_in_line,
            enqueue_many_is_all_or_nothing,
            enqueue_all_is_all_or_nothing,
            max_jobs_refuses_but_never_a_retry,
            priority_order_under_load,
            expired_backlog_does_not_stall_fetching,
            pool_runs_the_job_behind_an_expired_backlog,
            max_running_bounds_the_queue_across_pools,
            queue_rate_holds_in_every_window,
            held_back_fetches_are_counted,
            breaker_opens_probes_and_closes,
            queue_retention_overrides_the_backends,
            archive_backlog_keeps_deleted_jobs_in_order,
            full_archive_backlog_holds_the_retention_back,
            grouped_pending_jobs_count_for_max_jobs,
            failing_schedule_does_not_stop_the_others,
        );
    };
    (@capability presence, $factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            pools_report_presence,
            jobs_taken_ahead_show_in_the_pools_presence,
            slow_presence_never_delays_lease_extension,
            a_presence_report_on_its_way_does_not_outlive_the_shutdown,
        );
    };
    (@capability history, $factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            jobs_listed_by_state_with_history,
        );
    };
    (@capability events, $factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            events_follow_a_job_through_its_life,
            events_are_recorded_only_while_listened,
            events_resume_from_a_cursor,
            wait_returns_the_typed_result,
            wait_reports_every_other_end,
            many_waits_each_get_their_own_result,
            expiry_and_snooze_end_waits_as_they_should,
            progress_is_rate_limited_and_streamed,
        );
    };
    (@capability workflows, $factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            workflow_runs_steps_after_their_dependencies,
            dead_step_cancels_exactly_its_dependants,
            bad_workflows_are_refused_before_anything_is_written,
            batch_callbacks_fire_exactly_once,
            cancelled_workflow_runs_nothing_more,
            ends_and_releases_apply_once,
            ends_applied_together_release_a_fan_in_once,
            batch_grows_from_inside_its_jobs,
            flows_are_read_a_page_or_a_member_at_a_time,
        );
    };
    (@capability schedules, $factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            out_of_range_times_are_refused,
            schedules_are_stored_and_listed,
            schedule_ticks_fire_once_across_schedulers,
            schedule_catch_up_policies,
            schedule_pause_skips_ticks,
            orphaned_schedule_is_flagged_and_does_not_fire,
            pool_adds_attribute_schedules,
            interval_ticks_once_per_interval_across_schedulers,
            schedule_bounds_hold_ticks_to_their_window,
            jitter_delays_each_tick_within_bounds_once,
            overlap_skip_records_skipped_ticks_while_a_job_runs,
            overlap_queue_runs_the_held_tick_after_the_previous_ends,
            exclusion_dates_skip_exactly_those_days,
            scheduled_jobs_keep_their_group,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testing::run(async {
                    let queue = ($factory)().await;
                    $crate::testing::cases::$case(queue).await;
                });
            }
        )*
    };
}
