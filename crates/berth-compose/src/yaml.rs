//! YAML as Compose v2 reads it (go-yaml v3): the YAML 1.2 core schema for plain scalars, with go-yaml's own
//! additions. This is the one place where a scalar gets its type:
//!
//! - `null`, `Null`, `NULL`, `~` and the empty scalar are null; `true`/`True`/`TRUE`, `false`/`False`/`FALSE` are
//!   booleans. `yes`, `no`, `on`, `off`, `y`, `n` stay strings (YAML 1.1 booleans are not booleans here).
//! - Integers as Go's `strconv.ParseInt(s, 0, 64)` reads them after removing `_`: decimal, `0x`, `0o`, `0b`, and
//!   a leading `0` is octal (`0440` is 288), as go-yaml v3 keeps for compatibility.
//! - Other numbers (`0.5`, `1e3`, `.inf`, `.nan`, `08`) keep their spelling: a float whose shortest rendering is
//!   the text itself (`0.5`) is a number, anything else (`1e3`, `1.10`, `.inf`) the string as written, so a value
//!   where a string is wanted (an environment value, a label, a version) is never rewritten.
//! - Quoted and block scalars are strings; `!!str`, `!!int`, `!!float`, `!!bool`, `!!null` are honoured, other
//!   tags on scalars leave a string.
//! - Mapping keys are their text as written (a network named `n` or `on` is that name).
//! - Anchors, aliases (with a bound on the nodes they copy) and `<<` merge keys (the mapping's own keys win, then
//!   the merged mappings in order). Duplicate keys are an error, as in go-yaml.
//! - Compose's `!reset` (the node is dropped here and the same path cleared in the files before) and `!override`
//!   (the node is kept and replaces the same path of the files before instead of merging with it) are returned as
//!   [`Reset`]s for the merge to apply.
//!
//! It builds on `granit-parser`, the event parser serde-saphyr already uses (no new crate): serde-saphyr's own
//! resolution goes through serde's typed visitors, so it loses a number's spelling and every tag.

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};

/// What a `!reset` or `!override` tag asks of the merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetKind {
    /// `!reset`: the value is removed (from this file and the ones before).
    Reset,
    /// `!override`: this file's value replaces the one before instead of merging with it.
    Override,
}

/// A `!reset` or `!override` at a key path of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reset {
    /// The keys from the top (sequence items as their index).
    pub path: Vec<String>,
    /// Which tag.
    pub kind: ResetKind,
}

/// A parsed document.
#[derive(Debug, Clone)]
pub struct Document {
    /// The value (null for an empty document).
    pub value: Value,
    /// The `!reset` and `!override` tags found.
    pub resets: Vec<Reset>,
}

/// The most nodes aliases may copy in one document (a guard against "billion laughs" files).
const ALIAS_BUDGET: usize = 1_000_000;

/// Parses one YAML document. The error is the parser's message with its line and column.
pub fn parse(text: &str) -> Result<Document, String> {
    let mut b = builder(text)?;
    let mut documents = 0;
    let mut value = Value::Null;
    while b.pos < b.events.len() {
        match &b.events[b.pos].0 {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(format!("{}: more than one YAML document in the file", b.at(b.pos)));
                }
                b.pos += 1;
            }
            Event::DocumentEnd => b.pos += 1,
            _ => value = b.node(&mut Vec::new())?.unwrap_or(Value::Null),
        }
    }
    Ok(Document { value, resets: b.resets })
}

/// Parses a stream of YAML documents (`---` between them, as Kubernetes files have), by the same rules; an empty
/// document is `null`. Tags such as `!reset` mean nothing here and are ignored.
pub fn parse_all(text: &str) -> Result<Vec<Value>, String> {
    let mut b = builder(text)?;
    let mut out = Vec::new();
    while b.pos < b.events.len() {
        match &b.events[b.pos].0 {
            Event::DocumentStart(..) => {
                out.push(Value::Null);
                b.pos += 1;
            }
            Event::DocumentEnd => b.pos += 1,
            _ => {
                let v = b.node(&mut Vec::new())?.unwrap_or(Value::Null);
                match out.last_mut() {
                    Some(last) => *last = v,
                    None => out.push(v),
                }
            }
        }
    }
    Ok(out)
}

