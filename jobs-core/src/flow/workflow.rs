//! [`Workflow`] and [`Step`]: a graph of typed jobs, checked and stored at
//! once.

use std::collections::{BTreeSet, HashMap};

use super::{relay, store_of, FlowRun};
use crate::error::Error;
use crate::error::FlowError;
use crate::job::{Job, JobExt, JobOptions};
use crate::payload::PayloadFormat;
use crate::queue::{mark_member, validate_flow_id, validate_member_name, FlowKind, FlowMember, NewFlow, OnFailure};
use crate::queue::{JobQueue, NewJob};

type Build = Box<dyn FnOnce(PayloadFormat) -> Result<NewJob, Error> + Send>;

/// One step of a [`Workflow`]: a name, a typed job, and the steps it waits
/// for.
///
/// ```
/// use jobs_core::prelude::*;
/// # #[job(crate = jobs_core)] async fn resize(width: u32) -> Result<(), JobError> { Ok(()) }
/// let step = Step::new("small", Resize { width: 320 }).after(["fetch"]);
/// # let _ = step;
/// ```
pub struct Step {
    name: String,
    body: Body,
    after: Vec<(String, OnFailure)>,
}

enum Body {
    Job(Build),
    Nested(Workflow),
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step").field("name", &self.name).field("after", &self.after).finish_non_exhaustive()
    }
}

impl Step {
    /// A step running `job` with its attribute's defaults.
    pub fn new<J: Job>(name: impl Into<String>, job: J) -> Self {
        Self::with_options(name, job, JobOptions::new())
    }

    /// A step running `job` with per-step options (queue, priority,
    /// retries, timeout, group). Its id option is not used: a step's job
    /// is identified by the workflow and the step's name.
    pub fn with_options<J: Job>(name: impl Into<String>, job: J, options: JobOptions) -> Self {
        Step {
            name: name.into(),
            body: Body::Job(Box::new(move |format| job.into_new_job_as(options, format))),
            after: Vec::new(),
        }
    }

    /// A step made of a whole workflow: its steps are named
    /// `<name>/<step>`, its first steps wait for this step's dependencies,
    /// and a step that depends on this one waits for its last steps.
    pub fn workflow(name: impl Into<String>, flow: Workflow) -> Self {
        Step { name: name.into(), body: Body::Nested(flow), after: Vec::new() }
    }

    /// Runs only after every step named here succeeded.
    pub fn after<S: Into<String>>(mut self, steps: impl IntoIterator<Item = S>) -> Self {
        self.after.extend(steps.into_iter().map(|s| (s.into(), OnFailure::Cancel)));
        self
    }

    /// Runs once every step named here ended, whatever its end.
    pub fn after_any_end<S: Into<String>>(mut self, steps: impl IntoIterator<Item = S>) -> Self {
        self.after.extend(steps.into_iter().map(|s| (s.into(), OnFailure::Continue)));
        self
    }
}

/// Named steps, each a typed job, with dependencies forming a graph.
///
/// Nothing is written until [`enqueue`](Self::enqueue), which checks the
/// graph first (unknown names, duplicates, cycles: every problem is an
/// error before anything is stored), then stores every step at once.
/// A step becomes pending only when every step it depends on succeeded; a
/// step that ends dead cancels its dependants, unless their edge says to
/// continue ([`Step::after_any_end`], [`Workflow::on_failure`]).
///
/// ```
/// # use std::time::Duration;
/// use jobs_core::prelude::*;
/// # #[job(crate = jobs_core)] async fn fetch_file(url: String) -> Result<(), JobError> { Ok(()) }
/// # #[job(crate = jobs_core)] async fn parse_file(max_rows: u32) -> Result<(), JobError> { Ok(()) }
/// # #[job(crate = jobs_core)] async fn make_thumbnails() -> Result<(), JobError> { Ok(()) }
/// # #[job(crate = jobs_core)] async fn notify_owner(user: u64) -> Result<(), JobError> { Ok(()) }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let queue = MemoryQueue::new();
/// let pool = WorkerPool::builder(queue.clone()).start()?;
/// let run = Workflow::new("import-42")
///     .step("fetch", FetchFile { url: "https://example.com/a.csv".into() })
///     .step_after("parse", ParseFile { max_rows: 10_000 }, ["fetch"])
///     .step_after("thumbs", MakeThumbnails {}, ["fetch"])
///     .step_after("notify", NotifyOwner { user: 7 }, ["parse", "thumbs"])
///     .enqueue(&queue)
///     .await?;
/// let outcome = run.wait(Duration::from_secs(10)).await?;
/// assert_eq!(outcome.status, FlowStatus::Succeeded);
/// pool.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Workflow {
    id: String,
    steps: Vec<Step>,
    policies: Vec<(String, String, OnFailure)>,
}

