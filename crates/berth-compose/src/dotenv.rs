//! `.env` and `env_file` files in Compose's dotenv format: `KEY=VALUE` lines, `export ` prefixes, `#` comments,
//! single quotes (literal), double quotes (escapes and `${VAR}` interpolation, may span lines), unquoted values
//! (trimmed, `${VAR}` interpolated, a ` #` comment cut off), and bare `KEY` (taken from the environment).

use std::collections::BTreeMap;

use crate::error::Error;
use crate::interpolate::{Lookup, substitute};

/// Variables looked up in what was parsed so far, then in `outer`.
struct Chain<'a> {
    parsed: &'a BTreeMap<String, String>,
    outer: &'a dyn Lookup,
}

impl Lookup for Chain<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.outer.get(name).or_else(|| self.parsed.get(name).cloned())
    }
}

/// Parses the text of a dotenv file; `outer` resolves variables the file does not define (and bare `KEY` lines).
pub fn parse(file: &str, text: &str, outer: &dyn Lookup) -> Result<BTreeMap<String, String>, Error> {
    let mut vars = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut n = 0;
    while n < lines.len() {
        let lineno = n + 1;
        let line = lines[n].trim_start();
        n += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let bad = |message: String| Error::Invalid { file: file.to_string(), path: format!("line {lineno}"), message };
        let Some((key, raw)) = line.split_once('=') else {
            let key = line.trim();
            if !key.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
                return Err(bad(format!("unexpected character in variable name {key:?}")));
            }
            if let Some(v) = outer.get(key) {
                vars.insert(key.to_string(), v);
            }
            continue;
        };
        let key = key.trim().to_string();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(bad(format!("invalid variable name {key:?}")));
        }
        let raw = raw.trim_start();
        let value = if let Some(q) = raw.chars().next().filter(|c| *c == '\'' || *c == '"') {
            // A quoted value; it may continue on the following lines.
            let mut body = raw[1..].to_string();
            loop {
                if let Some(end) = closing_quote(&body, q) {
                    body.truncate(end);
                    break;
                }
                if n >= lines.len() {
                    return Err(bad(format!("unterminated quoted value for {key}")));
                }
                body.push('\n');
                body.push_str(lines[n]);
                n += 1;
            }
            if q == '\'' {
                body
            } else {
                let unescaped = unescape(&body);
                let chain = Chain { parsed: &vars, outer };
                substitute(&unescaped, &chain, &mut |_| {}).map_err(|e| bad(e.to_string()))?
            }
        } else {
            let v = match raw.find(" #") {
                Some(i) => &raw[..i],
                None => raw,
            };
            let chain = Chain { parsed: &vars, outer };
            substitute(v.trim(), &chain, &mut |_| {}).map_err(|e| bad(e.to_string()))?
        };
        vars.insert(key, value);
    }
    Ok(vars)
}

/// Parses an `env_file` of `format: raw`: `KEY=VALUE` lines taken as they are (no quotes, escapes or
/// interpolation); empty lines and `#` comments skipped.
pub fn parse_raw(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

/// The index of the closing quote `q` in `s` (backslash-escaped quotes skipped in double quotes).
fn closing_quote(s: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && q == '"' {
            escaped = true;
        } else if c == q {
            return Some(i);
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

/// Reads a dotenv file from disk.
pub fn read(path: &std::path::Path, outer: &dyn Lookup) -> Result<BTreeMap<String, String>, Error> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { file: file.clone(), source })?;
    parse(&file, &text, outer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_format() {
        let outer: BTreeMap<String, String> = [("HOME".to_string(), "/root".to_string())].into();
        let text = "# comment\nA=1\nexport B = two words \nC='lit ${A}'\nD=\"x\\ny ${A}\"\nE=${A}-${HOME}\nF=v #c\nHOME\nG=\"multi\nline\"\nH=\n";
        let v = parse(".env", text, &outer).expect("parse");
        assert_eq!(v["A"], "1");
        assert_eq!(v["B"], "two words");
        assert_eq!(v["C"], "lit ${A}");
        assert_eq!(v["D"], "x\ny 1");
        assert_eq!(v["E"], "1-/root");
        assert_eq!(v["F"], "v");
        assert_eq!(v["HOME"], "/root");
        assert_eq!(v["G"], "multi\nline");
        assert_eq!(v["H"], "");
        assert!(parse(".env", "A=\"open", &outer).is_err());
        assert!(parse(".env", "bad key=1", &outer).is_err());
    }
}
