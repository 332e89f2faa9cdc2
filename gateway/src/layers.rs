//! The gateway's modules depend downward only, and never in a circle. This test reads the
//! `crate::` paths of every source file (comments, and code under `#[cfg(test)]`, excepted:
//! a test may reach up to build what it checks) and fails on an import from a lower floor to a higher
//! one, on a cycle between modules, and on a module that is not placed on a floor yet.
//! ARCHITECTURE.md draws the same floors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// From the edge down. A module may use modules on its own floor (without a cycle) and on
/// the floors below.
const FLOORS: &[&[&str]] = &[
    &["startup", "trigger", "forward"],
    &["http"],
    &["admin", "inbox", "enricher", "pusher", "poller", "router"],
    &["ingest", "plugins", "push", "poll", "enrich"],
    &["state", "body"],
    &["limits", "telemetry", "tally"],
    // The HTTP error sits above the store and verification: they say what went wrong in
    // their own terms, and `error.rs` alone decides what a client is answered.
    &["error", "validate", "samples", "sign", "providers"],
    &["store", "spool", "verify", "normalize"],
    &[
        "config", "clock", "headers", "ids", "fixtures", "json", "peer",
    ],
];

/// Module → the modules it uses, with a file that shows each use.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn floor(module: &str) -> Option<usize> {
    // Floors are listed top first; a higher number is a lower floor.
    FLOORS.iter().position(|f| f.contains(&module))
}

