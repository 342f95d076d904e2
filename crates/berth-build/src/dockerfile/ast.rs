//! The line level, as BuildKit's `frontend/dockerfile/parser`: parser directives, comments, line continuations,
//! heredoc bodies, the instruction word and its `--flags`, and each instruction's argument syntax (JSON array,
//! whitespace-separated list, `key=value` pairs, …). The result is one [`Node`] per instruction, not yet checked.

use crate::shell::Lex;

use super::InstructionError::{self, Invalid};
use super::ParseError;

/// One instruction, as the line parsers left it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// The instruction word as written (`run`, `RUN`, …).
    pub cmd: String,
    /// `--name=value` / `--name` words before the arguments, quotes removed.
    pub flags: Vec<String>,
    pub args: Vec<String>,
    /// The arguments were a JSON array.
    pub json: bool,
    /// The instruction's folded line.
    pub original: String,
    pub heredocs: Vec<RawHeredoc>,
    /// `ONBUILD`'s instruction.
    pub sub: Option<Box<Node>>,
    pub start_line: usize,
    pub end_line: usize,
}

/// A heredoc as read: the body without any tab stripping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawHeredoc {
    pub name: String,
    pub content: String,
    pub expand: bool,
    pub chomp: bool,
}

/// The whole file at the line level.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub escape: char,
    pub syntax: Option<String>,
    pub nodes: Vec<Node>,
}

/// Parser directives: only at the very top, each once.
struct Directives {
    escape: char,
    syntax: Option<String>,
    done: bool,
    seen: Vec<String>,
}

impl Directives {
    /// Looks at one line while directives are still possible; the first line that is not a known directive ends
    /// them (a blank line or a plain comment too).
    fn offer(&mut self, line: &str) -> Result<(), InstructionError> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_lowercase();
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(Invalid(format!("only one {key} parser directive can be used")));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => match value.as_str() {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                _ => return Err(Invalid(format!("invalid escape token '{value}' does not match ` or \\"))),
            },
            "syntax" => self.syntax = Some(value),
            _ => {}
        }
        Ok(())
    }
}

/// `# key = value` (BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`).
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let key = &rest[..key_len];
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[key_len..].trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((key.to_owned(), value.to_owned()))
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    trim_newline(line).trim_start().starts_with('#')
}

/// BuildKit's `processLine`: the line without its line end (and leading whitespace for an instruction's first
/// line), a line that starts with `#` emptied; directives are looked for on the way.
fn process_line(d: &mut Directives, raw: &str, strip_left: bool, line_no: usize) -> Result<String, ParseError> {
    let mut token = trim_newline(raw);
    if strip_left {
        token = token.trim_start();
    }
    d.offer(token).map_err(|e| ParseError::new(line_no, e.to_string()))?;
    Ok(if token.starts_with('#') { String::new() } else { token.to_owned() })
}

/// Removes a trailing escape character (and the spaces and tabs after it): `(line, true)` when the line does not
/// continue. An escaped escape (`\\`) at the end is not a continuation.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    if let Some(before) = trimmed.strip_suffix(escape)
        && !before.ends_with(escape)
    {
        return (before.to_owned(), false);
    }
    (line.to_owned(), true)
}

/// Parses the file into nodes.
pub(crate) fn parse(text: &str) -> Result<Parsed, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut d = Directives { escape: '\\', syntax: None, done: false, seen: Vec::new() };
    let mut nodes = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        i += 1;
        let start_line = i;
        let token = process_line(&mut d, raw, true, start_line)?;
        let (mut line, mut end) = trim_continuation(&token, d.escape);
        if end && line.is_empty() {
            continue;
        }
        while !end && i < lines.len() {
            let raw = lines[i];
            i += 1;
            let token = process_line(&mut d, raw, false, i)?;
            if is_comment(raw) || token.trim_start().is_empty() {
                // Comments inside continuations are dropped; empty continuation lines are allowed (BuildKit warns).
                continue;
            }
            let (part, part_end) = trim_continuation(&token, d.escape);
            line.push_str(&part);
            end = part_end;
        }
        let at = |e: InstructionError| ParseError::new(start_line, e.to_string());
        let mut node = node_from_line(&line, d.escape).map_err(at)?;
        if node.can_contain_heredoc() {
            for (name, expand, chomp) in heredocs_from_line(&line).map_err(at)? {
                let mut content = String::new();
                let mut terminated = false;
                while i < lines.len() {
                    let raw = lines[i];
                    i += 1;
                    let mut candidate = trim_newline(raw);
                    if chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == name {
                        terminated = true;
                        break;
                    }
                    content.push_str(raw);
                }
                if !terminated {
                    return Err(ParseError::new(start_line, "unterminated heredoc"));
                }
                node.heredocs.push(RawHeredoc { name, content, expand, chomp });
            }
        }
        node.start_line = start_line;
        node.end_line = i;
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(ParseError::new(lines.len().max(1), "file with no instructions"));
    }
    Ok(Parsed { escape: d.escape, syntax: d.syntax, nodes })
}

