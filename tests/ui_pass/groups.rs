use jobs_core::prelude::*;

/// Grouped by an integer field, two of a group at once.
#[job(queue = "sync", group = account_id, concurrency = 2, rate = "100/1m")]
async fn sync_account(account_id: u64, full: bool) -> Result<(), JobError> {
    let _ = (account_id, full);
    Ok(())
}

/// Grouped by an optional field: `None` puts the job in no group.
#[job(group = tenant)]
async fn audit(tenant: Option<String>) -> Result<(), JobError> {
    let _ = tenant;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(SyncAccount::CONCURRENCY, Some(2));
    assert_eq!(SyncAccount::RATE, Some("100/1m".parse().unwrap()));
    assert_eq!(Audit::RATE, None);
    assert_eq!(SyncAccount { account_id: 42, full: false }.group().as_deref(), Some("42"));
    assert_eq!(Audit::CONCURRENCY, None);
    assert_eq!(Audit { tenant: Some("acme".into()) }.group().as_deref(), Some("acme"));
    assert_eq!(Audit { tenant: None }.group(), None);

    let d = jobs_core::backend::descriptors().find(|d| d.name == "sync_account").expect("registered");
    assert_eq!(d.concurrency, Some(2));
    assert_eq!(d.rate.map(|r| r.limit), Some(100));
    assert_eq!((d.group)(br#"{"account_id":7,"full":true}"#).as_deref(), Some("7"));

    // The group travels with the job; `JobOptions::group` overrides it.
    let queue = MemoryQueue::new();
    let id = SyncAccount { account_id: 9, full: true }.enqueue(&queue).await.unwrap();
    assert_eq!(queue.job(&id).await.unwrap().unwrap().group.as_deref(), Some("9"));
    let other = SyncAccount { account_id: 9, full: true }
        .enqueue_with(&queue, JobOptions::new().group("vip"))
        .await
        .unwrap();
    assert_eq!(queue.job(&other).await.unwrap().unwrap().group.as_deref(), Some("vip"));
}
