//! The rules of a job definition: one `check_*` function per rule, each
//! pushing a spanned error (saying what to write instead) into [`Errors`].
//! Every rule runs even after another failed, so a user sees all mistakes of
//! one function at once; code is generated only when none failed.
//!
//! Type-level rules (a payload type that is not serde, `length` on a number)
//! cannot be seen here: `expand.rs` emits spanned checks for them and the
//! compiler reports them with the messages of `jobs_core::__private`.

use std::time::Duration;

use proc_macro2::Span;
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::{Expr, FnArg, GenericArgument, Ident, Lit, LitStr, Pat, PathArguments, ReturnType, Signature, Type};

use crate::errors::Errors;
use crate::model::{number_literal, Args, Output, Param, Recurring, RuleKind, Settings};

/// Runs every rule. Returns the settings, meaningful only when `errors`
/// stayed empty.
pub fn check(args: &Args, sig: &Signature, params: &[Param], errors: &mut Errors) -> Option<Settings> {
    check_async(sig, errors);
    check_qualifiers(sig, errors);
    check_receiver(sig, errors);
    check_generics(sig, errors);
    let output = check_return(sig, errors);
    check_param_names(params, errors);
    check_contexts(params, errors);
    check_context_attrs(params, errors);
    check_redact(params, errors);
    check_owned(params, errors);
    check_length_bounds(params, errors);
    check_range_bounds(params, errors);
    check_patterns(params, errors);
    #[cfg(not(feature = "validate"))]
    check_validate_feature(params, errors);
    let queue = check_queue(args.queue.as_ref(), errors);
    let name = check_name(args.name.as_ref(), &sig.ident, errors);
    let priority = check_priority(args.priority.as_ref(), errors);
    let retries = check_retries(args.retries.as_ref(), errors);
    let timeout = check_duration("timeout", args.timeout.as_ref(), errors);
    let unique_for = check_duration("unique_for", args.unique_for.as_ref(), errors);
    let expires = check_duration("expires", args.expires.as_ref(), errors);
    check_expires_cron(args, errors);
    let group = check_group(args.group.as_ref(), params, errors);
    let concurrency = check_concurrency(args, errors);
    let rate = check_rate(args, errors);
    let cron = check_cron(args, params, errors);
    let register = check_register(args.register.as_ref(), errors);
    let krate = match &args.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::jobs_core),
    };
    Some(Settings {
        krate,
        register,
        sandbox: args.sandbox.is_some(),
        name,
        queue,
        priority,
        retries,
        timeout,
        unique_for,
        expires,
        group,
        concurrency,
        rate,
        cron,
        output: output?,
    })
}

/// The worker awaits the function: it must be `async`.
fn check_async(sig: &Signature, errors: &mut Errors) {
    if sig.asyncness.is_none() {
        let msg = format!("a job function must be `async`: write `async fn {}(..)`", sig.ident);
        errors.push(syn::Error::new(sig.fn_token.span, msg));
    }
}

/// The generated glue calls the function as a plain safe Rust function.
fn check_qualifiers(sig: &Signature, errors: &mut Errors) {
    if let Some(t) = &sig.unsafety {
        errors.push(syn::Error::new(
            t.span,
            "a job function cannot be `unsafe`: remove `unsafe` and use an `unsafe` block inside",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(abi, "a job function cannot have an ABI: remove this `extern`"));
    }
    if let Some(t) = &sig.constness {
        errors.push(syn::Error::new(t.span, "a job function cannot be `const`: remove `const`"));
    }
}

/// A job is a free function: there is no value to call a method on.
fn check_receiver(sig: &Signature, errors: &mut Errors) {
    for input in &sig.inputs {
        if let FnArg::Receiver(r) = input {
            errors.push(syn::Error::new_spanned(
                r,
                "a job function cannot take `self`: make it a free function and pass what it needs as parameters \
                 (they become the payload)",
            ));
        }
    }
}

/// The payload struct and the registration need one concrete signature.
fn check_generics(sig: &Signature, errors: &mut Errors) {
    for param in &sig.generics.params {
        let msg = match param {
            syn::GenericParam::Type(t) => format!(
                "a job function cannot be generic: its payload is stored and decoded by name; \
                 replace `{}` with a concrete type",
                t.ident
            ),
            syn::GenericParam::Lifetime(_) => "a job function cannot have lifetime parameters: its payload is \
                                               decoded from storage and owned; take owned values (`String` for `&str`)"
                .to_owned(),
            syn::GenericParam::Const(c) => {
                format!("a job function cannot have const parameters: replace `{}` with a value", c.ident)
            }
        };
        errors.push(syn::Error::new_spanned(param, msg));
    }
    if let Some(w) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(w, "a job function cannot have a `where` clause: use concrete types"));
    }
}

