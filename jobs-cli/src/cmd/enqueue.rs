//! `enqueue NAME --json '{..}'`: a payload checked against the linked job
//! type, then stored.

use std::time::SystemTime;

use jobs_core::backend::JobDescriptor;
use jobs_core::{validate_queue_name, CallerId, Error, IfExists, JobId, JobKey, KeyMode, NewJob, SharedQueue, When};

use crate::args::{EnqueueArgs, JobArgs};
use crate::error::CliError;
use crate::io::Io;
use crate::view::{ago, time};

/// Looks the job up among the linked ones, validates the payload with its
/// `check`, enqueues it, and prints its id alone on stdout (what scripts
/// read); a note for people goes to stderr.
pub(super) async fn run(args: &EnqueueArgs, q: &SharedQueue, io: &mut Io<'_>) -> Result<(), CliError> {
    let desc = find(&args.name)?;
    let (payload, queue, priority) = resolve(&args.job_args, desc)?;
    let group = args.group.clone().or_else(|| (desc.group)(&payload));
    let now = SystemTime::now();
    // The message's estimate; a delay travels as a duration, counted on the
    // backend's clock.
    let run_at = args.at.or_else(|| args.delay.and_then(|d| now.checked_add(d)));
    let job = NewJob {
        id: JobId::new(queue),
        name: desc.name.to_owned(),
        payload,
        format: jobs_core::backend::PayloadFormat::Json,
        priority,
        max_retries: args.max_retries.or(desc.max_retries),
        timeout: args.timeout.or(desc.timeout),
        run_at: args.at.map(When::At).or_else(|| args.delay.map(When::In)),
        unique_for: args.unique_for.or(desc.unique_for),
        caller_id: args.id.clone().map(|id| CallerId {
            id,
            if_exists: if args.fail_if_exists { IfExists::Fail } else { IfExists::ReturnExisting },
        }),
        key: args
            .key
            .clone()
            .map(|key| JobKey { key, mode: if args.replace { KeyMode::Replace } else { KeyMode::Keep } }),
        group: group.map(|key| desc.job_group(key)),
        // Counted from when it is due, as `JobOptions::expires_in` does.
        expires: args.expires_in.or(desc.expires).map(|d| match (args.at, args.delay) {
            (Some(t), _) => When::At(t.checked_add(d).unwrap_or(t)),
            (None, Some(delay)) => When::In(delay.saturating_add(d)),
            (None, None) => When::In(d),
        }),
        enqueued_at: now,
        headers: Default::default(),
    };
    let priority = job.priority;
    let sent = job.id.clone();
    let id = q
        .enqueue_many(vec![job])
        .await?
        .pop()
        .ok_or_else(|| CliError::Failed("the backend returned no id for the job".into()))?;
    writeln!(io.out, "{id}")?;
    if id != sent {
        let what = match (&args.key, args.replace) {
            (Some(_), true) => "replaced the waiting job with its key",
            (Some(_), false) => "a job with its key is waiting: kept it, added nothing",
            (None, _) => "a job with its id is stored: added nothing",
        };
        writeln!(io.err, "`{}` on queue `{queue}`: {what}", desc.name)?;
        return Ok(());
    }
    let when = match run_at {
        Some(t) if t > now => format!("due {} ({})", time(t), ago(t, now)),
        _ => "due now".to_owned(),
    };
    writeln!(io.err, "enqueued `{}` on queue `{queue}` at priority {priority}, {when}", desc.name)?;
    Ok(())
}

/// The payload checked by the job's rules, then the queue and priority,
/// the job's own where the command line names none.
pub(super) fn resolve<'a>(
    args: &'a JobArgs,
    desc: &'a JobDescriptor,
) -> Result<(Vec<u8>, &'a str, jobs_core::Priority), CliError> {
    let payload = checked_payload(desc, &args.json)?;
    let queue = args.queue.as_deref().unwrap_or(desc.queue);
    validate_queue_name(queue)?;
    Ok((payload, queue, args.priority.unwrap_or(desc.priority)))
}

/// `--json` checked by the job's `check`: a JSON object whose fields obey
/// the job's rules; the payload as it is stored.
pub(super) fn checked_payload(desc: &JobDescriptor, json: &str) -> Result<Vec<u8>, CliError> {
    let payload: serde_json::Value =
        serde_json::from_str(json).map_err(|e| CliError::Usage(format!("--json is not valid JSON: {e}")))?;
    if !payload.is_object() {
        return Err(CliError::Usage(format!(
            "--json must be a JSON object with the job's fields, e.g. --json '{{\"to\": \"ann@example.com\"}}'; got `{}`",
            json.trim()
        )));
    }
    (desc.check)(json.as_bytes()).map_err(|e| invalid(desc.name, e))
}

/// The linked job named `name`.
pub(super) fn find(name: &str) -> Result<&'static JobDescriptor, CliError> {
    let registry = match jobs_core::backend::registry() {
        Ok(r) => r,
        Err(Error::NoJobsLinked) => return Err(CliError::UnknownJob { name: name.to_owned(), known: vec![] }),
        Err(e) => return Err(e.into()),
    };
    registry.get(name).copied().ok_or_else(|| {
        let mut known: Vec<String> = registry.keys().map(|k| k.to_string()).collect();
        known.sort();
        CliError::UnknownJob { name: name.to_owned(), known }
    })
}

/// The payload was refused by the job's `check`: every broken rule, or why
/// it does not decode.
fn invalid(job: &str, e: Error) -> CliError {
    let detail = match e {
        Error::Validation(v) => v
            .errors
            .iter()
            .map(|f| format!("field `{}` ({}): {}", f.field, f.rule, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        Error::InvalidArgument(m) => simplify_decode(&m),
        other => other.to_string(),
    };
    CliError::InvalidPayload { job: job.to_owned(), detail }
}

/// `payload does not decode as my_app::jobs::SendEmail: missing field `to` at
/// line 1 column 2` becomes `missing field `to``: the type path and position
/// in a one-line argument say nothing to an operator.
fn simplify_decode(message: &str) -> String {
    let Some(rest) = message.strip_prefix("payload does not decode as ") else { return message.to_owned() };
    let Some((_, serde_msg)) = rest.split_once(": ") else { return message.to_owned() };
    match serde_msg.rsplit_once(" at line ") {
        Some((head, _)) => head.to_owned(),
        None => serde_msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_lose_the_type_path_and_position() {
        assert_eq!(
            simplify_decode("payload does not decode as app::jobs::Mail: missing field `to` at line 1 column 2"),
            "missing field `to`"
        );
        assert_eq!(simplify_decode("something else"), "something else");
    }
}
