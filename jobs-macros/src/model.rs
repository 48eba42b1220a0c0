//! What the attribute is turned into: the arguments and parameters as
//! parsed (`parse.rs` builds them), and the settings once every rule holds
//! (`check.rs` builds them, `expand.rs` generates code from them).

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::{Attribute, Expr, Ident, Lit, LitInt, LitStr, Pat, Path, Type};

/// The keys of `#[job(..)]`, as written; every one is optional.
#[derive(Default)]
pub struct Args {
    /// `queue = ".."`.
    pub queue: Option<LitStr>,
    /// `priority = ".."`.
    pub priority: Option<LitStr>,
    /// `retries = N`, kept as an expression so that `check.rs` can say what
    /// is wrong with a string or a negative number.
    pub retries: Option<Expr>,
    /// `timeout = ".."`.
    pub timeout: Option<LitStr>,
    /// `unique_for = ".."`.
    pub unique_for: Option<LitStr>,
    /// `expires = ".."`.
    pub expires: Option<LitStr>,
    /// `group = field`.
    pub group: Option<Ident>,
    /// `concurrency = N`, kept as an expression (see `retries`).
    pub concurrency: Option<Expr>,
    /// `rate = "N/period"`.
    pub rate: Option<LitStr>,
    /// `name = ".."`.
    pub name: Option<LitStr>,
    /// `cron = ".."`.
    pub cron: Option<LitStr>,
    /// `every = ".."`: an interval instead of `cron`.
    pub every: Option<LitStr>,
    /// `timezone = ".."`.
    pub timezone: Option<LitStr>,
    /// `sandbox` (a flag), where it is written.
    pub sandbox: Option<Span>,
    /// `crate = path`.
    pub krate: Option<Path>,
    /// `register = false` (internal): kept as an expression so that
    /// `check.rs` can say what is wrong with anything but `true` or `false`.
    pub register: Option<Expr>,
}

/// One `#[validate(..)]` rule on one parameter.
pub struct Rule {
    /// The rule's keyword, where its type errors are reported.
    pub span: Span,
    /// What it checks.
    pub kind: RuleKind,
}

/// The validators `#[validate(..)]` accepts.
pub enum RuleKind {
    /// `email`.
    Email,
    /// `url`.
    Url,
    /// `non_empty`.
    NonEmpty,
    /// `length(min = .., max = ..)`, in characters or items.
    Length {
        /// Lower bound, inclusive.
        min: Option<LitInt>,
        /// Upper bound, inclusive.
        max: Option<LitInt>,
    },
    /// `range(min = .., max = ..)`: number literals, possibly negative.
    Range {
        /// Lower bound, inclusive.
        min: Option<Box<Expr>>,
        /// Upper bound, inclusive.
        max: Option<Box<Expr>>,
    },
    /// `pattern = "regex"`.
    Pattern(LitStr),
    /// `custom = path::to_fn`.
    Custom(Path),
}

/// One parameter of the job function.
pub struct Param {
    /// As written; `check.rs` requires a plain identifier for payload fields.
    pub pat: Box<Pat>,
    /// Its type.
    pub ty: Box<Type>,
    /// Whether it is the `JobContext` (the type's last segment).
    pub is_context: bool,
    /// `T` when it is a `Data<T>` (the type's last segment `Data` with one
    /// type argument): a value of the pool's, not part of the payload.
    pub data: Option<Box<Type>>,
    /// Its `#[validate(..)]` rules, in order.
    pub rules: Vec<Rule>,
    /// The `#[validate]` attributes as written (an error on the context).
    pub validate_attrs: Vec<Attribute>,
    /// Its `#[serde(..)]` attributes, forwarded to the payload field.
    pub serde_attrs: Vec<Attribute>,
    /// Its `#[redact]` attributes as written (one, when the field is
    /// redacted; more, or any on the context, are errors).
    pub redact_attrs: Vec<Attribute>,
}

impl Param {
    /// Whether it is a payload field (neither the context nor pool data).
    pub fn is_payload(&self) -> bool {
        !self.is_context && self.data.is_none()
    }