/// The function returns a `Result` (of any alias named `Result`): `Ok`
/// values are stored as the job's result, errors become `JobError`s.
fn check_return(sig: &Signature, errors: &mut Errors) -> Option<Output> {
    let ty = match &sig.output {
        ReturnType::Type(_, ty) => ty,
        ReturnType::Default => {
            errors.push(syn::Error::new(
                sig.ident.span(),
                "a job function must return a `Result`: add `-> Result<(), JobError>` (or `-> Result<T, E>` \
                 with `T: Serialize` and `E: std::error::Error + Send + Sync + 'static`)",
            ));
            return None;
        }
    };
    let last = match &**ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().filter(|s| s.ident == "Result"),
        _ => None,
    };
    let Some(last) = last else {
        errors.push(syn::Error::new_spanned(
            ty,
            "a job function must return a `Result`: write `Result<(), JobError>`, `Result<T, E>` or `anyhow::Result<T>`",
        ));
        return None;
    };
    let mut types = match &last.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
    .into_iter();
    Some(Output { ty: (**ty).clone(), ok: types.next(), err: types.next() })
}

/// A payload parameter's name is its field's name.
fn check_param_names(params: &[Param], errors: &mut Errors) {
    for p in params.iter().filter(|p| p.is_payload() && p.ident().is_none()) {
        let msg = match &*p.pat {
            Pat::Wild(_) => {
                "a job parameter needs a name: it becomes a payload field; write `name: Type` \
                             (`_name: Type` if the function does not use it)"
            }
            _ => {
                "a job parameter must be a plain name: it becomes a payload field; write `name: Type` and \
                  destructure it inside the function"
            }
        };
        errors.push(syn::Error::new_spanned(&p.pat, msg));
    }
}

/// The worker hands over one context.
fn check_contexts(params: &[Param], errors: &mut Errors) {
    for p in params.iter().filter(|p| p.is_context).skip(1) {
        errors.push(syn::Error::new_spanned(
            &p.ty,
            "a job function takes at most one `JobContext`: remove this parameter (`JobContext` is cheap to clone)",
        ));
    }
}

/// The context and pool data are not stored, so payload attributes mean
/// nothing on them.
fn check_context_attrs(params: &[Param], errors: &mut Errors) {
    for p in params.iter().filter(|p| !p.is_payload()) {
        let what = p.injected_name();
        for attr in &p.validate_attrs {
            errors.push(syn::Error::new_spanned(
                attr,
                format!("`#[validate]` does not apply to {what}: it is not part of the payload; remove it"),
            ));
        }
        for attr in &p.serde_attrs {
            errors.push(syn::Error::new_spanned(
                attr,
                format!("`#[serde]` does not apply to {what}: it is not part of the payload; remove it"),
            ));
        }
    }
}

