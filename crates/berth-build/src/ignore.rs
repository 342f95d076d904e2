//! `.dockerignore`: reading the file as moby/patternmatcher's `ignorefile.ReadAll` does, and matching paths with
//! patternmatcher's `MatchesOrParentMatches` semantics.
//!
//! - A line starting with `#` (in the first column) is a comment; blank lines are skipped; whitespace around a
//!   pattern is trimmed; a pattern is cleaned like Go's `filepath.Clean` and a leading `/` is dropped, so `/a`,
//!   `./a` and `a/` are all `a`.
//! - `*` matches any run of characters but `/`, `?` one character but `/`, `[a-z]` / `[^a-z]` a class, `\` quotes
//!   the next character; `**` matches any number of directories, zero included (`**/foo`, `foo/**`, `a/**/b`).
//! - `!pattern` re-includes what an earlier pattern excluded; the last matching pattern wins.
//! - A pattern that matches a directory excludes everything below it.
//!
//! `Dockerfile` and `.dockerignore` are not special here: the caller decides whether they are sent anyway.

use crate::glob::{self, Tok};

/// A `.dockerignore` that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// A line that is only `!`.
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// A pattern Go's `filepath.Match` refuses (an unterminated `[`, a trailing `\`, …).
    #[error("invalid .dockerignore pattern {0:?}: syntax error in pattern")]
    BadPattern(String),
}

/// The compiled patterns of one `.dockerignore`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Patterns {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Pattern {
    /// The cleaned pattern without its `!`.
    cleaned: String,
    /// A `!` pattern (it re-includes).
    exclusion: bool,
    kind: Kind,
}

/// patternmatcher's match types: it only builds a regexp when the pattern needs one, and the shortcuts differ from
/// the regexp in corner cases (`**foo` matches `barfoo`), so they are kept.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Exact,
    /// `foo/**`: the path starts with `foo/`.
    Prefix(String),
    /// `**/foo`: the path ends with `/foo` or is `foo`.
    Suffix(String),
    Glob(Vec<Tok>),
}

impl Patterns {
    /// Reads the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<Patterns, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut pattern = line.trim();
            if pattern.is_empty() {
                continue;
            }
            let invert = pattern.starts_with('!');
            if invert {
                pattern = pattern[1..].trim();
            }
            let mut cleaned = String::new();
            if !pattern.is_empty() {
                cleaned = clean(pattern);
                if cleaned.len() > 1 && cleaned.starts_with('/') {
                    cleaned.remove(0);
                }
            }
            lines.push(if invert { format!("!{cleaned}") } else { cleaned });
        }
        Patterns::from_lines(&lines)
    }

    /// Compiles patterns that are already one per string (as patternmatcher's `NewPatternMatcher`).
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Result<Patterns, IgnoreError> {
        let mut out = Patterns::default();
        for line in lines {
            let line = line.as_ref().trim();
            if line.is_empty() {
                continue;
            }
            let mut p = clean(line);
            let exclusion = p.starts_with('!');
            if exclusion {
                if p.len() == 1 {
                    return Err(IgnoreError::IllegalExclusion);
                }
                p.remove(0);
                out.exclusions = true;
            }
            let kind = compile(&p).ok_or_else(|| IgnoreError::BadPattern(p.clone()))?;
            out.patterns.push(Pattern { cleaned: p, exclusion, kind });
        }
        Ok(out)
    }

    /// Whether `rel_path` (slash-separated, relative to the context root) is excluded: the last pattern that
    /// matches it or one of its parent directories decides.
    pub fn matches(&self, rel_path: &str) -> bool {
        let file = clean(rel_path);
        if file == "." {
            return false;
        }
        let parents: Vec<&str> = match file.rfind('/') {
            Some(i) => file[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            // An inclusion cannot change a match, nor an exclusion a non-match.
            if pattern.exclusion != matched {
                continue;
            }
            let hit = pattern.matches(&file) || (1..=parents.len()).any(|i| pattern.matches(&parents[..i].join("/")));
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether any `!` pattern exists (then an excluded directory may still hold included files).
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// For an excluded directory: whether some `!` pattern could match it or something below it. When `false`, a
    /// walker can skip the whole tree. Conservative: any `!` pattern with `**` answers `true`.
    pub fn may_contain_included(&self, rel_dir: &str) -> bool {
        let dir = clean(rel_dir);
        let dir: Vec<&str> = if dir == "." { Vec::new() } else { dir.split('/').collect() };
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            if p.cleaned.contains("**") {
                return true;
            }
            // Every component the pattern and the directory have in common must match; then the pattern names
            // the directory, one of its parents, or something below it.
            p.cleaned.split('/').zip(&dir).all(|(pat, name)| segment_matches(pat, name))
        })
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The cleaned patterns, `!` included, in order.
    pub fn lines(&self) -> Vec<String> {
        self.patterns.iter().map(|p| if p.exclusion { format!("!{}", p.cleaned) } else { p.cleaned.clone() }).collect()
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Kind::Glob(toks) => glob::matches(toks, &path.chars().collect::<Vec<_>>()),
        }
    }
}

/// patternmatcher's `compile` (and the `filepath.Match` syntax check before it); `None` for a malformed pattern.
fn compile(pattern: &str) -> Option<Kind> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut kind = Kind::Exact;
    let mut glob = false;
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if !glob && matches!(kind, Kind::Exact) {
                        kind = Kind::Prefix(pattern[..pattern.len() - 2].to_owned());
                    } else {
                        toks.push(Tok::AnyTail);
                        glob = true;
                    }
                } else {
                    toks.push(Tok::AnyDirs);
                    glob = true;
                }
                if first {
                    kind = Kind::Suffix(pattern[2..].to_owned());
                    glob = false;
                }
            }
            '*' => {
                toks.push(Tok::Star { slash: false });
                glob = true;
            }
            '?' => {
                toks.push(Tok::One { slash: false });
                glob = true;
            }
            '\\' => match chars.get(i) {
                Some(&next) => {
                    toks.push(Tok::Lit(next));
                    i += 1;
                    glob = true;
                }
                // filepath.Match refuses a trailing backslash.
                None => return None,
            },
            '[' => {
                toks.push(glob::parse_class(&chars, &mut i)?);
                glob = true;
            }
            c => toks.push(Tok::Lit(c)),
        }
        first = false;
    }
    Some(if glob { Kind::Glob(toks) } else { kind })
}

/// One path component against one pattern component (`*`, `?`, classes, escapes).
fn segment_matches(pattern: &str, name: &str) -> bool {
    match compile(pattern) {
        Some(Kind::Glob(toks)) => glob::matches(&toks, &name.chars().collect::<Vec<_>>()),
        Some(_) => pattern == name,
        None => false,
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub(crate) fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests;