impl Node {
    /// `ADD`, `COPY` and `RUN` in the shell form (also as an `ONBUILD` trigger) may have heredocs.
    fn can_contain_heredoc(&self) -> bool {
        let node = match &self.sub {
            Some(sub) if self.cmd.eq_ignore_ascii_case("onbuild") => sub,
            _ => self,
        };
        let cmd = node.cmd.to_lowercase();
        matches!(cmd.as_str(), "add" | "copy" | "run") && !node.json
    }
}

/// The heredoc markers of an instruction line, as BuildKit's `heredocsFromLine`: the line is split into words with
/// quotes kept, and every word that looks like `[n]<<[-]WORD` is one.
fn heredocs_from_line(line: &str) -> Result<Vec<(String, bool, bool)>, InstructionError> {
    let words = Lex::heredoc_finder().process_words(line, &()).unwrap_or_default();
    let mut out = Vec::new();
    for word in words {
        if let Some(h) = parse_heredoc_word(&word)? {
            out.push(h);
        }
    }
    Ok(out)
}

/// `[n]<<[-]WORD` → (name, expand, chomp); `None` when the word is not a heredoc marker. The body is expanded
/// unless some part of `WORD` is quoted.
pub(crate) fn parse_heredoc_word(word: &str) -> Result<Option<(String, bool, bool)>, InstructionError> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    // Blanks between `<<` and the word are allowed (`<< EOF`).
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let lex = Lex::new('\\').with_skip_unset(true);
    let words = lex.process_words(rest, &())?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let raw = lex.with_raw_quotes(true).process_words(rest, &())?;
    let [raw] = raw.as_slice() else {
        return Err(Invalid(format!("internal lexing of heredoc produced inconsistent results: {rest}")));
    };
    // A quote that did something (not an escaped one) makes the raw word longer in quotes: then no expansion.
    let quotes = |s: &str| s.chars().filter(|c| *c == '"' || *c == '\'').count();
    let expand = quotes(name) == quotes(raw);
    Ok(Some((name.clone(), expand, chomp)))
}

/// BuildKit's `newNodeFromLine`: the instruction word, its flags, and the arguments by the instruction's syntax.
fn node_from_line(line: &str, escape: char) -> Result<Node, InstructionError> {
    let trimmed = line.trim();
    let (cmd, rest) = match trimmed.find(is_token_space) {
        Some(i) => (&trimmed[..i], trimmed[i..].trim_start_matches(is_token_space)),
        None => (trimmed, ""),
    };
    let (rest, flags) = extract_flags(rest);
    let rest = rest.trim();
    let mut node = Node {
        cmd: cmd.to_owned(),
        flags,
        args: Vec::new(),
        json: false,
        original: line.to_owned(),
        heredocs: Vec::new(),
        sub: None,
        start_line: 0,
        end_line: 0,
    };
    match cmd.to_lowercase().as_str() {
        "add" | "copy" | "volume" => (node.args, node.json) = maybe_json_to_list(rest)?,
        "cmd" | "entrypoint" | "run" | "shell" => (node.args, node.json) = maybe_json(rest)?,
        "arg" => node.args = parse_words(rest, escape),
        "env" => node.args = name_vals(rest, "ENV", escape)?,
        "label" => node.args = name_vals(rest, "LABEL", escape)?,
        "expose" | "from" => node.args = whitespace_list(rest),
        "healthcheck" => (node.args, node.json) = health_config(rest)?,
        "maintainer" | "stopsignal" | "user" | "workdir" if !rest.is_empty() => node.args = vec![rest.to_owned()],
        "onbuild" if !rest.is_empty() => {
            let sub = node_from_line(rest, escape)?;
            node.args = std::iter::once(sub.cmd.clone()).chain(sub.args.iter().cloned()).collect();
            node.sub = Some(Box::new(sub));
        }
        // No arguments, or an unknown instruction (refused one level up, with its name).
        _ => {}
    }
    Ok(node)
}

