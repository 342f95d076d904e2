//! Variable expansion and word splitting, as BuildKit's `frontend/dockerfile/shell` (`lex.go`) does it.
//!
//! This is not a shell: it understands quotes, the escape character, `$VAR`, `${VAR}` and the `${VAR<op>word}`
//! forms below, and nothing else (no command substitution, no globbing, no arithmetic).
//!
//! | form | value |
//! |------|-------|
//! | `${V:-w}` / `${V-w}` | `w` if `V` is unset or empty / unset, else `$V` |
//! | `${V:+w}` / `${V+w}` | `w` if `V` is set and not empty / set, else empty |
//! | `${V:?m}` / `${V?m}` | error `V: m` if `V` is unset or empty / unset |
//! | `${V#p}` `${V##p}` | `$V` without its shortest / longest prefix matching the shell pattern `p` |
//! | `${V%p}` `${V%%p}` | `$V` without its shortest / longest suffix matching `p` |
//! | `${V/p/r}` `${V//p/r}` | `$V` with the first / every match of `p` replaced by `r` |
//!
//! Unset variables expand to nothing; `$` not followed by a name stays `$`; special parameters (`$$`, `$@`, `$1`…)
//! are looked up like any other name, so they normally expand to nothing as well.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use crate::glob;
pub use crate::glob::PatternError;

/// Where expansion looks variables up.
pub trait Env {
    /// The value of `name`, or `None` when it is not set (which differs from set-but-empty for `${V-x}`).
    fn get(&self, name: &str) -> Option<String>;
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }
}

/// The last pair with the name wins (as BuildKit's `BuildEnvs` for a `KEY=value` list).
impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<String> {
        Env::get(self.as_slice(), name)
    }
}

impl<T: Env + ?Sized> Env for &T {
    fn get(&self, name: &str) -> Option<String> {
        (**self).get(name)
    }
}

/// Nothing is set.
impl Env for () {
    fn get(&self, _name: &str) -> Option<String> {
        None
    }
}

/// Two environments, the first one shadowing the second (a stage's ENV/ARG values over the meta args, say).
#[derive(Clone, Copy)]
pub struct Layered<'a>(pub &'a dyn Env, pub &'a dyn Env);

impl std::fmt::Debug for Layered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Layered(..)")
    }
}

impl Env for Layered<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).or_else(|| self.1.get(name))
    }
}

/// Why a word could not be expanded, in BuildKit's words (`A: is not allowed to be unset`, `syntax error: bad
/// substitution`, …). BuildKit prints it after `failed to process "<word>": `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// The end of the word came before the closing `}` or `/` of a `${…}`.
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(char),
    /// A `'` that is not closed.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// A `"` that is not closed.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// `${` without its `}`.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${V/pattern` without the `/` before the replacement.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${{`, `${:…}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// An operator BuildKit does not have (`${V:#p}`, `${V!}`), as written.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// The pattern of `${V#p}`, `${V%p}` or `${V/p/r}` is invalid.
    #[error("invalid pattern ({pattern}) in substitution: {source}")]
    Pattern {
        /// The pattern, as written.
        pattern: String,
        /// What is wrong with it.
        #[source]
        source: PatternError,
    },
    /// `${V?message}` / `${V:?message}` with `V` unset (or empty); the message is BuildKit's default when none is
    /// given.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The word after `?`, or `is not allowed to be unset` / `is not allowed to be empty`.
        message: String,
    },
}

/// The expander, configured with the Dockerfile's escape character (`\` or `` ` ``).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lex {
    escape: char,
    /// Keep quote characters in the result (used to find heredoc markers).
    raw_quotes: bool,
    /// Keep escape characters in the result.
    raw_escapes: bool,
    /// Leave references to unset variables as they are written.
    skip_unset: bool,
    /// Quotes are ordinary characters (BuildKit's `SkipProcessQuotes`, for heredoc bodies).
    skip_quotes: bool,
    /// `<<` takes the blanks after it into the same word (`<< EOF` is one heredoc marker).
    heredoc_markers: bool,
}

impl Lex {
    /// A lexer for Dockerfiles whose escape character is `escape`.
    pub fn new(escape: char) -> Lex {
        Lex {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
            heredoc_markers: false,
        }
    }

    /// The lexer BuildKit uses to find heredoc markers in an instruction line: quotes and escapes kept, unset
    /// variables left alone.
    pub(crate) fn heredoc_finder() -> Lex {
        Lex { raw_quotes: true, raw_escapes: true, skip_unset: true, heredoc_markers: true, ..Lex::new('\\') }
    }

    /// The lexer BuildKit expands an unquoted `COPY`/`ADD` heredoc body with: `\\` escapes and `$` are processed,
    /// quotes are left alone.
    pub(crate) fn heredoc_body() -> Lex {
        Lex { skip_quotes: true, ..Lex::new('\\') }
    }

    pub(crate) fn with_raw_quotes(&self, raw_quotes: bool) -> Lex {
        Lex { raw_quotes, ..self.clone() }
    }

