//! The flow store (workflows and batches) on Redis: one hash tag of its
//! own for every flow record (`flows_common.lua` lists the keys), the
//! queues' side in `common.lua` (`flow_ended`) and `flow_take.lua`.
//!
//! On Redis Cluster a flow's record and its steps' queues are in different
//! slots, so no script sees both. The hand-off is the relay's (see
//! [`jobs_core::FlowStore`]): a step's end is recorded in its queue's slot
//! atomically with the end; the relay applies it to the flow's slot, where
//! a member already ended is left alone, so applying an end twice changes
//! nothing; each release's job carries a caller id made of the flow and
//! member, so enqueueing it twice stores it once; the end's record is
//! deleted only after its releases are reported.

use std::sync::LazyLock;
use std::time::Duration;

use jobs_core::backend::{BoxFuture, Waiter};
use jobs_core::{
    CancelledMembers, Error, FlowError, FlowInfo, FlowKind, FlowMember, FlowStatus, FlowStore, FlowSummary, JobId,
    MemberEnd, MemberInfo, MemberStatus, NewFlow, NewJob, OnFailure, Release, DEPS_HEADER, FLOWS_KEPT,
};
use redis::Value;

use crate::error::RedisQueueError;
use crate::keys::{flow_keys, flow_record, flow_wake, QueueKeys};
use crate::queue::RedisQueue;
use crate::scripts::{array, bytes, is_code, Args, Script, ScriptCall, ScriptSet, MANY};

mod spec;

const COMMON: &str = include_str!("flows_common.lua");

/// Every flow script: its name, its code, and whether it only reads.
const FLOW_SCRIPTS: &[(&str, &str, bool)] = &[
    ("create", include_str!("flow_create.lua"), false),
    ("add", include_str!("flow_add.lua"), false),
    ("close", include_str!("flow_close.lua"), false),
    ("ended", include_str!("flow_ended.lua"), false),
    ("released", include_str!("flow_released.lua"), false),
    ("stale", include_str!("flow_stale.lua"), false),
    ("cancel", include_str!("flow_cancel.lua"), false),
    ("read", include_str!("flow_read.lua"), true),
    ("list", include_str!("flow_list.lua"), true),
];

/// The flow scripts, over what each starts with: the store's bound, then
/// `many.lua` (shared with the queue scripts) and `flows_common.lua`.
pub(crate) static SCRIPTS: LazyLock<ScriptSet> = LazyLock::new(|| {
    ScriptSet::new("jobs_flows", format!("local FLOWS_KEPT = {FLOWS_KEPT}\n{MANY}\n{COMMON}"), FLOW_SCRIPTS)
});

macro_rules! flow_script {
    ($name:ident, $script:literal) => {
        static $name: LazyLock<Script> = LazyLock::new(|| SCRIPTS.script($script));
    };
}
flow_script!(CREATE, "create");
flow_script!(ADD, "add");
flow_script!(CLOSE, "close");
flow_script!(ENDED, "ended");
flow_script!(RELEASED, "released");
flow_script!(STALE, "stale");
flow_script!(CANCEL, "cancel");
flow_script!(READ, "read");
flow_script!(LIST, "list");

/// One call of a flow script: its arguments built beforehand, its reply
/// handed back raw to the caller's decoder below.
struct Call<'a> {
    script: &'static Script,
    op: &'static str,
    keys: &'a QueueKeys,
    args: Vec<Vec<u8>>,
}

impl ScriptCall for Call<'_> {
    type Reply = Value;

    fn script(&self) -> &'static Script {
        self.script
    }

    fn op(&self) -> &'static str {
        self.op
    }

    fn keys(&self) -> &QueueKeys {
        self.keys
    }

    fn args(&mut self, out: &mut Args<'_>) {
        for a in &self.args {
            out.arg(&a[..]);
        }
    }

    fn decode(self, reply: Value) -> Result<Value, RedisQueueError> {
        Ok(reply)
    }
}

fn arg(v: impl Into<Vec<u8>>) -> Vec<u8> {
    v.into()
}

fn text(op: &'static str, v: Value) -> Result<String, RedisQueueError> {
    String::from_utf8(bytes(op, v)?).map_err(|_| RedisQueueError::reply(op, "not UTF-8"))
}

fn spec(op: &'static str, job: &NewJob) -> Result<Vec<u8>, Error> {
    spec::encode(job).map_err(|e| RedisQueueError::reply(op, format!("job not encodable: {e}")).into())
}

