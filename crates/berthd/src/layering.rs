//! A test of berthd's layering: no import cycles between its modules.
//!
//! Each top-level module (`containers`, `networks`, `volumes`, ...) is one node; a submodule is a node of its own when
//! code outside its parent names it by path (`crate::containers::record::Record`), which makes it a leaf the others
//! may import without importing the manager around it. A module depends on another when its source names it
//! (`crate::x::…`, `super::…`, `mod x;`, `pub use x::…`); unit tests (`#[cfg(test)] mod tests`) do not count. Any
//! strongly connected group of more than one node fails the test, listing the references that close the circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One module's source: its path (`containers::record`) and its code without comments and unit tests.
struct Source {
    module: String,
    code: String,
}

fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(".rs").to_string();
    }
    if parts.last().is_some_and(|l| l == "mod" || l == "main" || l == "lib") {
        parts.pop();
    }
    parts.join("::")
}

fn strip(code: &str) -> String {
    let code = match code.find("#[cfg(test)]\nmod tests") {
        Some(i) => &code[..i],
        None => code,
    };
    code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<Source>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, root, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let code = std::fs::read_to_string(&p).unwrap_or_default();
            out.push(Source { module: module_of(rel), code: strip(&code) });
        }
    }
}

fn ident(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len())
}

/// The module paths a source names, as written (`containers::record::Record`, `networks::attach`).
fn references(src: &Source) -> Vec<String> {
    let mut refs = Vec::new();
    let code = src.code.as_str();
    let parent = src.module.rsplit_once("::").map(|(p, _)| p.to_string()).unwrap_or_default();
    let join = |base: &str, rest: &str| if base.is_empty() { rest.to_string() } else { format!("{base}::{rest}") };
    for (prefix, base) in [("crate::", String::new()), ("super::", parent.clone())] {
        let mut at = 0;
        while let Some(i) = code[at..].find(prefix) {
            let start = at + i;
            at = start + prefix.len();
            if start > 0 && code[..start].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &code[at..];
            if let Some(list) = rest.strip_prefix('{') {
                // `use crate::{a::B, c};`: each item at depth 0.
                let (mut depth, mut item) = (0, String::new());
                for ch in list.chars() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            refs.push(join(&base, item.trim()));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(ch);
                }
                if !item.trim().is_empty() {
                    refs.push(join(&base, item.trim()));
                }
            } else {
                let mut end = 0;
                loop {
                    end += ident(&rest[end..]);
                    if rest[end..].starts_with("::") && rest[end + 2..].starts_with(|c: char| c.is_ascii_lowercase()) {
                        end += 2;
                    } else {
                        break;
                    }
                }
                // `crate::networks::attach(…)` calls a function: the module is what comes before it.
                let path = match rest[end..].starts_with('(') {
                    true => rest[..end].rsplit_once("::").map_or("", |(m, _)| m),
                    false => &rest[..end],
                };
                if !path.is_empty() {
                    refs.push(join(&base, path));
                } else if rest.starts_with('*') {
                    refs.push(base.clone());
                }
            }
        }
    }
    for line in code.lines().map(str::trim) {
        for p in ["mod ", "pub mod ", "pub(crate) mod ", "pub use ", "pub(crate) use ", "use "] {
            if let Some(rest) = line.strip_prefix(p) {
                let n = ident(rest);
                let name = &rest[..n];
                let is_child = p.contains("mod ") || rest[n..].starts_with("::");
                if n > 0 && is_child && !["crate", "super", "self", "std", "core"].contains(&name) {
                    refs.push(join(&src.module, name));
                }
            }
        }
    }
    refs.retain(|r| !r.is_empty());
    refs
}

#[test]
fn no_import_cycles_between_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut srcs = Vec::new();
    sources(&root, &root, &mut srcs);
    assert!(srcs.len() > 10, "found only {} sources under {}", srcs.len(), root.display());
    let modules: BTreeSet<String> = srcs.iter().map(|s| s.module.clone()).collect();
    let top = |m: &str| m.split("::").next().unwrap_or("").to_string();
    // A module path that exists, as much of `r` as names one (`containers::record::Record` → `containers::record`).
    let existing = |r: &str| -> Option<String> {
        let parts: Vec<&str> = r.split("::").collect();
        (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|m| modules.contains(m))
    };
    let refs: Vec<(String, Vec<String>)> =
        srcs.iter().map(|s| (s.module.clone(), references(s).iter().filter_map(|r| existing(r)).collect())).collect();
    // Submodules named from outside their parent are nodes of their own.
    let mut leaves = BTreeSet::new();
    for (from, to) in &refs {
        for t in to {
            if t.contains("::") && top(from) != top(t) {
                leaves.insert(t.clone());
            }
        }
    }
    let node = |m: &str| -> String {
        let parts: Vec<&str> = m.split("::").collect();
        (2..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|p| leaves.contains(p)).unwrap_or_else(|| top(m))
    };
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (from, to) in &refs {
        let a = node(from);
        if a.is_empty() {
            continue; // the crate root (main.rs) declares everything
        }
        for t in to {
            let b = node(t);
            if b != a && !b.is_empty() {
                edges.entry(a.clone()).or_default().entry(b).or_insert_with(|| format!("{from} names {t}"));
            }
        }
    }
    // Tarjan's strongly connected components.
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeMap<String, String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on: BTreeSet<String>,
        next: usize,
        groups: Vec<Vec<String>>,
    }
    fn visit(t: &mut T<'_>, v: &str) {
        t.index.insert(v.to_string(), t.next);
        t.low.insert(v.to_string(), t.next);
        t.next += 1;
        t.stack.push(v.to_string());
        t.on.insert(v.to_string());
        let succ: Vec<String> = t.edges.get(v).map(|m| m.keys().cloned().collect()).unwrap_or_default();
        for w in succ {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let lw = t.low[&w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if t.on.contains(&w) {
                let iw = t.index[&w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut group = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(&w);
                let done = w == v;
                group.push(w);
                if done {
                    break;
                }
            }
            if group.len() > 1 {
                t.groups.push(group);
            }
        }
    }
    let mut t = T {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        groups: Vec::new(),
    };
    let nodes: Vec<String> = edges.keys().cloned().collect();
    for v in &nodes {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    let mut report = String::new();
    for g in &t.groups {
        let set: BTreeSet<&String> = g.iter().collect();
        report.push_str(&format!("cycle between {}:\n", g.join(", ")));
        for a in g {
            for (b, why) in edges.get(a).into_iter().flatten() {
                if set.contains(b) {
                    report.push_str(&format!("  {a} -> {b} ({why})\n"));
                }
            }
        }
    }
    assert!(t.groups.is_empty(), "berthd's modules import each other in a circle:\n{report}");
}

#[test]
fn references_are_read_as_written() {
    let s = Source {
        module: "networks::attach".into(),
        code: "use crate::containers::record::{Record, State};\nuse crate::{daemon::Daemon, error::Error};\nuse super::*;\nfn f() { crate::volumes::count(); crate::networks::attach(); }".into(),
    };
    let r = references(&s);
    for want in ["containers::record", "daemon::Daemon", "error::Error", "networks", "volumes"] {
        assert!(r.iter().any(|x| x.starts_with(want)), "{want} missing from {r:?}");
    }
    assert!(!r.iter().any(|x| x.contains("attach") || x.contains("count")), "function calls taken for modules: {r:?}");
    assert_eq!(module_of(Path::new("containers/mod.rs")), "containers");
    assert_eq!(module_of(Path::new("containers/record.rs")), "containers::record");
}
