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

/// Parses a character class as Go's `filepath.Match` does; `i` points just after the `[` and is left after the `]`.
/// `bang` also accepts `!` for negation (shell patterns). `None` for a malformed class.
pub(crate) fn parse_class(chars: &[char], i: &mut usize, escape: Option<char>, bang: bool) -> Option<Tok> {
    let mut negated = false;
    if let Some(&c) = chars.get(*i)
        && (c == '^' || (bang && c == '!'))
    {
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
        let lo = class_char(chars, i, escape)?;
        let mut hi = lo;
        if chars.get(*i) == Some(&'-') {
            *i += 1;
            hi = class_char(chars, i, escape)?;
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], i: &mut usize, escape: Option<char>) -> Option<char> {
    let mut c = *chars.get(*i)?;
    if c == '-' || c == ']' {
        return None;
    }
    if Some(c) == escape {
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

/// Compiles a shell pattern (`*` and `?` match any character, `/` included; `[...]`; the escape character quotes the
/// next one) as used by `${VAR#pattern}`, `${VAR%pattern}` and `${VAR/pattern/replacement}`.
pub(crate) fn compile_shell(pattern: &str, escape: char) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => toks.push(Tok::Star { slash: true }),
            '?' => toks.push(Tok::One { slash: true }),
            '[' => {
                let mut j = i;
                match parse_class(&chars, &mut j, Some(escape), true) {
                    Some(class) => {
                        toks.push(class);
                        i = j;
                    }
                    None => return Err("unterminated or malformed character class".to_owned()),
                }
            }
            c if c == escape => match chars.get(i) {
                Some(&next) => {
                    toks.push(Tok::Lit(next));
                    i += 1;
                }
                None => toks.push(Tok::Lit(c)),
            },
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, s: &str) -> bool {
        let toks = compile_shell(pattern, '\\').expect("pattern");
        matches(&toks, &s.chars().collect::<Vec<_>>())
    }

    #[test]
    fn shell_patterns() {
        assert!(m("a*c", "abbbc"));
        assert!(m("a*c", "a/c"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("[!a-c]x", "dx"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(compile_shell("[a", '\\').is_err());
    }
}
