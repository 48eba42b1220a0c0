//! The demo run (`background-jobs`, or `background-jobs demo`): seeds a
//! workspace in the data folder, starts the application, enqueues a mix of
//! every kind of job, shows progress until all of them (and the jobs they fan
//! out) have finished, and reports what ran, what was retried, what ended
//! dead and where the outputs are.
//!
//! Some jobs are meant to fail — a corrupt image, a retired webhook
//! endpoint, a video without `ffmpeg` installed — and the report says so;
//! a run is good when every job ended as expected.

mod receiver;
pub mod seed;
mod summary;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jobs_core::prelude::*;
use jobs_core::{JobInfo, JobStatus, ScheduleInfo, Scheduler, SharedQueue};

pub use receiver::{Received, Receiver};

use crate::app::{App, AppError, Http, StartOptions};
use crate::config::Settings;
use crate::db::DbCounts;
use crate::env::{AppEnv, Paths};
use crate::http::WebhookSigner;
use crate::jobs::cleanup::*;
use crate::jobs::email::*;
use crate::jobs::extract::ExtractText;
use crate::jobs::files::*;
use crate::jobs::notify::SendWebhook;
use crate::jobs::video::{ffmpeg_version, TranscodeVideo};

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The application did not start or stop.
    #[error(transparent)]
    App(#[from] AppError),
    /// The workspace could not be seeded.
    #[error("cannot seed the demo workspace: {0}")]
    Seed(#[from] seed::SeedError),
    /// The webhook receiver could not start.
    #[error("cannot start the demo webhook receiver: {0}")]
    Receiver(#[source] std::io::Error),
    /// The backend failed.
    #[error("backend: {0}")]
    Backend(#[from] jobs_core::Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// The password-reset request could not be made.
    #[error(transparent)]
    Reset(#[from] ResetError),
    /// The archive could not be read.
    #[error(transparent)]
    Archive(#[from] jobs_core::archive::ArchiveError),
}

/// How a demo job should end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Succeeded (maybe after retries).
    Succeed,
    /// Dead, for the reason given.
    Dead(String),
}

/// How one demo job ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What it was, for people.
    pub label: String,
    /// Its id.
    pub id: JobId,
    /// How it should end.
    pub expect: Expect,
    /// The job as the backend last reported it (`None`: not read yet).
    pub info: Option<JobInfo>,
}

impl Outcome {
    /// Whether it finished as expected.
    pub fn as_expected(&self) -> bool {
        matches!(
            (&self.expect, self.info.as_ref().map(|i| i.status)),
            (Expect::Succeed, Some(JobStatus::Succeeded)) | (Expect::Dead(_), Some(JobStatus::Dead))
        )
    }

    /// Whether it has finished (succeeded, dead or cancelled).
    pub fn finished(&self) -> bool {
        self.info.as_ref().is_some_and(|i| i.status.is_finished())
    }

    /// The job name.
    pub fn name(&self) -> &str {
        self.info.as_ref().map_or("?", |i| i.name.as_str())
    }
}

/// What the demo did.
#[derive(Debug)]
pub struct DemoReport {
    /// The backend, for people.
    pub backend: String,
    /// The data folder.
    pub data_dir: PathBuf,
    /// Paths the outputs went to.
    pub paths: Paths,
    /// Every job, fan-out children included, in the order enqueued.
    pub outcomes: Vec<Outcome>,
    /// Payloads refused at enqueue: what, and the validation error.
    pub refused: Vec<(String, String)>,
    /// Requests the demo's webhook receiver got.
    pub webhooks: Vec<Received>,
    /// The receiver's address.
    pub receiver_url: String,
    /// Database rows before the cleanups.
    pub db_before: DbCounts,
    /// And after.
    pub db_after: DbCounts,
    /// Recurring schedules stored in the backend.
    pub schedules: Vec<ScheduleInfo>,
    /// Where `/metrics` and `/health/*` were served.
    pub http_addr: Option<SocketAddr>,
    /// The `ffmpeg` version line, when installed.
    pub ffmpeg: Option<String>,
    /// How long the jobs took.
    pub elapsed: Duration,
    /// Whether it gave up waiting (`app.demo.deadline`).
    pub timed_out: bool,
    /// The archive folder and how many jobs it holds after the run.
    pub archive: Option<(PathBuf, usize)>,
}

impl DemoReport {
    /// Jobs that did not end as expected (unfinished ones included).
    pub fn unexpected(&self) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| !o.as_expected()).collect()
    }

    /// The outcomes of one job name.
    pub fn of(&self, job_name: &str) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| o.name() == job_name).collect()
    }

    /// Whether every job ended as expected.
    pub fn ok(&self) -> bool {
        !self.timed_out && self.unexpected().is_empty()
    }
}