    pub(crate) fn with_skip_unset(&self, skip_unset: bool) -> Lex {
        Lex { skip_unset, ..self.clone() }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands `word` into one string: quotes removed, escapes applied, variables substituted; whitespace kept.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ExpandError> {
        let mut scanner = Scanner::new(self, word, env);
        scanner.process_stop_on(None, false).map(|(word, _)| word)
    }

    /// Expands `word` and splits the result on unquoted, unescaped whitespace (also whitespace that came out of a
    /// variable's value), as BuildKit's `ProcessWords`. Empty words (`""`) are dropped.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ExpandError> {
        let mut scanner = Scanner::new(self, word, env);
        scanner.process_stop_on(None, false).map(|(_, words)| words)
    }

    /// The names of the variables `word` refers to, each once, in order of appearance (including those only
    /// reached through a `${V:-…}` default), so the executor can tell which build args a step depends on.
    pub fn referenced(&self, word: &str) -> Vec<String> {
        let recorder = Recorder::default();
        let mut scanner = Scanner::new(self, word, &recorder);
        let _ = scanner.process_stop_on(None, false);
        recorder.names.into_inner()
    }
}

/// Answers every lookup with a non-empty value (so that every branch of every `${…}` is walked) and writes the
/// names down.
#[derive(Default)]
struct Recorder {
    names: RefCell<Vec<String>>,
}

impl Env for Recorder {
    fn get(&self, name: &str) -> Option<String> {
        let valid = name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_');
        let mut names = self.names.borrow_mut();
        if valid && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
        Some("x".to_owned())
    }
}

/// Words being built by `process_words`.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.words
    }
}

struct Scanner<'a> {
    lex: &'a Lex,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
}

