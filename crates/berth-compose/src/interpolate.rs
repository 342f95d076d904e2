//! Variable interpolation with Compose's template syntax: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+replacement}`, `${VAR+replacement}` (defaults and replacements may
//! themselves hold templates) and `$$` for a literal `$`; a `$` followed by neither a name, `{` nor `$` is kept
//! as it is. Modelled on compose-go's `template` package.

use serde_json::Value;

use crate::error::Error;

/// Where variables come from: the environment, then the project's `.env` files.
pub trait Lookup {
    /// The value of `name`, or `None` when it is unset.
    fn get(&self, name: &str) -> Option<String>;
}

impl Lookup for std::collections::BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::BTreeMap::get(self, name).cloned()
    }
}

/// A failed substitution: the message only (the caller adds the file and key path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// `${VAR:?msg}` or `${VAR?msg}` with `VAR` missing.
    Required {
        /// The variable.
        var: String,
        /// The message of the template (may be empty).
        message: String,
    },
    /// A `$` that starts no valid template, or an unclosed `${`.
    Invalid(String),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Required { var, message } if message.is_empty() => {
                write!(f, "required variable {var} is missing a value")
            }
            TemplateError::Required { var, message } => {
                write!(f, "required variable {var} is missing a value: {message}")
            }
            TemplateError::Invalid(t) => {
                write!(f, "invalid template {t:?} (a literal $ is written $$)")
            }
        }
    }
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Substitutes every template in `s`. `unset` is told the names of variables that were used but not set (Compose
/// warns about those and substitutes an empty string).
pub fn substitute(s: &str, env: &dyn Lookup, unset: &mut dyn FnMut(&str)) -> Result<String, TemplateError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let end = closing_brace(&chars, i + 2).ok_or_else(|| TemplateError::Invalid(s.to_string()))?;
                let inner: String = chars[i + 2..end].iter().collect();
                out.push_str(&braced(&inner, s, env, unset)?);
                i = end + 1;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                match env.get(&name) {
                    Some(v) => out.push_str(&v),
                    None => unset(&name),
                }
                i = j;
            }
            // A `$` that starts no template (`$(date)`, `$1`, `$@`, `5$`, `$ `) is text, as compose-go keeps it.
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The index of the `}` that closes a `${` whose content starts at `from` (nested `${...}` skipped).
fn closing_brace(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '$' if chars.get(i + 1) == Some(&'$') => i += 1,
            '$' if chars.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 1;
            }
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// One `${...}` (without the braces).
fn braced(inner: &str, whole: &str, env: &dyn Lookup, unset: &mut dyn FnMut(&str)) -> Result<String, TemplateError> {
    let name_len = inner.chars().take_while(|&c| is_name_char(c)).count();
    let name = &inner[..name_len];
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(TemplateError::Invalid(whole.to_string()));
    }
    let rest = &inner[name_len..];
    let value = env.get(name);
    if rest.is_empty() {
        return Ok(value.unwrap_or_else(|| {
            unset(name);
            String::new()
        }));
    }
    // The operator: `:-`, `-`, `:?`, `?`, `:+`, `+`.
    let (colon, op, arg) = match rest.strip_prefix(':') {
        Some(r) => (true, r.chars().next(), r.get(1..).unwrap_or("")),
        None => (false, rest.chars().next(), rest.get(1..).unwrap_or("")),
    };
    // With `:` an empty value counts as missing.
    let present = match &value {
        Some(v) => !colon || !v.is_empty(),
        None => false,
    };
    match op {
        Some('-') => {
            if present {
                Ok(value.unwrap_or_default())
            } else {
                substitute(arg, env, unset)
            }
        }
        Some('?') => {
            if present {
                Ok(value.unwrap_or_default())
            } else {
                Err(TemplateError::Required { var: name.to_string(), message: substitute(arg, env, unset)? })
            }
        }
        Some('+') => {
            if present {
                substitute(arg, env, unset)
            } else {
                Ok(String::new())
            }
        }
        _ => Err(TemplateError::Invalid(whole.to_string())),
    }
}

/// A variable a file's templates use (`config --variables`), as compose-go's `template.Variable`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variable {
    /// `${NAME:?...}` or `${NAME?...}`.
    pub required: bool,
    /// `${NAME:-default}` or `${NAME-default}`.
    pub default: String,
    /// `${NAME:+alternate}` or `${NAME+alternate}`.
    pub alternate: String,
}

/// The variables the templates of every string value in `v` use (nested templates included), by name; the first
/// use of a name describes it.
pub fn variables(v: &Value, out: &mut std::collections::BTreeMap<String, Variable>) {
    match v {
        Value::String(s) => variables_in(s, out),
        Value::Array(a) => a.iter().for_each(|x| variables(x, out)),
        Value::Object(m) => m.values().for_each(|x| variables(x, out)),
        _ => {}
    }
}