/// Runs the demo with `settings`; `http` says where to serve the endpoints.
/// Progress goes to stderr; the caller prints the report
/// ([`DemoReport::print`]).
pub async fn run_demo(settings: Settings, http: Http) -> Result<DemoReport, DemoError> {
    let mut settings = settings.with_archive_dir();
    let paths = Paths::new(&settings);
    seed::reset(&paths)?;
    // The default archive folder is the demo's own: each run starts it anew.
    let archive = settings.archive_dir();
    if archive == paths.data_dir.join("archive") {
        seed::remove_dir(&archive)?;
    }
    // Webhooks are signed: with the configured secret, else one made for
    // this run; the receiver checks every request with it.
    let secret = settings.app.notify.signing_secret.get_or_insert_with(random_secret).clone();
    let receiver = Receiver::start(WebhookSigner::new(secret.as_bytes())).await.map_err(DemoError::Receiver)?;
    if settings.app.notify.webhook_url.is_none() {
        settings.app.notify.webhook_url = Some(format!("{}/hooks", receiver.base_url));
    }
    // The receiver is on loopback, which webhooks may not reach by default:
    // allow its one address and port, nothing else.
    settings.app.notify.allow.push(receiver.addr.to_string());
    let retry_delay = settings.app.demo.retry_delay;
    let deadline = settings.app.demo.deadline;
    let app = App::start(settings, StartOptions { workers: true, retry_delay: Some(retry_delay), http }).await?;
    eprintln!(
        "background-jobs demo on {} with {} workers; data folder {}",
        app.backend,
        app.workers.unwrap_or_default(),
        paths.data_dir.display()
    );
    if let Some(addr) = app.http_addr {
        eprintln!("metrics on http://{addr}/metrics, health on http://{addr}/health/jobs");
    }
    let env = app.env.clone();
    let ffmpeg = ffmpeg_version(&env.settings.app.files.ffmpeg).await.ok();
    seed::files(&env).await?;
    let db_before = db_counts(&env, true).await?;

    let mut plan = Plan::default();
    enqueue_all(&env, &receiver.base_url, ffmpeg.is_some(), &mut plan).await?;
    let started = Instant::now();
    let progress = crate::progress::Progress::spawn(app.queue.clone(), Duration::from_secs(1), false);
    let mut timed_out = wait(&app.queue, &archive, &mut plan.jobs, started + deadline).await?;
    timed_out |= !timed_out && !archive_settled(&app.queue, &archive, &plan.jobs, started + deadline).await?;
    progress.stop();
    eprintln!("{}", crate::progress::line(started.elapsed(), &crate::progress::totals(&app.queue).await?));
    let elapsed = started.elapsed();

    let db_after = db_counts(&env, false).await?;
    let schedules = Scheduler::new(app.queue.clone()).list().await?;
    let report = DemoReport {
        backend: app.backend.to_string(),
        data_dir: paths.data_dir.clone(),
        paths,
        outcomes: plan.jobs,
        refused: plan.refused,
        webhooks: receiver.received(),
        receiver_url: receiver.base_url.clone(),
        db_before,
        db_after,
        schedules,
        http_addr: app.http_addr,
        ffmpeg,
        elapsed,
        timed_out,
        archive: None,
    };
    // The pool's archiver writes what is left in the backlogs as it stops.
    app.shutdown().await?;
    let archived = jobs_core::archive::read_archive(&archive, &Default::default())?;
    Ok(DemoReport { archive: Some((archive, archived.len())), ..report })
}

/// Row counts, seeding the sample rows first when `seed` is set.
async fn db_counts(env: &std::sync::Arc<AppEnv>, seed_rows: bool) -> Result<DbCounts, DemoError> {
    let env = env.clone();
    tokio::task::spawn_blocking(move || {
        if seed_rows {
            seed::database(&env)?;
        }
        Ok(env.db.counts(&env.db.open()?)?)
    })
    .await
    .map_err(|e| DemoError::Receiver(std::io::Error::other(e)))?
}

#[derive(Default)]
struct Plan {
    jobs: Vec<Outcome>,
    refused: Vec<(String, String)>,
}

impl Plan {
    async fn add<J: Job>(&mut self, q: &SharedQueue, label: &str, job: J, expect: Expect) -> Result<(), DemoError> {
        let id = job.enqueue(q).await?;
        self.track(label, id, expect);
        Ok(())
    }

    fn track(&mut self, label: &str, id: JobId, expect: Expect) {
        self.jobs.push(Outcome { label: label.to_owned(), id, expect, info: None });
    }
}

/// A webhook secret for one run: 32 random bytes, hex.
fn random_secret() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn dead(why: &str) -> Expect {
    Expect::Dead(why.to_owned())
}