/// `line` without string and char literals and without a trailing `//` comment, so that
/// braces, commas and paths inside them are not read as code.
fn code_of(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                // Skip to the closing quote, past escapes.
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            '\'' => {
                // A char literal ('{', '\n') is skipped; a lifetime ('a) is kept.
                let rest: String = chars.clone().take(3).collect();
                let literal = rest.starts_with('\\') || rest.chars().nth(1) == Some('\'');
                if literal {
                    while let Some(c) = chars.next() {
                        if c == '\\' {
                            chars.next();
                        } else if c == '\'' {
                            break;
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}

/// `source` as code only: without comments, literals, and the items under `#[cfg(test)]`;
/// and the names of the `mod x;` declarations so marked (their files are test code as a
/// whole). Code under `#[cfg(any(test, feature = …))]` ships and is checked.
fn strip_tests(source: &str) -> (String, Vec<String>) {
    let lines: Vec<String> = source.lines().map(code_of).collect();
    let mut kept = String::new();
    let mut test_mods = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(after) = line.strip_prefix("#[cfg(test)]") {
            // The item starts after the attribute, on its line or on the next line that is
            // not another attribute.
            let mut j = i;
            let mut first = after.trim().to_string();
            while first.is_empty() || first.starts_with("#[") {
                j += 1;
                match lines.get(j) {
                    Some(l) => first = l.trim().to_string(),
                    None => break,
                }
            }
            let declared = first
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ")
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'))
                .map(str::to_string);
            if let Some(name) = declared {
                test_mods.push(name);
                i = j + 1;
                continue;
            }
            // Skip the item: up to its closing brace, or its `;` if it has no body.
            let mut depth = 0i32;
            let mut opened = false;
            let mut text = first;
            loop {
                depth += text.matches('{').count() as i32 - text.matches('}').count() as i32;
                opened |= text.contains('{');
                if (opened && depth <= 0) || (!opened && text.trim_end().ends_with(';')) {
                    break;
                }
                j += 1;
                match lines.get(j) {
                    Some(l) => text = l.clone(),
                    None => break,
                }
            }
            i = j + 1;
            continue;
        }
        kept.push_str(&lines[i]);
        kept.push('\n');
        i += 1;
    }
    (kept, test_mods)
}

/// The top-level modules `source` names, through `crate::` paths (`use crate::{a, b::c}`
/// too), through `super::` paths that climb to the crate root from `depth` modules down
/// (`router.rs` is 1 deep, `store/redis/log.rs` 3), and through the crate root's
/// re-exports (`crate::Error` is `error`'s).
fn used_modules(
    source: &str,
    depth: usize,
    reexports: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut roots: Vec<usize> = Vec::new();
    for (at, _) in source.match_indices("crate::") {
        // Not a longer path that merely ends in `crate::` (e.g. `omnigate_crate::`).
        let glued = source[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !glued {
            roots.push(at + "crate::".len());
        }
    }
    if depth > 0 {
        let climb = "super::".repeat(depth);
        for (at, _) in source.match_indices(&climb) {
            let glued = source[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            let further = source[at + climb.len()..].starts_with("super::");
            if !glued && !further {
                roots.push(at + climb.len());
            }
        }
    }
    for start in roots {
        let rest = &source[start..];
        let mut names = Vec::new();
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split on commas outside nested braces.
            let mut nesting = 0;
            let mut from = 0;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => nesting += 1,
                    '}' if nesting == 0 => {
                        names.push(ident(group[from..k].trim()));
                        break;
                    }
                    '}' => nesting -= 1,
                    ',' if nesting == 0 => {
                        names.push(ident(group[from..k].trim()));
                        from = k + 1;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            // `crate::some_macro!` names an exported macro, not a module.
            if !rest[name.len()..].starts_with('!') {
                names.push(name);
            }
        }
        for name in names {
            match reexports.get(&name) {
                Some(module) => {
                    used.insert(module.clone());
                }
                None if name.starts_with(|c: char| c.is_ascii_lowercase()) => {
                    used.insert(name);
                }
                None => {}
            }
        }
    }
    used.remove("self");
    used
}

/// What the crate root re-exports (`pub use error::{Error, Result};`): name → module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for line in lib.lines().map(str::trim) {
        let Some(path) = line
            .strip_prefix("pub use ")
            .and_then(|p| p.strip_suffix(';'))
        else {
            continue;
        };
        let Some((module, items)) = path.split_once("::") else {
            continue;
        };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.rsplit("::").next().unwrap_or("").trim();
            if !name.is_empty() {
                found.insert(name.to_string(), module.to_string());
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The dependency graph of the modules of the crate rooted at `src`.
fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut test_files = BTreeSet::new();
    let mut stripped = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("source is readable");
        let (kept, test_mods) = strip_tests(&text);
        let dir = file.parent().expect("a file has a folder");
        let own = match file.file_stem().and_then(|s| s.to_str()) {
            Some("mod" | "lib" | "main") => dir.to_path_buf(),
            Some(stem) => dir.join(stem),
            None => continue,
        };
        for m in test_mods {
            test_files.insert(own.join(format!("{m}.rs")));
            test_files.insert(own.join(&m).join("mod.rs"));
        }
        stripped.push((file.clone(), kept));
    }
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs is readable");
    let reexports = root_reexports(&lib);
    let mut graph = Graph::new();
    for (file, kept) in stripped {
        let rel = file.strip_prefix(src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_string())
            .unwrap_or_default();
        if test_files.contains(&file) || top == "lib" || top == "main" {
            continue;
        }
        // How many modules down the file's own module is: `a.rs` and `a/mod.rs` are 1.
        let parts = rel.components().count();
        let depth = match rel.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs") => parts - 1,
            _ => parts,
        };
        let entry = graph.entry(top.clone()).or_default();
        for used in used_modules(&kept, depth, &reexports) {
            if used != top {
                entry
                    .entry(used)
                    .or_insert_with(|| rel.display().to_string());
            }
        }
    }
    graph
}

/// Every violation: unplaced modules, upward imports, and cycles (as module lists).
fn violations(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    let modules: BTreeSet<&String> = graph
        .keys()
        .chain(graph.values().flat_map(|uses| uses.keys()))
        .collect();
    for m in &modules {
        if floor(m).is_none() {
            found.push(format!("module `{m}` is on no floor: place it in FLOORS"));
        }
    }
    for (from, uses) in graph {
        for (to, file) in uses {
            if let (Some(a), Some(b)) = (floor(from), floor(to))
                && b < a
            {
                found.push(format!(
                    "{file}: `{from}` uses `{to}`, which is on a higher floor"
                ));
            }
        }
    }
    // A cycle: depth-first search, reporting the path back to a module on the stack.
    fn visit<'a>(
        m: &'a str,
        graph: &'a Graph,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        found: &mut Vec<String>,
    ) {
        if let Some(at) = stack.iter().position(|s| *s == m) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(m);
            found.push(format!("cycle: {}", cycle.join(" → ")));
            return;
        }
        if !done.insert(m) {
            return;
        }
        stack.push(m);
        for next in graph.get(m).into_iter().flat_map(|u| u.keys()) {
            visit(next, graph, stack, done, found);
        }
        stack.pop();
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn modules_depend_downward_only_and_never_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(graph.contains_key("ingest") && graph["ingest"].contains_key("store"));
    let found = violations(&graph);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_check_sees_upward_imports_cycles_and_unplaced_modules() {
    let uses = |pairs: &[(&str, &str)]| -> Graph {
        let mut g = Graph::new();
        for (a, b) in pairs {
            g.entry(a.to_string())
                .or_default()
                .insert(b.to_string(), format!("{a}.rs"));
        }
        g
    };
    assert!(violations(&uses(&[("http", "admin"), ("admin", "store")])).is_empty());
    let upward = violations(&uses(&[("store", "state")]));
    assert!(upward[0].contains("higher floor"), "{upward:?}");
    let cycle = violations(&uses(&[("admin", "ingest"), ("ingest", "admin")]));
    assert!(cycle.iter().any(|v| v.starts_with("cycle")), "{cycle:?}");
    let unplaced = violations(&uses(&[("admin", "gadgets")]));
    assert!(unplaced[0].contains("no floor"), "{unplaced:?}");
}

#[test]
fn imports_are_read_through_groups_supers_and_reexports_and_test_code_is_left_out() {
    let source = "use crate::error::Result;\nuse crate::{admin::x, store::{A, B}, ids, // c, d\n    Error};\n\
                  fn f() { crate::verify::go(); omnigate_crate::no(); let _ = \"crate::http\"; }\n\
                  fn g() { let _ = '{'; super::super::clock::now(); super::sibling(); crate::a_macro!(); }\n\
                  #[cfg(test)]\nmod tests {\n    use crate::http;\n    const X: char = '}';\n}\n\
                  #[cfg(test)] use crate::startup;\nuse crate::headers::H;\n\
                  #[cfg(test)]\nmod fuzz;\n/// See [`crate::startup`].\n\
                  #[cfg(any(test, feature = \"testing\"))]\npub mod conformance { use crate::config::S; }\n";
    let (kept, test_mods) = strip_tests(source);
    assert_eq!(test_mods, ["fuzz"]);
    let reexports = root_reexports("pub use error::{Error, Result};\n");
    let used: Vec<String> = used_modules(&kept, 2, &reexports).into_iter().collect();
    assert_eq!(
        used,
        [
            "admin", "clock", "config", "error", "headers", "ids", "store", "verify"
        ]
    );
}
