//! The scripts as one Redis function library, so that the shared functions
//! are built once per server instead of on every call.
//!
//! A script's main chunk runs from the top on every `EVALSHA`: each
//! `local function` of the shared files is a closure built anew, its
//! upvalues bound by a walk of the chunk's open upvalues (about half of
//! what an empty fetch costs Redis, `bench/results/script-call-cost.md`).
//! A library (`FUNCTION LOAD`, Redis 7) runs its top level once, when it is
//! loaded, and each registered function is called with the call's keys and
//! arguments.
//!
//! The library is made from the same files as the scripts:
//!
//! - each shared `local function` is built once, when the library loads:
//!   at its top level when more than one script calls it (or a statement
//!   run at the start of every call does); in a function with the one
//!   script that calls it otherwise, run once, which returns the script's
//!   own function, so that its local counts in that function (Lua 5.1
//!   allows a function 200 locals at a time, and the top level holds one
//!   per shared name); not at all when nothing calls it;
//! - every other shared statement (`local B = KEYS[1]`, the key names, the
//!   per-call caches, the clock) is split in two: its names are declared at
//!   the top level, in the same place, so every function sees them as
//!   before, and the statement itself runs at the start of every call, in
//!   the original order, assigning them anew (a declaration without a value
//!   resets its names to `nil`). A call therefore starts from exactly the
//!   state a script's main chunk starts from;
//! - each script's own code becomes a function of its own, run by its
//!   registered function after the start of the call has set `KEYS` and
//!   `ARGV` (top-level locals, so that shared functions that read them see
//!   the call's, as a script's do);
//! - the Lua globals the code names (`redis`, `tonumber`, ..) are top-level
//!   locals too, taken at the start of the first call: a function reaches its
//!   globals through a metatable, a second lookup on every access that a
//!   script does not pay ([`GLOBALS`]).
//!
//! The start-of-call statements are cut into functions of at most
//! [`MAX_UPVALUES`] outer names each (Lua 5.1 allows a function 60).
//!
//! The shared files keep the layout [`super::prune`] describes.

use std::collections::HashSet;

use super::prune::{items, names, reached, statement_names, Item};

/// The most outer names one start-of-call function may use: Lua 5.1's
/// limit of 60 upvalues per function, less a margin.
const MAX_UPVALUES: usize = 50;

/// The library's name in its source until its hash names it.
const UNNAMED: &str = "{{LIBRARY}}";

/// One script of a library: the name it is registered under (before the
/// library's own prefix), its code, and whether it only reads.
pub(crate) struct Entry<'a> {
    /// The script's name (`fetch`).
    pub(crate) name: &'a str,
    /// The script's own code, run with `KEYS` and `ARGV` in scope.
    pub(crate) body: &'a str,
    /// It writes nothing: Redis runs it on a replica and when out of memory.
    pub(crate) read_only: bool,
}

/// A function library's source and the names of its functions.
#[derive(Debug)]
pub(crate) struct Library {
    /// The library's name: `<prefix>_<hash of its source>`, so that
    /// libraries of different builds live side by side on one server.
    pub(crate) name: String,
    /// The source `FUNCTION LOAD` takes.
    pub(crate) code: String,
}