/// A representative mix of every kind of job.
async fn enqueue_all(env: &AppEnv, receiver: &str, ffmpeg: bool, plan: &mut Plan) -> Result<(), DemoError> {
    use Expect::Succeed;
    let q = &env.queue;
    let s = |v: &str| v.to_owned();
    for (to, name) in [("ann@example.com", "Ann"), ("bob@example.com", "Bob"), ("chen@example.org", "Chen")] {
        plan.add(q, &format!("welcome mail to {to}"), SendWelcomeEmail::new(s(to), s(name)), Succeed).await?;
    }
    if let Err(e) = SendWelcomeEmail::new(s("not-an-address"), String::new()).enqueue(q).await {
        plan.refused.push((s("welcome mail to \"not-an-address\""), e.to_string()));
    }
    let reset = request_password_reset(env, "ann@example.com", "Ann", 30).await?;
    plan.track("password reset for ann@example.com", reset.job, Succeed);
    let note = SendNotificationEmail::new(
        s("dave@example.org"),
        s("Dave"),
        s("Your export is ready"),
        s("The CSV export you asked for is ready to download."),
        Some(s("http://localhost:3000/exports/42")),
    );
    plan.add(q, "notification mail to dave@example.org", note, Succeed).await?;
    let recipients = ["ann@example.com", "bob@example.com", "chen@example.org", "dave@example.org", "erin@example.net"]
        .iter()
        .map(|e| Recipient { email: s(e), name: e.split('@').next().unwrap_or("friend").to_owned() })
        .collect();
    let campaign = SendCampaign::new(
        s("winter-news"),
        s("Winter news from Example App"),
        s("Background jobs are here.\n\nYour uploads are now processed while you keep working."),
        recipients,
    );
    plan.add(q, "campaign winter-news (fans out)", campaign, Succeed).await?;

    let none = None::<String>;
    plan.add(
        q,
        "resize uploads/landscape.png to 800x800",
        ResizeImage::new(s("uploads/landscape.png"), 800, 800, none.clone()),
        Succeed,
    )
    .await?;
    let webp = ResizeImage::new(s("uploads/portrait.jpg"), 300, 300, Some(s("processed/portrait-small.webp")));
    plan.add(q, "resize uploads/portrait.jpg to a WebP", webp, Succeed).await?;
    plan.add(
        q,
        "optimise uploads/portrait.jpg",
        OptimizeImage::new(s("uploads/portrait.jpg"), 70, none.clone()),
        Succeed,
    )
    .await?;
    plan.add(
        q,
        "convert uploads/landscape.png to JPEG",
        ConvertImage::new(s("uploads/landscape.png"), s("jpeg"), none.clone()),
        Succeed,
    )
    .await?;
    plan.add(
        q,
        "convert uploads/logo.gif to PNG",
        ConvertImage::new(s("uploads/logo.gif"), s("png"), none.clone()),
        Succeed,
    )
    .await?;
    for doc in ["notes.txt", "article.html", "report.pdf"] {
        plan.add(
            q,
            &format!("extract text of uploads/{doc}"),
            ExtractText::new(format!("uploads/{doc}"), none.clone()),
            Succeed,
        )
        .await?;
    }
    let batch = ProcessFolder::new(s("inbox"), BatchOperation::Thumbnails, Some(1024 * 1024));
    plan.add(q, "thumbnails of inbox/ (fans out)", batch, Succeed).await?;
    let broken = ResizeImage::new(s("uploads/broken.png"), 100, 100, none.clone());
    plan.add(q, "resize uploads/broken.png", broken, dead("a corrupt image cannot be decoded")).await?;
    let video = TranscodeVideo::new(s("uploads/clip.mp4"), 320, none.clone());
    let expect = if ffmpeg { Succeed } else { dead("ffmpeg is not installed on this machine") };
    plan.add(q, "transcode uploads/clip.mp4", video, expect).await?;

    plan.add(q, "deactivate users inactive for 365 days", DeactivateInactiveUsers::new(365), Succeed).await?;
    plan.add(q, "delete users unverified after 7 days", DeleteUnverifiedUsers::new(7 * 24), Succeed).await?;
    plan.add(q, "purge users deactivated 30 days ago", PurgeDeletedUsers::new(30), Succeed).await?;
    plan.add(q, "delete expired sessions", CleanupExpiredSessions::new(), Succeed).await?;
    plan.add(q, "delete orphaned sessions", CleanupOrphanedSessions::new(), Succeed).await?;
    plan.add(q, "delete scratch files older than 1 day", CleanupTempFiles::new(s("tmp"), 24 * 3600), Succeed).await?;
    plan.add(q, "delete orphaned user files", CleanupOrphanedFiles::new(s("user_files"), 3600), Succeed).await?;
    plan.add(q, "rotate logs over 1 MiB", RotateLogs::new(s("logs"), 1024 * 1024, 5), Succeed).await?;

    let signup = SendWebhook::new(s("user.signed_up"), serde_json::json!({ "user": "ann@example.com" }), None);
    plan.add(q, "webhook user.signed_up", signup, Succeed).await?;
    let flaky = SendWebhook::new(s("report.ready"), serde_json::json!({ "report": 42, "fail_first": true }), None);
    plan.add(q, "webhook report.ready (receiver busy at first)", flaky, Succeed).await?;
    let gone = SendWebhook::new(
        s("user.legacy_sync"),
        serde_json::json!({ "user": "bob@example.com" }),
        Some(format!("{receiver}/hooks/gone")),
    );
    plan.add(q, "webhook user.legacy_sync to a retired endpoint", gone, dead("the endpoint answers 410 Gone")).await?;
    Ok(())
}