impl Workflow {
    /// A workflow with this id (1 to 128 letters, digits, `_`, `-`, `.`,
    /// `:`), unique among stored workflows and batches.
    pub fn new(id: impl Into<String>) -> Self {
        Workflow { id: id.into(), steps: Vec::new(), policies: Vec::new() }
    }

    /// Steps run one after the other.
    pub fn chain(id: impl Into<String>, steps: impl IntoIterator<Item = Step>) -> Self {
        let mut flow = Workflow::new(id);
        for step in steps {
            flow = flow.then(step);
        }
        flow
    }

    /// Steps run side by side (add a step after all of them with
    /// [`then`](Self::then): a chord).
    pub fn group(id: impl Into<String>, steps: impl IntoIterator<Item = Step>) -> Self {
        let mut flow = Workflow::new(id);
        flow.steps.extend(steps);
        flow
    }

    /// The workflow's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Adds a step that depends on nothing.
    pub fn step<J: Job>(self, name: impl Into<String>, job: J) -> Self {
        self.add_step(Step::new(name, job))
    }

    /// Adds a step that runs after every step named in `after` succeeded.
    pub fn step_after<J: Job, S: Into<String>>(
        self,
        name: impl Into<String>,
        job: J,
        after: impl IntoIterator<Item = S>,
    ) -> Self {
        self.add_step(Step::new(name, job).after(after))
    }

    /// Adds a step built with [`Step`] (options, nested workflows, edges
    /// that continue).
    pub fn add_step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Adds a step after every step that nothing depends on yet: the
    /// workflow's current ends.
    pub fn then(mut self, step: Step) -> Self {
        let depended: BTreeSet<&str> =
            self.steps.iter().flat_map(|s| s.after.iter().map(|(d, _)| d.as_str())).collect();
        let ends: Vec<String> =
            self.steps.iter().map(|s| s.name.clone()).filter(|n| !depended.contains(n.as_str())).collect();
        self.steps.push(step.after(ends));
        self
    }

    /// Sets what step `step` does when its dependency `dependency` ends
    /// without success (the default is [`OnFailure::Cancel`]).
    pub fn on_failure(mut self, step: impl Into<String>, dependency: impl Into<String>, policy: OnFailure) -> Self {
        self.policies.push((step.into(), dependency.into(), policy));
        self
    }

    /// Checks the graph and stores every step at once (or nothing), then
    /// enqueues the steps that depend on nothing. Refused with
    /// [`FlowError`] (inside [`Error::Flow`]) for a bad id or name, a
    /// duplicate name, an unknown dependency, a cycle, or an id in use.
    pub async fn enqueue<Q: JobQueue + ?Sized>(self, queue: &Q) -> Result<FlowRun, Error> {
        let store = store_of(queue)?;
        let id = self.id.clone();
        let members = self.into_members(queue.payload_format())?;
        let flow = NewFlow {
            id: id.clone(),
            kind: FlowKind::Workflow,
            members,
            closed: true,
            on_success: None,
            on_complete: None,
        };
        let releases = store.create_flow(flow).await?;
        relay::release(queue, &*store, releases).await?;
        Ok(FlowRun::new(id, store))
    }

    /// The members in dependency order, each job marked as its member.
    pub(crate) fn into_members(self, format: PayloadFormat) -> Result<Vec<FlowMember>, Error> {
        validate_flow_id(&self.id)?;
        let id = self.id.clone();
        let mut flat = Vec::new();
        self.flatten("", &[], format, &mut flat)?;
        if flat.is_empty() {
            return Err(FlowError::Empty(id).into());
        }
        let mut members = order(&id, flat)?;
        for m in &mut members {
            mark_member(&mut m.job, &id, &m.name, true);
        }
        Ok(members)
    }