/// A member's `after` argument: `<p>:<name>` lines.
fn after_arg(after: &[(String, OnFailure)]) -> String {
    let lines: Vec<String> =
        after.iter().map(|(d, p)| format!("{}:{d}", if *p == OnFailure::Continue { 'k' } else { 'c' })).collect();
    lines.join("\n")
}

fn after_of(s: &str) -> Vec<(String, OnFailure)> {
    s.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(p, d)| (d.to_owned(), if p == "k" { OnFailure::Continue } else { OnFailure::Cancel }))
        .collect()
}

fn info_arg(job: &NewJob) -> String {
    format!("{}\t{}", job.id, job.name)
}

fn push_members(op: &'static str, args: &mut Vec<Vec<u8>>, members: &[FlowMember]) -> Result<(), Error> {
    args.push(arg(members.len().to_string()));
    for m in members {
        args.push(arg(m.name.as_str()));
        args.push(spec(op, &m.job)?);
        args.push(arg(info_arg(&m.job)));
        args.push(arg(after_arg(&m.after)));
    }
    Ok(())
}

/// The refusals a script answers instead of releases.
fn refusal(op: &'static str, flow: &str, items: &[Value]) -> Result<Option<Error>, RedisQueueError> {
    let at = |i: usize| -> Result<String, RedisQueueError> { text(op, items.get(i).cloned().unwrap_or(Value::Nil)) };
    let Some(code) = items.first() else { return Err(RedisQueueError::reply(op, "empty answer")) };
    let e = if is_code(code, b"exists") {
        FlowError::Exists(flow.to_owned())
    } else if is_code(code, b"notfound") {
        FlowError::NotFound(flow.to_owned())
    } else if is_code(code, b"notbatch") {
        FlowError::NotABatch(flow.to_owned())
    } else if is_code(code, b"ended") {
        FlowError::Ended { flow: flow.to_owned(), status: flow_status(op, &at(1)?)? }
    } else if is_code(code, b"dup") {
        FlowError::DuplicateMember { flow: flow.to_owned(), member: at(1)? }
    } else if is_code(code, b"unknown") {
        FlowError::UnknownDependency { flow: flow.to_owned(), member: at(1)?, dependency: at(2)? }
    } else {
        return Ok(None);
    };
    Ok(Some(e.into()))
}

/// Decodes the releases of `releases()` (flows_common.lua).
fn releases(op: &'static str, flow: &str, reply: Value) -> Result<Vec<Release>, Error> {
    let items = array(op, reply)?;
    if let Some(e) = refusal(op, flow, &items)? {
        return Err(e);
    }
    let mut it = items.into_iter().skip(2);
    let mut out = Vec::new();
    while let Some(f) = it.next() {
        let (Some(m), Some(s), Some(nd)) = (it.next(), it.next(), it.next()) else {
            return Err(RedisQueueError::reply(op, "a release is cut short").into());
        };
        let flow = text(op, f)?;
        let member = text(op, m)?;
        let mut job = spec::decode(&bytes(op, s)?)
            .map_err(|e| RedisQueueError::reply(op, format!("stored job of `{member}`: {e}")))?;
        let nd: usize = text(op, nd)?.parse().map_err(|_| RedisQueueError::reply(op, "dependency count"))?;
        if nd > 0 {
            let mut deps = serde_json::Map::new();
            for _ in 0..nd / 2 {
                let (Some(d), Some(r)) = (it.next(), it.next()) else {
                    return Err(RedisQueueError::reply(op, "a dependency is cut short").into());
                };
                let r = bytes(op, r)?;
                let v = serde_json::from_slice(&r).unwrap_or(serde_json::Value::Null);
                deps.insert(text(op, d)?, v);
            }
            job.headers.insert(DEPS_HEADER.to_owned(), serde_json::Value::Object(deps).to_string());
        }
        out.push(Release { flow, member, job });
    }
    Ok(out)
}

fn flow_status(op: &'static str, s: &str) -> Result<FlowStatus, RedisQueueError> {
    Ok(match s {
        "running" => FlowStatus::Running,
        "succeeded" => FlowStatus::Succeeded,
        "failed" => FlowStatus::Failed,
        "cancelled" => FlowStatus::Cancelled,
        other => return Err(RedisQueueError::reply(op, format!("flow status `{other}`"))),
    })
}

fn member_status(op: &'static str, s: &str) -> Result<MemberStatus, RedisQueueError> {
    Ok(match s {
        "w" => MemberStatus::Waiting,
        "o" => MemberStatus::Releasing,
        "r" => MemberStatus::Released,
        "S" => MemberStatus::Succeeded,
        "d" => MemberStatus::Dead,
        "x" => MemberStatus::Expired,
        "c" => MemberStatus::Cancelled,
        other => return Err(RedisQueueError::reply(op, format!("member status `{other}`"))),
    })
}

