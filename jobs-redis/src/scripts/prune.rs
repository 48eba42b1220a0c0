//! Leaves out of a script the shared functions it never calls.
//!
//! Every script starts with the shared files (`common.lua`, `groups.lua`,
//! `breaker.lua`; `flows_common.lua` for the flow store), and Redis runs a
//! script's main chunk on every call: each `local function` there is a
//! closure built anew, its upvalues bound by a walk of the chunk's open
//! upvalues. With some hundred shared functions that was about half of
//! what an empty fetch cost Redis. A script keeps the shared functions its
//! own code names, and those they name, transitively; every other
//! statement of the shared files stays, in order.
//!
//! The shared files keep a plain layout this relies on: each top-level
//! statement starts at column 0 (a function ends with `end` at column 0),
//! its comments just above it; a `do` block at column 0 goes with the
//! declaration above it.

use std::collections::HashSet;

/// One top-level statement of a shared file, with the comments above it.
pub(crate) struct Item<'a> {
    pub(crate) lines: Vec<&'a str>,
    /// The name a `local function NAME` statement defines.
    pub(crate) function: Option<&'a str>,
}

/// `shared` without the `local function` statements that neither `own`
/// nor any statement kept names.
pub(crate) fn without_unused_functions(shared: &str, own: &str) -> String {
    let items = items(shared);
    let mut named = names(own.lines());
    named.extend(statement_names(&items));
    let keep = reached(&items, named);
    let kept: Vec<&str> = items
        .iter()
        .zip(&keep)
        .filter(|(i, k)| i.function.is_none() || **k)
        .flat_map(|(i, _)| i.lines.iter().copied())
        .collect();
    kept.join("\n")
}