impl<'a> Scanner<'a> {
    fn new(lex: &'a Lex, word: &str, env: &'a dyn Env) -> Scanner<'a> {
        Scanner { lex, chars: word.chars().collect(), pos: 0, env }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.env.get(name)
    }

    /// Processes up to `stop` (consumed) or the end. `keep_escapes` keeps escape characters (for patterns).
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        keep_escapes: bool,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '\'' if !self.lex.skip_quotes => {
                    let value = self.process_single_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                '"' if !self.lex.skip_quotes => {
                    let value = self.process_double_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                '<' if self.lex.heredoc_markers => {
                    self.pos += 1;
                    let mut marker = String::from("<");
                    if self.peek() == Some('<') {
                        self.pos += 1;
                        marker.push('<');
                        while let Some(blank) = self.peek().filter(|c| c.is_whitespace()) {
                            marker.push(blank);
                            self.pos += 1;
                        }
                    }
                    result.push_str(&marker);
                    words.add_raw_string(&marker);
                }
                c if c == self.lex.escape => {
                    self.pos += 1;
                    if self.lex.raw_escapes || keep_escapes {
                        words.add_raw_char(c);
                        result.push(c);
                    }
                    // An escape at the very end is dropped.
                    let Some(escaped) = self.next() else { break };
                    words.add_raw_char(escaped);
                    result.push(escaped);
                }
                c => {
                    self.pos += 1;
                    words.add_char(c);
                    result.push(c);
                }
            }
        }
        match stop {
            Some(stop) => Err(ExpandError::Unterminated(stop)),
            None => Ok((result, words.finish())),
        }
    }

    /// Everything up to the closing `'` is literal; a single quote cannot be escaped inside.
    fn process_single_quote(&mut self) -> Result<String, ExpandError> {
        let mut result = String::new();
        self.pos += 1;
        if self.lex.raw_quotes {
            result.push('\'');
        }
        loop {
            match self.next() {
                None => return Err(ExpandError::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    /// Variables are expanded; the escape character only escapes `"`, `$` and itself (else it stays).
    fn process_double_quote(&mut self) -> Result<String, ExpandError> {
        let mut result = String::new();
        self.pos += 1;
        if self.lex.raw_quotes {
            result.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(ExpandError::UnterminatedDoubleQuote),
                Some('"') => {
                    self.pos += 1;
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(c) => {
                    self.pos += 1;
                    if c == self.lex.escape {
                        match self.peek() {
                            // An escape just before the end is ignored (and the quote is then unterminated).
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.lex.escape => {
                                if self.lex.raw_escapes {
                                    result.push(c);
                                }
                                self.pos += 1;
                                result.push(next);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(c);
                }
            }
        }
    }

    /// A `${…}` operand: processed up to the closing brace.
    fn brace_word(&mut self, keep_escapes: bool) -> Result<String, ExpandError> {
        match self.process_stop_on(Some('}'), keep_escapes) {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() => Err(ExpandError::MissingBrace),
            Err(e) => Err(e),
        }
    }

    fn process_dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(ExpandError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let value = self.lookup(&name);
        let op = self.next();
        match op {
            Some('}') => Ok(match value {
                Some(value) => value,
                None if self.lex.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(first @ (':' | '+' | '-' | '?' | '#' | '%')) => {
                let colon = first == ':';
                let op = if colon { self.next() } else { Some(first) };
                let spelled = match (colon, op) {
                    (true, Some(op)) => format!(":{op}"),
                    (true, None) => ":".to_owned(),
                    (false, _) => first.to_string(),
                };
                // Patterns keep their escapes, for the pattern compiler.
                let pattern_op = matches!(op, Some('#' | '%'));
                if colon && pattern_op {
                    return Err(ExpandError::UnsupportedModifier(spelled));
                }
                let word = self.brace_word(pattern_op)?;
                if value.is_none() && self.lex.skip_unset {
                    return Ok(format!("${{{name}{spelled}{word}}}"));
                }
                match op {
                    Some(op @ ('-' | '+' | '?')) => self.apply(&name, value, op, colon, word),
                    Some(op @ ('#' | '%')) => {
                        // `#`/`%` remove the shortest match, `##`/`%%` the longest.
                        let (longest, pattern) = match word.strip_prefix(op) {
                            Some(rest) => (true, rest),
                            None => (false, word.as_str()),
                        };
                        let toks = glob::compile_shell(pattern)
                            .map_err(|source| ExpandError::Pattern { pattern: pattern.to_owned(), source })?;
                        Ok(trim_match(&value.unwrap_or_default(), &toks, op == '#', longest))
                    }
                    _ => Err(ExpandError::UnsupportedModifier(spelled)),
                }
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let pattern = match self.process_stop_on(Some('/'), true) {
                    Ok((pattern, _)) => pattern,
                    Err(_) if self.peek().is_none() => return Err(ExpandError::MissingSlash),
                    Err(e) => return Err(e),
                };
                let replacement = self.brace_word(true)?;
                if value.is_none() && self.lex.skip_unset {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let toks = glob::compile_shell(&pattern)
                    .map_err(|source| ExpandError::Pattern { pattern: pattern.clone(), source })?;
                Ok(replace_matches(&value.unwrap_or_default(), &toks, &replacement, all))
            }
            // BuildKit says "unsupported modifier (\u{fffd})" here; the missing brace is the real problem.
            None => Err(ExpandError::MissingBrace),
            Some(other) => Err(ExpandError::UnsupportedModifier(other.to_string())),
        }
    }

    /// `${name<op>word}`; with `colon`, an empty value counts as unset.
    fn apply(
        &self,
        name: &str,
        value: Option<String>,
        op: char,
        colon: bool,
        word: String,
    ) -> Result<String, ExpandError> {
        if value.is_none() && self.lex.skip_unset {
            let colon = if colon { ":" } else { "" };
            return Ok(format!("${{{name}{colon}{op}{word}}}"));
        }
        let missing = match &value {
            None => true,
            Some(v) => colon && v.is_empty(),
        };
        match op {
            '-' if missing => Ok(word),
            '-' => Ok(value.unwrap_or_default()),
            '+' if missing => Ok(String::new()),
            '+' => Ok(word),
            _ if !missing => Ok(value.unwrap_or_default()),
            _ => {
                let message = match (word.is_empty(), &value) {
                    (false, _) => word,
                    (true, None) => "is not allowed to be unset".to_owned(),
                    (true, Some(_)) => "is not allowed to be empty".to_owned(),
                };
                Err(ExpandError::Required { name: name.to_owned(), message })
            }
        }
    }

    /// A name: letters, digits and `_`; or a run of digits (a positional parameter); or one special parameter.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return c.to_string();
            }
            if !c.is_alphanumeric() && c != '_' {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }
}

/// `${V#p}` (`prefix`) or `${V%p}`, shortest or `longest` match.
fn trim_match(value: &str, toks: &[glob::Tok], prefix: bool, longest: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let cut = |k: usize| -> bool {
        if prefix { glob::matches(toks, &chars[..k]) } else { glob::matches(toks, &chars[n - k..]) }
    };
    let found = if longest { (0..=n).rev().find(|&k| cut(k)) } else { (0..=n).find(|&k| cut(k)) };
    match found {
        Some(k) if prefix => chars[k..].iter().collect(),
        Some(k) => chars[..n - k].iter().collect(),
        None => value.to_owned(),
    }
}

/// `${V/p/r}` (first match) or `${V//p/r}` (`all`): leftmost matches, each as long as possible.
fn replace_matches(value: &str, toks: &[glob::Tok], replacement: &str, all: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let mut out = String::new();
    let mut pos = 0;
    while pos <= n {
        let hit = (pos..=n).find_map(|start| {
            (start..=n).rev().find(|&end| glob::matches(toks, &chars[start..end])).map(|end| (start, end))
        });
        let Some((start, end)) = hit else { break };
        out.extend(&chars[pos..start]);
        out.push_str(replacement);
        if end == start {
            // An empty match: keep one character and look again after it.
            if let Some(&c) = chars.get(end) {
                out.push(c);
            }
            pos = end + 1;
        } else {
            pos = end;
        }
        if !all {
            break;
        }
    }
    if pos < n {
        out.extend(&chars[pos..]);
    }
    out
}

#[cfg(test)]
mod tests;