/// BuildKit's `reWhitespace`/`tokenWhitespace`: `[\t\v\f\r ]`.
fn is_token_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

fn whitespace_list(rest: &str) -> Vec<String> {
    rest.split(is_token_space).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The `--flag` words at the start of the arguments (BuildKit's `extractBuilderFlags`): quotes removed, `\`
/// escapes the next character, a lone `--` ends them. Returns the rest of the line and the flags.
fn extract_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = line.chars().collect();
    let rest_from = |pos: usize| chars[pos..].iter().collect::<String>();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= chars.len() {
        let at_end = pos == chars.len();
        let mut ch = chars.get(pos).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            if ch != '-' || chars.get(pos + 1) != Some(&'-') {
                return (rest_from(pos), words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (rest_from(pos), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            if ch == '\\' {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // In quotes.
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if ch == '\\' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    (String::new(), words)
}

/// BuildKit's `parseWords`: words split on whitespace, quotes and escapes kept (they are processed at expansion).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= chars.len() {
        let at_end = pos == chars.len();
        let mut ch = chars.get(pos).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == chars.len() {
                    // An escape at the end of the line is dropped.
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // In quotes.
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            word.push(ch);
            pos += 1;
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

/// `ENV`/`LABEL`: `k=v k2="v 2"` pairs, or the legacy `KEY value with spaces`; the result alternates keys and values.
fn name_vals(rest: &str, key: &str, escape: char) -> Result<Vec<String>, InstructionError> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        return match rest.find(is_token_space) {
            Some(i) => Ok(vec![rest[..i].to_owned(), rest[i..].trim_start_matches(is_token_space).to_owned()]),
            None => Err(Invalid(format!("{key} must have two arguments"))),
        };
    }
    let mut args = Vec::new();
    for word in words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(Invalid(format!("Syntax error - can't find = in {word:?}. Must be of the form: name=value")));
        };
        args.push(k.to_owned());
        args.push(v.to_owned());
    }
    Ok(args)
}

/// A JSON array of strings: `Ok(None)` when `rest` is not one (so it is the shell form). Only the first JSON value
/// is read, as Go's `json.Decoder` does.
fn json_array(rest: &str) -> Result<Option<Vec<String>>, InstructionError> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    let Some(Ok(serde_json::Value::Array(items))) = values.next() else {
        return Ok(None);
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(Invalid("when using JSON array syntax, arrays must be comprised of strings only".to_owned())),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `CMD`, `ENTRYPOINT`, `RUN`, `SHELL`: a JSON array, else the whole rest as one argument.
fn maybe_json(rest: &str) -> Result<(Vec<String>, bool), InstructionError> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    Ok(match json_array(rest)? {
        Some(items) => (items, true),
        None => (vec![rest.to_owned()], false),
    })
}

/// `ADD`, `COPY`, `VOLUME`: a JSON array, else whitespace-separated words.
fn maybe_json_to_list(rest: &str) -> Result<(Vec<String>, bool), InstructionError> {
    Ok(match json_array(rest)? {
        Some(items) => (items, true),
        None => (whitespace_list(rest), false),
    })
}

/// `HEALTHCHECK TYPE cmd…`: the type word, then the command as for `CMD`.
fn health_config(rest: &str) -> Result<(Vec<String>, bool), InstructionError> {
    let Some(first) = rest.split(char::is_whitespace).next().filter(|w| !w.is_empty()) else {
        return Ok((Vec::new(), false));
    };
    let cmd = rest[first.len()..].trim_start();
    let (args, json) = maybe_json(cmd)?;
    Ok((std::iter::once(first.to_owned()).chain(args).collect(), json))
}
