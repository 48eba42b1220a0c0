//! A progress line on stderr while the application works: the backend's
//! counts, all queues added up.

use std::time::{Duration, Instant};

use jobs_core::{Counts, SharedQueue};
use tokio::task::JoinHandle;

/// The counts of every queue added up, as [`Progress`] shows them.
pub async fn totals(queue: &SharedQueue) -> Result<Counts, jobs_core::Error> {
    let stats = queue.stats().await?;
    let mut t = Counts::default();
    for q in stats.queues.values() {
        t.add(&q.total());
    }
    Ok(t)
}

/// One line: `[  3s] processed 12 · failed 2 · dead 1 · pending 5 · running 2 · waiting 1`.
pub fn line(elapsed: Duration, c: &Counts) -> String {
    format!(
        "[{:>3}s] processed {} · failed attempts {} · dead {} · pending {} · running {} · waiting {}",
        elapsed.as_secs(),
        c.processed,
        c.failed,
        c.dead,
        c.pending,
        c.running,
        c.scheduled + c.retrying
    )
}

/// Prints a line every `every`: always (`changes_only` false), or only when
/// a count changed. Stops when dropped or [`Progress::stop`]ped.
pub struct Progress {
    task: JoinHandle<()>,
}

impl Progress {
    /// Starts printing.
    pub fn spawn(queue: SharedQueue, every: Duration, changes_only: bool) -> Self {
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut last = None;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                match totals(&queue).await {
                    Ok(c) if !changes_only || last != Some(c) => {
                        eprintln!("{}", line(started.elapsed(), &c));
                        last = Some(c);
                    }
                    Ok(_) => {}
                    Err(e) => eprintln!("[{:>3}s] cannot read the queue counts: {e}", started.elapsed().as_secs()),
                }
            }
        });
        Progress { task }
    }

    /// Stops printing.
    pub fn stop(self) {}
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
    }
}