impl Library {
    /// The library of `entries` over the shared definitions `shared`.
    pub(crate) fn new(prefix: &str, shared: &str, entries: &[Entry<'_>]) -> Library {
        // Built once with a stand-in name (no Lua holds `{{`), hashed, then
        // named.
        let unnamed = source(UNNAMED, shared, entries);
        let hash = redis::Script::new(&unnamed).get_hash().to_owned();
        let name = format!("{prefix}_{}", &hash[..16]);
        Library { code: unnamed.replace(UNNAMED, &name), name }
    }

    /// The registered name of the library's script `script`.
    pub(crate) fn function(&self, script: &str) -> String {
        format!("{}_{script}", self.name)
    }
}

/// The names a `local` statement's first line declares (`local a, b = ..`
/// declares `a` and `b`), and whether it assigns them.
fn declared(line: &str) -> Option<(Vec<&str>, bool)> {
    let rest = line.strip_prefix("local ")?;
    if rest.starts_with("function ") {
        return None;
    }
    let code = rest.split("--").next().unwrap_or(rest);
    let (names, assigns) = match code.split_once('=') {
        Some((names, _)) => (names, true),
        None => (code, false),
    };
    let names: Vec<&str> = names.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    Some((names, assigns))
}

/// The Lua globals the scripts may use. A function's globals are reached
/// through a metatable (`__index` to Redis's own), which costs a second
/// lookup on every access; the library holds those its code names in
/// top-level locals instead, taken at the start of the first call (they
/// are the same tables and functions on every call).
const GLOBALS: &[&str] = &[
    "redis",
    "tonumber",
    "tostring",
    "type",
    "string",
    "table",
    "math",
    "unpack",
    "ipairs",
    "pairs",
    "next",
    "select",
    "error",
    "pcall",
    "xpcall",
    "assert",
    "cjson",
    "cmsgpack",
    "bit",
    "struct",
    "setmetatable",
    "getmetatable",
    "rawget",
    "rawset",
    "rawequal",
];

/// The library source:
///
/// ```text
/// #!lua name=<name>
/// local lib_register = redis.register_function   (the loading API)
/// local function lib_globals() return redis, .. end   (the call's globals)
/// local KEYS, ARGV
/// local redis, ..                                 (the globals used)
/// <the shared part: functions more than one script calls, and
///  declarations of the rest>
/// local function lib_start_0() <per-call statements> end ..
/// local lib_fresh = true
/// local function lib_begin(keys, args) .. end     (sets KEYS, ARGV, the
///                                                   globals once, the rest)
/// local lib_run = {}
/// lib_run.<script> = function(KEYS, ARGV, <its globals>) <its code> end
///   or, when it has functions of its own:
/// lib_run.<script> = (function(<shared functions they name>) -- only called by <script>
/// <the shared functions only it calls>
/// return function(KEYS, ARGV, <its globals>) <its code> end
/// end)(<the same>) -- only called by <script>
/// lib_register { function_name = '<name>_<script>', callback = .. }
/// ```
///
/// A script's code is a function of its own whose parameters are the
/// call's keys, arguments and the globals it names, so that it reaches
/// them without an upvalue (Lua 5.1 allows a function 60, and the fetch's
/// code names about 55 shared names); its callback begins the call and
/// runs it.
fn source(name: &str, shared: &str, entries: &[Entry<'_>]) -> String {
    let code_names = names(shared.lines().chain(entries.iter().flat_map(|e| e.body.lines())));
    let globals: Vec<&str> = GLOBALS.iter().copied().filter(|g| code_names.contains(*g)).collect();
    let globals = globals.join(", ");
    let mut top = vec![
        format!("#!lua name={name}"),
        "local lib_register = redis.register_function".to_owned(),
        format!("local function lib_globals() return {globals} end"),
        "local KEYS, ARGV".to_owned(),
    ];
    if !globals.is_empty() {
        top.push(format!("local {globals}"));
    }
    // The statements run at the start of each call, each with the outer
    // names it uses.
    let mut per_call: Vec<(String, HashSet<String>)> = Vec::new();
    let mut outer: HashSet<String> = ["KEYS", "ARGV"].map(str::to_owned).into();
    outer.extend(GLOBALS.iter().map(|g| (*g).to_owned()));
    let items = items(shared);
    let places = places(&items, entries);
    let mut own: Vec<Vec<&str>> = vec![Vec::new(); entries.len()];
    let mut shared_functions: Vec<&str> = Vec::new();
    for (item, place) in items.iter().zip(&places) {
        if let Some(f) = item.function {
            match place {
                Place::Shared => {
                    shared_functions.push(f);
                    outer.insert(f.to_owned());
                    top.extend(item.lines.iter().map(|l| (*l).to_owned()));
                }
                Place::Own(e) => own[*e].extend(item.lines.iter().copied()),
                Place::Unused => {}
            }
            continue;
        }
        let code: Vec<&str> = item.lines.iter().copied().filter(|l| !l.starts_with("--")).collect();
        let Some(first) = code.first() else { continue };
        let mut run: Vec<String> = code.iter().map(|l| (*l).to_owned()).collect();
        if let Some((declared, assigns)) = declared(first) {
            top.push(format!("local {}", declared.join(", ")));
            outer.extend(declared.iter().map(|n| (*n).to_owned()));
            run[0] =
                if assigns { first["local ".len()..].to_owned() } else { format!("{} = nil", declared.join(", ")) };
        }
        let used = names(run.iter().map(String::as_str));
        per_call.push((run.join("\n"), used));
    }
    // Cut the start-of-call statements into functions within the upvalue
    // limit, in order.
    let mut chunks: Vec<Vec<String>> = Vec::new();
    let mut uses: HashSet<String> = HashSet::new();
    for (statement, used) in per_call {
        let used: HashSet<String> = used.into_iter().filter(|n| outer.contains(n)).collect();
        match chunks.last_mut() {
            Some(chunk) if uses.union(&used).count() <= MAX_UPVALUES => chunk.push(statement),
            _ => {
                chunks.push(vec![statement]);
                uses.clear();
            }
        }
        uses.extend(used);
    }
    for (n, chunk) in chunks.iter().enumerate() {
        top.push(format!("local function lib_start_{n}()"));
        top.extend_from_slice(chunk);
        top.push("end".to_owned());
    }
    // The globals are the same tables and functions on every call: taken
    // on the first.
    top.push("local lib_fresh = true".to_owned());
    top.push("local function lib_begin(keys, args)".to_owned());
    top.push("KEYS, ARGV = keys, args".to_owned());
    if !globals.is_empty() {
        top.push(format!("if lib_fresh then {globals} = lib_globals() lib_fresh = false end"));
    }
    top.push((0..chunks.len()).map(|n| format!("lib_start_{n}()")).collect::<Vec<_>>().join(" "));
    top.push("end".to_owned());
    top.push("local lib_run = {}".to_owned());
    for (e, own) in entries.iter().zip(&own) {
        let named = names(e.body.lines());
        let params: Vec<&str> =
            ["KEYS", "ARGV"].into_iter().chain(GLOBALS.iter().copied().filter(|g| named.contains(*g))).collect();
        let params = params.join(", ");
        if own.is_empty() {
            top.push(format!("lib_run.{} = function({params})", e.name));
            top.push(e.body.to_owned());
            top.push("end".to_owned());
        } else {
            // The functions only this script calls, in a function of its
            // own, run once, that returns the script's: their locals are
            // that function's, not the main function's, whose 200 the
            // shared names nearly fill. The shared functions they and the
            // script call (set once, at load) are its parameters, not
            // upvalues (Lua 5.1 allows a function 60); the names a call
            // sets anew stay upvalues.
            let used = names(own.iter().copied().chain(e.body.lines()));
            let passed: Vec<&str> = shared_functions.iter().copied().filter(|f| used.contains(*f)).collect();
            let passed = passed.join(", ");
            top.push(format!("lib_run.{0} = (function({passed}) -- only called by {0}", e.name));
            top.extend(own.iter().map(|l| (*l).to_owned()));
            top.push(format!("return function({params})"));
            top.push(e.body.to_owned());
            top.push("end".to_owned());
            top.push(format!("end)({passed}) -- only called by {}", e.name));
        }
        let flags = if e.read_only { ", flags = { 'no-writes' }" } else { "" };
        let args = params.replacen("KEYS, ARGV", "keys, args", 1);
        top.push(format!(
            "lib_register {{ function_name = '{name}_{}'{flags}, callback = function(keys, args) lib_begin(keys, args) return lib_run.{}({args}) end }}",
            e.name, e.name
        ));
    }
    top.join("\n")
}

/// Where the library puts a shared function.
#[derive(Debug, PartialEq)]
enum Place {
    /// At the top level: more than one script calls it, or a statement run
    /// at the start of every call does.
    Shared,
    /// With the one script (by index) that calls it.
    Own(usize),
    /// Nowhere: nothing calls it.
    Unused,
}

/// The place of each of `items` (only those that are functions matter).
fn places(items: &[Item<'_>], entries: &[Entry<'_>]) -> Vec<Place> {
    let by_start = reached(items, statement_names(items));
    let by_entry: Vec<Vec<bool>> = entries.iter().map(|e| reached(items, names(e.body.lines()))).collect();
    (0..items.len())
        .map(|i| {
            let mut callers = by_entry.iter().enumerate().filter(|(_, r)| r[i]).map(|(e, _)| e);
            match (by_start[i], callers.next(), callers.next()) {
                (false, Some(e), None) => Place::Own(e),
                (false, None, _) => Place::Unused,
                _ => Place::Shared,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: &str = "\
local B = KEYS[1]
-- A helper.
local function helper(x)
  return x .. B
end
local function both(x)
  return x
end
local function unused()
  return 0
end
local function started()
  return 1
end
local cache
do
  local seen = {}
  cache = function(k)
    return seen[k]
  end
end
local HAS = nil -- nil: not looked up
local STARTED = started()";

    const GET: &str = "return helper(tostring(1)) .. both(2)";

    #[test]
    fn shared_functions_stay_at_the_top_and_the_rest_runs_per_call() {
        let lib = Library::new(
            "jobs",
            SHARED,
            &[
                Entry { name: "get", body: GET, read_only: true },
                Entry { name: "put", body: "return both(3)", read_only: false },
            ],
        );
        assert!(lib.name.starts_with("jobs_") && lib.name.len() == 5 + 16, "{}", lib.name);
        let code = &lib.code;
        let head = format!(
            "#!lua name={}\nlocal lib_register = redis.register_function\nlocal function lib_globals() return tostring end\nlocal KEYS, ARGV\nlocal tostring\nlocal B\nlocal function both(x)\n  return x\nend\nlocal function started()",
            lib.name
        );
        assert!(code.starts_with(&head), "{code}");
        assert!(!code.contains("unused"), "{code}");
        assert!(
            code.contains(
                "local cache\nlocal HAS\nlocal STARTED\nlocal function lib_start_0()\nB = KEYS[1]\ncache = nil\ndo\n"
            ),
            "{code}"
        );
        assert!(code.contains("HAS = nil -- nil: not looked up\nSTARTED = started()\nend\n"), "{code}");
        assert!(
            code.contains("local function lib_begin(keys, args)\nKEYS, ARGV = keys, args\nif lib_fresh then tostring = lib_globals() lib_fresh = false end\nlib_start_0()\nend"),
            "{code}"
        );
        let get = format!(
            "lib_run.get = (function(both) -- only called by get\n-- A helper.\nlocal function helper(x)\n  return x .. B\nend\nreturn function(KEYS, ARGV, tostring)\n{GET}\nend\nend)(both) -- only called by get\nlib_register {{ function_name = '{}_get', flags = {{ 'no-writes' }}, callback = function(keys, args) lib_begin(keys, args) return lib_run.get(keys, args, tostring) end }}\n",
            lib.name
        );
        assert!(code.contains(&get), "{code}");
        assert!(code.ends_with(&format!(
            "lib_run.put = function(KEYS, ARGV)\nreturn both(3)\nend\nlib_register {{ function_name = '{}_put', callback = function(keys, args) lib_begin(keys, args) return lib_run.put(keys, args) end }}",
            lib.name
        )), "{code}");
        assert_eq!(lib.function("get"), format!("{}_get", lib.name));
    }

    #[test]
    fn start_of_call_statements_are_cut_within_the_upvalue_limit() {
        let shared: String = (0..120).map(|i| format!("local V{i} = {i}\n")).collect();
        let lib = Library::new("jobs", &shared, &[Entry { name: "x", body: "return V1", read_only: false }]);
        let starts = lib.code.matches("local function lib_start_").count();
        assert_eq!(starts, 3, "{}", lib.code);
        assert!(lib.code.contains("lib_start_0() lib_start_1() lib_start_2()\nend"), "{}", lib.code);
    }
}