fn status_code(s: MemberStatus) -> &'static str {
    match s {
        MemberStatus::Succeeded => "S",
        MemberStatus::Dead => "d",
        MemberStatus::Expired => "x",
        _ => "c",
    }
}

fn kind_of(op: &'static str, s: &str) -> Result<FlowKind, RedisQueueError> {
    match s {
        "workflow" => Ok(FlowKind::Workflow),
        "batch" => Ok(FlowKind::Batch),
        other => Err(RedisQueueError::reply(op, format!("flow kind `{other}`"))),
    }
}

fn time(ms: &str) -> Option<std::time::SystemTime> {
    ms.parse::<u64>().ok().map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms))
}

fn num(op: &'static str, s: &str) -> Result<u64, RedisQueueError> {
    s.parse().map_err(|_| RedisQueueError::reply(op, format!("count `{s}`")))
}

#[allow(clippy::too_many_arguments)]
fn summary(
    op: &'static str,
    id: String,
    kind: &str,
    status: &str,
    closed: &str,
    created: &str,
    ended_at: &str,
    total: &str,
    ended: &str,
    ok: &str,
) -> Result<FlowSummary, RedisQueueError> {
    Ok(FlowSummary {
        id,
        kind: kind_of(op, kind)?,
        status: flow_status(op, status)?,
        closed: closed == "1",
        total: num(op, total)?,
        ended: num(op, ended)?,
        succeeded: num(op, ok)?,
        created_at: time(created).unwrap_or(std::time::UNIX_EPOCH),
        ended_at: time(ended_at),
    })
}

fn texts(op: &'static str, v: Value) -> Result<Vec<String>, RedisQueueError> {
    array(op, v)?.into_iter().map(|v| text(op, v)).collect()
}

/// Members as `flow_read.lua` lists them: names, and per name its status,
/// info, dependencies (none for callbacks), release and end times.
struct Listed {
    names: Vec<String>,
    st: Vec<String>,
    info: Vec<String>,
    after: Option<Vec<String>>,
    released: Vec<String>,
    ended: Vec<String>,
}

fn listed(op: &'static str, l: Listed) -> Result<Vec<MemberInfo>, RedisQueueError> {
    let Listed { names, st, info, after, released, ended } = l;
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        let field = |v: &Vec<String>| v.get(i).cloned().unwrap_or_default();
        let inf = field(&info);
        let (job, job_name) = inf.split_once('\t').unwrap_or((inf.as_str(), ""));
        let job: JobId = job.parse().map_err(|_| RedisQueueError::reply(op, format!("job id of `{name}`")))?;
        let (released, ended) = (field(&released), field(&ended));
        out.push(MemberInfo {
            status: member_status(op, &field(&st))?,
            job,
            job_name: job_name.to_owned(),
            after: after.as_ref().map(|a| after_of(&a[i])).unwrap_or_default(),
            released_at: time(&released),
            ended_at: time(&ended),
            name,
        });
    }
    Ok(out)
}

impl RedisQueue {
    /// `flow_read.lua` of flow `id` with the member selection `select`
    /// (see the script).
    async fn read_flow(&self, id: &str, select: Vec<Vec<u8>>) -> Result<Option<FlowInfo>, Error> {
        const OP: &str = "flow_read";
        let mut args = vec![arg(id)];
        args.extend(select);
        let items = array(OP, self.flow_call(&READ, OP, args).await?)?;
        if items.is_empty() {
            return Ok(None);
        }
        let mut it = items.into_iter();
        let mut next = || texts(OP, it.next().unwrap_or(Value::Nil));
        let rec = next()?;
        let field = |name: &str| -> String {
            rec.chunks(2).find(|p| p[0] == name).and_then(|p| p.get(1).cloned()).unwrap_or_default()
        };
        let summary = summary(
            OP,
            id.to_owned(),
            &field("kind"),
            &field("status"),
            &field("closed"),
            &field("created"),
            &field("ended_at"),
            &field("total"),
            &field("ended"),
            &field("ok"),
        )?;
        let (names, st, info) = (next()?, next()?, next()?);
        let (after, released, ended) = (Some(next()?), next()?, next()?);
        let members = listed(OP, Listed { names, st, info, after, released, ended })?;
        let (names, st, info) = (next()?, next()?, next()?);
        let (released, ended) = (next()?, next()?);
        let callbacks = listed(OP, Listed { names, st, info, after: None, released, ended })?;
        Ok(Some(FlowInfo { summary, members, callbacks }))
    }

