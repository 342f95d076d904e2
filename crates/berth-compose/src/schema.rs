//! Validation of a parsed compose file against the compose specification's JSON schema (`compose-spec.json`,
//! embedded): the draft-07 keywords the specification uses (`type`, `properties`, `patternProperties`,
//! `additionalProperties`, `required`, `items`, `oneOf`, `anyOf`, `enum`, `minimum`, `maximum`, `uniqueItems`,
//! `$ref`). Errors give the key path and what was expected.

use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The compose specification's schema.
pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| serde_json::from_str(include_str!("../compose-spec.json")).unwrap_or(Value::Null))
}

/// The first violation found: the key path and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `services.web.ports.0`.
    pub path: String,
    /// `expected a string or a number, got a boolean`.
    pub message: String,
}

/// Checks `doc` against the compose specification.
pub fn validate(doc: &Value) -> Result<(), Violation> {
    let root = spec();
    check(root, root, doc, &mut Vec::new())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn article(t: &str) -> String {
    match t {
        "array" => "a list".to_string(),
        "object" => "a mapping".to_string(),
        "integer" | "number" | "string" | "boolean" => format!("a {t}"),
        "null" => "null".to_string(),
        o => o.to_string(),
    }
}

fn matches_type(t: &str, v: &Value) -> bool {
    let actual = type_name(v);
    actual == t || (t == "number" && actual == "integer")
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..16 {
        let Some(r) = s.get("$ref").and_then(Value::as_str) else { return s };
        let Some(name) = r.strip_prefix("#/definitions/") else { return s };
        match root.get("definitions").and_then(|d| d.get(name)) {
            Some(next) => s = next,
            None => return s,
        }
    }
    s
}

/// The types a schema accepts at its top (through `$ref` and `oneOf`), for messages.
fn accepted(root: &Value, schema: &Value, out: &mut Vec<String>) {
    let s = resolve(root, schema);
    match s.get("type") {
        Some(Value::String(t)) => out.push(t.clone()),
        Some(Value::Array(ts)) => out.extend(ts.iter().filter_map(Value::as_str).map(str::to_string)),
        _ => {}
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alts)) = s.get(key) {
            for a in alts {
                accepted(root, a, out);
            }
        }
    }
}

fn expected_types(root: &Value, schema: &Value) -> String {
    let mut ts = Vec::new();
    accepted(root, schema, &mut ts);
    let mut seen = Vec::new();
    for t in ts {
        if t == "integer" && seen.contains(&"number".to_string()) {
            continue;
        }
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    seen.iter().map(|t| article(t)).collect::<Vec<_>>().join(" or ")
}

fn violation(path: &[String], message: String) -> Violation {
    Violation { path: path.join("."), message }
}

fn check(root: &Value, schema: &Value, v: &Value, path: &mut Vec<String>) -> Result<(), Violation> {
    let s = resolve(root, schema);
    let Some(obj) = s.as_object() else { return Ok(()) };
    if let Some(t) = obj.get("type") {
        let ok = match t {
            Value::String(t) => matches_type(t, v),
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| matches_type(t, v)),
            _ => true,
        };
        if !ok {
            return Err(violation(
                path,
                format!("expected {}, got {}", expected_types(root, s), article(type_name(v))),
            ));
        }
    }
    if let Some(Value::Array(options)) = obj.get("enum")
        && !options.contains(v)
    {
        let list: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        return Err(violation(path, format!("expected one of {}, got {v}", list.join(", "))));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alts)) = obj.get(key) {
            one_of(root, s, alts, v, path)?;
        }
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = obj.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(violation(path, format!("expected a value of at least {min}, got {n}")));
        }
        if let Some(max) = obj.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(violation(path, format!("expected a value of at most {max}, got {n}")));
        }
    }
    match v {
        Value::Object(map) => check_object(root, obj, map, path)?,
        Value::Array(items) => {
            if obj.get("uniqueItems") == Some(&Value::Bool(true)) {
                for (i, item) in items.iter().enumerate() {
                    if items[..i].contains(item) {
                        path.push(i.to_string());
                        let e = violation(path, format!("duplicate entry {item}: the items must be unique"));
                        path.pop();
                        return Err(e);
                    }
                }
            }
            if let Some(item_schema) = obj.get("items") {
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    check(root, item_schema, item, path)?;
                    path.pop();
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn one_of(root: &Value, s: &Value, alts: &[Value], v: &Value, path: &[String]) -> Result<(), Violation> {
    let mut errors = Vec::new();
    for a in alts {
        match check(root, a, v, &mut path.to_vec()) {
            Ok(()) => return Ok(()),
            Err(e) => {
                let mut ts = Vec::new();
                accepted(root, a, &mut ts);
                let type_fits = ts.is_empty() || ts.iter().any(|t| matches_type(t, v));
                errors.push((type_fits, e));
            }
        }
    }
    // One alternative is of the value's type: its (deeper) error says the most.
    let fitting: Vec<&Violation> = errors.iter().filter(|(fits, _)| *fits).map(|(_, e)| e).collect();
    if let [only] = fitting.as_slice() {
        return Err((*only).clone());
    }
    if let Some(deepest) = fitting.iter().max_by_key(|e| e.path.len())
        && deepest.path.len() > path.join(".").len()
    {
        return Err((*deepest).clone());
    }
    Err(violation(path, format!("expected {}, got {}", expected_types(root, s), article(type_name(v)))))
}

fn pattern_matches(pattern: &str, key: &str) -> bool {
    // The patterns of the specification: `^x-`, `^[a-zA-Z0-9._-]+$`, `^.+$`, `.+`, `^[a-z]+$`.
    match pattern {
        "^x-" => key.starts_with("x-"),
        "^.+$" | ".+" => !key.is_empty(),
        "^[a-zA-Z0-9._-]+$" => !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
        "^[a-z]+$" => !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase()),
        _ => true,
    }
}

fn check_object(
    root: &Value,
    obj: &Map<String, Value>,
    map: &Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<(), Violation> {
    let props = obj.get("properties").and_then(Value::as_object);
    let patterns = obj.get("patternProperties").and_then(Value::as_object);
    if let Some(Value::Array(req)) = obj.get("required") {
        for r in req.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                return Err(violation(path, format!("missing required key {r:?}")));
            }
        }
    }
    for (k, item) in map {
        path.push(k.clone());
        let mut known = false;
        if let Some(p) = props.and_then(|p| p.get(k)) {
            known = true;
            check(root, p, item, path)?;
        }
        if let Some(pats) = patterns {
            for (pat, ps) in pats {
                if pattern_matches(pat, k) {
                    known = true;
                    check(root, ps, item, path)?;
                }
            }
        }
        if !known {
            match obj.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    let mut names: Vec<&str> =
                        props.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                    names.sort_unstable();
                    let hint = match nearest(k, &names) {
                        Some(n) => format!(" (did you mean {n:?}?)"),
                        None if names.is_empty() => String::new(),
                        None => format!(" (expected one of: {})", names.join(", ")),
                    };
                    let e = violation(path, format!("unknown key {k:?}{hint}"));
                    path.pop();
                    return Err(e);
                }
                Some(extra @ Value::Object(_)) => check(root, extra, item, path)?,
                _ => {}
            }
        }
        path.pop();
    }
    Ok(())
}

