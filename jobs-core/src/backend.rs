//! What only backend authors and operator tools need: the requests and
//! replies of the hot path, the limits every enqueue path checks, the job
//! registry, and the headers the runtime reserves. An application that
//! defines, enqueues and runs jobs never names these.

pub use crate::data::DataNeed;
pub use crate::error::{bounded_message, FailureKind, MAX_ERROR_LEN};
pub use crate::events::{EventHub, DEFAULT_EVENT_HISTORY, RETRIED_DEAD};
pub use crate::payload::{PayloadError, PayloadFormat};
pub use crate::progress::DEFAULT_PROGRESS_INTERVAL;
pub use crate::queue::{
    bounded_note, check_idents, check_payload_sizes, check_progress, check_times, snooze_limit_error, valid_fraction,
    BoxFuture, DeadJob, ExpiredJob, FailurePauses, FetchRequest, Fetched, Finish, FinishResult, LeaseState, LeasedJob,
    Outcome, ProgressUpdate, ProgressWrite, QueueFailure, Waiter, ATTEMPT_LOG_MAX, DEFAULT_MAX_CRASHES,
    DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_SNOOZES, EXPIRE_BATCH, FIRST_PAUSE, LONGEST_PAUSE, MAX_JOB_DURATION,
    MAX_PROGRESS_NOTE, MAX_SCHEDULED_AT_SECS,
};
pub use crate::redact::{REDACTED, REDACT_HEADER};
pub use crate::registry::{add_descriptors, descriptors, registry, CronSpec, JobDescriptor, RunError, RunFn};
pub use crate::trace::SPAN_HEADER;
