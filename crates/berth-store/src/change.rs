//! Dockerfile-style changes (`docker import --change`, `docker commit --change`): moby's
//! `BuildFromConfig`. The changes are joined with newlines and read as a Dockerfile; only
//! CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME and
//! WORKDIR are allowed, and they are applied to a container config (`Cmd`, `Env`, … in the
//! Engine API's field names) the way the classic builder does, with `$VAR` substitution from
//! the config's `Env` where the Dockerfile allows it.

use serde_json::{Map, Value, json};

use crate::error::{Result, StoreError};

/// The instructions a change may use (moby's `validCommitCommands`).
const VALID: [&str; 11] = [
    "cmd",
    "entrypoint",
    "env",
    "expose",
    "healthcheck",
    "label",
    "onbuild",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// Every Dockerfile instruction (to validate ONBUILD triggers).
const INSTRUCTIONS: [&str; 19] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
    "CROSS",
];

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::InvalidArgument(msg.into())
}

/// Applies `changes` to `config` (a container config object such as an image's `config`)
/// for a container of `os` (`linux` or `windows`, which picks the default shell).
pub fn apply_changes(config: &mut Map<String, Value>, changes: &[String], os: &str) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let instructions = split_instructions(&changes.join("\n"));
    for ins in &instructions {
        if !VALID.contains(&ins.keyword.as_str()) {
            return Err(invalid(format!("{} is not a valid change command", ins.keyword)));
        }
    }
    let mut cmd_set = false;
    for ins in &instructions {
        let env = string_list(config.get("Env"));
        let rest = ins.rest.as_str();
        let upper = ins.keyword.to_uppercase();
        match ins.keyword.as_str() {
            "cmd" => {
                let (cmd, explicit) = command_line(rest, &upper, config, os)?;
                config.insert("Cmd".into(), cmd);
                cmd_set |= explicit;
            }
            "entrypoint" => {
                let (ep, _) = command_line(rest, &upper, config, os)?;
                config.insert("Entrypoint".into(), ep);
                if !cmd_set {
                    config.insert("Cmd".into(), Value::Null);
                }
            }
            "env" => {
                let mut vars = env.clone();
                for (k, v) in name_vals(rest, &upper)? {
                    let key = process_word(&k, &env)?;
                    if key.is_empty() {
                        return Err(invalid("ENV names can not be blank"));
                    }
                    let value = process_word(&v, &env)?;
                    let entry = format!("{key}={value}");
                    match vars.iter_mut().find(|e| e.split('=').next() == Some(key.as_str())) {
                        Some(slot) => *slot = entry,
                        None => vars.push(entry),
                    }
                }
                config.insert("Env".into(), json!(vars));
            }
            "label" => {
                let mut labels = object(config.get("Labels"));
                for (k, v) in name_vals(rest, &upper)? {
                    let key = process_word(&k, &env)?;
                    if key.is_empty() {
                        return Err(invalid("LABEL names can not be blank"));
                    }
                    labels.insert(key, Value::String(process_word(&v, &env)?));
                }
                config.insert("Labels".into(), Value::Object(labels));
            }
            "expose" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                if words.is_empty() {
                    return Err(invalid("EXPOSE requires at least one argument"));
                }
                let mut ports = object(config.get("ExposedPorts"));
                for w in words {
                    for spec in process_words(w, &env)? {
                        for p in parse_port_spec(&spec)? {
                            ports.insert(p, json!({}));
                        }
                    }
                }
                config.insert("ExposedPorts".into(), Value::Object(ports));
            }
            "user" => {
                let user = single_arg(rest, &upper, &env)?;
                config.insert("User".into(), Value::String(user));
            }
            "workdir" => {
                let requested = single_arg(rest, &upper, &env)?;
                let current = config.get("WorkingDir").and_then(Value::as_str).unwrap_or("").to_string();
                config.insert("WorkingDir".into(), Value::String(normalize_workdir(&current, &requested)));
            }
            "volume" => {
                let list = match parse_maybe_json(rest)? {
                    Args::Json(v) => v,
                    Args::Shell(s) => s.split_whitespace().map(str::to_string).collect(),
                };
                if list.is_empty() {
                    return Err(invalid("VOLUME requires at least one argument"));
                }
                let mut vols = object(config.get("Volumes"));
                for v in list {
                    let v = process_word(&v, &env)?;
                    if v.is_empty() {
                        return Err(invalid("VOLUME specified can not be an empty string"));
                    }
                    vols.insert(v, json!({}));
                }
                config.insert("Volumes".into(), Value::Object(vols));
            }
            "stopsignal" => {
                let sig = single_arg(rest, &upper, &env)?;
                if !is_valid_signal(&sig) {
                    return Err(invalid(format!("invalid signal: {sig}")));
                }
                config.insert("StopSignal".into(), Value::String(sig));
            }
            "onbuild" => {
                let trigger = rest.split_whitespace().next().map(str::to_uppercase);
                let Some(trigger) = trigger else {
                    return Err(invalid("ONBUILD requires at least one argument"));
                };
                match trigger.as_str() {
                    "ONBUILD" => return Err(invalid("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")),
                    "MAINTAINER" | "FROM" => {
                        return Err(invalid(format!("{trigger} isn't allowed as an ONBUILD trigger")));
                    }
                    t if !INSTRUCTIONS.contains(&t) => {
                        return Err(invalid(format!("unknown instruction: {trigger}")));
                    }
                    _ => {}
                }
                let mut list = string_list(config.get("OnBuild"));
                list.push(rest.trim().to_string());
                config.insert("OnBuild".into(), json!(list));
            }
            "healthcheck" => {
                config.insert("Healthcheck".into(), healthcheck(rest)?);
            }
            _ => return Err(invalid(format!("{} is not a valid change command", ins.keyword))),
        }
    }
    Ok(())
}