/// The names the statements of `items` that are no functions use: they run
/// in every script, so the functions they name are always kept.
pub(crate) fn statement_names(items: &[Item<'_>]) -> HashSet<String> {
    names(items.iter().filter(|i| i.function.is_none()).flat_map(|i| i.lines.iter().copied()))
}

/// Which of `items`' functions code naming `named` calls, transitively
/// (one flag per item; `false` for every statement that is no function).
pub(crate) fn reached(items: &[Item<'_>], mut named: HashSet<String>) -> Vec<bool> {
    let mut reached = vec![false; items.len()];
    loop {
        let mut grew = false;
        for (i, item) in items.iter().enumerate() {
            if !reached[i] && item.function.is_some_and(|f| named.contains(f)) {
                reached[i] = true;
                named.extend(names(item.lines.iter().copied()));
                grew = true;
            }
        }
        if !grew {
            return reached;
        }
    }
}

/// Splits `src` into its top-level statements.
pub(crate) fn items(src: &str) -> Vec<Item<'_>> {
    let mut items: Vec<Item<'_>> = Vec::new();
    let mut comments: Vec<&str> = Vec::new();
    for line in src.split('\n') {
        let starts = !line.is_empty()
            && !line.starts_with([' ', '\t', '-', '}', ')'])
            && !line.starts_with("end")
            && !line.starts_with("else");
        if starts {
            let code = std::mem::take(&mut comments);
            let function = line.strip_prefix("local function ").map(|rest| {
                let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
                &rest[..end]
            });
            match items.last_mut() {
                // A `do` block defines what the declaration above it names.
                Some(last) if line == "do" && code.is_empty() && last.function.is_none() => last.lines.push(line),
                _ => items.push(Item { lines: code.into_iter().chain([line]).collect(), function }),
            }
        } else if line.starts_with("--") && !open(items.last()) {
            comments.push(line);
        } else {
            match items.last_mut() {
                Some(last) => {
                    last.lines.append(&mut comments);
                    last.lines.push(line);
                }
                None => comments.push(line),
            }
        }
    }
    if !comments.is_empty() {
        items.push(Item { lines: comments, function: None });
    }
    items
}

/// Whether a function or block statement has not reached its closing `end`
/// (a comment at column 0 inside it belongs to it).
fn open(item: Option<&Item<'_>>) -> bool {
    let Some(item) = item else { return false };
    let mut code = item.lines.iter().filter(|l| !l.starts_with("--"));
    let Some(first) = code.next() else { return false };
    let block = ["local function ", "function ", "do", "for ", "if ", "while "].iter().any(|k| first.starts_with(k));
    block && !code.any(|l| l.starts_with("end"))
}

/// The identifiers `lines` name outside strings and comments.
pub(crate) fn names<'a>(lines: impl Iterator<Item = &'a str>) -> HashSet<String> {
    let mut out = HashSet::new();
    for line in lines {
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match quote {
                Some(q) => {
                    if c == '\\' {
                        chars.next();
                    } else if c == q {
                        quote = None;
                    }
                    continue;
                }
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c == '-' && chars.peek() == Some(&'-') => break,
                None => {}
            }
            if quote.is_none() && (c.is_alphanumeric() || c == '_') {
                word.push(c);
            } else if !word.is_empty() {
                out.insert(std::mem::take(&mut word));
            }
        }
        if !word.is_empty() {
            out.insert(word);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: &str = "\
local B = KEYS[1]

-- Used by used().
local function helper(x)
  return x .. B
end

-- Named only in a comment and a string: used_too()
local function unused()
  return 'used()'
end

local function used()
  -- A comment at column 0 inside a function:
-- unused()
  return helper('a')
end

local cache
do
  local seen = {}
  cache = function(k)
    return seen[k]
  end
end

local function only_by_unused()
  return 1
end";

    #[test]
    fn functions_no_one_names_are_left_out_and_the_rest_kept_in_order() {
        let out = without_unused_functions(SHARED, "return used()");
        assert!(out.contains("local function used()") && out.contains("local function helper(x)"), "{out}");
        assert!(!out.contains("local function unused()"), "named only in comments and strings: {out}");
        assert!(!out.contains("only_by_unused"), "{out}");
        assert!(out.contains("local cache\ndo\n  local seen = {}"), "a declaration and its block stay: {out}");
        assert!(out.starts_with("local B = KEYS[1]"), "{out}");
        assert!(out.find("helper(x)") < out.find("function used()"), "in their order: {out}");
        assert!(out.contains("-- Used by used().\nlocal function helper"), "comments go with their function: {out}");
    }

    /// Over the crate's own scripts (every queue and flow script, as their
    /// sets build them): every shared function that what is
    /// left calls (`name(` outside a comment) is still defined, so pruning
    /// never leaves a call to a function it dropped.
    #[test]
    fn every_function_a_pruned_script_calls_is_still_defined() {
        let sets = [&*super::super::QUEUE, &*crate::flows::SCRIPTS];
        let cases = sets.iter().flat_map(|set| set.scripts.iter().map(|&(_, own, _)| (set.shared.as_str(), own)));
        for (shared, own) in cases {
            let defined: Vec<&str> = shared
                .lines()
                .filter_map(|l| l.strip_prefix("local function "))
                .filter_map(|r| r.split('(').next())
                .collect();
            let out = format!("{}\n{own}", without_unused_functions(shared, own));
            let code: String = out.lines().map(|l| l.split("--").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
            for name in &defined {
                let called = code.match_indices(&format!("{name}(")).any(|(at, _)| {
                    !code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.' || c == ':')
                        && !code[..at].ends_with("function ")
                });
                if called {
                    assert!(out.contains(&format!("local function {name}(")), "{name} is called but was left out");
                }
            }
            assert!(out.len() < shared.len() + own.len(), "something was left out");
        }
    }

    #[test]
    fn a_function_named_by_a_kept_statement_is_kept() {
        let out = without_unused_functions(SHARED, "return cache('k')");
        assert!(!out.contains("local function used()"), "{out}");
        let out = without_unused_functions(&format!("{SHARED}\nlocal X = only_by_unused()"), "return 1");
        assert!(out.contains("local function only_by_unused()"), "{out}");
    }
}
