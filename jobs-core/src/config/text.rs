//! Reading an override's text as a value of the configuration tree.

use serde_yaml_ng::{Mapping, Value};

/// The values `text` may stand for, most specific first, each marked whether
/// it is the text itself: a number, a `[..]` list, the text, and a
/// comma-separated list.
pub(super) fn candidates(text: &str) -> Vec<(bool, Value)> {
    let mut out = Vec::new();
    if let Ok(n) = text.parse::<u64>() {
        out.push((false, Value::from(n)));
    } else if let Ok(n) = text.parse::<i64>() {
        out.push((false, Value::from(n)));
    }
    if text.starts_with('[') {
        if let Ok(list @ Value::Sequence(_)) = serde_yaml_ng::from_str::<Value>(text) {
            out.push((false, list));
        }
    }
    out.push((true, Value::from(text)));
    if !text.starts_with('[') {
        let items = text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Value::from);
        out.push((false, Value::Sequence(items.collect())));
    }
    out
}

/// The place of `path` in `tree`, made with empty sections on the way.
pub(super) fn slot<'t>(tree: &'t mut Value, path: &[String]) -> Result<&'t mut Value, String> {
    let mut here = tree;
    for (i, level) in path.iter().enumerate() {
        if here.is_null() {
            *here = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = here else {
            return Err(format!("`{}` is a value, not a section with keys", path[..i].join(".")));
        };
        here = map.entry(Value::from(level.as_str())).or_insert(Value::Null);
    }
    Ok(here)
}

/// The error to show when no reading of a text fits: a value of the right
/// kind that is out of range says more than a mismatch of kinds; otherwise
/// the error of the text read as text. `errors` pairs each reading's error
/// with whether that reading was the text itself.
pub(super) fn pick_error(errors: &[(bool, String)]) -> String {
    let pick = errors
        .iter()
        .find(|(_, e)| !e.starts_with("invalid type"))
        .or_else(|| errors.iter().find(|(literal, _)| *literal));
    pick.map(|(_, e)| e.clone()).unwrap_or_default()
}