/// One instruction: its keyword (lowercase) and the rest of its (joined) line.
struct Instruction {
    keyword: String,
    rest: String,
}

/// Splits Dockerfile text into instructions: comments and blank lines are dropped, a line
/// ending in `\` continues on the next one.
fn split_instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let flush = |s: &str, out: &mut Vec<Instruction>| {
        let s = s.trim();
        if s.is_empty() {
            return;
        }
        let (kw, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
        out.push(Instruction { keyword: kw.to_lowercase(), rest: rest.trim_start().to_string() });
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || (trimmed.is_empty() && !pending.is_empty()) {
            continue;
        }
        let t = line.trim_end();
        if let Some(body) = t.strip_suffix('\\') {
            pending.push_str(body);
            continue;
        }
        pending.push_str(line);
        flush(&pending, &mut out);
        pending.clear();
    }
    flush(&pending, &mut out);
    out
}

/// A JSON (exec) form or a shell form argument list.
enum Args {
    Json(Vec<String>),
    Shell(String),
}

/// buildkit's `parseMaybeJSON`: a JSON array of strings, else the text as one shell string.
fn parse_maybe_json(rest: &str) -> Result<Args> {
    let r = rest.trim();
    if r.starts_with('[')
        && let Ok(vals) = serde_json::from_str::<Vec<Value>>(r)
    {
        let strings: Option<Vec<String>> = vals.into_iter().map(|v| v.as_str().map(str::to_string)).collect();
        return strings
            .map(Args::Json)
            .ok_or_else(|| invalid("when using JSON array syntax, arrays must be comprised of strings only"));
    }
    Ok(Args::Shell(r.to_string()))
}

/// CMD / ENTRYPOINT: the exec form as is, the shell form behind the config's shell.
/// Returns the value and whether an explicit (non-empty) command was given.
fn command_line(rest: &str, kw: &str, config: &Map<String, Value>, os: &str) -> Result<(Value, bool)> {
    match parse_maybe_json(rest)? {
        Args::Json(v) => {
            let explicit = !v.is_empty();
            Ok((json!(v), explicit))
        }
        Args::Shell(s) if s.is_empty() => Err(invalid(format!("{kw} requires at least one argument"))),
        Args::Shell(s) => {
            let mut shell = string_list(config.get("Shell"));
            if shell.is_empty() {
                shell = if os == "windows" {
                    vec!["cmd".into(), "/S".into(), "/C".into()]
                } else {
                    vec!["/bin/sh".into(), "-c".into()]
                };
            }
            shell.push(s);
            Ok((json!(shell), true))
        }
    }
}

/// The whole rest as one word, with variables substituted.
fn single_arg(rest: &str, kw: &str, env: &[String]) -> Result<String> {
    let r = rest.trim();
    if r.is_empty() {
        return Err(invalid(format!("{kw} requires exactly one argument")));
    }
    process_word(r, env)
}

