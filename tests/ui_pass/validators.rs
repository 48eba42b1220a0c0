//! Every validator, combined in one attribute or several, on plain and
//! `Option` parameters, with the exact messages.
use std::collections::HashMap;

use jobs_core::prelude::*;

fn even(n: &i64) -> Result<(), String> {
    if n % 2 == 0 {
        Ok(())
    } else {
        Err(format!("{n} is odd"))
    }
}

mod rules {
    pub fn no_spaces(s: &str) -> Result<(), String> {
        if s.contains(' ') {
            Err("must not contain spaces".into())
        } else {
            Ok(())
        }
    }
}

#[job]
async fn everything(
    #[validate(email, length(max = 32))] email: String,
    #[validate(url)] homepage: String,
    #[validate(non_empty)] tags: Vec<String>,
    #[validate(length(min = 2))]
    #[validate(custom = rules::no_spaces)]
    handle: String,
    #[validate(range(min = -5, max = 5))] offset: i32,
    #[validate(range(min = 0, max = 1))] ratio: f64,
    #[validate(range(max = 2.5))] limit: f32,
    #[validate(pattern = "^[A-Z]{2}$")] country: String,
    #[validate(custom = even)] count: i64,
    #[validate(length(min = 1, max = 2))] labels: HashMap<String, String>,
    #[validate(email)] cc: Option<String>,
    #[validate(range(min = 1))] retries: Option<u8>,
    #[validate(length(min = 3), pattern = "^[a-z]+$")] nick: Option<String>,
    plain: Option<String>,
) -> Result<(), JobError> {
    let _ = (email, homepage, tags, handle, offset, ratio, limit, country, count, labels, cc, retries, nick, plain);
    Ok(())
}

fn valid() -> Everything {
    Everything {
        email: "ann@example.com".into(),
        homepage: "https://example.com/ann".into(),
        tags: vec!["a".into()],
        handle: "ann".into(),
        offset: -5,
        ratio: 1.0,
        limit: 2.5,
        country: "DE".into(),
        count: 4,
        labels: HashMap::from([("k".into(), "v".into())]),
        cc: None,
        retries: None,
        nick: None,
        plain: None,
    }
}

fn rules_broken(job: &Everything) -> Vec<(String, String, String)> {
    match job.validate() {
        Ok(()) => Vec::new(),
        Err(e) => e.errors.into_iter().map(|e| (e.field, e.rule, e.message)).collect(),
    }
}

fn one(field: &str, rule: &str, message: &str) -> Vec<(String, String, String)> {
    vec![(field.into(), rule.into(), message.into())]
}

fn main() {
    assert_eq!(rules_broken(&valid()), vec![]);
    let with = |f: fn(&mut Everything)| {
        let mut j = valid();
        f(&mut j);
        rules_broken(&j)
    };
    assert_eq!(with(|j| j.email = "ann".into()), one("email", "email", "`ann` is not an email address"));
    assert_eq!(
        with(|j| j.email = format!("{}@example.com", "a".repeat(30))),
        one("email", "length", "has 42 characters, at most 32 allowed")
    );
    assert_eq!(with(|j| j.homepage = "example".into()), one("homepage", "url", "`example` is not an absolute URL"));
    assert_eq!(with(|j| j.tags.clear()), one("tags", "non_empty", "must not be empty"));
    assert_eq!(with(|j| j.handle = "a".into()), one("handle", "length", "has 1 characters, at least 2 required"));
    assert_eq!(with(|j| j.handle = "a b".into()), one("handle", "custom", "must not contain spaces"));
    assert_eq!(with(|j| j.offset = 6), one("offset", "range", "6 is not between -5 and 5"));
    assert_eq!(with(|j| j.ratio = 1.5), one("ratio", "range", "1.5 is not between 0 and 1"));
    assert_eq!(with(|j| j.ratio = f64::NAN), one("ratio", "range", "NaN is not between 0 and 1"));
    assert_eq!(with(|j| j.limit = 3.0), one("limit", "range", "3 is greater than 2.5"));
    assert_eq!(with(|j| j.country = "DEU".into()), one("country", "pattern", "`DEU` does not match `^[A-Z]{2}$`"));
    assert_eq!(with(|j| j.count = 3), one("count", "custom", "3 is odd"));
    assert_eq!(with(|j| j.labels.clear()), one("labels", "length", "has 0 items, at least 1 required"));

    // `Option` fields: checked when `Some`, skipped when `None`.
    assert_eq!(with(|j| j.cc = Some("bob@example.com".into())), vec![]);
    assert_eq!(with(|j| j.cc = Some("bob".into())), one("cc", "email", "`bob` is not an email address"));
    assert_eq!(with(|j| j.retries = Some(0)), one("retries", "range", "0 is less than 1"));
    assert_eq!(with(|j| j.retries = Some(1)), vec![]);
    assert_eq!(with(|j| j.nick = Some("ab".into())), one("nick", "length", "has 2 characters, at least 3 required"));
    assert_eq!(
        with(|j| j.nick = Some("A".into())),
        vec![
            ("nick".into(), "length".into(), "has 1 characters, at least 3 required".into()),
            ("nick".into(), "pattern".into(), "`A` does not match `^[a-z]+$`".into()),
        ]
    );

    // Every broken rule is listed, in parameter order.
    let mut j = valid();
    j.email = "x".into();
    j.offset = 100;
    j.cc = Some("y".into());
    let e = j.validate().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid job payload: field `email` (email): `x` is not an email address; \
         field `offset` (range): 100 is not between -5 and 5; field `cc` (email): `y` is not an email address"
    );
}