/// `#[redact]` is a bare marker, once per payload field.
fn check_redact(params: &[Param], errors: &mut Errors) {
    for p in params {
        for (i, attr) in p.redact_attrs.iter().enumerate() {
            if !p.is_payload() {
                errors.push(syn::Error::new_spanned(
                    attr,
                    format!(
                        "`#[redact]` does not apply to {}: it is not part of the payload; remove it",
                        p.injected_name()
                    ),
                ));
            } else if !matches!(attr.meta, syn::Meta::Path(_)) {
                errors.push(syn::Error::new_spanned(attr, "`#[redact]` takes no arguments: write `#[redact]`"));
            } else if i > 0 {
                errors.push(syn::Error::new_spanned(attr, "`#[redact]` is given twice on this parameter: remove one"));
            }
        }
    }
}

/// Payload fields are decoded from storage, so they own their data.
fn check_owned(params: &[Param], errors: &mut Errors) {
    for p in params.iter().filter(|p| p.is_payload()) {
        let msg = match &*p.ty {
            Type::Reference(r) if matches!(&*r.elem, Type::Path(t) if t.path.segments.last().is_some_and(|s| s.ident == "JobContext")) => {
                "take the context by value: write `ctx: JobContext` (it is cheap to clone)"
            }
            Type::ImplTrait(_) => {
                "a job parameter cannot be `impl Trait`: it is stored in the payload; use a concrete type"
            }
            ty if borrows(ty) => {
                "a job parameter must own its data: it is decoded from storage; write `String` for `&str`, \
                 `Vec<T>` for `&[T]`, `T` for `&T`"
            }
            _ => continue,
        };
        errors.push(syn::Error::new_spanned(&p.ty, msg));
    }
}

/// Whether a type holds a reference or a non-`'static` lifetime.
fn borrows(ty: &Type) -> bool {
    match ty {
        Type::Reference(_) | Type::TraitObject(_) => true,
        Type::Paren(t) => borrows(&t.elem),
        Type::Group(t) => borrows(&t.elem),
        Type::Slice(t) => borrows(&t.elem),
        Type::Array(t) => borrows(&t.elem),
        Type::Tuple(t) => t.elems.iter().any(borrows),
        Type::Path(p) => p.path.segments.iter().any(|s| match &s.arguments {
            PathArguments::AngleBracketed(a) => a.args.iter().any(|a| match a {
                GenericArgument::Type(t) => borrows(t),
                GenericArgument::Lifetime(l) => l.ident != "static",
                _ => false,
            }),
            _ => false,
        }),
        _ => false,
    }
}

/// `length` bounds are counts and `min` cannot exceed `max`.
fn check_length_bounds(params: &[Param], errors: &mut Errors) {
    for rule in params.iter().flat_map(|p| &p.rules) {
        let RuleKind::Length { min, max } = &rule.kind else { continue };
        let parse = |l: &Option<syn::LitInt>, errors: &mut Errors| {
            let l = l.as_ref()?;
            match l.base10_parse::<u64>() {
                Ok(v) => Some(v),
                Err(_) => {
                    errors.push(syn::Error::new(l.span(), "a `length` bound is a count: a non-negative integer"));
                    None
                }
            }
        };
        if let (Some(a), Some(b)) = (parse(min, errors), parse(max, errors)) {
            if a > b {
                let msg = format!("`length` has `min = {a}` above `max = {b}`: no value can pass; swap them");
                errors.push(syn::Error::new(rule.span, msg));
            }
        }
    }
}

/// `range` bounds are ordered.
fn check_range_bounds(params: &[Param], errors: &mut Errors) {
    for rule in params.iter().flat_map(|p| &p.rules) {
        let RuleKind::Range { min: Some(min), max: Some(max) } = &rule.kind else { continue };
        if let (Some(a), Some(b)) = (number_literal(min), number_literal(max)) {
            if a > b {
                let msg = format!("`range` has `min = {a}` above `max = {b}`: no value can pass; swap them");
                errors.push(syn::Error::new(rule.span, msg));
            }
        }
    }
}

