//! Views: berthd's domain types (container records, networks, volumes, images, exec instances, the host) rendered
//! as the Engine API's response models (`berth_api::models`, bollard's, API v1.53) with every field Docker sends,
//! and per API version where Docker's output differs. Routes parse a request, call a manager, and render its result
//! here; managers know no JSON.
//!
//! bollard's models skip a field that is `None`, while Docker sends every field of its Go structs that has no
//! `omitempty`: a nil slice or map as `null`. So a view sets what Docker always sends to a value (`Some("")`,
//! `Some(0)`, `Some(vec![])`), and names the fields Docker sends as `null` in a [`Nulls`] table; [`render`] is the
//! one place that adds those after serializing. Fields that API v1.53 no longer has but older versions (or Docker
//! still, for compatibility) send are small typed structs of their own, merged in by [`render`] too.

pub mod container;
pub mod exec;
pub mod image;
pub mod network;
pub mod system;
pub mod volume;

use berth_api::ApiVersion;
use serde::Serialize;
use serde_json::Value;

/// API version `1.minor`.
pub const fn api(minor: u32) -> ApiVersion {
    ApiVersion { major: 1, minor }
}

/// Fields Docker sends as `null` when they are unset: (path of object keys to an object, its keys). `*` in a path
/// stands for every value of a map or every element of a list.
pub type Nulls = &'static [(&'static [&'static str], &'static [&'static str])];

/// Serializes a model and adds Docker's `null`s (see [`Nulls`]).
pub fn render<T: Serialize>(model: &T, nulls: Nulls) -> Value {
    // bollard's models and our own view structs have string keys only: serializing them cannot fail.
    let mut v = serde_json::to_value(model).unwrap_or(Value::Null);
    for (path, keys) in nulls {
        fill_nulls(&mut v, path, keys);
    }
    v
}

/// Adds the fields of `extra` (a struct of fields the v1.53 models do not have) to the object at `path` of `v`.
pub fn merge<T: Serialize>(v: &mut Value, path: &[&str], extra: &T) {
    let Ok(Value::Object(extra)) = serde_json::to_value(extra) else { return };
    let mut at = v;
    for k in path {
        match at.get_mut(*k) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Value::Object(m) = at {
        for (k, x) in extra {
            m.entry(k).or_insert(x);
        }
    }
}

fn fill_nulls(v: &mut Value, path: &[&str], keys: &[&str]) {
    match path.split_first() {
        None => {
            if let Value::Object(m) = v {
                for k in keys {
                    m.entry(*k).or_insert(Value::Null);
                }
            }
        }
        Some((&"*", rest)) => match v {
            Value::Object(m) => m.values_mut().for_each(|x| fill_nulls(x, rest, keys)),
            Value::Array(a) => a.iter_mut().for_each(|x| fill_nulls(x, rest, keys)),
            _ => {}
        },
        Some((k, rest)) => {
            if let Some(x) = v.get_mut(*k) {
                fill_nulls(x, rest, keys);
            }
        }
    }
}

/// `Some(v)` unless set: for the fields Docker always sends.
fn or<T>(field: &mut Option<T>, v: T) {
    if field.is_none() {
        *field = Some(v);
    }
}

/// Test helpers: the type of a JSON value, as the tests check it.
#[cfg(test)]
pub(crate) mod check {
    use serde_json::Value;

    /// Asserts that `v` has each key of `keys` (a `/`-separated path) with a value of the given kind: `s` string,
    /// `n` number, `b` bool, `a` array, `o` object, `0` null, `a0`/`o0` array-or-null / object-or-null.
    pub fn has(v: &Value, keys: &[(&str, &str)]) {
        for (path, kind) in keys {
            let mut at = v;
            for k in path.split('/') {
                at = match at.get(k) {
                    Some(x) => x,
                    None => panic!("missing {path} in {v:#}"),
                };
            }
            let ok = match *kind {
                "s" => at.is_string(),
                "n" => at.is_number(),
                "b" => at.is_boolean(),
                "a" => at.is_array(),
                "o" => at.is_object(),
                "0" => at.is_null(),
                "a0" => at.is_array() || at.is_null(),
                "o0" => at.is_object() || at.is_null(),
                other => panic!("unknown kind {other}"),
            };
            assert!(ok, "{path} should be {kind}, is {at}");
        }
    }

    /// The keys of a container's `Config` Docker always sends (an image's `Config` too, and its `ContainerConfig`
    /// before 1.45); `Cmd` is an array or null.
    pub const CONFIG_KEYS: &[(&str, &str)] = &[
        ("Hostname", "s"),
        ("Domainname", "s"),
        ("User", "s"),
        ("AttachStdin", "b"),
        ("AttachStdout", "b"),
        ("AttachStderr", "b"),
        ("Tty", "b"),
        ("OpenStdin", "b"),
        ("StdinOnce", "b"),
        ("Env", "a0"),
        ("Cmd", "a0"),
        ("Image", "s"),
        ("Volumes", "o0"),
        ("WorkingDir", "s"),
        ("Entrypoint", "a0"),
        ("OnBuild", "a0"),
        ("Labels", "o0"),
    ];

    /// Asserts that none of `keys` is at the top level of `v`.
    pub fn lacks(v: &Value, keys: &[&str]) {
        for k in keys {
            assert!(v.get(k).is_none(), "{k} should not be in {v:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn render_adds_nulls_where_unset_only() {
        const NULLS: Nulls = &[(&[], &["A", "B"]), (&["M", "*"], &["C"]), (&["L", "*"], &["D"])];
        let v = render(&json!({"A": 1, "M": {"x": {}, "y": {"C": 2}}, "L": [{}]}), NULLS);
        assert_eq!(v, json!({"A": 1, "B": null, "M": {"x": {"C": null}, "y": {"C": 2}}, "L": [{"D": null}]}));
    }

    #[test]
    fn merge_adds_fields_without_replacing() {
        let mut v = json!({"N": {"A": 1}});
        merge(&mut v, &["N"], &json!({"A": 2, "B": 3}));
        assert_eq!(v, json!({"N": {"A": 1, "B": 3}}));
    }
}
