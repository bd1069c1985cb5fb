//! The shape of the source tree: data flows one way between the top-level modules of `src/`,
//! so no module imports (through `crate::…`) one that imports it back, directly or through
//! others. Tests (`#[cfg(test)]` modules) are left out: they may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its non-test code names as `crate::x`.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let is_module = |name: &str| src.join(format!("{name}.rs")).exists() || src.join(name).is_dir();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = first.trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        // Code only: not tests, and not comments (a doc link is no import).
        let code: String = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let deps = graph.entry(top.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if name != top && is_module(&name) {
                deps.insert(name);
            }
        }
    }
    graph
}

/// A path of imports that leads back to where it started, if there is one.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    for start in graph.keys() {
        let mut stack = vec![vec![start.clone()]];
        while let Some(path) = stack.pop() {
            for next in graph.get(path.last()?).into_iter().flatten() {
                let mut longer = path.clone();
                longer.push(next.clone());
                if next == start {
                    return Some(longer);
                }
                if !path.contains(next) {
                    stack.push(longer);
                }
            }
        }
    }
    None
}

#[test]
fn the_top_level_modules_import_each_other_without_circles() {
    let graph = import_graph();
    assert!(graph.contains_key("mail") && graph.contains_key("store"));
    assert_eq!(find_circle(&graph), None, "import graph: {graph:#?}");
}

#[test]
fn the_circle_finder_finds_a_planted_circle() {
    let mut graph = import_graph();
    graph
        .entry("secret".into())
        .or_default()
        .insert("mail".into());
    let circle = find_circle(&graph).expect("mail imports secret, secret now imports mail");
    assert_eq!(circle.first(), circle.last());
}