fn variables_in(s: &str, out: &mut std::collections::BTreeMap<String, Variable>) {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => i += 2,
            Some('{') => {
                let Some(end) = closing_brace(&chars, i + 2) else { return };
                let inner: String = chars[i + 2..end].iter().collect();
                let name_len = inner.chars().take_while(|&c| is_name_char(c)).count();
                let (name, rest) = inner.split_at(name_len);
                if name.starts_with(is_name_start) {
                    let rest = rest.strip_prefix(':').unwrap_or(rest);
                    let arg = rest.get(1..).unwrap_or("").to_string();
                    let mut var = Variable::default();
                    match rest.chars().next() {
                        Some('?') => var.required = true,
                        Some('-') => var.default = arg.clone(),
                        Some('+') => var.alternate = arg.clone(),
                        _ => {}
                    }
                    out.entry(name.to_string()).or_insert(var);
                    variables_in(&arg, out);
                }
                i = end + 1;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                out.entry(chars[i + 1..j].iter().collect()).or_default();
                i = j;
            }
            _ => i += 1,
        }
    }
}

/// Interpolates every string value (not the keys) of a parsed file; errors name the key path.
pub fn interpolate_value(
    v: &mut Value,
    path: &mut Vec<String>,
    env: &dyn Lookup,
    unset: &mut dyn FnMut(&str),
) -> Result<(), (String, TemplateError)> {
    match v {
        Value::String(s) if s.contains('$') => {
            *s = substitute(s, env, unset).map_err(|e| (path.join("."), e))?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                interpolate_value(item, path, env, unset)?;
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                path.push(k.clone());
                interpolate_value(item, path, env, unset)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// Interpolates a whole file, turning a failure into an [`Error`] that names the file and the key.
pub fn interpolate_file(file: &str, v: &mut Value, env: &dyn Lookup, unset: &mut dyn FnMut(&str)) -> Result<(), Error> {
    interpolate_value(v, &mut Vec::new(), env, unset).map_err(|(path, e)| Error::Invalid {
        file: file.to_string(),
        path,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn env() -> BTreeMap<String, String> {
        [("SET", "value"), ("EMPTY", ""), ("B", "bee")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn sub(s: &str) -> Result<String, TemplateError> {
        substitute(s, &env(), &mut |_| {})
    }

    #[test]
    fn the_full_syntax() {
        let ok = |s: &str| sub(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("$SET ${SET} x${SET}y"), "value value xvaluey");
        assert_eq!(ok("${UNSET}|$UNSET|"), "||");
        assert_eq!(ok("${UNSET:-d} ${EMPTY:-d} ${SET:-d}"), "d d value");
        assert_eq!(ok("${UNSET-d} ${EMPTY-d} ${SET-d}"), "d  value");
        assert_eq!(ok("${UNSET:+r} ${EMPTY:+r} ${SET:+r}"), "  r");
        assert_eq!(ok("${UNSET+r} ${EMPTY+r} ${SET+r}"), " r r");
        assert_eq!(ok("$$SET $${SET} $$"), "$SET ${SET} $");
        assert_eq!(ok("${UNSET:-${B}-x} ${UNSET:-${ALSO:-deep}}"), "bee-x deep");
        assert_eq!(ok("${EMPTY?e}"), "");
        assert_eq!(ok("a:b/c ${SET:-with spaces and : colons}"), "a:b/c value");
        // A `$` that starts no template is text.
        assert_eq!(ok("echo $(date) $1 $@ 5$ $ x $SET"), "echo $(date) $1 $@ 5$ $ x value");
        assert_eq!(ok("$"), "$");
    }

    #[test]
    fn errors() {
        assert_eq!(
            sub("${UNSET:?needs a value}"),
            Err(TemplateError::Required { var: "UNSET".into(), message: "needs a value".into() })
        );
        assert!(matches!(sub("${EMPTY:?x}"), Err(TemplateError::Required { .. })));
        assert!(matches!(sub("${UNSET?}"), Err(TemplateError::Required { .. })));
        assert!(matches!(sub("${SET"), Err(TemplateError::Invalid(_))));
        assert!(matches!(sub("${}"), Err(TemplateError::Invalid(_))));
        assert!(matches!(sub("${1}"), Err(TemplateError::Invalid(_))));
        assert_eq!(
            TemplateError::Required { var: "X".into(), message: String::new() }.to_string(),
            "required variable X is missing a value"
        );
    }

    #[test]
    fn unset_variables_are_reported() {
        let mut seen = Vec::new();
        let got = substitute("${A} $D ${SET} ${C:-x}", &env(), &mut |n| seen.push(n.to_string()));
        assert_eq!(got.as_deref(), Ok("  value x"));
        assert_eq!(seen, vec!["A", "D"]);
    }

    #[test]
    fn values_not_keys_with_paths() {
        let mut v = serde_json::json!({"services": {"$web": {"image": "${SET}", "ports": ["${UNSET:?port}"]}}});
        let err = interpolate_value(&mut v, &mut Vec::new(), &env(), &mut |_| {});
        let Err((path, _)) = err else { panic!("no error") };
        assert_eq!(path, "services.$web.ports.0");
    }

    #[test]
    fn variables_of_templates() {
        let v =
            serde_json::json!({"a": ["$A and ${B:-x${C}}", "${D?need} ${E+alt} $$F $1"], "k": {"x": "${A:-other}"}});
        let mut m = std::collections::BTreeMap::new();
        variables(&v, &mut m);
        let var = |required: bool, default: &str, alternate: &str| Variable {
            required,
            default: default.into(),
            alternate: alternate.into(),
        };
        let want: std::collections::BTreeMap<String, Variable> = [
            ("A", var(false, "", "")),
            ("B", var(false, "x${C}", "")),
            ("C", var(false, "", "")),
            ("D", var(true, "", "")),
            ("E", var(false, "", "alt")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(m, want);
    }
}
