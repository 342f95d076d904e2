//! Test helpers of the views' unit tests: the keys and JSON types a view must have.

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
