//! Keeping passwords out of logs and `Debug` output.

use std::borrow::Cow;

/// The URL with any password replaced by `***`: the password of the
/// user-info part (`redis://user:secret@host` → `redis://user:***@host`) and
/// `pass=` / `password=` query parameters (`redis+unix:///run/redis.sock?pass=secret`).
/// A comma-separated list of URLs (cluster nodes) is masked node by node.
/// Text without a password comes back unchanged (borrowed).
///
/// ```
/// use jobs_core::config::mask_url_password;
/// assert_eq!(mask_url_password("redis://ann:s3cret@db:6379/0"), "redis://ann:***@db:6379/0");
/// assert_eq!(mask_url_password("redis://:s3cret@db"), "redis://:***@db");
/// assert_eq!(mask_url_password("redis://db:6379"), "redis://db:6379");
/// ```
pub fn mask_url_password(url: &str) -> Cow<'_, str> {
    if url.contains(',') {
        let parts: Vec<Cow<'_, str>> = url.split(',').map(mask_one).collect();
        if parts.iter().all(|p| matches!(p, Cow::Borrowed(_))) {
            return Cow::Borrowed(url);
        }
        return Cow::Owned(parts.join(","));
    }
    mask_one(url)
}

fn mask_one(url: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut changed = false;
    // Where the authority starts (after `scheme://`) and ends (first `/`, `?` or `#`).
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let auth_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_len];
    out.push_str(&url[..start]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..=colon]);
                    out.push_str("***");
                    changed = true;
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[auth_len..];
    match tail.find('?') {
        Some(q) => {
            out.push_str(&tail[..=q]);
            let (query, fragment) = match tail[q + 1..].find('#') {
                Some(h) => tail[q + 1..].split_at(h),
                None => (&tail[q + 1..], ""),
            };
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("pass") || k.eq_ignore_ascii_case("password") => {
                        changed = true;
                        format!("{k}=***")
                    }
                    _ => kv.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
            out.push_str(fragment);
        }
        None => out.push_str(tail),
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(url)
    }
}

#[cfg(test)]
mod tests {
    use super::mask_url_password as m;

    #[test]
    fn masks_passwords_and_nothing_else() {
        assert_eq!(m("redis://u:p@h:6379/2"), "redis://u:***@h:6379/2");
        assert_eq!(m("rediss://u:p@ss@h"), "rediss://u:***@h", "the last @ ends the user info");
        assert_eq!(m("redis://u@h"), "redis://u@h");
        assert_eq!(m("redis://h/0?x=1#f"), "redis://h/0?x=1#f");
        assert_eq!(m("redis+unix:///tmp/r.sock?db=1&pass=pw"), "redis+unix:///tmp/r.sock?db=1&pass=***");
        assert_eq!(m("redis://a:1@h1,redis://a:2@h2"), "redis://a:***@h1,redis://a:***@h2");
        assert_eq!(m("not a url"), "not a url");
        assert_eq!(m(""), "");
    }
}
