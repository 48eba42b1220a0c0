//! `fire_schedule.lua` (with `enqueue.lua`): one tick of a recurring
//! schedule, exactly once across processes.

use std::sync::LazyLock;
use std::time::SystemTime;

use jobs_core::{JobId, NewJob};
use redis::Value;

use super::enqueue::{push_job, Refusal};
use super::{array, bytes, is_code, queue_script, Args, Script, ScriptCall};
use crate::decode::{job_id, to_ms};
use crate::error::RedisQueueError;
use crate::keys::QueueKeys;

const OP: &str = "fire_schedule";

/// The script.
pub(crate) static SCRIPT: LazyLock<Script> = LazyLock::new(|| queue_script("fire_schedule"));

/// Tick `tick` of schedule `name`, stored in the slot of the queue of `keys`
/// (the queue `job` goes to).
pub(crate) struct FireSchedule<'a> {
    /// The keys of the schedule's queue.
    pub(crate) keys: &'a QueueKeys,
    /// The schedule.
    pub(crate) name: &'a str,
    /// The tick.
    pub(crate) tick: SystemTime,
    /// The job to enqueue; `None` to skip the tick.
    pub(crate) job: Option<&'a NewJob>,
}

/// What fire_schedule.lua answered.
#[derive(Debug)]
pub(crate) enum Tick {
    /// No such schedule (or it is being moved to another queue).
    NotFound,
    /// This tick, or a later one, was handled already, or the held tick
    /// still waits for the last job: nothing written.
    Done,
    /// The overlap policy recorded the tick as held or skipped: the last
    /// job has not finished.
    Waits,
    /// The tick is recorded, with the job enqueued (its id; the id of a
    /// live duplicate for a `unique_for` job) or skipped (`None`).
    Recorded(Option<JobId>),
    /// The queue refused the job: the tick stays unhandled.
    Refused(Refusal),
}

impl ScriptCall for FireSchedule<'_> {
    type Reply = Tick;

    super::script_identity!();

    fn args(&mut self, out: &mut Args<'_>) {
        out.arg(self.name).arg(to_ms(self.tick));
        match self.job {
            Some(j) => {
                out.arg("1");
                push_job(out, j, &mut Vec::new(), false);
            }
            None => {
                out.arg("0");
            }
        }
    }

    /// `{'notfound'}`, `{'done'}`, `{'waits'}`, `{'ok', ulid or ''}`, or
    /// enqueue's refusal.
    fn decode(self, reply: Value) -> Result<Tick, RedisQueueError> {
        let mut items = array(OP, reply)?;
        let Some(first) = items.first() else { return Err(RedisQueueError::reply(OP, "empty answer")) };
        if is_code(first, b"notfound") {
            return Ok(Tick::NotFound);
        }
        if is_code(first, b"done") {
            return Ok(Tick::Done);
        }
        if is_code(first, b"waits") {
            return Ok(Tick::Waits);
        }
        if is_code(first, b"ok") && items.len() == 2 {
            let id = bytes(OP, items.swap_remove(1))?;
            if id.is_empty() {
                return Ok(Tick::Recorded(None));
            }
            return Ok(Tick::Recorded(Some(job_id(OP, self.keys, &id)?)));
        }
        Refusal::decode(OP, items).map(Tick::Refused)
    }
}
