//! Jobs in nested modules, `pub(crate)` jobs, serde attributes on
//! parameters and a renamed `jobs_core` through `crate = ..`.
use jobs_core::prelude::*;

mod outer {
    pub mod inner {
        use jobs_core::prelude::*;

        /// Resizes one image.
        #[job(queue = "files")]
        pub async fn resize_image(
            path: String,
            #[validate(range(min = 1, max = 8192))] width: u32,
        ) -> Result<(), JobError> {
            let _ = (path, width);
            Ok(())
        }

        #[job]
        pub(crate) async fn crate_only(#[serde(rename = "n", default)] count: u8) -> Result<u8, JobError> {
            Ok(count)
        }
    }
}

mod renamed {
    use jobs_core as jc;

    #[jc::job(crate = jc, name = "renamed_job")]
    pub async fn via_alias(ctx: jc::JobContext, r#type: String) -> Result<(), jc::JobError> {
        let _ = (ctx, r#type);
        Ok(())
    }
}

// A field added later as `Option<T>` decodes older payloads, which lack it.
#[job]
async fn optional(id: u64, #[validate(length(max = 10))] note: Option<String>) -> Result<(), JobError> {
    let _ = (id, note);
    Ok(())
}

use outer::inner::{CrateOnly, ResizeImage};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let job = ResizeImage { path: "a.png".into(), width: 100 };
    assert!(job.validate().is_ok());
    assert!(ResizeImage::new("a.png".into(), 0).validate().is_err());
    assert_eq!(ResizeImage::QUEUE, "files");

    let c = CrateOnly { count: 3 };
    assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"n":3}"#);
    let back: CrateOnly = serde_json::from_str("{}").unwrap();
    assert_eq!(back.count, 0);
    assert_eq!(outer::inner::crate_only(9).await.unwrap(), 9);

    let v = renamed::ViaAlias { r#type: "x".into() };
    assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"type":"x"}"#);
    assert_eq!(<renamed::ViaAlias as Job>::NAME, "renamed_job");

    let old: Optional = serde_json::from_str(r#"{"id":1}"#).unwrap();
    assert_eq!(old.note, None);
    assert_eq!(serde_json::to_string(&old).unwrap(), r#"{"id":1,"note":null}"#);
    assert!(serde_json::from_str::<Optional>(r#"{"note":"x"}"#).is_err());

    let d = jobs_core::backend::descriptors().find(|d| d.name == "resize_image").expect("registered");
    assert!(d.type_name.ends_with("::outer::inner::ResizeImage"), "{}", d.type_name);
    let err = (d.run)(JobContext::for_test("resize_image"), jobs_core::backend::PayloadFormat::Json, br#"{"path":"a","width":0}"#).await.unwrap_err();
    assert!(matches!(err, jobs_core::backend::RunError::Invalid(_)), "{err:?}");
    assert_eq!(err.to_string(), "invalid job payload: field `width` (range): 0 is not between 1 and 8192");
}