    async fn flow_call(
        &self,
        script: &'static LazyLock<Script>,
        op: &'static str,
        args: Vec<Vec<u8>>,
    ) -> Result<Value, Error> {
        let keys = flow_keys(&self.inner.prefix);
        self.invoke(Call { script, op, keys: &keys, args }).await
    }
}

impl FlowStore for RedisQueue {
    fn create_flow(&self, flow: NewFlow) -> BoxFuture<'_, Result<Vec<Release>, Error>> {
        Box::pin(async move {
            const OP: &str = "flow_create";
            let mut args = vec![
                arg(flow.id.as_str()),
                arg(flow.kind.as_str()),
                arg(if flow.closed || flow.kind == FlowKind::Workflow { "1" } else { "0" }),
            ];
            let cbs: Vec<(&str, &NewJob)> = [("@on_success", &flow.on_success), ("@on_complete", &flow.on_complete)]
                .into_iter()
                .filter_map(|(n, j)| j.as_ref().map(|j| (n, j)))
                .collect();
            args.push(arg(cbs.len().to_string()));
            for (name, job) in cbs {
                args.push(arg(name));
                args.push(spec(OP, job)?);
                args.push(arg(info_arg(job)));
            }
            push_members(OP, &mut args, &flow.members)?;
            let reply = self.flow_call(&CREATE, OP, args).await?;
            releases(OP, &flow.id, reply)
        })
    }

    fn add_members<'a>(
        &'a self,
        flow: &'a str,
        members: Vec<FlowMember>,
        close: bool,
    ) -> BoxFuture<'a, Result<Vec<Release>, Error>> {
        Box::pin(async move {
            const OP: &str = "flow_add";
            let mut args = vec![arg(flow), arg(if close { "1" } else { "0" })];
            push_members(OP, &mut args, &members)?;
            let reply = self.flow_call(&ADD, OP, args).await?;
            releases(OP, flow, reply)
        })
    }

    fn close_flow<'a>(&'a self, flow: &'a str) -> BoxFuture<'a, Result<Vec<Release>, Error>> {
        Box::pin(async move {
            let reply = self.flow_call(&CLOSE, "flow_close", vec![arg(flow)]).await?;
            releases("flow_close", flow, reply)
        })
    }

    fn members_ended<'a>(&'a self, ends: &'a [MemberEnd]) -> BoxFuture<'a, Result<Vec<Release>, Error>> {
        Box::pin(async move {
            if ends.is_empty() {
                return Ok(Vec::new());
            }
            let mut args = vec![arg(ends.len().to_string())];
            for e in ends {
                args.push(arg(e.flow.as_str()));
                args.push(arg(e.member.as_str()));
                args.push(arg(status_code(e.status)));
                args.push(arg(e.result.as_deref().unwrap_or("")));
            }
            let reply = self.flow_call(&ENDED, "flow_ended", args).await?;
            releases("flow_ended", "", reply)
        })
    }

    fn members_released<'a>(&'a self, released: &'a [Release]) -> BoxFuture<'a, Result<Vec<JobId>, Error>> {
        Box::pin(async move {
            const OP: &str = "flow_released";
            if released.is_empty() {
                return Ok(Vec::new());
            }
            let mut args = vec![arg(released.len().to_string())];
            for r in released {
                args.push(arg(r.flow.as_str()));
                args.push(arg(r.member.as_str()));
            }
            let reply = self.flow_call(&RELEASED, OP, args).await?;
            let ids = texts(OP, reply)?;
            Ok(ids.iter().filter_map(|s| s.parse().ok()).collect())
        })
    }

    fn stale_releases(&self, older_than: Duration, max: usize) -> BoxFuture<'_, Result<Vec<Release>, Error>> {
        Box::pin(async move {
            let args = vec![arg(older_than.as_millis().to_string()), arg(max.max(1).to_string())];
            let reply = self.flow_call(&STALE, "flow_stale", args).await?;
            releases("flow_stale", "", reply)
        })
    }

    fn take_ended<'a>(
        &'a self,
        queues: &'a [String],
        max: usize,
        claim: Duration,
    ) -> BoxFuture<'a, Result<Vec<MemberEnd>, Error>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for q in queues {
                for keys in self.all_partitions(q) {
                    if out.len() >= max {
                        break;
                    }
                    let take = crate::scripts::flow_take::Take { keys: &keys, max: max - out.len(), claim };
                    out.extend(self.invoke(take).await?);
                }
            }
            Ok(out)
        })
    }

    fn ack_ended<'a>(&'a self, ends: &'a [MemberEnd]) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut by_queue: std::collections::BTreeMap<(&str, u16), Vec<String>> = Default::default();
            for e in ends {
                by_queue.entry((e.job.queue(), e.job.partition())).or_default().push(e.job.ulid().to_string());
            }
            for ((q, p), ids) in by_queue {
                let _: i64 = redis::cmd("ZREM")
                    .arg(QueueKeys::of_partition(&self.inner.prefix, q, p).flow_out())
                    .arg(&ids)
                    .query_async(&mut self.conn())
                    .await
                    .map_err(|e| self.command_error("flow_ack", &e))?;
            }
            Ok(())
        })
    }

    fn mark_cancelled<'a>(&'a self, flow: &'a str) -> BoxFuture<'a, Result<Option<CancelledMembers>, Error>> {
        Box::pin(async move {
            const OP: &str = "flow_cancel";
            let items = array(OP, self.flow_call(&CANCEL, OP, vec![arg(flow)]).await?)?;
            let mut it = items.into_iter();
            if !matches!(it.next(), Some(Value::Int(1))) {
                return Ok(None);
            }
            let mut members = Vec::new();
            while let (Some(m), Some(j)) = (it.next(), it.next()) {
                let job: JobId = text(OP, j)?.parse().map_err(|_| RedisQueueError::reply(OP, "a job id"))?;
                members.push((text(OP, m)?, job));
            }
            Ok(Some(members))
        })
    }

    fn cancel_jobs<'a>(&'a self, jobs: &'a [JobId]) -> BoxFuture<'a, Result<Vec<JobId>, Error>> {
        Box::pin(jobs_core::cancel_each(self, jobs))
    }

    fn flow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<FlowInfo>, Error>> {
        Box::pin(self.read_flow(id, vec![arg("all")]))
    }

    fn flow_page<'a>(
        &'a self,
        id: &'a str,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<FlowInfo>, Error>> {
        Box::pin(self.read_flow(id, vec![arg("page"), arg(offset.to_string()), arg(limit.to_string())]))
    }

    fn flow_member<'a>(&'a self, id: &'a str, member: &'a str) -> BoxFuture<'a, Result<Option<MemberInfo>, Error>> {
        Box::pin(async move {
            let info = self.read_flow(id, vec![arg("member"), arg(member)]).await?;
            Ok(info.and_then(|i| i.members.into_iter().chain(i.callbacks).next()))
        })
    }

    fn flow_summary<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<FlowSummary>, Error>> {
        Box::pin(async move {
            const OP: &str = "flow_summary";
            let key = flow_record(&self.inner.prefix, id);
            let f: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(&key)
                .arg(&["kind", "status", "closed", "created", "ended_at", "total", "ended", "ok"])
                .query_async(&mut self.conn())
                .await
                .map_err(|e| self.command_error(OP, &e))?;
            let [Some(kind), Some(status), closed, created, ended_at, total, ended, ok] =
                <[Option<String>; 8]>::try_from(f).map_err(|_| RedisQueueError::reply(OP, "not 8 fields"))?
            else {
                return Ok(None);
            };
            let t = |v: Option<String>| v.unwrap_or_default();
            Ok(Some(summary(
                OP,
                id.to_owned(),
                &kind,
                &status,
                &t(closed),
                &t(created),
                &t(ended_at),
                &t(total),
                &t(ended),
                &t(ok),
            )?))
        })
    }

    fn flows(
        &self,
        kind: Option<FlowKind>,
        offset: usize,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<FlowSummary>, Error>> {
        Box::pin(async move {
            const OP: &str = "flow_list";
            if limit == 0 {
                return Ok(Vec::new());
            }
            let args =
                vec![arg(kind.map(FlowKind::as_str).unwrap_or("")), arg(offset.to_string()), arg(limit.to_string())];
            let rows = array(OP, self.flow_call(&LIST, OP, args).await?)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let f = texts(OP, row)?;
                let [id, kind, status, closed, created, ended_at, total, ended, ok] =
                    <[String; 9]>::try_from(f).map_err(|_| RedisQueueError::reply(OP, "a flow row is not 9 items"))?;
                out.push(summary(OP, id, &kind, &status, &closed, &created, &ended_at, &total, &ended, &ok)?);
            }
            Ok(out)
        })
    }

    fn flow_waiter(&self) -> Result<Box<dyn Waiter>, Error> {
        let channel = flow_wake(&self.inner.prefix);
        Ok(Box::new(crate::waiter::RedisWaiter::start(self, vec![channel])?))
    }
}
