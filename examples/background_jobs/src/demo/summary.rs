//! The demo's closing report, for people.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use jobs_core::JobStatus;

use super::{DemoReport, Expect, Outcome};

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.filter_map(Result::ok).map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()
}

fn first_error(o: &Outcome) -> String {
    let e = o.info.as_ref().and_then(|i| i.attempt_log.iter().find_map(|a| a.error.clone())).unwrap_or_default();
    shorten(&e, 150)
}

fn last_error(o: &Outcome) -> String {
    shorten(o.info.as_ref().and_then(|i| i.last_error()).unwrap_or_default(), 240)
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

impl DemoReport {
    /// Prints the report.
    pub fn print(&self, w: &mut dyn Write) -> io::Result<()> {
        let total = self.outcomes.len();
        let ok =
            self.outcomes.iter().filter(|o| o.info.as_ref().is_some_and(|i| i.status == JobStatus::Succeeded)).count();
        let dead =
            self.outcomes.iter().filter(|o| o.info.as_ref().is_some_and(|i| i.status == JobStatus::Dead)).count();
        let unexpected = self.unexpected();
        writeln!(w)?;
        writeln!(w, "== Summary: {total} jobs in {:.1}s on {}", self.elapsed.as_secs_f64(), self.backend)?;
        let expected_dead =
            self.outcomes.iter().filter(|o| o.as_expected() && matches!(o.expect, Expect::Dead(_))).count();
        writeln!(
            w,
            "   {ok} succeeded, {dead} dead ({expected_dead} of them expected), {} not as expected",
            unexpected.len()
        )?;

        let mut by_name: BTreeMap<&str, [u32; 3]> = BTreeMap::new();
        for o in &self.outcomes {
            let e = by_name.entry(o.name()).or_default();
            match o.info.as_ref().map(|i| (i.status, i.attempts)) {
                Some((JobStatus::Succeeded, a)) => {
                    e[0] += 1;
                    e[1] += u32::from(a > 1);
                }
                Some((JobStatus::Dead, _)) => e[2] += 1,
                _ => {}
            }
        }
        writeln!(w, "\n   {:<28} {:>9} {:>8} {:>5}", "job", "succeeded", "retried", "dead")?;
        for (name, [s, r, d]) in &by_name {
            writeln!(w, "   {name:<28} {s:>9} {r:>8} {d:>5}")?;
        }

        let retried: Vec<&Outcome> =
            self.outcomes.iter().filter(|o| o.info.as_ref().is_some_and(|i| i.attempts > 1)).collect();
        if !retried.is_empty() {
            writeln!(w, "\nRetried:")?;
            for o in retried {
                let i = o.info.as_ref().map(|i| (i.status, i.attempts)).unwrap_or((JobStatus::Pending, 0));
                writeln!(
                    w,
                    "   {} — {} after {} attempts; first failure: {}",
                    o.label.trim(),
                    i.0,
                    i.1,
                    first_error(o)
                )?;
            }
        }
        let dead: Vec<&Outcome> =
            self.outcomes.iter().filter(|o| o.info.as_ref().is_some_and(|i| i.status == JobStatus::Dead)).collect();
        if !dead.is_empty() {
            writeln!(w, "\nDead (kept in the dead-letter set with every attempt's error):")?;
            for o in dead {
                let why = match &o.expect {
                    Expect::Dead(why) => format!("expected: {why}"),
                    Expect::Succeed => "NOT EXPECTED".to_owned(),
                };
                writeln!(w, "   {} [{why}]\n      {}", o.label.trim(), last_error(o))?;
            }
        }
        if !self.refused.is_empty() {
            writeln!(w, "\nRefused at enqueue (validation; nothing was written):")?;
            for (what, why) in &self.refused {
                writeln!(w, "   {what}: {why}")?;
            }
        }
        let other: Vec<&&Outcome> =
            unexpected.iter().filter(|o| !o.info.as_ref().is_some_and(|i| i.status == JobStatus::Dead)).collect();
        if !other.is_empty() {
            writeln!(w, "\nNot finished as expected:")?;
            for o in other {
                let status = o.info.as_ref().map_or("unknown".to_owned(), |i| i.status.to_string());
                writeln!(w, "   {} — {status} {}", o.label.trim(), last_error(o))?;
            }
        }
        if self.timed_out {
            writeln!(w, "\nGave up waiting after app.demo.deadline; the jobs above had not finished.")?;
        }

        let p = &self.paths;
        writeln!(w, "\nOutputs (data folder {}):", self.data_dir.display())?;
        writeln!(w, "   mails       {}  ({} .eml files)", p.outbox.display(), count_files(&p.outbox))?;
        writeln!(w, "   files       {}  ({} files)", p.processed.display(), count_files(&p.processed))?;
        let (b, a) = (&self.db_before, &self.db_after);
        writeln!(
            w,
            "   database    {}  users {} → {} ({} deactivated), sessions {} → {}",
            p.database.display(),
            b.users,
            a.users,
            a.deactivated_users,
            b.sessions,
            a.sessions
        )?;
        writeln!(w, "   scratch     {}  (files left: {})", p.temp.display(), count_files(&p.temp))?;
        writeln!(w, "   logs        {}  ({} files, rotated ones gzipped)", p.logs.display(), count_files(&p.logs))?;
        if let Some((dir, n)) = &self.archive {
            writeln!(
                w,
                "   archive     {}  ({n} jobs the retention deleted; `background-jobs jobs archive` reads them)",
                dir.display()
            )?;
        }
        let delivered = self.webhooks.iter().filter(|r| r.status < 300).count();
        writeln!(
            w,
            "   webhooks    {} requests to the demo receiver at {}, {delivered} accepted (each signature checked)",
            self.webhooks.len(),
            self.receiver_url
        )?;
        if !self.schedules.is_empty() {
            writeln!(w, "\nRecurring jobs (stored in the backend; the pool's scheduler enqueues them):")?;
            for s in &self.schedules {
                let next =
                    s.next_fire.map(|t| humantime::format_rfc3339_seconds(t).to_string()).unwrap_or_else(|| "-".into());
                writeln!(w, "   {:<24} {} {}  next {next}", s.name, s.cron, s.timezone)?;
            }
        }
        match &self.ffmpeg {
            Some(v) => writeln!(w, "\nffmpeg: {v}")?,
            None => {
                writeln!(w, "\nffmpeg is not installed, so the video job ended dead (install it to see it succeed).")?
            }
        }
        if let Some(addr) = self.http_addr {
            writeln!(
                w,
                "Metrics were served on http://{addr}/metrics (health: /health/jobs, /health/queues, /health/workers)."
            )?;
        }
        writeln!(
            w,
            "{}",
            if self.ok() { "Every job ended as expected." } else { "Some jobs did not end as expected (see above)." }
        )?;
        Ok(())
    }
}