/// `pattern` regexes compile (with the same `regex` crate that runs them).
/// Without the `validate` feature there is no `regex` crate here, and the
/// rule is refused by `check_validate_feature`.
fn check_patterns(params: &[Param], errors: &mut Errors) {
    #[cfg(not(feature = "validate"))]
    let _ = (params, errors);
    #[cfg(feature = "validate")]
    for rule in params.iter().flat_map(|p| &p.rules) {
        let RuleKind::Pattern(lit) = &rule.kind else { continue };
        if let Err(e) = regex::Regex::new(&lit.value()) {
            let msg = match e {
                regex::Error::Syntax(s) => format!("invalid regular expression in `pattern`:\n{s}"),
                other => format!("invalid regular expression in `pattern`: {other}"),
            };
            errors.push(syn::Error::new(lit.span(), msg));
        }
    }
}

/// Queue names end up in storage keys and URLs.
fn check_queue(lit: Option<&LitStr>, errors: &mut Errors) -> String {
    let Some(lit) = lit else { return "default".to_owned() };
    let q = lit.value();
    let ok = !q.is_empty()
        && q.len() <= 64
        && q.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !ok {
        let msg =
            format!("invalid queue name {q:?}: use 1 to 64 letters, digits, `_`, `-` or `.`, e.g. `queue = \"email\"`");
        errors.push(syn::Error::new(lit.span(), msg));
    }
    q
}

/// Job names are stored with every job and shown in metrics labels.
fn check_name(lit: Option<&LitStr>, ident: &Ident, errors: &mut Errors) -> String {
    let Some(lit) = lit else { return ident.unraw().to_string() };
    let n = lit.value();
    let ok = !n.is_empty()
        && n.len() <= 128
        && n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if !ok {
        let msg = format!(
            "invalid job name {n:?}: use 1 to 128 letters, digits, `_`, `-`, `.` or `:`, e.g. `name = \"billing:send_invoice\"`"
        );
        errors.push(syn::Error::new(lit.span(), msg));
    }
    n
}

/// One of the four priorities, lowercase as in configuration.
fn check_priority(lit: Option<&LitStr>, errors: &mut Errors) -> Ident {
    let variant = match lit.map(LitStr::value).as_deref() {
        None | Some("normal") => "Normal",
        Some("low") => "Low",
        Some("high") => "High",
        Some("critical") => "Critical",
        Some(other) => {
            let msg =
                format!("unknown priority {other:?}: expected one of \"low\", \"normal\", \"high\", \"critical\"");
            errors.push(syn::Error::new(lit.map_or_else(Span::call_site, LitStr::span), msg));
            "Normal"
        }
    };
    Ident::new(variant, Span::call_site())
}

/// `retries` is a small non-negative integer: retries after the first attempt.
fn check_retries(expr: Option<&Expr>, errors: &mut Errors) -> Option<u32> {
    let expr = expr?;
    let what =
        "`retries` is the number of retries after the first attempt: an integer from 0 to 100, e.g. `retries = 3`";
    match expr {
        Expr::Lit(syn::ExprLit { lit: Lit::Int(i), .. }) => match i.base10_parse::<u32>() {
            Ok(n) if n <= 100 => return Some(n),
            _ => errors
                .push(syn::Error::new(i.span(), format!("`retries = {}` is out of range: {what}", i.base10_digits()))),
        },
        Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => {
            let msg = format!("`retries` takes an integer, not a string: write `retries = {}`", s.value().trim());
            errors.push(syn::Error::new(s.span(), msg));
        }
        Expr::Unary(_) if number_literal(expr).is_some() => {
            errors.push(syn::Error::new_spanned(expr, format!("`retries` cannot be negative: {what}")));
        }
        other => errors.push(syn::Error::new_spanned(other, format!("expected an integer literal: {what}"))),
    }
    None
}