/// buildkit's `parseNameVal`: `key=value …`, or the legacy `key value` (one pair).
fn name_vals(rest: &str, kw: &str) -> Result<Vec<(String, String)>> {
    let words = parse_words(rest);
    let Some(first) = words.first() else {
        return Err(invalid(format!("{kw} requires at least one argument")));
    };
    if !first.contains('=') {
        let r = rest.trim();
        return match r.split_once(char::is_whitespace) {
            Some((k, v)) => Ok(vec![(k.to_string(), v.trim_start().to_string())]),
            None => Err(invalid(format!("{kw} must have two arguments"))),
        };
    }
    words
        .iter()
        .map(|w| {
            w.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| {
                invalid(format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value"))
            })
        })
        .collect()
}

/// buildkit's `parseWords`: splits on whitespace, keeping quotes and escapes in the words.
fn parse_words(rest: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars().peekable();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            if c == '\\' && q != '\'' {
                match chars.next() {
                    Some(n) => {
                        word.push(c);
                        word.push(n);
                    }
                    None => quote = None,
                }
                continue;
            }
            word.push(c);
            continue;
        }
        if !in_word {
            if c.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        if c.is_whitespace() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            blank_ok = false;
            in_word = false;
            continue;
        }
        if c == '\'' || c == '"' {
            quote = Some(c);
            blank_ok = true;
        }
        if c == '\\' {
            if let Some(n) = chars.next() {
                word.push(c);
                word.push(n);
            }
            continue;
        }
        word.push(c);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// Processes one word like the Dockerfile shell lexer: quotes removed, escapes applied,
/// `$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR:+x}`, `${VAR:?msg}` substituted from `env`.
pub fn process_word(word: &str, env: &[String]) -> Result<String> {
    let mut out = lex(word, env, false)?;
    Ok(out.pop().unwrap_or_default())
}

/// Like [`process_word`] but splits the result into words on unquoted whitespace (EXPOSE).
pub fn process_words(word: &str, env: &[String]) -> Result<Vec<String>> {
    lex(word, env, true)
}

/// Collects lexer output into one word or whitespace-separated words.
struct Words {
    split: bool,
    words: Vec<String>,
    cur: String,
    has: bool,
}

impl Words {
    fn push_str(&mut self, s: &str) {
        self.cur.push_str(s);
        self.has = true;
    }
    fn push_expanded(&mut self, v: &str) {
        if !self.split {
            self.cur.push_str(v);
            self.has |= !v.is_empty();
            return;
        }
        for (i, part) in v.split(char::is_whitespace).enumerate() {
            if i > 0 {
                self.boundary();
            }
            if !part.is_empty() {
                self.push_str(part);
            }
        }
    }
    fn boundary(&mut self) {
        if self.has {
            self.words.push(std::mem::take(&mut self.cur));
            self.has = false;
        }
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    env: &'a [String],
}

impl Lexer<'_> {
    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        self.pos += usize::from(c.is_some());
        c
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn lookup(&self, name: &str) -> Option<String> {
        self.env.iter().find_map(|kv| match kv.split_once('=') {
            Some((k, v)) if k == name => Some(v.to_string()),
            None if kv == name => Some(String::new()),
            _ => None,
        })
    }
    fn single_quoted(&mut self) -> Result<String> {
        let mut s = String::new();
        loop {
            match self.next() {
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
                None => return Err(invalid("unexpected end of statement while looking for matching single-quote")),
            }
        }
    }
    fn double_quoted(&mut self) -> Result<String> {
        let mut s = String::new();
        loop {
            match self.next() {
                Some('"') => return Ok(s),
                Some('$') => s.push_str(&self.dollar()?),
                Some('\\') => match self.peek() {
                    Some(n @ ('"' | '$' | '\\')) => {
                        self.pos += 1;
                        s.push(n);
                    }
                    _ => s.push('\\'),
                },
                Some(c) => s.push(c),
                None => return Err(invalid("unexpected end of statement while looking for matching double-quote")),
            }
        }
    }
    fn name(&mut self) -> String {
        let mut n = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        n
    }
    /// After a `$`.
    fn dollar(&mut self) -> Result<String> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    return Err(invalid("bad substitution"));
                }
                let value = self.lookup(&name);
                match self.next() {
                    Some('}') => Ok(value.unwrap_or_default()),
                    Some(c @ (':' | '-' | '+' | '?')) => {
                        let (colon, modifier) = if c == ':' {
                            match self.next() {
                                Some(m @ ('-' | '+' | '?')) => (true, m),
                                Some(m) => return Err(invalid(format!("unsupported modifier ({m}) in substitution"))),
                                None => return Err(invalid("missing '}' in substitution")),
                            }
                        } else {
                            (false, c)
                        };
                        let word = self.until_brace()?;
                        let set = if colon { value.as_deref().is_some_and(|v| !v.is_empty()) } else { value.is_some() };
                        match modifier {
                            '-' => Ok(if set { value.unwrap_or_default() } else { word }),
                            '+' => Ok(if set { word } else { String::new() }),
                            _ => {
                                if set {
                                    Ok(value.unwrap_or_default())
                                } else if word.is_empty() {
                                    Err(invalid(format!("{name}: is not allowed to be unset")))
                                } else {
                                    Err(invalid(format!("{name}: {word}")))
                                }
                            }
                        }
                    }
                    _ => Err(invalid("missing ':' in substitution")),
                }
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok(self.lookup(&name).unwrap_or_default())
            }
            _ => Ok("$".to_string()),
        }
    }
    /// The word inside `${VAR:-word}` up to the closing brace, processed.
    fn until_brace(&mut self) -> Result<String> {
        let mut s = String::new();
        loop {
            match self.next() {
                Some('}') => return Ok(s),
                Some('\'') => s.push_str(&self.single_quoted()?),
                Some('"') => s.push_str(&self.double_quoted()?),
                Some('$') => s.push_str(&self.dollar()?),
                Some('\\') => {
                    if let Some(n) = self.next() {
                        s.push(n);
                    }
                }
                Some(c) => s.push(c),
                None => return Err(invalid("missing '}' in substitution")),
            }
        }
    }
}

