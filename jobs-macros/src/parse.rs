//! Parsing: the `#[job(..)]` arguments and the function's parameters (with
//! their `#[validate(..)]` and `#[serde(..)]` attributes) into a model.
//!
//! Parsing only checks syntax: which keys and rules exist and that each
//! value has the right shape. What the values mean (a queue name's
//! characters, a cron expression, a regex) is checked in `check.rs`. Parsing
//! never stops at the first mistake: a broken entry is recorded in
//! [`Errors`] and skipped up to the next `,`, so every mistake of an
//! attribute is reported at once.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Expr, FnArg, Ident, ItemFn, Lit, LitStr, Path, Token, Type};

use crate::errors::Errors;
use crate::model::{number_literal, Args, Param, Rule, RuleKind};

/// The `#[job(..)]` keys, for "unknown key" messages.
const KEYS: &[&str] = &[
    "queue",
    "priority",
    "retries",
    "timeout",
    "unique_for",
    "expires",
    "group",
    "concurrency",
    "rate",
    "name",
    "cron",
    "every",
    "timezone",
    "sandbox",
    "crate",
];

/// The `#[validate(..)]` rules, as a user writes them, for "unknown rule" messages.
const RULES: &[(&str, &str)] = &[
    ("email", "email"),
    ("url", "url"),
    ("non_empty", "non_empty"),
    ("length", "length(min = 1, max = 64)"),
    ("range", "range(min = 1, max = 10)"),
    ("pattern", "pattern = \"^[a-z]+$\""),
    ("custom", "custom = path::to_fn"),
];

/// Keywords of the attribute grammar, so that each key is peeked exactly
/// (`lookahead1` then names the expected ones in its messages).
mod kw {
    syn::custom_keyword!(queue);
    syn::custom_keyword!(priority);
    syn::custom_keyword!(retries);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(unique_for);
    syn::custom_keyword!(expires);
    syn::custom_keyword!(group);
    syn::custom_keyword!(concurrency);
    syn::custom_keyword!(rate);
    syn::custom_keyword!(name);
    syn::custom_keyword!(cron);
    syn::custom_keyword!(every);
    syn::custom_keyword!(timezone);
    syn::custom_keyword!(register);
    syn::custom_keyword!(sandbox);
    syn::custom_keyword!(email);
    syn::custom_keyword!(url);
    syn::custom_keyword!(non_empty);
    syn::custom_keyword!(length);
    syn::custom_keyword!(range);
    syn::custom_keyword!(pattern);
    syn::custom_keyword!(custom);
    syn::custom_keyword!(min);
    syn::custom_keyword!(max);
}

/// Parses the attribute's arguments, recording every mistake.
pub fn parse_args(tokens: proc_macro2::TokenStream, errors: &mut Errors) -> Args {
    let mut args = Args::default();
    let parser = |input: ParseStream| {
        parse_list(input, errors, |input, errors| parse_arg(input, &mut args, errors));
        Ok(())
    };
    // `parse_list` records its errors instead of returning them.
    if let Err(e) = parser.parse2(tokens) {
        errors.push(e);
    }
    args
}

/// Parses `entry, entry, ..`: a broken entry is recorded and skipped up to
/// the next top-level comma so that the following ones are still checked.
fn parse_list(
    input: ParseStream,
    errors: &mut Errors,
    mut entry: impl FnMut(ParseStream, &mut Errors) -> syn::Result<()>,
) {
    while !input.is_empty() {
        if let Err(e) = entry(input, errors) {
            errors.push(e);
            skip_to_comma(input);
        } else if !input.is_empty() && !input.peek(Token![,]) {
            errors.push(input.error("expected `,` before the next entry"));
            skip_to_comma(input);
        }
        if input.parse::<Option<Token![,]>>().is_err() {
            break;
        }
    }
}

/// Advances past the tokens of a broken entry, up to (not past) the next `,`.
fn skip_to_comma(input: ParseStream) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            match &tt {
                proc_macro2::TokenTree::Punct(p) if p.as_char() == ',' => break,
                _ => rest = next,
            }
        }
        Ok(((), rest))
    });
}

