//! The `JobContext` parameter at the first, a middle and the last position,
//! under another name and path, or absent.
use jobs_core::prelude::*;

#[job]
async fn first(ctx: JobContext, a: u32, b: String) -> Result<String, JobError> {
    Ok(format!("{}:{a}:{b}", ctx.job_name()))
}

#[job]
async fn middle(a: u32, context: jobs_core::JobContext, b: String) -> Result<String, JobError> {
    Ok(format!("{}:{a}:{b}", context.job_name()))
}

#[job]
async fn last(a: u32, b: String, _cx: JobContext) -> Result<String, JobError> {
    Ok(format!("{a}:{b}"))
}

#[job]
async fn none(a: u32, b: String) -> Result<String, JobError> {
    Ok(format!("{a}:{b}"))
}

// Fields named like the glue's own variables do not clash with them.
#[job]
async fn clash(ctx: u32, payload: String, __jobs_ctx: JobContext) -> Result<String, JobError> {
    Ok(format!("{ctx}:{payload}:{}", __jobs_ctx.job_name()))
}

async fn run(name: &str, payload: &str) -> String {
    let d = jobs_core::backend::descriptors().find(|d| d.name == name).expect("registered");
    let out = (d.run)(JobContext::for_test(name), jobs_core::backend::PayloadFormat::Json, payload.as_bytes()).await.unwrap().expect("a result");
    serde_json::from_slice(&out).unwrap()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(run("first", r#"{"a":1,"b":"x"}"#).await, "first:1:x");
    assert_eq!(run("middle", r#"{"a":2,"b":"y"}"#).await, "middle:2:y");
    assert_eq!(run("last", r#"{"a":3,"b":"z"}"#).await, "3:z");
    assert_eq!(run("none", r#"{"a":4,"b":"w"}"#).await, "4:w");
    assert_eq!(run("clash", r#"{"ctx":5,"payload":"v"}"#).await, "5:v:clash");

    // The payload structs hold only the payload parameters, in order.
    let m = Middle::new(2, "y".into());
    assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"a":2,"b":"y"}"#);
    assert_eq!(format!("{:?}", Last { a: 1, b: "q".into() }.clone()), r#"Last { a: 1, b: "q" }"#);
    assert_eq!(middle(7, JobContext::for_test("m"), "d".into()).await.unwrap(), "m:7:d");
}