fn lex(input: &str, env: &[String], split: bool) -> Result<Vec<String>> {
    let mut lx = Lexer { chars: input.chars().collect(), pos: 0, env };
    let mut w = Words { split, words: Vec::new(), cur: String::new(), has: false };
    while let Some(c) = lx.next() {
        match c {
            '\'' => {
                let s = lx.single_quoted()?;
                w.push_str(&s);
            }
            '"' => {
                let s = lx.double_quoted()?;
                w.push_str(&s);
            }
            '$' => {
                let v = lx.dollar()?;
                w.push_expanded(&v);
            }
            '\\' => {
                if let Some(n) = lx.next() {
                    w.push_str(&n.to_string());
                }
            }
            c if split && c.is_whitespace() => w.boundary(),
            c => w.push_str(&c.to_string()),
        }
    }
    if split {
        w.boundary();
        Ok(w.words)
    } else {
        Ok(vec![w.cur])
    }
}

/// `nat.ParsePortSpecs` for EXPOSE: `80`, `80/udp`, `8000-8010/tcp` (an `ip:host:` prefix is
/// allowed and ignored) → `["80/tcp"]`, ….
fn parse_port_spec(spec: &str) -> Result<Vec<String>> {
    let (port, proto) = match spec.rsplit_once('/') {
        Some((p, proto)) => (p, proto.to_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(invalid(format!("invalid proto: {proto}")));
    }
    let container = port.rsplit(':').next().unwrap_or(port);
    let bad = || invalid(format!("invalid containerPort: {container}"));
    let (start, end) = match container.split_once('-') {
        Some((a, b)) => (a.parse::<u16>().map_err(|_| bad())?, b.parse::<u16>().map_err(|_| bad())?),
        None => {
            let p = container.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if end < start {
        return Err(invalid(format!("invalid range specified for container port: {container}")));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// WORKDIR: a relative path is joined to the current one (from `/`), like the builder.
fn normalize_workdir(current: &str, requested: &str) -> String {
    if requested.starts_with('/') {
        return requested.to_string();
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in current.split('/').chain(requested.split('/')) {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// moby's `signal.ParseSignal` on Linux: a non-zero number or a known name, `SIG` optional.
pub fn is_valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<i64>() {
        return n != 0;
    }
    let up = s.to_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    const NAMES: [&str; 34] = [
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL",
        "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1",
        "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    if NAMES.contains(&name) || name == "RTMIN" || name == "RTMAX" {
        return true;
    }
    let offset = |prefix: &str| name.strip_prefix(prefix).and_then(|n| n.parse::<u8>().ok());
    matches!(offset("RTMIN+"), Some(1..=15)) || matches!(offset("RTMAX-"), Some(1..=14))
}

/// HEALTHCHECK [--interval=…] [--timeout=…] [--start-period=…] [--start-interval=…]
/// [--retries=N] CMD …  |  HEALTHCHECK NONE
fn healthcheck(rest: &str) -> Result<Value> {
    let mut r = rest.trim();
    let mut flags: Vec<(String, String)> = Vec::new();
    while let Some(f) = r.strip_prefix("--") {
        let (tok, tail) = f.split_once(char::is_whitespace).unwrap_or((f, ""));
        let Some((name, value)) = tok.split_once('=') else {
            return Err(invalid(format!("Missing a value on flag: {tok}")));
        };
        if !matches!(name, "interval" | "timeout" | "start-period" | "start-interval" | "retries") {
            return Err(invalid(format!("Unknown flag: {name}")));
        }
        flags.push((name.to_string(), value.to_string()));
        r = tail.trim_start();
    }
    let (typ, args) = r.split_once(char::is_whitespace).unwrap_or((r, ""));
    let typ = typ.to_uppercase();
    if typ.is_empty() {
        return Err(invalid("HEALTHCHECK requires at least one argument"));
    }
    if typ == "NONE" {
        if !args.trim().is_empty() || !flags.is_empty() {
            return Err(invalid("HEALTHCHECK NONE takes no arguments"));
        }
        return Ok(json!({"Test": ["NONE"]}));
    }
    if typ != "CMD" {
        return Err(invalid(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)")));
    }
    let test = match parse_maybe_json(args)? {
        Args::Json(v) if !v.is_empty() => std::iter::once("CMD".to_string()).chain(v).collect::<Vec<_>>(),
        Args::Shell(s) if !s.is_empty() => vec!["CMD-SHELL".to_string(), s],
        _ => return Err(invalid("Missing command after HEALTHCHECK CMD")),
    };
    let mut hc = Map::new();
    hc.insert("Test".into(), json!(test));
    for (name, value) in flags {
        if name == "retries" {
            let n: i64 = value.parse().map_err(|_| invalid(format!("invalid --retries value {value:?}")))?;
            if n < 0 {
                return Err(invalid(format!("--retries cannot be negative ({n})")));
            }
            if n > 0 {
                hc.insert("Retries".into(), json!(n));
            }
            continue;
        }
        let ns = berth_api::units::go_duration_nanos(&value).map_err(|e| invalid(e.0))?;
        if ns < 0 {
            return Err(invalid(format!("Interval {name:?} cannot be negative")));
        }
        if ns != 0 && ns < 1_000_000 {
            return Err(invalid(format!("Interval {name:?} cannot be less than 1ms")));
        }
        let key = match name.as_str() {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            _ => "StartInterval",
        };
        if ns > 0 {
            hc.insert(key.into(), json!(ns));
        }
    }
    Ok(Value::Object(hc))
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn object(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<Map<String, Value>> {
        let mut cfg = Map::new();
        cfg.insert("Env".into(), Value::Null);
        cfg.insert("Cmd".into(), Value::Null);
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut cfg, &changes, "linux")?;
        Ok(cfg)
    }

    fn err(changes: &[&str]) -> String {
        match apply(changes) {
            Ok(c) => format!("unexpected success: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn cmd_and_entrypoint_forms() -> Result<()> {
        let c = apply(&[r#"CMD ["sh", "-c", "echo hi"]"#])?;
        assert_eq!(c["Cmd"], json!(["sh", "-c", "echo hi"]));
        let c = apply(&["CMD echo $HOME hi"])?;
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo $HOME hi"]));
        let c = apply(&["cmd [not json"])?;
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "[not json"]));
        // ENTRYPOINT resets a CMD that was not set by these changes...
        let mut cfg = Map::new();
        cfg.insert("Cmd".into(), json!(["old"]));
        apply_changes(&mut cfg, &[r#"ENTRYPOINT ["/bin/app"]"#.to_string()], "linux")?;
        assert_eq!(cfg["Entrypoint"], json!(["/bin/app"]));
        assert_eq!(cfg["Cmd"], Value::Null);
        // ...but keeps one set before it.
        let c = apply(&[r#"CMD ["x"]"#, "ENTRYPOINT /bin/app --flag"])?;
        assert_eq!(c["Cmd"], json!(["x"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/bin/app --flag"]));
        assert_eq!(err(&["CMD [1, 2]"]), "when using JSON array syntax, arrays must be comprised of strings only");
        Ok(())
    }

    #[test]
    fn env_and_labels() -> Result<()> {
        let c = apply(&["ENV A=1 B=\"two words\"", "ENV C $A-x", "ENV A=3 D=$A", "ENV PATH=/bin:${A:-none}"])?;
        assert_eq!(c["Env"], json!(["A=3", "B=two words", "C=1-x", "D=1", "PATH=/bin:3"]));
        let c = apply(&["LABEL a=b \"c d\"=e", "LABEL legacy value with spaces"])?;
        assert_eq!(c["Labels"], json!({"a": "b", "c d": "e", "legacy": "value with spaces"}));
        assert_eq!(err(&["ENV"]), "ENV requires at least one argument");
        assert_eq!(err(&["ENV onlykey"]), "ENV must have two arguments");
        assert_eq!(err(&["ENV a=1 b"]), "Syntax error - can't find = in \"b\". Must be of the form: name=value");
        Ok(())
    }

    #[test]
    fn other_instructions() -> Result<()> {
        let c = apply(&[
            "EXPOSE 80 443/udp 8000-8002",
            "USER app:app",
            "WORKDIR /srv",
            "WORKDIR data/../www",
            "VOLUME /a /b",
            r#"VOLUME ["/c"]"#,
            "STOPSIGNAL SIGQUIT",
            "ONBUILD RUN echo hi",
            "HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/",
        ])?;
        assert_eq!(
            c["ExposedPorts"],
            json!({"80/tcp": {}, "443/udp": {}, "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}})
        );
        assert_eq!(c["User"], json!("app:app"));
        assert_eq!(c["WorkingDir"], json!("/srv/www"));
        assert_eq!(c["Volumes"], json!({"/a": {}, "/b": {}, "/c": {}}));
        assert_eq!(c["StopSignal"], json!("SIGQUIT"));
        assert_eq!(c["OnBuild"], json!(["RUN echo hi"]));
        assert_eq!(
            c["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "curl -f http://localhost/"], "Interval": 5_000_000_000i64, "Retries": 3})
        );
        let c = apply(&["HEALTHCHECK NONE"])?;
        assert_eq!(c["Healthcheck"], json!({"Test": ["NONE"]}));
        let c = apply(&[r#"HEALTHCHECK CMD ["true"]"#])?;
        assert_eq!(c["Healthcheck"], json!({"Test": ["CMD", "true"]}));
        let c = apply(&["# comment", "", "EXPOSE 1 \\", "  2"])?;
        assert_eq!(c["ExposedPorts"], json!({"1/tcp": {}, "2/tcp": {}}));
        Ok(())
    }

    #[test]
    fn rejected_changes() {
        assert_eq!(err(&["RUN echo hi"]), "run is not a valid change command");
        assert_eq!(err(&["FROM busybox"]), "from is not a valid change command");
        assert_eq!(err(&["BOGUS x"]), "bogus is not a valid change command");
        assert_eq!(err(&["STOPSIGNAL NOPE"]), "invalid signal: NOPE");
        assert_eq!(err(&["EXPOSE 80/foo"]), "invalid proto: foo");
        assert_eq!(err(&["EXPOSE abc"]), "invalid containerPort: abc");
        assert_eq!(err(&["ONBUILD ONBUILD RUN x"]), "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        assert_eq!(err(&["ONBUILD FROM x"]), "FROM isn't allowed as an ONBUILD trigger");
        assert_eq!(err(&["HEALTHCHECK --bogus=1 CMD x"]), "Unknown flag: bogus");
        assert_eq!(err(&["HEALTHCHECK --interval=10 CMD x"]), "time: missing unit in duration \"10\"");
        assert_eq!(err(&["HEALTHCHECK --timeout=-1s CMD x"]), "Interval \"timeout\" cannot be negative");
        assert_eq!(err(&["HEALTHCHECK --interval=1us CMD x"]), "Interval \"interval\" cannot be less than 1ms");
        assert_eq!(err(&["HEALTHCHECK NONE x"]), "HEALTHCHECK NONE takes no arguments");
        assert_eq!(err(&["USER"]), "USER requires exactly one argument");
        assert_eq!(err(&["VOLUME \"\""]), "VOLUME specified can not be an empty string");
    }

    #[test]
    fn words_and_signals() -> Result<()> {
        let env = vec!["A=x y".to_string(), "E=".to_string()];
        assert_eq!(process_word(r#"'$A' "$A" \$A ${E:-d} ${E-d} ${A:+set}"#, &env)?, "$A x y $A d  set");
        assert_eq!(process_words("$A z", &env)?, vec!["x", "y", "z"]);
        assert!(is_valid_signal("RTMIN+3") && is_valid_signal("9") && is_valid_signal("term"));
        assert!(!is_valid_signal("0") && !is_valid_signal("RTMIN+16"));
        Ok(())
    }
}