    /// Flattens nested workflows: names prefixed, edges to a nested
    /// workflow turned into edges to its last steps, its first steps
    /// given the outer step's dependencies.
    fn flatten(
        self,
        prefix: &str,
        outer_after: &[(String, OnFailure)],
        format: PayloadFormat,
        out: &mut Vec<FlowMember>,
    ) -> Result<(), Error> {
        let Workflow { id, steps, policies } = self;
        // Each step's ends: itself, or a nested workflow's last steps.
        let mut ends: HashMap<String, Vec<String>> = HashMap::new();
        let mut bodies = Vec::new();
        let names: BTreeSet<String> = steps.iter().map(|s| s.name.clone()).collect();
        for step in steps {
            validate_member_name(&step.name)?;
            if step.name.contains('/') {
                return Err(FlowError::InvalidMemberName(step.name).into());
            }
            let mut after = step.after;
            for (s, d, policy) in &policies {
                if *s == step.name {
                    match after.iter_mut().find(|(n, _)| n == d) {
                        Some(edge) => edge.1 = *policy,
                        None => {
                            return Err(FlowError::NoSuchEdge {
                                flow: id.clone(),
                                member: s.clone(),
                                dependency: d.clone(),
                            }
                            .into())
                        }
                    }
                }
            }
            for (d, _) in &after {
                if !names.contains(d) {
                    return Err(FlowError::UnknownDependency {
                        flow: id.clone(),
                        member: format!("{prefix}{}", step.name),
                        dependency: d.clone(),
                    }
                    .into());
                }
            }
            bodies.push((step.name, step.body, after));
        }
        for (s, d, _) in &policies {
            if !names.contains(s) {
                return Err(FlowError::NoSuchEdge { flow: id.clone(), member: s.clone(), dependency: d.clone() }.into());
            }
        }
        // Resolve nested ends before use: steps come in any order.
        for (name, body, _) in &bodies {
            let full = format!("{prefix}{name}");
            let e = match body {
                Body::Job(_) => vec![full],
                Body::Nested(inner) => nested_ends(&full, inner),
            };
            ends.insert(name.clone(), e);
        }
        for (name, body, after) in bodies {
            let full = format!("{prefix}{name}");
            // The outer step's dependencies go to the nested first steps
            // only: the others wait for those.
            let mut deps: Vec<(String, OnFailure)> = if after.is_empty() { outer_after.to_vec() } else { Vec::new() };
            for (d, policy) in after {
                deps.extend(ends[&d].iter().map(|e| (e.clone(), policy)));
            }
            match body {
                Body::Job(build) => out.push(FlowMember { name: full, job: build(format)?, after: deps }),
                Body::Nested(inner) => inner.flatten(&format!("{full}/"), &deps, format, out)?,
            }
        }
        Ok(())
    }
}

/// The full names of a nested workflow's last steps (nothing depends on
/// them), nested ones resolved.
fn nested_ends(full: &str, flow: &Workflow) -> Vec<String> {
    let depended: BTreeSet<&str> = flow.steps.iter().flat_map(|s| s.after.iter().map(|(d, _)| d.as_str())).collect();
    let mut out = Vec::new();
    for s in flow.steps.iter().filter(|s| !depended.contains(s.name.as_str())) {
        match &s.body {
            Body::Job(_) => out.push(format!("{full}/{}", s.name)),
            Body::Nested(inner) => out.extend(nested_ends(&format!("{full}/{}", s.name), inner)),
        }
    }
    out
}