fn builder(text: &str) -> Result<Builder<'_>, String> {
    let mut events = Vec::new();
    for e in Parser::new_from_str(text) {
        let (event, span) =
            e.map_err(|e| format!("line {} column {}: {}", e.marker().line(), e.marker().col() + 1, e.info()))?;
        // Comments and the stream's start and end say nothing about the value.
        if matches!(
            event,
            Event::DocumentStart(..)
                | Event::DocumentEnd
                | Event::Alias(_)
                | Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::SequenceEnd
                | Event::MappingStart(..)
                | Event::MappingEnd
        ) {
            events.push((event, span));
        }
    }
    Ok(Builder { events, pos: 0, anchors: HashMap::new(), budget: ALIAS_BUDGET, resets: Vec::new() })
}

struct Builder<'a> {
    events: Vec<(Event<'a>, Span)>,
    pos: usize,
    anchors: HashMap<usize, Value>,
    budget: usize,
    resets: Vec<Reset>,
}

fn compose_tag(tag: Option<&Tag>) -> Option<ResetKind> {
    let t = tag?;
    if t.handle() != "!" {
        return None;
    }
    match t.suffix() {
        "reset" => Some(ResetKind::Reset),
        "override" => Some(ResetKind::Override),
        _ => None,
    }
}

fn size(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(size).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(size).sum::<usize>(),
        _ => 1,
    }
}

impl<'a> Builder<'a> {
    fn at(&self, i: usize) -> String {
        let span = self.events.get(i).or(self.events.last()).map(|(_, s)| s.start);
        match span {
            Some(m) => format!("line {} column {}", m.line(), m.col() + 1),
            None => "end of file".into(),
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, usize), String> {
        let i = self.pos;
        let e = self.events.get(i).map(|(e, _)| e.clone()).ok_or_else(|| "unexpected end of the YAML".to_string())?;
        self.pos += 1;
        Ok((e, i))
    }

    /// One node; `None` when it is tagged `!reset` (dropped).
    fn node(&mut self, path: &mut Vec<String>) -> Result<Option<Value>, String> {
        let (event, i) = self.next()?;
        let (value, anchor, kind) = match event {
            Event::Alias(id) => {
                let v = self.anchors.get(&id).cloned().ok_or_else(|| format!("{}: unknown alias", self.at(i)))?;
                let n = size(&v);
                if n > self.budget {
                    return Err(format!("{}: aliases expand to too many nodes", self.at(i)));
                }
                self.budget -= n;
                return Ok(Some(v));
            }
            Event::Scalar(text, style, anchor, tag) => {
                let kind = compose_tag(tag.as_deref());
                let v = scalar(&text, style, if kind.is_some() { None } else { tag.as_deref() })
                    .map_err(|m| format!("{}: {m}", self.at(i)))?;
                (v, anchor, kind)
            }
            Event::SequenceStart(_, anchor, tag) => {
                let mut items = Vec::new();
                loop {
                    if matches!(self.events.get(self.pos), Some((Event::SequenceEnd, _))) {
                        self.pos += 1;
                        break;
                    }
                    path.push(items.len().to_string());
                    let item = self.node(path)?;
                    path.pop();
                    items.extend(item);
                }
                (Value::Array(items), anchor, compose_tag(tag.as_deref()))
            }
            Event::MappingStart(_, anchor, tag) => (self.mapping(path)?, anchor, compose_tag(tag.as_deref())),
            other => return Err(format!("{}: unexpected {other:?}", self.at(i))),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match kind {
            Some(kind) => {
                self.resets.push(Reset { path: path.clone(), kind });
                Ok(if kind == ResetKind::Reset { None } else { Some(value) })
            }
            None => Ok(Some(value)),
        }
    }

    fn mapping(&mut self, path: &mut Vec<String>) -> Result<Value, String> {
        let mut own = Map::new();
        let mut lines: HashMap<String, usize> = HashMap::new();
        let mut merges: Vec<Map<String, Value>> = Vec::new();
        loop {
            let (event, i) = self.next()?;
            let (key, merge) = match event {
                Event::MappingEnd => break,
                Event::Scalar(text, style, anchor, _) => {
                    if anchor != 0 {
                        self.anchors.insert(anchor, Value::String(text.to_string()));
                    }
                    (text.to_string(), style == ScalarStyle::Plain && text == "<<")
                }
                Event::Alias(id) => match self.anchors.get(&id) {
                    Some(v) => (crate::normalize::scalar_string(v).unwrap_or_default(), false),
                    None => return Err(format!("{}: unknown alias", self.at(i))),
                },
                _ => return Err(format!("{}: a mapping key must be a scalar", self.at(i))),
            };
            let line = self.events[i].1.start.line();
            path.push(key.clone());
            let value = self.node(path)?;
            path.pop();
            if merge {
                match value {
                    Some(Value::Object(m)) => merges.push(m),
                    Some(Value::Array(items)) => {
                        for it in items {
                            match it {
                                Value::Object(m) => merges.push(m),
                                _ => return Err(format!("{}: a merge key takes mappings", self.at(i))),
                            }
                        }
                    }
                    None | Some(Value::Null) => {}
                    _ => return Err(format!("{}: a merge key takes a mapping or a list of them", self.at(i))),
                }
                continue;
            }
            if let Some(first) = lines.get(&key) {
                return Err(format!("line {line}: mapping key {key:?} already defined at line {first}"));
            }
            lines.insert(key.clone(), line);
            if let Some(v) = value {
                own.insert(key, v);
            }
        }
        let mut out = Map::new();
        for m in merges {
            for (k, v) in m {
                out.entry(k).or_insert(v);
            }
        }
        // The mapping's own keys win over merged ones; a `!reset` key removes a merged one too.
        for k in lines.keys() {
            out.remove(k);
        }
        out.extend(own);
        Ok(Value::Object(out))
    }
}

/// A scalar's value: `tag` (if any) first, then the style, then the core schema of plain scalars.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(t) = tag {
        return match t.core_suffix() {
            Some("str") => Ok(Value::String(text.to_string())),
            Some("null") => Ok(Value::Null),
            Some("bool") => match plain(text) {
                v @ Value::Bool(_) => Ok(v),
                _ => Err(format!("cannot read {text:?} as a boolean (!!bool)")),
            },
            Some("int") => match plain(text) {
                v @ Value::Number(_) if int(text).is_some() => Ok(v),
                _ => Err(format!("cannot read {text:?} as an integer (!!int)")),
            },
            Some("float") => match plain(text) {
                v @ (Value::Number(_) | Value::String(_)) if float(text) => Ok(v),
                _ => Err(format!("cannot read {text:?} as a number (!!float)")),
            },
            _ => Ok(Value::String(text.to_string())),
        };
    }
    Ok(if style == ScalarStyle::Plain { plain(text) } else { Value::String(text.to_string()) })
}