/// Parses one `key = value` of `#[job(..)]` into `args`.
fn parse_arg(input: ParseStream, args: &mut Args, errors: &mut Errors) -> syn::Result<()> {
    let la = input.lookahead1();
    // Each arm: the keyword, the field it fills, how its value is parsed.
    macro_rules! keys {
        ($($kw:ident => $field:ident: $value:expr,)*) => {$(
            if la.peek(kw::$kw) {
                let key = input.parse::<kw::$kw>()?;
                let value = $value(input, stringify!($kw), key.span)?;
                return set_once(&mut args.$field, value, stringify!($kw), key.span, errors);
            }
        )*};
    }
    keys! {
        queue => queue: string_value,
        priority => priority: string_value,
        retries => retries: expr_value,
        timeout => timeout: string_value,
        unique_for => unique_for: string_value,
        expires => expires: string_value,
        group => group: ident_value,
        concurrency => concurrency: expr_value,
        rate => rate: string_value,
        name => name: string_value,
        cron => cron: string_value,
        every => every: string_value,
        timezone => timezone: string_value,
    }
    if la.peek(kw::sandbox) {
        let key = input.parse::<kw::sandbox>()?;
        // A flag: a value would suggest `sandbox = false` does something.
        if input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span,
                "`sandbox` takes no value: write `#[job(sandbox)]` to run the job in a child process, \
                 or leave the key out to run it in the worker",
            ));
        }
        if input.peek(syn::token::Paren) {
            return Err(syn::Error::new(
                key.span,
                "`sandbox` takes no settings: write `#[job(sandbox)]`; the limits are the pool's \
                 (`WorkerPoolBuilder::sandbox(Sandbox::default().memory_limit(..))`, or \
                 `jobs.worker_pool.sandbox` in the configuration)",
            ));
        }
        return set_once(&mut args.sandbox, key.span, "sandbox", key.span, errors);
    }
    // Internal, so peeked without `la`: it stays out of the "expected one
    // of" list that users read.
    if input.peek(kw::register) {
        let key = input.parse::<kw::register>()?;
        let value = expr_value(input, "register", key.span)?;
        return set_once(&mut args.register, value, "register", key.span, errors);
    }
    if la.peek(Token![crate]) {
        let key = input.parse::<Token![crate]>()?;
        expect_eq(input, "crate", key.span)?;
        let path = input.call(Path::parse_mod_style).map_err(|e| {
            syn::Error::new(e.span(), "`crate` takes the path of `jobs_core`, unquoted: write `crate = jobs_core`")
        })?;
        return set_once(&mut args.krate, path, "crate", key.span, errors);
    }
    if input.peek(Ident::peek_any) {
        let ident = input.call(Ident::parse_any)?;
        return Err(unknown(&ident, "`#[job]` key", KEYS, &format_list(KEYS.iter().copied())));
    }
    Err(la.error())
}

/// Stores a key's value, refusing a second occurrence of the key.
fn set_once<T>(slot: &mut Option<T>, value: T, key: &str, span: Span, errors: &mut Errors) -> syn::Result<()> {
    if slot.is_some() {
        // Recorded rather than returned: the value is already consumed.
        errors.push(syn::Error::new(
            span,
            format!("duplicate key `{key}`: it is already set in this attribute; keep one"),
        ));
    } else {
        *slot = Some(value);
    }
    Ok(())
}

/// How each key's value is written, for messages.
fn example(key: &str) -> &'static str {
    match key {
        "queue" => "queue = \"email\"",
        "priority" => "priority = \"high\"",
        "retries" => "retries = 3",
        "timeout" => "timeout = \"30s\"",
        "unique_for" => "unique_for = \"10m\"",
        "expires" => "expires = \"10m\"",
        "group" => "group = account_id",
        "concurrency" => "concurrency = 2",
        "rate" => "rate = \"50/1s\"",
        "name" => "name = \"send_welcome_email\"",
        "cron" => "cron = \"0 0 3 * * *\"",
        "timezone" => "timezone = \"Europe/Berlin\"",
        "crate" => "crate = jobs_core",
        "register" => "register = false",
        "pattern" => "pattern = \"^[a-z]+$\"",
        "custom" => "custom = path::to_fn",
        _ => "key = value",
    }
}

/// Consumes the `=` after a key.
fn expect_eq(input: ParseStream, key: &str, span: Span) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>().map(drop)
    } else {
        Err(syn::Error::new(span, format!("`{key}` takes a value: write `{}`", example(key))))
    }
}

/// `= <ident>`: a payload field's name, unquoted.
fn ident_value(input: ParseStream, key: &str, span: Span) -> syn::Result<Ident> {
    expect_eq(input, key, span)?;
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return Err(syn::Error::new(
            lit.span(),
            format!("`{key}` names a parameter, unquoted: write `{key} = {}`", lit.value()),
        ));
    }
    input.call(Ident::parse_any).map_err(|e| {
        syn::Error::new(e.span(), format!("`{key}` names a parameter of the function: write `{}`", example(key)))
    })
}

