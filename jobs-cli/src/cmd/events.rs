//! `events`: a queue's job events as they happen.

use jobs_core::{EventFilter, EventStream, JobEvent, SharedQueue};

use crate::args::EventsArgs;
use crate::error::CliError;
use crate::io::Io;
use crate::view::{json_time, printable, MAX_TEXT_ERROR};

/// Prints the events of `args.queue` that pass its filters, one per line,
/// until `stop` resolves or `--count` events were printed. A gap (events
/// dropped from the backend's bounded history before they were printed) is
/// reported on stderr and the command goes on.
pub(super) async fn follow(
    q: &SharedQueue,
    args: &EventsArgs,
    stop: impl std::future::Future<Output = ()>,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    jobs_core::validate_queue_name(&args.queue)?;
    let mut filter = EventFilter::queue(&args.queue).kinds(args.kind.iter().copied());
    for n in &args.name {
        filter = filter.name(n);
    }
    for j in &args.jobs {
        filter = filter.job(j);
    }
    let mut stream = match &args.after {
        Some(after) => EventStream::resume(q, filter, after.clone()).await?,
        None => EventStream::open(q, filter).await?,
    };
    let mut stop = std::pin::pin!(stop);
    let mut printed = 0;
    while args.count.is_none_or(|n| printed < n) {
        let next = tokio::select! {
            _ = &mut stop => return Ok(()),
            e = stream.next() => e,
        };
        match next {
            // The stream lives as long as the command.
            None => return Ok(()),
            Some(Ok(e)) => {
                print(&e, args.json, io)?;
                printed += 1;
            }
            Some(Err(e)) => {
                writeln!(io.err, "warning: {e}")?;
            }
        }
    }
    Ok(())
}

fn print(e: &JobEvent, json: bool, io: &mut Io<'_>) -> Result<(), CliError> {
    if json {
        let mut v = serde_json::to_value(e).map_err(std::io::Error::from)?;
        // The time as RFC 3339 text, like every other JSON output.
        v["at"] = serde_json::Value::String(json_time(e.at));
        serde_json::to_writer(&mut *io.out, &v).map_err(std::io::Error::from)?;
        writeln!(io.out)?;
    } else {
        let mut line = format!("{}  {:<9}  {}  {}  attempt {}", json_time(e.at), e.kind, e.job, e.name, e.attempt);
        if let Some(p) = e.progress {
            line.push_str(&format!("  {:.0}%", p * 100.0));
        }
        if let Some(d) = &e.detail {
            // An error or a progress note: the job's own text.
            line.push_str("  ");
            line.push_str(&printable(d, MAX_TEXT_ERROR));
        }
        writeln!(io.out, "{line}")?;
    }
    io.out.flush()?;
    Ok(())
}
