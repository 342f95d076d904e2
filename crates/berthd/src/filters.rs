//! Docker's `filters` query parameter, one type for every list and prune endpoint.
//!
//! The parameter is JSON: `{"status":["running"]}`, or the older `{"status":{"running":true}}` (both are accepted, as
//! Docker does). Each endpoint names the keys it understands ([`Filters::accept`]); any other key is refused with
//! Docker's 400 `invalid filter 'x'`. Labels are matched in one place ([`Filters::match_labels`]): `label=key`,
//! `label=key=value`, and, where Docker has it, `label!=...`.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use crate::error::Error;
use serde_json::Value;

/// Parsed `filters`: each key with its values (in the order given, without repeats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    fields: BTreeMap<String, Vec<String>>,
}

/// Docker's error for a filter key (and value) it does not accept: `invalid filter 'key[=v1,v2]'`.
pub fn invalid(key: &str, values: Option<&[String]>) -> Error {
    match values {
        Some(v) => Error::InvalidArgument(format!("invalid filter '{key}={}'", v.join(","))),
        None => Error::InvalidArgument(format!("invalid filter '{key}'")),
    }
}

impl Filters {
    /// Parses the JSON of a `filters` parameter (empty: no filters).
    pub fn parse(raw: &str) -> Result<Filters, Error> {
        let mut f = Filters::default();
        if raw.trim().is_empty() {
            return Ok(f);
        }
        let v: Value = serde_json::from_str(raw).map_err(|e| Error::InvalidArgument(format!("invalid filter: {e}")))?;
        let obj = v.as_object().ok_or_else(|| Error::InvalidArgument("invalid filter: not an object".into()))?;
        for (k, vals) in obj {
            let list: Vec<String> = match vals {
                Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                // The form of API versions before 1.22: `{"key": {"value": true}}`.
                Value::Object(m) => {
                    m.iter().filter(|(_, b)| b.as_bool() == Some(true)).map(|(k, _)| k.clone()).collect()
                }
                Value::String(s) => vec![s.clone()],
                _ => return Err(invalid(k, None)),
            };
            let entry = f.fields.entry(k.clone()).or_default();
            for v in list {
                if !entry.contains(&v) {
                    entry.push(v);
                }
            }
        }
        Ok(f)
    }

    /// The `filters` parameter of a query.
    pub fn from_query(q: &HashMap<String, String>) -> Result<Filters, Error> {
        Filters::parse(q.get("filters").map(String::as_str).unwrap_or(""))
    }

    /// Refuses keys outside `accepted`, with Docker's message.
    pub fn accept(&self, accepted: &[&str]) -> Result<(), Error> {
        match self.fields.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(k) => Err(invalid(k, None)),
            None => Ok(()),
        }
    }

    /// Adds a value to a key, as moby's routes do for older API versions (`volume prune`'s `all=true` before 1.42).
    pub fn add(&mut self, key: &str, value: &str) {
        let entry = self.fields.entry(key.to_string()).or_default();
        if !entry.iter().any(|v| v == value) {
            entry.push(value.to_string());
        }
    }

    /// Whether the key was given (even with no value).
    pub fn contains(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    /// The values of a key (none when it was not given).
    pub fn get(&self, key: &str) -> &[String] {
        self.fields.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// True when the key has no value or `pred` holds for one of its values (Docker's "any of" filters: `name`,
    /// `id`, `driver`, ...).
    pub fn any(&self, key: &str, pred: impl Fn(&str) -> bool) -> bool {
        let vals = self.get(key);
        vals.is_empty() || vals.iter().any(|v| pred(v))
    }

    /// A boolean filter (`dangling=true`): `None` when absent; `1`/`true` or `0`/`false` (any case), and not both;
    /// anything else is Docker's `invalid filter 'key=value'`.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, Error> {
        let Some(vals) = self.fields.get(key) else { return Ok(None) };
        let is = |set: &[&str]| vals.iter().any(|v| set.iter().any(|s| v.eq_ignore_ascii_case(s)));
        let (yes, no) = (is(&["1", "true"]), is(&["0", "false"]));
        let unknown = vals.iter().any(|v| !["1", "true", "0", "false"].iter().any(|s| v.eq_ignore_ascii_case(s)));
        if yes == no || unknown {
            return Err(invalid(key, Some(vals)));
        }
        Ok(Some(yes))
    }

    /// Docker's `MatchKVList`: every value of `key` (`k` or `k=v`) holds for `labels` (true when `key` is absent).
    pub fn match_kv(&self, key: &str, labels: &HashMap<String, String>) -> bool {
        self.get(key).iter().all(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(f.as_str()),
        })
    }

    /// The label filters: every `label` holds, and unless `label!` is absent, not every `label!` holds (Docker's
    /// prune rule: a `label!` set excludes what matches all of it).
    pub fn match_labels(&self, labels: &HashMap<String, String>) -> bool {
        self.match_kv("label", labels) && !(self.contains("label!") && self.match_kv("label!", labels))
    }

    /// [`Filters::match_labels`] for labels held as a JSON object (image configs).
    pub fn match_labels_json(&self, labels: &Value) -> bool {
        let map: HashMap<String, String> = labels
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
            .unwrap_or_default();
        self.match_labels(&map)
    }

    /// A time filter (`until`, and for containers' logs `since`): a Unix timestamp, an RFC 3339 date or a duration
    /// before `now`; with several values the last one counts (as Docker's walk over them leaves it). A value that is
    /// none of these is a 400.
    pub fn time(&self, key: &str, now: SystemTime) -> Result<Option<SystemTime>, Error> {
        let mut out = None;
        for v in self.get(key) {
            let t = berth_api::time::parse_since(v, now).ok_or_else(|| {
                Error::InvalidArgument(format!("invalid filter '{key}={v}': not a timestamp or a duration"))
            })?;
            out = Some(t);
        }
        Ok(out)
    }
}