/// `= <expr>`, the value kept as written.
fn expr_value(input: ParseStream, key: &str, span: Span) -> syn::Result<Expr> {
    expect_eq(input, key, span)?;
    input.parse()
}

/// `= "text"`.
fn string_value(input: ParseStream, key: &str, span: Span) -> syn::Result<LitStr> {
    match expr_value(input, key, span)? {
        Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Ok(s),
        other => {
            Err(syn::Error::new_spanned(other, format!("`{key}` takes a string literal: write `{}`", example(key))))
        }
    }
}

/// The error for a name that is not one of `valid`, suggesting the nearest.
fn unknown(ident: &Ident, what: &str, valid: &[&str], listed: &str) -> syn::Error {
    let written = ident.unraw().to_string();
    let nearest = valid
        .iter()
        .map(|v| (strsim::jaro_winkler(&written, v), *v))
        .filter(|(score, _)| *score >= 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let hint = match nearest {
        Some((_, v)) => format!(": did you mean `{v}`?"),
        None => String::new(),
    };
    syn::Error::new(ident.span(), format!("unknown {what} `{written}`{hint} (expected one of {listed})"))
}

/// `a`, `b`, `c` for messages.
fn format_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

/// Splits the function's parameters into the model, taking their
/// `#[validate]`, `#[serde]` and `#[redact]` attributes off the function
/// (they are not valid Rust on a parameter; the function is re-emitted
/// without them).
pub fn parse_params(func: &mut ItemFn, errors: &mut Errors) -> Vec<Param> {
    let mut params = Vec::new();
    for input in &mut func.sig.inputs {
        // A `self` receiver is reported by `check.rs` from the signature.
        let FnArg::Typed(arg) = input else { continue };
        let is_context = is_context_type(&arg.ty);
        let mut param = Param {
            pat: arg.pat.clone(),
            ty: arg.ty.clone(),
            is_context,
            data: data_type(&arg.ty).map(|t| Box::new(t.clone())),
            rules: Vec::new(),
            validate_attrs: Vec::new(),
            serde_attrs: Vec::new(),
            redact_attrs: Vec::new(),
        };
        let mut kept = Vec::new();
        for attr in arg.attrs.drain(..) {
            if attr.path().is_ident("validate") {
                param.rules.extend(parse_validate(&attr, errors));
                param.validate_attrs.push(attr);
            } else if attr.path().is_ident("serde") {
                param.serde_attrs.push(attr);
            } else if attr.path().is_ident("redact") {
                param.redact_attrs.push(attr);
            } else {
                kept.push(attr);
            }
        }
        arg.attrs = kept;
        params.push(param);
    }
    params
}

/// Whether a parameter's type is the context: its last path segment is
/// `JobContext` (so `JobContext`, `jobs_core::JobContext` and an alias
/// named so are recognised alike).
fn is_context_type(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "JobContext"),
        Type::Paren(p) => is_context_type(&p.elem),
        Type::Group(g) => is_context_type(&g.elem),
        _ => false,
    }
}

/// `T` when a parameter's type is `Data<T>` (its last path segment `Data`
/// with exactly one type argument, so `jobs_core::Data<T>` and `Data<T>`
/// are recognised alike).
fn data_type(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            if last.ident != "Data" {
                return None;
            }
            let syn::PathArguments::AngleBracketed(args) = &last.arguments else { return None };
            let mut types = args.args.iter().filter_map(|a| match a {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            });
            match (types.next(), types.next(), args.args.len()) {
                (Some(t), None, 1) => Some(t),
                _ => None,
            }
        }
        Type::Paren(p) => data_type(&p.elem),
        Type::Group(g) => data_type(&g.elem),
        _ => None,
    }
}

/// Parses one `#[validate(rule, rule(..), ..)]` attribute.
fn parse_validate(attr: &Attribute, errors: &mut Errors) -> Vec<Rule> {
    let list = match attr.meta.require_list() {
        Ok(list) => list,
        Err(_) => {
            errors.push(syn::Error::new_spanned(
                attr,
                "`#[validate]` needs at least one rule, e.g. `#[validate(email)]` or `#[validate(length(max = 64))]`",
            ));
            return Vec::new();
        }
    };
    let mut rules = Vec::new();
    let parser = |input: ParseStream| {
        parse_list(input, errors, |input, _| {
            rules.push(parse_rule(input)?);
            Ok(())
        });
        Ok(())
    };
    if let Err(e) = parser.parse2(list.tokens.clone()) {
        errors.push(e);
    }
    if rules.is_empty() && list.tokens.is_empty() {
        errors.push(syn::Error::new_spanned(attr, "`#[validate()]` is empty: name a rule, e.g. `#[validate(email)]`"));
    }
    rules
}