/// Orders members so that each comes after its dependencies; refuses
/// duplicates and cycles (naming the cycle).
fn order(flow: &str, members: Vec<FlowMember>) -> Result<Vec<FlowMember>, FlowError> {
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, m) in members.iter().enumerate() {
        if index.insert(m.name.clone(), i).is_some() {
            return Err(FlowError::DuplicateMember { flow: flow.to_owned(), member: m.name.clone() });
        }
    }
    // Depth-first, iterative: 0 new, 1 on the path, 2 done.
    let mut mark = vec![0u8; members.len()];
    let mut sorted = Vec::with_capacity(members.len());
    for root in 0..members.len() {
        if mark[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = 1;
        while let Some(&mut (at, ref mut next)) = stack.last_mut() {
            if let Some((dep, _)) = members[at].after.get(*next) {
                *next += 1;
                let d = index[dep];
                match mark[d] {
                    0 => {
                        mark[d] = 1;
                        stack.push((d, 0));
                    }
                    1 => {
                        // The path from `d` down the stack, each step
                        // waiting for the next, back to `d`.
                        let from = stack.iter().position(|&(s, _)| s == d).unwrap_or(0);
                        let mut path: Vec<String> =
                            stack[from..].iter().map(|&(s, _)| members[s].name.clone()).collect();
                        path.push(members[d].name.clone());
                        return Err(FlowError::Cycle { flow: flow.to_owned(), path });
                    }
                    _ => {}
                }
            } else {
                mark[at] = 2;
                sorted.push(at);
                stack.pop();
            }
        }
    }
    let mut slots: Vec<Option<FlowMember>> = members.into_iter().map(Some).collect();
    // Each position is taken once: `sorted` lists every member once.
    Ok(sorted.into_iter().filter_map(|i| slots[i].take()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::NewJob;
    use crate::vocab::JobId;

    // Only its payload type is used: the graph is built, not run.
    #[allow(dead_code)]
    #[crate::job(crate = crate, register = false, name = "flow.test.step")]
    async fn step_job(seq: u64) -> Result<u64, crate::JobError> {
        Ok(seq)
    }

    fn job(seq: u64) -> StepJob {
        StepJob { seq }
    }

    /// Each member's name and its dependencies (name, continues).
    fn graph(flow: Workflow) -> Vec<(String, Vec<(String, bool)>)> {
        let members = flow.into_members(PayloadFormat::Json).unwrap();
        members
            .into_iter()
            .map(|m| {
                assert_eq!(m.job.headers.get(crate::queue::FLOW_HEADER), Some(&format!("f {}", m.name)));
                let after = m.after.into_iter().map(|(d, p)| (d, p == OnFailure::Continue)).collect();
                (m.name, after)
            })
            .collect()
    }

    fn deps(g: &[(String, Vec<(String, bool)>)], name: &str) -> Vec<String> {
        let mut d: Vec<String> = g.iter().find(|(n, _)| n == name).unwrap().1.iter().map(|(d, _)| d.clone()).collect();
        d.sort();
        d
    }

    #[test]
    fn chain_group_and_then_build_their_edges() {
        let chain =
            graph(Workflow::chain("f", [Step::new("a", job(1)), Step::new("b", job(2)), Step::new("c", job(3))]));
        assert_eq!(deps(&chain, "a"), Vec::<String>::new());
        assert_eq!(deps(&chain, "b"), ["a"]);
        assert_eq!(deps(&chain, "c"), ["b"]);
        let chord =
            graph(Workflow::group("f", [Step::new("x", job(1)), Step::new("y", job(2))]).then(Step::new("z", job(3))));
        assert_eq!(deps(&chord, "x"), Vec::<String>::new());
        assert_eq!(deps(&chord, "z"), ["x", "y"]);
    }

    #[test]
    fn a_nested_workflow_is_flattened_between_its_neighbours() {
        let inner = Workflow::new("inner").step("fetch", job(1)).step_after("left", job(2), ["fetch"]).step_after(
            "right",
            job(3),
            ["fetch"],
        );
        let g = graph(
            Workflow::new("f")
                .step("start", job(10))
                .add_step(Step::workflow("sub", inner).after(["start"]))
                .step_after("end", job(11), ["sub"]),
        );
        let names: Vec<&str> = g.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), 5, "{names:?}");
        assert_eq!(deps(&g, "sub/fetch"), ["start"], "the nested first step waits for the outer dependency");
        assert_eq!(deps(&g, "sub/left"), ["sub/fetch"]);
        assert_eq!(deps(&g, "end"), ["sub/left", "sub/right"], "a step after the nested one waits for its last steps");
    }

    #[test]
    fn on_failure_sets_an_edge_and_refuses_an_unknown_one() {
        let g = graph(
            Workflow::new("f").step("a", job(1)).step("b", job(2)).step_after("c", job(3), ["a", "b"]).on_failure(
                "c",
                "b",
                OnFailure::Continue,
            ),
        );
        let c = &g.iter().find(|(n, _)| n == "c").unwrap().1;
        assert!(c.contains(&("a".into(), false)) && c.contains(&("b".into(), true)), "{c:?}");
        let err = Workflow::new("f").step("a", job(1)).on_failure("a", "zz", OnFailure::Continue);
        match err.into_members(PayloadFormat::Json).unwrap_err() {
            Error::Flow(e) => assert!(matches!(*e, FlowError::NoSuchEdge { .. }), "{e}"),
            other => panic!("{other}"),
        }
    }

    fn member(name: &str, after: &[&str]) -> FlowMember {
        FlowMember {
            name: name.into(),
            job: NewJob::new(JobId::new("q"), "x", b"{}".to_vec()),
            after: after.iter().map(|a| (a.to_string(), OnFailure::Cancel)).collect(),
        }
    }

    #[test]
    fn order_puts_dependencies_first() {
        let out = order("f", vec![member("c", &["b"]), member("b", &["a"]), member("a", &[])]).unwrap();
        let names: Vec<_> = out.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn order_names_the_cycle() {
        let err = order("f", vec![member("a", &["c"]), member("b", &["a"]), member("c", &["b"]), member("d", &[])])
            .unwrap_err();
        match err {
            FlowError::Cycle { path, .. } => assert_eq!(path, ["a", "c", "b", "a"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn order_refuses_duplicates() {
        let err = order("f", vec![member("a", &[]), member("a", &[])]).unwrap_err();
        assert_eq!(err, FlowError::DuplicateMember { flow: "f".into(), member: "a".into() });
    }
}