/// A plain scalar by go-yaml v3's rules (see the module's documentation).
pub fn plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = int(text) {
        return Value::Number(n);
    }
    if float(text)
        && let Ok(f) = text.replace('_', "").parse::<f64>()
        && let Some(n) = Number::from_f64(f)
        && n.to_string() == text
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

/// Go's `strconv.ParseInt(s, 0, 64)` (then `ParseUint`) after removing underscores, plus go-yaml's `0o`.
fn int(text: &str) -> Option<Number> {
    let s = text.replace('_', "");
    let (neg, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s.as_str()),
    };
    let (radix, digits) = match unsigned.as_bytes() {
        [b'0', b'x' | b'X', ..] => (16, &unsigned[2..]),
        [b'0', b'o' | b'O', ..] => (8, &unsigned[2..]),
        [b'0', b'b' | b'B', ..] => (2, &unsigned[2..]),
        [b'0', _, ..] => (8, &unsigned[1..]),
        _ => (10, unsigned),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        let v = i64::try_from(magnitude).ok().map(|m| -m).or((magnitude == 1 << 63).then_some(i64::MIN))?;
        Some(Number::from(v))
    } else {
        Some(Number::from(magnitude))
    }
}

/// go-yaml's float syntax (`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`, underscores removed) and the
/// `.inf`/`.nan` spellings.
fn float(text: &str) -> bool {
    if matches!(
        text,
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF" | ".nan" | ".NaN" | ".NAN"
    ) {
        return true;
    }
    let s = text.replace('_', "");
    let s = s.strip_prefix(['-', '+']).unwrap_or(&s);
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((whole, frac)) => digits(whole) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(text: &str) -> Value {
        parse(text).unwrap_or_else(|e| panic!("{e}")).value
    }

    #[test]
    fn a_stream_of_documents() {
        let text = "a: 1\n---\n---\nb: [x]\n...\n";
        assert_eq!(parse_all(text).expect("three documents"), vec![json!({"a": 1}), Value::Null, json!({"b": ["x"]})]);
        assert_eq!(parse_all("").expect("no document"), Vec::<Value>::new());
        assert!(parse(text).is_err_and(|e| e.contains("more than one YAML document")));
    }

    #[test]
    fn core_schema_as_go_yaml_v3() {
        let v = doc(concat!(
            "a: yes\nb: no\nc: on\nd: off\ne: y\nf: n\ng: true\nh: False\ni: ~\nj:\nk: null\n",
            "l: 1e3\nm: .inf\nn: -.Inf\no: .nan\np: 0440\nq: 0o440\nr: 0x1F\ns: 0b101\nt: 1_000\nu: -12\n",
            "v: 0.5\nw: 1.10\nx: 08\ny: '0440'\nz: \"true\"\naa: 12:30\nab: +7\nac: 18446744073709551615\n"
        ));
        for (k, want) in [
            ("a", json!("yes")),
            ("b", json!("no")),
            ("c", json!("on")),
            ("d", json!("off")),
            ("e", json!("y")),
            ("f", json!("n")),
            ("g", json!(true)),
            ("h", json!(false)),
            ("i", json!(null)),
            ("j", json!(null)),
            ("k", json!(null)),
            ("l", json!("1e3")),
            ("m", json!(".inf")),
            ("n", json!("-.Inf")),
            ("o", json!(".nan")),
            ("p", json!(288)),
            ("q", json!(288)),
            ("r", json!(31)),
            ("s", json!(5)),
            ("t", json!(1000)),
            ("u", json!(-12)),
            ("v", json!(0.5)),
            ("w", json!("1.10")),
            ("x", json!("08")),
            ("y", json!("0440")),
            ("z", json!("true")),
            ("aa", json!("12:30")),
            ("ab", json!(7)),
            ("ac", json!(18_446_744_073_709_551_615u64)),
        ] {
            assert_eq!(v[k], want, "{k}");
        }
    }

    #[test]
    fn keys_are_text_and_tags_are_honoured() {
        let v = doc("n: 1\non: 2\ny: 3\n1e3: 4\nnull: 5\na: !!str 0440\nb: !!int \"12\"\nc: !custom 5\n");
        let keys: Vec<&String> = v.as_object().map(|m| m.keys().collect()).unwrap_or_default();
        assert_eq!(keys, ["1e3", "a", "b", "c", "n", "null", "on", "y"]);
        assert_eq!((v["a"].clone(), v["b"].clone(), v["c"].clone()), (json!("0440"), json!(12), json!("5")));
        assert!(parse("a: !!int x\n").is_err());
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let v =
            doc("x: &base {a: 1, b: 2, l: [1]}\ny: &more {c: 3, a: 9}\nz:\n  <<: [*base, *more]\n  b: own\nw: *base\n");
        assert_eq!(v["z"], json!({"a": 1, "b": "own", "c": 3, "l": [1]}));
        assert_eq!(v["w"], v["x"]);
        let e = parse("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert!(e.contains("mapping key \"a\" already defined at line 1"), "{e}");
        assert!(parse("a: [1\n").expect_err("bad").starts_with("line "));
        // An alias bomb stops at the budget instead of eating the memory.
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&bomb).expect_err("bomb").contains("too many nodes"));
    }

    #[test]
    fn reset_and_override_tags() {
        let d = parse("services:\n  web:\n    ports: !reset []\n    environment: !override {A: 1}\n    image: !reset null\n    dns: [a, !reset b]\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.value, json!({"services": {"web": {"environment": {"A": 1}, "dns": ["a"]}}}));
        let paths: Vec<(String, ResetKind)> = d.resets.iter().map(|r| (r.path.join("."), r.kind)).collect();
        assert_eq!(
            paths,
            [
                ("services.web.ports".to_string(), ResetKind::Reset),
                ("services.web.environment".to_string(), ResetKind::Override),
                ("services.web.image".to_string(), ResetKind::Reset),
                ("services.web.dns.1".to_string(), ResetKind::Reset),
            ]
        );
    }
}
