//! The one step from a model to the JSON Docker sends: serialize, then add Docker's `null`s and the fields v1.53's
//! models lack (see the module documentation of `views`).

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
pub(super) fn or<T>(field: &mut Option<T>, v: T) {
    if field.is_none() {
        *field = Some(v);
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