    /// What the worker hands over in its place, named in errors:
    /// `JobContext` or `Data<T>`.
    pub fn injected_name(&self) -> &'static str {
        if self.is_context {
            "the `JobContext`"
        } else {
            "a `Data<T>` parameter"
        }
    }
    /// The field's name as serialized: its `#[serde(rename = "..")]`, else
    /// the parameter's name.
    pub fn serialized_name(&self) -> Option<String> {
        for attr in &self.serde_attrs {
            let mut renamed = None;
            // Other serde keys are serde's to check; only `rename = ".."` is read.
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename") {
                    if let Ok(value) = meta.value() {
                        if let Ok(lit) = value.parse::<LitStr>() {
                            renamed = Some(lit.value());
                        }
                    }
                } else if meta.input.peek(syn::Token![=]) {
                    let _ = meta.value()?.parse::<syn::Expr>()?;
                } else if meta.input.peek(syn::token::Paren) {
                    let _ = meta.input.parse::<proc_macro2::Group>()?;
                }
                Ok(())
            });
            if renamed.is_some() {
                return renamed;
            }
        }
        self.ident().map(|i| syn::ext::IdentExt::unraw(i).to_string())
    }

    /// The name of a parameter written `name: Type` (or `mut name: Type`).
    pub fn ident(&self) -> Option<&Ident> {
        match &*self.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => Some(&p.ident),
            _ => None,
        }
    }

    /// The inner type when the parameter is an `Option<T>`: its rules apply
    /// to the value when there is one.
    pub fn option_inner(&self) -> Option<&Type> {
        let Type::Path(p) = &*self.ty else { return None };
        let last = p.path.segments.last()?;
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else { return None };
        match (last.ident == "Option", args.args.len(), args.args.first()) {
            (true, 1, Some(syn::GenericArgument::Type(t))) => Some(t),
            _ => None,
        }
    }
}

/// The job's settings once every rule holds: what `expand.rs` generates from.
pub struct Settings {
    /// The path of `jobs_core` (the `crate` key, default `::jobs_core`).
    pub krate: TokenStream,
    /// Whether the generated code submits the job to the link-time
    /// registry (`register = false` leaves it to be added at run time).
    pub register: bool,
    /// `sandbox`: the job runs in a child process of the worker.
    pub sandbox: bool,
    /// The stored job name.
    pub name: String,
    /// The default queue.
    pub queue: String,
    /// The `Priority` variant.
    pub priority: Ident,
    /// `retries`.
    pub retries: Option<u32>,
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `unique_for`.
    pub unique_for: Option<Duration>,
    /// `expires`.
    pub expires: Option<Duration>,
    /// `group`: the payload field whose value is the group key, and its
    /// type.
    pub group: Option<(Ident, Type)>,
    /// `concurrency`.
    pub concurrency: Option<u32>,
    /// `rate`: starts per window, and the window.
    pub rate: Option<(u32, Duration)>,
    /// `cron` or `every`, and the time zone.
    pub cron: Option<Recurring>,
    /// The `Result` the function returns.
    pub output: Output,
}

/// The parts of the function's `Result` return type that generated code
/// needs, to place the result and error checks on the user's tokens.
pub struct Output {
    /// The whole return type.
    pub ty: Type,
    /// `T` of `Result<T, ..>` (or of an alias such as `anyhow::Result<T>`).
    pub ok: Option<Type>,
    /// `E` of `Result<_, E>`, when written.
    pub err: Option<Type>,
}

/// The value of a number literal, `-` allowed: `1`, `-2`, `2.5`, `1e3`.
pub fn number_literal(e: &Expr) -> Option<f64> {
    match e {
        Expr::Lit(syn::ExprLit { lit: Lit::Int(i), .. }) => i.base10_digits().parse().ok(),
        Expr::Lit(syn::ExprLit { lit: Lit::Float(f), .. }) => f.base10_digits().parse().ok(),
        Expr::Unary(syn::ExprUnary { op: syn::UnOp::Neg(_), expr, .. }) => match &**expr {
            Expr::Unary(_) => None,
            inner => number_literal(inner).map(|v| -v),
        },
        Expr::Group(g) => number_literal(&g.expr),
        _ => None,
    }
}

/// A schedule declared on the attribute: a cron expression (empty with
/// `every`) or an interval, read in a time zone.
pub struct Recurring {
    /// `cron`, or empty.
    pub expression: String,
    /// `every`, in whole milliseconds.
    pub every_ms: Option<u64>,
    /// `timezone`, `UTC` when none was given.
    pub timezone: String,
}