/// Polls every tracked job until all have finished, adding the children of
/// fan-out jobs as their results name them. A job its queue's retention
/// deleted (`maintenance` keeps none) is read from the archive in `archive`
/// once the pool's archiver wrote it. Returns whether the deadline passed
/// first.
async fn wait(
    q: &SharedQueue,
    archive: &std::path::Path,
    jobs: &mut Vec<Outcome>,
    deadline: Instant,
) -> Result<bool, DemoError> {
    loop {
        let mut children = Vec::new();
        let mut open = 0;
        for o in jobs.iter_mut() {
            if o.finished() {
                continue;
            }
            let now = match q.job(&o.id).await? {
                Some(i) => Some(i),
                None => archived(archive, &o.id)?,
            };
            if let Some(i) = &now {
                if i.status == JobStatus::Succeeded {
                    children.extend(fan_out_children(i));
                }
                if !i.status.is_finished() {
                    open += 1;
                }
            } else {
                open += 1;
            }
            o.info = now;
        }
        let added = !children.is_empty();
        for (label, id) in children {
            jobs.push(Outcome { label, id, expect: Expect::Succeed, info: None });
        }
        if open == 0 && !added {
            return Ok(false);
        }
        if Instant::now() >= deadline {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every finished job of an archiving queue is in the archive:
/// its retention runs with fetches (asked here for none, so that the jobs
/// that ended after the pool's last fetch go too), then the pool's archiver
/// writes it. Returns false when the deadline passed first.
async fn archive_settled(
    q: &SharedQueue,
    archive: &std::path::Path,
    jobs: &[Outcome],
    deadline: Instant,
) -> Result<bool, DemoError> {
    let mut queues: Vec<String> = Vec::new();
    for o in jobs {
        let queue = o.id.queue();
        if !queues.iter().any(|q| q == queue) && q.policy(queue).await?.archive {
            queues.push(queue.to_owned());
        }
    }
    let housekeeping = jobs_core::backend::FetchRequest {
        queues: queues.clone(),
        max: 0,
        lease: Duration::from_secs(30),
        default_max_retries: 0,
        max_crashes: jobs_core::backend::DEFAULT_MAX_CRASHES,
    };
    loop {
        let mut missing = 0;
        for o in jobs.iter().filter(|o| queues.iter().any(|q| q == o.id.queue())) {
            missing += usize::from(archived(archive, &o.id)?.is_none());
        }
        if missing == 0 {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        q.fetch(&housekeeping).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A job as the archive holds it, if it is there yet.
fn archived(dir: &std::path::Path, id: &JobId) -> Result<Option<JobInfo>, DemoError> {
    let query = jobs_core::archive::ArchiveQuery { id: Some(id.clone()), limit: Some(1), ..Default::default() };
    Ok(jobs_core::archive::read_archive(dir, &query)?.pop().map(|e| e.job))
}

/// The jobs a finished fan-out job enqueued, with labels.
fn fan_out_children(i: &JobInfo) -> Vec<(String, JobId)> {
    let Some(result) = &i.result else { return Vec::new() };
    let id = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<JobId>().ok());
    if i.name == <SendCampaign as Job>::NAME {
        let Ok(r) = serde_json::from_value::<CampaignReport>(result.clone()) else { return Vec::new() };
        let to: Vec<String> = i.payload["recipients"]
            .as_array()
            .map(|a| a.iter().map(|r| r["email"].as_str().unwrap_or_default().to_owned()).collect())
            .unwrap_or_default();
        r.jobs
            .into_iter()
            .enumerate()
            .map(|(n, j)| (format!("  campaign mail to {}", to.get(n).map_or("?", String::as_str)), j))
            .collect()
    } else if i.name == <ProcessFolder as Job>::NAME {
        result["accepted"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|item| Some((format!("  thumbnail of {}", item["file"].as_str()?), id(&item["job"])?)))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    }
}