/// `group = field` names a payload parameter of the function.
fn check_group(group: Option<&Ident>, params: &[Param], errors: &mut Errors) -> Option<(Ident, Type)> {
    let group = group?;
    let wanted = group.unraw();
    let found = params.iter().find(|p| p.ident().is_some_and(|i| i.unraw() == wanted));
    match found {
        Some(p) if p.is_payload() => return Some((group.clone(), (*p.ty).clone())),
        Some(p) => errors.push(syn::Error::new(
            group.span(),
            format!(
                "`group = {wanted}` names {}, which is not part of the payload: name a payload parameter",
                p.injected_name()
            ),
        )),
        None => {
            let names: Vec<String> = params
                .iter()
                .filter(|p| p.is_payload())
                .filter_map(|p| p.ident().map(|i| format!("`{}`", i.unraw())))
                .collect();
            let hint = if names.is_empty() {
                "the function has no payload parameter to group by".to_owned()
            } else {
                format!("its payload parameters are {}", names.join(", "))
            };
            errors.push(syn::Error::new(
                group.span(),
                format!("`group = {wanted}`: the function has no parameter `{wanted}`; {hint}"),
            ));
        }
    }
    None
}

/// `concurrency = N`: an integer from 1 to 10,000, on a grouped job.
fn check_concurrency(args: &Args, errors: &mut Errors) -> Option<u32> {
    let expr = args.concurrency.as_ref()?;
    let what = "`concurrency` is how many jobs of one group run at once: an integer from 1 to 10000, \
                e.g. `concurrency = 2`";
    let n = match expr {
        Expr::Lit(syn::ExprLit { lit: Lit::Int(i), .. }) => match i.base10_parse::<u32>() {
            Ok(n) if (1..=10_000).contains(&n) => Some(n),
            _ => {
                let msg = format!("`concurrency = {}` is out of range: {what}", i.base10_digits());
                errors.push(syn::Error::new(i.span(), msg));
                None
            }
        },
        Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => {
            let msg =
                format!("`concurrency` takes an integer, not a string: write `concurrency = {}`", s.value().trim());
            errors.push(syn::Error::new(s.span(), msg));
            None
        }
        other => {
            errors.push(syn::Error::new_spanned(other, format!("expected an integer literal: {what}")));
            None
        }
    };
    if args.group.is_none() {
        errors.push(syn::Error::new_spanned(
            expr,
            "`concurrency` limits the jobs of one group: add `group = <parameter>` to say what a group is",
        ));
    }
    n
}

/// `rate = "N/period"`: 1 to 100,000 starts per period of 1 ms to a day,
/// on a grouped job.
fn check_rate(args: &Args, errors: &mut Errors) -> Option<(u32, Duration)> {
    let lit = args.rate.as_ref()?;
    if args.group.is_none() {
        errors.push(syn::Error::new(
            lit.span(),
            "`rate` limits the starts of one group: add `group = <parameter>` to say what a group is \
             (a queue's own rate is set in its configuration)",
        ));
    }
    let text = lit.value();
    let how = "write `rate = \"N/period\"`, e.g. `rate = \"50/1s\"` or `rate = \"100/1m\"`";
    let Some((n, per)) = text.split_once('/') else {
        errors.push(syn::Error::new(lit.span(), format!("invalid `rate` {text:?}: {how}")));
        return None;
    };
    let n = match n.trim().parse::<u32>() {
        Ok(n) if (1..=100_000).contains(&n) => Some(n),
        _ => {
            let msg = format!("invalid `rate` {text:?}: `{n}` must be a count from 1 to 100000; {how}");
            errors.push(syn::Error::new(lit.span(), msg));
            None
        }
    };
    let per = match humantime::parse_duration(per.trim()) {
        Ok(d) if d >= Duration::from_millis(1) && d <= Duration::from_secs(86_400) => Some(d),
        _ => {
            let msg = format!("invalid `rate` {text:?}: `{per}` must be a duration from 1ms to 1 day; {how}");
            errors.push(syn::Error::new(lit.span(), msg));
            None
        }
    };
    Some((n?, per?))
}