/// Parses one rule of a `#[validate(..)]` list.
fn parse_rule(input: ParseStream) -> syn::Result<Rule> {
    let la = input.lookahead1();
    // Rules without arguments.
    macro_rules! bare {
        ($($kw:ident => $kind:ident,)*) => {$(
            if la.peek(kw::$kw) {
                let key = input.parse::<kw::$kw>()?;
                if input.peek(syn::token::Paren) || input.peek(Token![=]) {
                    let msg = concat!("`", stringify!($kw), "` takes no arguments: write `#[validate(", stringify!($kw), ")]`");
                    return Err(syn::Error::new(key.span, msg));
                }
                return Ok(Rule { span: key.span, kind: RuleKind::$kind });
            }
        )*};
    }
    bare! { email => Email, url => Url, non_empty => NonEmpty, }
    if la.peek(kw::length) {
        let key = input.parse::<kw::length>()?;
        let (min, max) = parse_bounds(input, "length", key.span, |e| match e {
            Expr::Lit(syn::ExprLit { lit: Lit::Int(i), .. }) => Ok(i),
            other => Err(syn::Error::new_spanned(
                other,
                "`length` bounds are non-negative integer literals: `length(min = 1, max = 64)`",
            )),
        })?;
        return Ok(Rule { span: key.span, kind: RuleKind::Length { min, max } });
    }
    if la.peek(kw::range) {
        let key = input.parse::<kw::range>()?;
        let (min, max) = parse_bounds(input, "range", key.span, |e| {
            if number_literal(&e).is_some() {
                Ok(Box::new(e))
            } else {
                Err(syn::Error::new_spanned(e, "`range` bounds are number literals: `range(min = -10, max = 2.5)`"))
            }
        })?;
        return Ok(Rule { span: key.span, kind: RuleKind::Range { min, max } });
    }
    if la.peek(kw::pattern) {
        let key = input.parse::<kw::pattern>()?;
        let lit = string_value(input, "pattern", key.span)?;
        return Ok(Rule { span: key.span, kind: RuleKind::Pattern(lit) });
    }
    if la.peek(kw::custom) {
        let key = input.parse::<kw::custom>()?;
        expect_eq(input, "custom", key.span)?;
        let path = input.parse::<Path>()?;
        return Ok(Rule { span: key.span, kind: RuleKind::Custom(path) });
    }
    if input.peek(Ident::peek_any) {
        let ident = input.call(Ident::parse_any)?;
        let names: Vec<&str> = RULES.iter().map(|r| r.0).collect();
        return Err(unknown(&ident, "validator", &names, &format_list(RULES.iter().map(|r| r.1))));
    }
    Err(la.error())
}

/// Parses `(min = .., max = ..)` after `length` or `range`.
fn parse_bounds<T>(
    input: ParseStream,
    rule: &str,
    span: Span,
    value: impl Fn(Expr) -> syn::Result<T>,
) -> syn::Result<(Option<T>, Option<T>)> {
    let usage = if rule == "length" { "length(min = 1, max = 64)" } else { "range(min = 1, max = 10)" };
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            span,
            format!("`{rule}` needs bounds: write `{usage}` (either bound may be left out)"),
        ));
    }
    let content;
    let parens = syn::parenthesized!(content in input);
    let (mut min, mut max) = (None, None);
    while !content.is_empty() {
        let la = content.lookahead1();
        let bound_span = content.span();
        let slot = if la.peek(kw::min) {
            content.parse::<kw::min>()?;
            &mut min
        } else if la.peek(kw::max) {
            content.parse::<kw::max>()?;
            &mut max
        } else if content.peek(Ident::peek_any) {
            let ident = content.call(Ident::parse_any)?;
            return Err(unknown(&ident, &format!("`{rule}` bound"), &["min", "max"], "`min`, `max`"));
        } else {
            return Err(la.error());
        };
        content.parse::<Token![=]>()?;
        let v = value(content.parse::<Expr>()?)?;
        if slot.replace(v).is_some() {
            return Err(syn::Error::new(bound_span, format!("this bound of `{rule}` is given twice; keep one")));
        }
        if !content.is_empty() {
            content.parse::<Token![,]>()?;
        }
    }
    if min.is_none() && max.is_none() {
        return Err(syn::Error::new(parens.span.join(), format!("`{rule}` needs at least one bound: `{usage}`")));
    }
    Ok((min, max))
}