/// The name among `names` closest to a misspelt `key` (Levenshtein distance at most a third of its length, or
/// 2), if one is.
fn nearest<'a>(key: &str, names: &[&'a str]) -> Option<&'a str> {
    let dist = |a: &str, b: &str| -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let v = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
                cur.push(v);
            }
            prev = cur;
        }
        prev[b.len()]
    };
    let limit = (key.chars().count() / 3).max(2);
    names.iter().map(|n| (dist(key, n), *n)).filter(|(d, _)| *d <= limit).min_by_key(|(d, _)| *d).map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn err(doc: Value) -> Violation {
        match validate(&doc) {
            Ok(()) => panic!("{doc} is valid"),
            Err(e) => e,
        }
    }

    #[test]
    fn the_spec_is_embedded() {
        assert!(spec().get("definitions").is_some());
    }

    #[test]
    fn valid_files_pass() {
        let doc = json!({
            "name": "app",
            "x-common": {"anything": [1, 2]},
            "services": {
                "web": {
                    "build": {"context": ".", "args": {"V": 1}},
                    "ports": ["8080:80", 9000, {"target": 80, "published": "8081"}],
                    "depends_on": {"db": {"condition": "service_healthy"}},
                    "environment": ["A=1"],
                    "deploy": {"replicas": 2, "resources": {"limits": {"memory": "64m", "cpus": "0.5"}}},
                    "x-note": "ok"
                },
                "db": {"image": "busybox", "healthcheck": {"test": ["CMD", "true"], "interval": "1s"}}
            },
            "volumes": {"data": {}, "ext": {"external": true}},
            "networks": {"back": {"ipam": {"config": [{"subnet": "10.9.0.0/24"}]}}}
        });
        assert_eq!(validate(&doc), Ok(()));
    }

    #[test]
    fn errors_name_the_key_and_what_was_expected() {
        let e = err(json!({"services": {"web": {"image": "x", "bogus": 1}}}));
        assert_eq!(e.path, "services.web.bogus");
        assert!(e.message.starts_with("unknown key \"bogus\""), "{}", e.message);
        assert_eq!(nearest("prots", &["image", "ports", "profiles"]), Some("ports"));
        assert_eq!(nearest("enviroment", &["entrypoint", "environment"]), Some("environment"));
        assert_eq!(nearest("bogus", &["image", "ports"]), None);
        let e = err(json!({"services": {"web": {"ports": [true]}}}));
        assert_eq!(e.path, "services.web.ports.0");
        assert!(e.message.contains("expected") && e.message.ends_with("got a boolean"), "{}", e.message);
        let e = err(json!({"services": {"web": {"depends_on": {"db": {"condition": "sometime"}}}}}));
        assert_eq!(e.path, "services.web.depends_on.db.condition");
        assert!(e.message.starts_with("expected one of \"service_started\""), "{}", e.message);
        let e = err(json!({"services": {"web": {"read_only": [1]}}}));
        assert_eq!(e.path, "services.web.read_only");
        assert_eq!(e.message, "expected a boolean or a string, got a list");
        let e = err(json!({"services": {"web": {"volumes": [{"source": "a"}]}}}));
        assert_eq!((e.path.as_str(), e.message.as_str()), ("services.web.volumes.0", "missing required key \"type\""));
        let e = err(json!({"servics": {}}));
        assert_eq!(e.path, "servics");
    }
}