/// `register` (internal) is a bool literal; `false` leaves the job out of
/// the link-time registry.
fn check_register(expr: Option<&Expr>, errors: &mut Errors) -> bool {
    match expr {
        None => true,
        Some(Expr::Lit(syn::ExprLit { lit: Lit::Bool(b), .. })) => b.value,
        Some(other) => {
            errors.push(syn::Error::new_spanned(
                other,
                "`register` takes `true` or `false`: write `register = false` to leave the job out of the \
                 link-time registry",
            ));
            true
        }
    }
}

/// A schedule's ticks are enqueued from the schedule as stored, which
/// carries no expiry, so `expires` would do nothing on a `cron` (or
/// `every`) job; what happens to late ticks is the schedule's catch-up
/// policy.
fn check_expires_cron(args: &Args, errors: &mut Errors) {
    let (a, key) = match (&args.cron, &args.every) {
        (Some(_), _) => ("a", "cron"),
        (None, Some(_)) => ("an", "every"),
        (None, None) => return,
    };
    if let Some(expires) = &args.expires {
        errors.push(syn::Error::new(
            expires.span(),
            format!(
                "`expires` does not apply to {a} `{key}` job: its ticks are enqueued by the scheduler, whose catch-up \
                 policy decides what happens to late ticks; remove `expires`, or enqueue the job yourself with \
                 `JobOptions::expires_in`"
            ),
        ));
    }
}

/// `timeout`, `unique_for` and `expires`: humantime durations, more than zero.
fn check_duration(key: &str, lit: Option<&LitStr>, errors: &mut Errors) -> Option<Duration> {
    let lit = lit?;
    match humantime::parse_duration(&lit.value()) {
        Ok(d) if d.is_zero() => {
            errors
                .push(syn::Error::new(lit.span(), format!("`{key}` must be longer than zero, e.g. `{key} = \"30s\"`")));
            None
        }
        Ok(d) => Some(d),
        Err(_) => {
            // humantime's own message ("expected number at 11") says little.
            let msg = format!(
                "invalid `{key}` {:?}: write a number and a unit, e.g. \"30s\", \"5m\", \"1h 30m\", \"500ms\"",
                lit.value()
            );
            errors.push(syn::Error::new(lit.span(), msg));
            None
        }
    }
}

/// The rules that need `regex` or `validator` at run time, refused when
/// jobs-core is built without its `validate` feature.
#[cfg(not(feature = "validate"))]
fn check_validate_feature(params: &[Param], errors: &mut Errors) {
    for rule in params.iter().flat_map(|p| &p.rules) {
        let name = match &rule.kind {
            RuleKind::Email => "email",
            RuleKind::Url => "url",
            RuleKind::Pattern(_) => "pattern",
            _ => continue,
        };
        let msg = format!(
            "`#[validate({name})]` needs the `validate` feature of jobs-core (on by default): turn it on, or check \
             the value with `#[validate(custom = ..)]`"
        );
        errors.push(syn::Error::new(rule.span, msg));
    }
}

/// A schedule without the `cron` feature of jobs-core: there is no
/// scheduler to run it.
#[cfg(not(feature = "cron"))]
fn check_cron(args: &Args, _params: &[Param], errors: &mut Errors) -> Option<Recurring> {
    let (span, key) = match (&args.cron, &args.every, &args.timezone) {
        (Some(c), _, _) => (c.span(), "cron"),
        (None, Some(e), _) => (e.span(), "every"),
        (None, None, Some(tz)) => (tz.span(), "timezone"),
        (None, None, None) => return None,
    };
    let msg =
        format!("`{key}` needs the `cron` feature of jobs-core (on by default): turn it on to run recurring jobs");
    errors.push(syn::Error::new(span, msg));
    None
}