/// Go's `path.Match` (berth-build's glob engine), a malformed pattern being a 400.
pub fn path_match(pattern: &str, name: &str) -> Result<bool, Error> {
    berth_build::path_match(pattern, name)
        .map_err(|e| Error::InvalidArgument(format!("invalid reference filter {pattern:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_both_forms() {
        let f = Filters::parse(r#"{"status":{"running":true,"exited":false},"name":["web","web"]}"#).expect("parse");
        assert_eq!(f.get("status"), ["running".to_string()]);
        assert_eq!(f.get("name"), ["web".to_string()]);
        assert!(f.get("label").is_empty() && !f.contains("label"));
        assert_eq!(Filters::parse("").expect("empty"), Filters::default());
        assert!(Filters::parse("{").is_err());
        assert!(Filters::parse("[]").is_err());
        assert!(Filters::parse(r#"{"a":1}"#).is_err());
        let mut q = HashMap::new();
        q.insert("filters".to_string(), r#"{"dangling":["true"]}"#.to_string());
        assert_eq!(Filters::from_query(&q).expect("query").bool("dangling").expect("bool"), Some(true));
    }

    #[test]
    fn refuses_unknown_keys_with_dockers_message() {
        let f = Filters::parse(r#"{"bogus":["x"],"label":["a"]}"#).expect("parse");
        let e = f.accept(&["label"]).expect_err("bogus is refused");
        assert!(matches!(&e, Error::InvalidArgument(m) if m == "invalid filter 'bogus'"), "{e:?}");
        assert!(f.accept(&["label", "bogus"]).is_ok());
    }

    #[test]
    fn booleans() {
        let b = |s: &str| Filters::parse(s).expect("parse").bool("dangling");
        assert_eq!(b(r#"{"dangling":["1"]}"#).expect("1"), Some(true));
        assert_eq!(b(r#"{"dangling":["FALSE"]}"#).expect("FALSE"), Some(false));
        assert_eq!(b("{}").expect("absent"), None);
        let e = b(r#"{"dangling":["maybe"]}"#).expect_err("maybe");
        assert!(matches!(&e, Error::InvalidArgument(m) if m == "invalid filter 'dangling=maybe'"), "{e:?}");
        assert!(b(r#"{"dangling":["true","false"]}"#).is_err());
    }

    #[test]
    fn label_matching() {
        let l = labels(&[("a", "1"), ("b", "")]);
        let m = |s: &str| Filters::parse(s).expect("parse").match_labels(&l);
        assert!(m("{}"));
        assert!(m(r#"{"label":["a"]}"#) && m(r#"{"label":["a=1","b"]}"#) && m(r#"{"label":["b="]}"#));
        assert!(!m(r#"{"label":["a=2"]}"#) && !m(r#"{"label":["c"]}"#) && !m(r#"{"label":["a","c"]}"#));
        // `label!`: excluded when every one of them matches.
        assert!(!m(r#"{"label!":["a"]}"#) && !m(r#"{"label!":["a=1","b"]}"#));
        assert!(m(r#"{"label!":["a=2"]}"#) && m(r#"{"label!":["a","c"]}"#));
        assert!(!m(r#"{"label":["a"],"label!":["b"]}"#));
        let j = serde_json::json!({"a": "1"});
        assert!(Filters::parse(r#"{"label":["a=1"]}"#).expect("parse").match_labels_json(&j));
        assert!(!Filters::parse(r#"{"label":["a"]}"#).expect("parse").match_labels_json(&Value::Null));
    }

    #[test]
    fn times() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let t = |s: &str| Filters::parse(s).expect("parse").time("until", now);
        assert_eq!(t("{}").expect("none"), None);
        assert_eq!(
            t(r#"{"until":["1600000000"]}"#).expect("unix"),
            Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000))
        );
        assert_eq!(t(r#"{"until":["10m"]}"#).expect("duration"), now.checked_sub(std::time::Duration::from_secs(600)));
        assert!(t(r#"{"until":["2023-11-14T22:13:20Z"]}"#).expect("rfc3339").is_some());
        assert!(t(r#"{"until":["soon"]}"#).is_err());
    }

    #[test]
    fn path_patterns() {
        assert!(path_match("*/app", "me/app").expect("pattern") && !path_match("*", "me/app").expect("pattern"));
        let e = path_match("[", "x").expect_err("bad pattern");
        assert!(matches!(&e, Error::InvalidArgument(m) if m.contains("syntax error in pattern")), "{e:?}");
    }
}
