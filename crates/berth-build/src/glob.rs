//! A small glob engine shared by `.dockerignore` matching and the shell's `${VAR#pattern}` family: patterns are
//! compiled to tokens and matched against whole strings with a memoised backtracking matcher (no regex crate).

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Lit(char),
    /// `?`: one character; `/` only when `slash`.
    One {
        slash: bool,
    },
    /// `*`: any run of characters; `/` only when `slash`.
    Star {
        slash: bool,
    },
    /// `[...]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// patternmatcher's `**` inside a pattern, the regexp `(.*/)?`: nothing, or anything that ends with `/`.
    AnyDirs,
    /// patternmatcher's `**` at the end of a pattern, the regexp `.*`.
    AnyTail,
}

/// Parses a character class as Go's `filepath.Match` does (`[^a-z]` negates, `\\` escapes); `i` points just after
/// the `[` and is left after the `]`. `None` for a malformed class.
pub(crate) fn parse_class(chars: &[char], i: &mut usize) -> Option<Tok> {
    let mut negated = false;
    if chars.get(*i) == Some(&'^') {
        negated = true;
        *i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        let c = *chars.get(*i)?;
        if c == ']' && !ranges.is_empty() {
            *i += 1;
            return Some(Tok::Class { negated, ranges });
        }
        let lo = class_char(chars, i)?;
        let mut hi = lo;
        if chars.get(*i) == Some(&'-') {
            *i += 1;
            hi = class_char(chars, i)?;
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], i: &mut usize) -> Option<char> {
    let mut c = *chars.get(*i)?;
    if c == '-' || c == ']' {
        return None;
    }
    if c == '\\' {
        *i += 1;
        c = *chars.get(*i)?;
    }
    *i += 1;
    Some(c)
}

/// Whether `toks` match all of `s`.
pub(crate) fn matches(toks: &[Tok], s: &[char]) -> bool {
    let mut memo = vec![None; (toks.len() + 1) * (s.len() + 1)];
    match_at(toks, s, 0, 0, &mut memo)
}

fn match_at(toks: &[Tok], s: &[char], ti: usize, si: usize, memo: &mut Vec<Option<bool>>) -> bool {
    let Some(tok) = toks.get(ti) else {
        return si == s.len();
    };
    let key = ti * (s.len() + 1) + si;
    if let Some(known) = memo[key] {
        return known;
    }
    let n = s.len();
    let result = match tok {
        Tok::Lit(c) => si < n && s[si] == *c && match_at(toks, s, ti + 1, si + 1, memo),
        Tok::One { slash } => si < n && (*slash || s[si] != '/') && match_at(toks, s, ti + 1, si + 1, memo),
        Tok::Class { negated, ranges } => {
            si < n
                && ranges.iter().any(|&(lo, hi)| lo <= s[si] && s[si] <= hi) != *negated
                && match_at(toks, s, ti + 1, si + 1, memo)
        }
        Tok::Star { slash } => {
            let mut j = si;
            loop {
                if match_at(toks, s, ti + 1, j, memo) {
                    break true;
                }
                if j < n && (*slash || s[j] != '/') {
                    j += 1;
                } else {
                    break false;
                }
            }
        }
        Tok::AnyTail => (si..=n).any(|j| match_at(toks, s, ti + 1, j, memo)),
        Tok::AnyDirs => {
            match_at(toks, s, ti + 1, si, memo)
                || (si..n).any(|j| s[j] == '/' && match_at(toks, s, ti + 1, j + 1, memo))
        }
    };
    memo[key] = Some(result);
    result
}

/// A substitution pattern with an escape BuildKit does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// `\q`: only `*`, `?`, `\`, `}` and `/` may be escaped.
    #[error("invalid escape '\\{0}'")]
    InvalidEscape(char),
    /// A `\` at the end of the pattern.
    #[error("invalid escape '\\'")]
    TrailingEscape,
}

/// Compiles a pattern of `${VAR#pattern}`, `${VAR%pattern}` or `${VAR/pattern/replacement}` as BuildKit's
/// `convertShellPatternToRegex`: `*` matches any run of characters (`/` included), `?` any one character, brackets are
/// literal; `\*`, `\?` and `\\` are literal, `\}` and `\/` are `}` and `/`, any other escape is an error.
pub(crate) fn compile_shell(pattern: &str) -> Result<Vec<Tok>, PatternError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => toks.push(Tok::Star { slash: true }),
            '?' => toks.push(Tok::One { slash: true }),
            '\\' => match chars.get(i) {
                Some('}' | '/') => {}
                Some(&next @ ('*' | '?' | '\\')) => {
                    toks.push(Tok::Lit(next));
                    i += 1;
                }
                Some(&next) => return Err(PatternError::InvalidEscape(next)),
                None => return Err(PatternError::TrailingEscape),
            },
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(toks)
}

/// Go's `path.Match`: `*` and `?` do not cross `/`, `[...]` classes, `\\` escapes; the whole of `name` must match.
/// A malformed pattern is an error (Go's `ErrBadPattern`), whatever the name. (Docker's `reference` filter of the
/// image list.)
pub fn path_match(pattern: &str, name: &str) -> Result<bool, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let bad = || format!("syntax error in pattern {pattern:?}");
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => toks.push(Tok::Star { slash: false }),
            '?' => toks.push(Tok::One { slash: false }),
            '\\' => {
                toks.push(Tok::Lit(*chars.get(i).ok_or_else(bad)?));
                i += 1;
            }
            '[' => toks.push(parse_class(&chars, &mut i).ok_or_else(bad)?),
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(matches(&toks, &name.chars().collect::<Vec<_>>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_path_match() {
        let m = |p: &str, s: &str| path_match(p, s).expect("pattern");
        assert!(m("busy*", "busybox") && !m("busy*", "a/busybox") && m("*/app", "me/app"));
        assert!(m("b?sybox", "busybox") && !m("b?sybox", "b/sybox"));
        assert!(m("busybox:1.[0-9]*", "busybox:1.36") && !m("busybox:1.[a-z]", "busybox:1.3"));
        assert!(m("[^a]usybox", "busybox") && !m("[^b]usybox", "busybox"));
        assert!(m(r"a\*b", "a*b") && !m(r"a\*b", "axb") && m(r"[\]a]", "]"));
        for bad in ["[", "a[b", r"x\", "[]a]", "[-a]", "[a-]"] {
            assert!(path_match(bad, "x").is_err(), "{bad}");
        }
    }

    fn m(pattern: &str, s: &str) -> bool {
        let toks = compile_shell(pattern).expect("pattern");
        matches(&toks, &s.chars().collect::<Vec<_>>())
    }

    #[test]
    fn shell_patterns() {
        assert!(m("a*c", "abbbc"));
        assert!(m("a*c", "a/c"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        // Brackets are literal in BuildKit's substitution patterns.
        assert!(m("[a]x", "[a]x"));
        assert!(!m("[a]x", "ax"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("a\\/b", "a/b"));
        assert_eq!(compile_shell("\\q").map_err(|e| e.to_string()), Err("invalid escape '\\q'".to_owned()));
        assert_eq!(compile_shell("a\\").map_err(|e| e.to_string()), Err("invalid escape '\\'".to_owned()));
    }
}