/// A schedule: a valid cron expression or interval (not both) and time
/// zone, on a function without a payload (a tick has no values to pass).
#[cfg(feature = "cron")]
fn check_cron(args: &Args, params: &[Param], errors: &mut Errors) -> Option<Recurring> {
    let zone = args.timezone.as_ref().map(check_timezone(errors));
    let (key, lit) = match (&args.cron, &args.every) {
        (Some(cron), Some(every)) => {
            errors.push(syn::Error::new(
                every.span(),
                "a job has `cron` or `every`, not both: remove `every` to tick by the expression, or `cron` to tick \
                 at a fixed interval",
            ));
            ("cron", cron)
        }
        (Some(cron), None) => ("cron", cron),
        (None, Some(every)) => ("every", every),
        (None, None) => {
            if let Some(tz) = &args.timezone {
                errors.push(syn::Error::new(
                    tz.span(),
                    "`timezone` applies to a schedule: add `cron = \"..\"` or `every = \"..\"`, or remove `timezone`",
                ));
            }
            return None;
        }
    };
    let (expression, every_ms) = if key == "cron" {
        let expr = lit.value();
        if let Err(e) = croner::Cron::new(&expr).with_seconds_optional().parse() {
            let msg = format!(
                "invalid cron expression {expr:?}: {e} (write 5 fields: minute hour day month weekday, or 6 with \
                 seconds first, e.g. \"0 */5 * * * *\")"
            );
            errors.push(syn::Error::new(lit.span(), msg));
        }
        (expr, None)
    } else {
        (String::new(), check_every(lit, errors))
    };
    let payload: Vec<String> = params
        .iter()
        .filter(|p| p.is_payload())
        .filter_map(|p| p.ident().map(|i| format!("`{}`", i.unraw())))
        .collect();
    if !payload.is_empty() {
        let a = if key == "every" { "an" } else { "a" };
        let msg = format!(
            "{a} `{key}` job runs with no payload, but this function takes {}: remove the parameter(s), or drop \
             `{key}` and schedule it with `Scheduler::add(.., payload)`",
            payload.join(", ")
        );
        errors.push(syn::Error::new(lit.span(), msg));
    }
    Some(Recurring { expression, every_ms, timezone: zone.unwrap_or_else(|| "UTC".to_owned()) })
}

/// `every`: a humantime duration of at least a second, in whole
/// milliseconds (the unit ticks are stored in).
#[cfg(feature = "cron")]
fn check_every(lit: &LitStr, errors: &mut Errors) -> Option<u64> {
    let every = check_duration("every", Some(lit), errors)?;
    if every < Duration::from_secs(1) || every.subsec_nanos() % 1_000_000 != 0 {
        let msg = format!(
            "`every` {:?} is too short or finer than a millisecond: an interval is at least 1s, in whole \
             milliseconds, e.g. `every = \"90s\"`",
            lit.value()
        );
        errors.push(syn::Error::new(lit.span(), msg));
        return None;
    }
    u64::try_from(every.as_millis()).ok()
}

/// An IANA time zone name, suggesting the nearest known one.
#[cfg(feature = "cron")]
fn check_timezone(errors: &mut Errors) -> impl FnMut(&LitStr) -> String + '_ {
    move |lit| {
        let name = lit.value();
        if name.parse::<chrono_tz::Tz>().is_err() {
            let nearest = chrono_tz::TZ_VARIANTS
                .iter()
                .map(|tz| (strsim::jaro_winkler(&name.to_lowercase(), &tz.name().to_lowercase()), tz.name()))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .filter(|(score, _)| *score > 0.8);
            let hint = match nearest {
                Some((_, n)) => format!("did you mean \"{n}\"?"),
                None => "use an IANA name such as \"Europe/Berlin\" or \"UTC\"".to_owned(),
            };
            errors.push(syn::Error::new(lit.span(), format!("unknown time zone {name:?}: {hint}")));
        }
        name
    }
}
