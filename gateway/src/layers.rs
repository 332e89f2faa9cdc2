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
    &["startup", "trigger"],
    &["http"],
    &["admin", "inbox", "ingest"],
    &["plugins", "router"],
    &["state", "body"],
    &["limits", "telemetry"],
    // The HTTP error sits above the store and verification: they say what went wrong in
    // their own terms, and `error.rs` alone decides what a client is answered.
    &["error", "validate", "samples", "sign", "providers"],
    &["store", "verify", "normalize"],
    &["config", "clock", "headers", "ids", "fixtures"],
];

/// Module → the modules it uses, with a file that shows each use.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn floor(module: &str) -> Option<usize> {
    // Floors are listed top first; a higher number is a lower floor.
    FLOORS.iter().position(|f| f.contains(&module))
}

/// `source` without the items under `#[cfg(test)]` (or `#[cfg(any(test, …))]`), and the
/// names of the `mod x;` declarations so marked (their files are test code as a whole).
fn strip_tests(source: &str) -> (String, Vec<String>) {
    let lines: Vec<&str> = source.lines().collect();
    let mut kept = String::new();
    let mut test_mods = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with("#[cfg(test)]") || line.starts_with("#[cfg(any(test") {
            let mut j = i + 1;
            while j < lines.len() && lines[j].trim().starts_with("#[") {
                j += 1;
            }
            let item = lines.get(j).map_or("", |l| l.trim());
            let declared = item
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ")
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'));
            if let Some(name) = declared {
                test_mods.push(name.to_string());
                i = j + 1;
                continue;
            }
            // Skip the item: up to its closing brace, or its `;` if it has no body.
            let mut depth = 0i32;
            let mut opened = false;
            while j < lines.len() {
                let l = lines[j];
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                opened |= l.contains('{');
                if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                    break;
                }
                j += 1;
            }
            i = j + 1;
            continue;
        }
        // Comments may name any module (a doc link is no dependency).
        if !line.starts_with("//") {
            kept.push_str(lines[i]);
            kept.push('\n');
        }
        i += 1;
    }
    (kept, test_mods)
}

/// The top-level modules `source` names through `crate::` (`use crate::{a, b::c}` too).
fn used_modules(source: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in source.match_indices("crate::") {
        // Not a longer path that merely ends in `crate::` (e.g. `omnigate_crate::`).
        if source[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        let rest = &source[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split on commas outside nested braces.
            let mut depth = 0;
            let mut start = 0;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        used.insert(ident(group[start..k].trim()));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        used.insert(ident(group[start..k].trim()));
                        start = k + 1;
                    }
                    _ => {}
                }
            }
        } else {
            used.insert(ident(rest));
        }
    }
    used.retain(|m| !m.is_empty() && m.chars().next().is_some_and(|c| c.is_ascii_lowercase()));
    used
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
        let entry = graph.entry(top.clone()).or_default();
        for used in used_modules(&kept) {
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
fn imports_are_read_through_groups_and_test_code_is_left_out() {
    let source = "use crate::error::Result;\nuse crate::{admin::x, store::{A, B}, ids};\n\
                  fn f() { crate::verify::go(); omnigate_crate::no(); }\n\
                  #[cfg(test)]\nmod tests {\n    use crate::http;\n}\n\
                  #[cfg(test)]\nmod fuzz;\n/// See [`crate::startup`].\n";
    let (kept, test_mods) = strip_tests(source);
    assert_eq!(test_mods, ["fuzz"]);
    let used: Vec<String> = used_modules(&kept).into_iter().collect();
    assert_eq!(used, ["admin", "error", "ids", "store", "verify"]);
}
