//! Go's `text/template`, as far as docker's `--format` flags use it: text and `{{actions}}` with trim markers,
//! fields (`.A.B`), variables (`$`, `$x := ...`), literals, pipelines (`a | b`), parenthesised pipelines,
//! `if`/`else if`/`else`, `range` (with `$i, $v :=`, `else`, `break`, `continue`), `with`, comments, and the
//! functions of Go's template package plus docker's (`json`, `join`, `split`, `lower`, `upper`, `title`,
//! `truncate`, `pad`).
//!
//! Data are JSON values ([`serde_json::Value`]): objects play Go's maps and structs. Values print as Go's `fmt`
//! prints them (`map[k:v]`, `[a b]`, integers without a fraction); a missing or null value prints `<no value>`.
//! A field given arguments (`{{.Label "k"}}`) indexes the object it names, the way docker's formatter methods do.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// A parse or execution error, worded like Go's (`template: :1: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

type Result<T> = std::result::Result<T, Error>;

fn err<T>(line: usize, msg: impl std::fmt::Display) -> Result<T> {
    Err(Error(format!("template: :{line}: {msg}")))
}

/// A hook for fields called with arguments, as docker's formatter methods are (see [`Template::execute_with`]).
pub type Methods<'a> = &'a dyn Fn(&str, &[Value]) -> Option<Value>;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Parses Go template text.
    pub fn parse(text: &str) -> std::result::Result<Template, Error> {
        let items = lex(text)?;
        let mut p = Parser { items, pos: 0 };
        let (nodes, end) = p.parse_list()?;
        match end {
            Closer::Eof => Ok(Template { nodes }),
            Closer::End(line) => err(line, "unexpected {{end}}"),
            Closer::Else(line, _) => err(line, "unexpected {{else}}"),
        }
    }

    /// Executes the template with `data` as dot (and `$`).
    pub fn execute(&self, data: &Value) -> std::result::Result<String, Error> {
        self.execute_with(data, &|_, _| None)
    }

    /// Executes with `methods` answering fields called with arguments (`{{.Label "k"}}`): given the field's name
    /// and the arguments, `Some` value overrides the default (indexing the object the field names).
    pub fn execute_with(&self, data: &Value, methods: Methods<'_>) -> std::result::Result<String, Error> {
        let mut ex = Exec { vars: vec![("$".to_string(), data.clone())], out: String::new(), methods };
        ex.nodes(&self.nodes, data)?;
        Ok(ex.out)
    }
}

/// Parses and executes in one go.
#[cfg(test)]
pub fn render(text: &str, data: &Value) -> std::result::Result<String, Error> {
    Template::parse(text)?.execute(data)
}

// ------------------------------------------------------------------------------------------------------------------
// Lexing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Space,
    /// `.Name` (one segment).
    Field(String),
    /// `.` alone.
    Dot,
    /// `$` or `$name`.
    Var(String),
    Ident(String),
    Str(String),
    Num(String),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
enum Item {
    Text(String),
    Action { toks: Vec<Tok>, line: usize },
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn lex(src: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let text = if trim_next { rest.trim_start_matches(is_space) } else { rest };
            if !text.is_empty() {
                items.push(Item::Text(text.to_string()));
            }
            break;
        };
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let after = &rest[open + 2..];
        let trim_left = after.starts_with('-') && after[1..].starts_with(is_space);
        if trim_left {
            text = text.trim_end_matches(is_space);
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        line += rest[..open].matches('\n').count();
        let body_start = if trim_left { &after[2..] } else { after };
        // A comment: {{/* ... */}}
        let trimmed = body_start.trim_start_matches(is_space);
        if trimmed.starts_with("/*") {
            let Some(end) = trimmed.find("*/") else { return err(line, "unclosed comment") };
            let tail = &trimmed[end + 2..];
            let tail2 = tail.trim_start_matches(is_space);
            let (trim_right, close_rest) = if let Some(t) = tail2.strip_prefix("-}}") {
                (true, t)
            } else if let Some(t) = tail.strip_prefix("}}") {
                (false, t)
            } else {
                return err(line, "comment ends before closing delimiter");
            };
            line += trimmed[..end].matches('\n').count();
            trim_next = trim_right;
            rest = close_rest;
            continue;
        }
        let (toks, consumed, trim_right) = lex_action(body_start, line)?;
        line += body_start[..consumed].matches('\n').count();
        items.push(Item::Action { toks, line });
        trim_next = trim_right;
        rest = &body_start[consumed..];
    }
    Ok(items)
}

/// Lexes one action body; returns its tokens, the bytes consumed (through `}}`) and whether it ended with `-}}`.
fn lex_action(s: &str, line: usize) -> Result<(Vec<Tok>, usize, bool)> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut depth = 0usize;
    loop {
        if i >= b.len() {
            return err(line, "unclosed action");
        }
        let c = b[i];
        if c == b'}' && b.get(i + 1) == Some(&b'}') {
            if depth > 0 {
                return err(line, "unclosed left paren");
            }
            return Ok((trim_space(toks), i + 2, false));
        }
        if is_space(c as char) {
            let start = i;
            while i < b.len() && is_space(b[i] as char) {
                i += 1;
            }
            if b.get(i) == Some(&b'-') && b.get(i + 1) == Some(&b'}') && b.get(i + 2) == Some(&b'}') {
                if depth > 0 {
                    return err(line, "unclosed left paren");
                }
                return Ok((trim_space(toks), i + 3, true));
            }
            let _ = start;
            toks.push(Tok::Space);
            continue;
        }
        match c {
            b'|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            b'(' => {
                depth += 1;
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                if depth == 0 {
                    return err(line, "unexpected right paren");
                }
                depth -= 1;
                toks.push(Tok::RParen);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            b'=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            b'"' => {
                let (v, n) = lex_quoted(&s[i..], line)?;
                toks.push(Tok::Str(v));
                i += n;
            }
            b'`' => {
                let Some(end) = s[i + 1..].find('`') else { return err(line, "unterminated raw quoted string") };
                toks.push(Tok::Str(s[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            b'\'' => {
                // A character constant: its code point as a number.
                let rest = &s[i + 1..];
                let mut chars = rest.char_indices();
                let (ch, len) = match chars.next() {
                    Some((_, '\\')) => {
                        let (_, e) =
                            chars.next().ok_or_else(|| Error(format!("template: :{line}: bad character constant")))?;
                        (unescape_char(e).unwrap_or(e), 1 + e.len_utf8())
                    }
                    Some((_, ch)) => (ch, ch.len_utf8()),
                    None => return err(line, "unterminated character constant"),
                };
                if !rest[len..].starts_with('\'') {
                    return err(line, "unterminated character constant");
                }
                toks.push(Tok::Num((ch as u32).to_string()));
                i += len + 2;
            }
            b'$' => {
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                toks.push(Tok::Var(s[start..i].to_string()));
            }
            b'.' => {
                if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    let n = lex_number(&s[i..]);
                    toks.push(Tok::Num(s[i..i + n].to_string()));
                    i += n;
                    continue;
                }
                let start = i + 1;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                    i += 1;
                }
                if i == start {
                    toks.push(Tok::Dot);
                } else {
                    toks.push(Tok::Field(s[start..i].to_string()));
                }
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let n = lex_number(&s[i..]);
                if n == 0 || (n == 1 && !c.is_ascii_digit()) {
                    return err(line, format!("bad character {:?}", c as char));
                }
                toks.push(Tok::Num(s[i..i + n].to_string()));
                i += n;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                    i += 1;
                }
                toks.push(Tok::Ident(s[start..i].to_string()));
            }
            other => return err(line, format!("unexpected {:?} in command", other as char)),
        }
    }
}

fn trim_space(mut toks: Vec<Tok>) -> Vec<Tok> {
    while toks.first() == Some(&Tok::Space) {
        toks.remove(0);
    }
    while toks.last() == Some(&Tok::Space) {
        toks.pop();
    }
    toks
}

fn lex_number(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
        // exponent signs
        if (b[i] == b'e' || b[i] == b'E')
            && matches!(b.get(i + 1), Some(b'-') | Some(b'+'))
            && !s[..i].starts_with("0x")
        {
            i += 2;
            continue;
        }
        i += 1;
    }
    i
}

fn unescape_char(c: char) -> Option<char> {
    Some(match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        '\\' => '\\',
        '"' => '"',
        '\'' => '\'',
        '0' => '\0',
        'a' => '\x07',
        'b' => '\x08',
        'f' => '\x0c',
        'v' => '\x0b',
        _ => return None,
    })
}

/// Lexes a Go interpreted string literal starting at `"`; returns the value and the bytes consumed.
fn lex_quoted(s: &str, line: usize) -> Result<(String, usize)> {
    let mut out = String::new();
    let mut it = s.char_indices().skip(1);
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => return err(line, "unterminated quoted string"),
            '\\' => {
                let Some((_, e)) = it.next() else { return err(line, "unterminated quoted string") };
                match e {
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut hex = String::new();
                        for _ in 0..n {
                            match it.next() {
                                Some((_, h)) => hex.push(h),
                                None => return err(line, "unterminated quoted string"),
                            }
                        }
                        let v = u32::from_str_radix(&hex, 16)
                            .map_err(|_| Error(format!("template: :{line}: bad escape")))?;
                        out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    }
                    e => match unescape_char(e) {
                        Some(u) => out.push(u),
                        None => return err(line, "invalid syntax"),
                    },
                }
            }
            c => out.push(c),
        }
    }
    err(line, "unterminated quoted string")
}

// ------------------------------------------------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If { pipe: Pipeline, then: Vec<Node>, otherwise: Vec<Node> },
    Range { pipe: Pipeline, body: Vec<Node>, otherwise: Vec<Node> },
    With { pipe: Pipeline, body: Vec<Node>, otherwise: Vec<Node> },
    Break,
    Continue,
}

#[derive(Debug, Clone)]
struct Pipeline {
    line: usize,
    /// Variables declared (`:=`) or assigned (`=`).
    vars: Vec<String>,
    declare: bool,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<Operand>,
}

#[derive(Debug, Clone)]
enum Term {
    Dot,
    Var(String),
    Func(String),
    Lit(Value),
    Nil,
    Sub(Box<Pipeline>),
}

#[derive(Debug, Clone)]
struct Operand {
    term: Term,
    fields: Vec<String>,
}

enum Closer {
    Eof,
    End(usize),
    /// `{{else ...}}` with the tokens after `else`.
    Else(usize, Vec<Tok>),
}

struct Parser {
    items: Vec<Item>,
    pos: usize,
}

impl Parser {
    fn parse_list(&mut self) -> Result<(Vec<Node>, Closer)> {
        let mut nodes = Vec::new();
        while self.pos < self.items.len() {
            let item = self.items[self.pos].clone();
            self.pos += 1;
            match item {
                Item::Text(t) => nodes.push(Node::Text(t)),
                Item::Action { toks, line } => {
                    let keyword = match toks.first() {
                        Some(Tok::Ident(k)) => k.as_str(),
                        _ => "",
                    };
                    let rest = || trim_space(toks[1..].to_vec());
                    match keyword {
                        "end" => return Ok((nodes, Closer::End(line))),
                        "else" => return Ok((nodes, Closer::Else(line, rest()))),
                        "if" => nodes.push(self.parse_if(rest(), line)?),
                        "range" | "with" => {
                            let pipe = parse_pipeline(&rest(), line, keyword == "range")?;
                            let (body, end) = self.parse_list()?;
                            let otherwise = match end {
                                Closer::End(_) => Vec::new(),
                                Closer::Else(l, toks) if toks.is_empty() => {
                                    let (o, end) = self.parse_list()?;
                                    self.expect_end(end, l)?;
                                    o
                                }
                                Closer::Else(l, toks)
                                    if keyword == "with" && toks.first() == Some(&Tok::Ident("with".into())) =>
                                {
                                    vec![self.parse_with_chain(trim_space(toks[1..].to_vec()), l)?]
                                }
                                Closer::Else(l, _) => {
                                    return err(l, format!("unexpected tokens after else in {keyword}"));
                                }
                                Closer::Eof => return err(line, format!("unexpected EOF in {keyword}")),
                            };
                            nodes.push(if keyword == "range" {
                                Node::Range { pipe, body, otherwise }
                            } else {
                                Node::With { pipe, body, otherwise }
                            });
                        }
                        "break" => nodes.push(Node::Break),
                        "continue" => nodes.push(Node::Continue),
                        "define" | "template" | "block" => {
                            return err(line, format!("{{{{{keyword}}}}} is not supported"));
                        }
                        "nil" if toks.len() == 1 => return err(line, "nil is not a command"),
                        _ => nodes.push(Node::Action(parse_pipeline(&toks, line, false)?)),
                    }
                }
            }
        }
        Ok((nodes, Closer::Eof))
    }

    fn expect_end(&self, end: Closer, line: usize) -> Result<()> {
        match end {
            Closer::End(_) => Ok(()),
            Closer::Else(l, _) => err(l, "expected end; found {{else}}"),
            Closer::Eof => err(line, "unexpected EOF"),
        }
    }

    fn parse_with_chain(&mut self, toks: Vec<Tok>, line: usize) -> Result<Node> {
        let pipe = parse_pipeline(&toks, line, false)?;
        let (body, end) = self.parse_list()?;
        let otherwise = self.parse_else(end, line, "with")?;
        Ok(Node::With { pipe, body, otherwise })
    }

    fn parse_else(&mut self, end: Closer, line: usize, kw: &str) -> Result<Vec<Node>> {
        match end {
            Closer::End(_) => Ok(Vec::new()),
            Closer::Else(l, toks) if toks.is_empty() => {
                let (o, end) = self.parse_list()?;
                self.expect_end(end, l)?;
                Ok(o)
            }
            Closer::Else(l, toks) if toks.first() == Some(&Tok::Ident(kw.into())) => {
                let rest = trim_space(toks[1..].to_vec());
                Ok(vec![if kw == "if" { self.parse_if(rest, l)? } else { self.parse_with_chain(rest, l)? }])
            }
            Closer::Else(l, _) => err(l, "unexpected tokens after else"),
            Closer::Eof => err(line, format!("unexpected EOF in {kw}")),
        }
    }

    fn parse_if(&mut self, toks: Vec<Tok>, line: usize) -> Result<Node> {
        let pipe = parse_pipeline(&toks, line, false)?;
        let (then, end) = self.parse_list()?;
        let otherwise = self.parse_else(end, line, "if")?;
        Ok(Node::If { pipe, then, otherwise })
    }
}

fn parse_pipeline(toks: &[Tok], line: usize, range: bool) -> Result<Pipeline> {
    let mut pos = 0;
    let mut vars = Vec::new();
    let mut declare = false;
    // Declarations: `$x :=`, `$x =`, or (range) `$i, $v :=`.
    let skip = |pos: &mut usize| {
        while toks.get(*pos) == Some(&Tok::Space) {
            *pos += 1;
        }
    };
    {
        let mut p = 0;
        let mut names = Vec::new();
        loop {
            skip(&mut p);
            match toks.get(p) {
                Some(Tok::Var(v)) => {
                    names.push(v.clone());
                    p += 1;
                }
                _ => break,
            }
            skip(&mut p);
            match toks.get(p) {
                Some(Tok::Comma) if range && names.len() == 1 => {
                    p += 1;
                }
                Some(Tok::Declare) => {
                    declare = true;
                    p += 1;
                    vars = names.clone();
                    pos = p;
                    break;
                }
                Some(Tok::Assign) => {
                    p += 1;
                    vars = names.clone();
                    pos = p;
                    break;
                }
                _ => break,
            }
        }
    }
    let (cmds, used) = parse_cmds(&toks[pos..], line, false)?;
    if pos + used < toks.len() {
        return err(line, "unexpected right paren");
    }
    if cmds.is_empty() {
        return err(line, "missing value for command");
    }
    Ok(Pipeline { line, vars, declare, cmds })
}

/// Parses commands until the end of the tokens or (in a parenthesised pipeline) a `)`; returns the tokens used.
fn parse_cmds(toks: &[Tok], line: usize, nested: bool) -> Result<(Vec<Cmd>, usize)> {
    let mut cmds = Vec::new();
    let mut args = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Space => i += 1,
            Tok::Pipe => {
                if args.is_empty() {
                    return err(line, "missing command before |");
                }
                cmds.push(Cmd { args: std::mem::take(&mut args) });
                i += 1;
            }
            Tok::RParen if nested => {
                break;
            }
            _ => {
                let (op, n) = parse_operand(&toks[i..], line)?;
                args.push(op);
                i += n;
                if let Some(t) = toks.get(i)
                    && !matches!(t, Tok::Space | Tok::Pipe | Tok::RParen)
                {
                    return err(line, format!("unexpected {t:?} in operand"));
                }
            }
        }
    }
    if !args.is_empty() {
        cmds.push(Cmd { args });
    } else if !cmds.is_empty() {
        return err(line, "missing command after |");
    }
    Ok((cmds, i))
}

fn parse_operand(toks: &[Tok], line: usize) -> Result<(Operand, usize)> {
    let mut i = 1;
    let mut fields = Vec::new();
    let term = match &toks[0] {
        Tok::Dot => Term::Dot,
        Tok::Field(f) => {
            fields.push(f.clone());
            Term::Dot
        }
        Tok::Var(v) => Term::Var(v.clone()),
        Tok::Str(s) => Term::Lit(Value::String(s.clone())),
        Tok::Num(n) => {
            Term::Lit(parse_number(n).ok_or_else(|| Error(format!("template: :{line}: bad number syntax: {n:?}")))?)
        }
        Tok::Ident(id) => match id.as_str() {
            "true" => Term::Lit(Value::Bool(true)),
            "false" => Term::Lit(Value::Bool(false)),
            "nil" => Term::Nil,
            _ if FUNCS.contains(&id.as_str()) => Term::Func(id.clone()),
            _ => return err(line, format!("function {id:?} not defined")),
        },
        Tok::LParen => {
            let (cmds, used) = parse_cmds(&toks[1..], line, true)?;
            if toks.get(1 + used) != Some(&Tok::RParen) {
                return err(line, "unclosed left paren");
            }
            if cmds.is_empty() {
                return err(line, "missing value for parenthesized pipeline");
            }
            i = used + 2;
            Term::Sub(Box::new(Pipeline { line, vars: Vec::new(), declare: false, cmds }))
        }
        t => return err(line, format!("unexpected {t:?} in operand")),
    };
    while let Some(Tok::Field(f)) = toks.get(i) {
        fields.push(f.clone());
        i += 1;
    }
    Ok((Operand { term, fields }, i))
}

fn parse_number(s: &str) -> Option<Value> {
    let clean = s.replace('_', "");
    if let Ok(i) = clean.parse::<i64>() {
        return Some(Value::from(i));
    }
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, clean.trim_start_matches('+')),
    };
    for (prefix, radix) in [("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2)] {
        if let Some(d) = body.strip_prefix(prefix) {
            let v = i64::from_str_radix(d, radix).ok()?;
            return Some(Value::from(if neg { -v } else { v }));
        }
    }
    clean.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number)
}

// ------------------------------------------------------------------------------------------------------------------
// Execution

const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt", "le", "gt", "ge",
    "json", "join", "split", "lower", "upper", "title", "truncate", "pad", "html", "js", "urlquery", "call",
];

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'m> {
    vars: Vec<(String, Value)>,
    out: String,
    methods: Methods<'m>,
}

impl Exec<'_> {
    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow> {
        for n in nodes {
            match self.node(n, dot)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn node(&mut self, n: &Node, dot: &Value) -> Result<Flow> {
        match n {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(p) => {
                let v = self.pipeline(p, dot)?;
                if p.vars.is_empty() {
                    self.out.push_str(&print_value(&v));
                }
            }
            Node::If { pipe, then, otherwise } => {
                let mark = self.vars.len();
                let v = self.pipeline(pipe, dot)?;
                let r = if truthy(&v) { self.nodes(then, dot) } else { self.nodes(otherwise, dot) };
                self.vars.truncate(mark);
                return r;
            }
            Node::With { pipe, body, otherwise } => {
                let mark = self.vars.len();
                let v = self.pipeline(pipe, dot)?;
                let r = if truthy(&v) { self.nodes(body, &v) } else { self.nodes(otherwise, dot) };
                self.vars.truncate(mark);
                return r;
            }
            Node::Range { pipe, body, otherwise } => {
                let mark = self.vars.len();
                // The range's own variables are set per element, not to the pipeline's value.
                let plain = Pipeline { vars: Vec::new(), declare: false, ..pipe.clone() };
                let v = self.pipeline(&plain, dot)?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Array(a) => a.iter().enumerate().map(|(i, x)| (Value::from(i), x.clone())).collect(),
                    Value::Object(m) => m.iter().map(|(k, x)| (Value::String(k.clone()), x.clone())).collect(),
                    Value::Null => Vec::new(),
                    Value::Number(n) if n.as_i64().is_some() => {
                        (0..n.as_i64().unwrap_or(0)).map(|i| (Value::from(i), Value::from(i))).collect()
                    }
                    other => return err(pipe.line, format!("range can't iterate over {}", print_value(other))),
                };
                if items.is_empty() {
                    let r = self.nodes(otherwise, dot);
                    self.vars.truncate(mark);
                    return r;
                }
                for (k, x) in items {
                    let inner = self.vars.len();
                    match pipe.vars.as_slice() {
                        [] => {}
                        [v] => self.set_var(v, x.clone(), pipe.declare),
                        [kv, vv, ..] => {
                            self.set_var(kv, k, pipe.declare);
                            self.set_var(vv, x.clone(), pipe.declare);
                        }
                    }
                    let flow = self.nodes(body, &x)?;
                    self.vars.truncate(inner);
                    if let Flow::Break = flow {
                        break;
                    }
                }
                self.vars.truncate(mark);
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn set_var(&mut self, name: &str, v: Value, declare: bool) {
        if !declare && let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
            return;
        }
        self.vars.push((name.to_string(), v));
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value> {
        let mut prev: Option<Value> = None;
        for c in &p.cmds {
            prev = Some(self.command(c, dot, prev, p.line)?);
        }
        let v = prev.unwrap_or(Value::Null);
        for name in &p.vars {
            if !p.declare && !self.vars.iter().any(|(n, _)| n == name) {
                return err(p.line, format!("undefined variable: {name}"));
            }
            self.set_var(name, v.clone(), p.declare);
        }
        Ok(v)
    }

    fn command(&mut self, c: &Cmd, dot: &Value, prev: Option<Value>, line: usize) -> Result<Value> {
        let first = &c.args[0];
        if let Term::Func(name) = &first.term
            && first.fields.is_empty()
        {
            let mut args = Vec::new();
            for a in &c.args[1..] {
                args.push(self.operand(a, dot, line)?);
            }
            args.extend(prev);
            return call(name, args, line);
        }
        let v = self.operand(first, dot, line)?;
        let has_args = c.args.len() > 1 || prev.is_some();
        if !has_args {
            return Ok(v);
        }
        // A field with arguments: docker's formatter methods such as `.Label "key"` index what the field names.
        if first.fields.is_empty() {
            return err(line, format!("can't give argument to non-function {}", print_value(&v)));
        }
        let mut args = Vec::new();
        for a in &c.args[1..] {
            args.push(self.operand(a, dot, line)?);
        }
        args.extend(prev);
        if let Some(name) = first.fields.last()
            && let Some(v) = (self.methods)(name, &args)
        {
            return Ok(v);
        }
        match &v {
            Value::Object(m) => {
                let key = args.first().map(str_arg).unwrap_or_default();
                Ok(m.get(&key).cloned().unwrap_or_else(|| Value::String(String::new())))
            }
            Value::String(_) => Ok(v),
            _ => err(line, format!("{} has arguments but cannot be invoked as function", first.fields.join("."))),
        }
    }

    fn operand(&mut self, o: &Operand, dot: &Value, line: usize) -> Result<Value> {
        let base = match &o.term {
            Term::Dot => dot.clone(),
            Term::Var(name) => match self.vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => v.clone(),
                None => return err(line, format!("undefined variable: {name}")),
            },
            Term::Lit(v) => v.clone(),
            Term::Nil => return err(line, "nil is not a command"),
            Term::Func(name) => call(name, Vec::new(), line)?,
            Term::Sub(p) => self.pipeline(p, dot)?,
        };
        let mut v = base;
        for f in &o.fields {
            v = match v {
                Value::Object(mut m) => field(&mut m, f),
                Value::Null => Value::Null,
                other => {
                    return err(line, format!("can't evaluate field {f} in type {}", go_type(&other)));
                }
            };
        }
        Ok(v)
    }
}

/// A field of an object. Docker's templates run on Go structs whose field names can differ from the JSON keys
/// only in case (`ID` for `Id`, `APIVersion` for `ApiVersion`), so a key that is not there exactly is looked up
/// case-insensitively.
fn field(m: &mut Map<String, Value>, name: &str) -> Value {
    if let Some(v) = m.remove(name) {
        return v;
    }
    let key = m.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned();
    key.and_then(|k| m.remove(&k)).unwrap_or(Value::Null)
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's truth: false, 0, nil and empty strings, arrays and maps are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// How `{{.X}}` prints a value: Go's `fmt.Print`, with `<no value>` for nothing.
pub fn print_value(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        other => fmt_value(other),
    }
}

/// Go's `%v` of a decoded JSON value: `map[a:1 b:[x y]]`, integers without a fraction.
pub fn fmt_value(v: &Value) -> String {
    let mut s = String::new();
    write_value(&mut s, v);
    s
}

fn write_value(s: &mut String, v: &Value) {
    match v {
        Value::Null => s.push_str("<nil>"),
        Value::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => s.push_str(&fmt_number(n)),
        Value::String(x) => s.push_str(x),
        Value::Array(a) => {
            s.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                write_value(s, x);
            }
            s.push(']');
        }
        Value::Object(m) => {
            s.push_str("map[");
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(k);
                s.push(':');
                write_value(s, &m[k.as_str()]);
            }
            s.push(']');
        }
    }
}

fn fmt_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e21 { format!("{f:.0}") } else { f.to_string() }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn as_i64(v: &Value, what: &str, line: usize) -> Result<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| Error(format!("template: :{line}: {what}: cannot use {} as int", print_value(v))))
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value, line: usize) -> Result<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => {
            let (x, y) = (as_f64(a).unwrap_or(0.0), as_f64(b).unwrap_or(0.0));
            x.partial_cmp(&y).ok_or_else(|| Error(format!("template: :{line}: incomparable values")))
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => err(line, "incompatible types for comparison"),
    }
}

fn want(name: &str, args: &[Value], n: usize, line: usize) -> Result<()> {
    if args.len() != n {
        return err(line, format!("wrong number of args for {name}: want {n} got {}", args.len()));
    }
    Ok(())
}

fn str_arg(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => fmt_value(other),
    }
}

fn call(name: &str, args: Vec<Value>, line: usize) -> Result<Value> {
    Ok(match name {
        "and" => {
            if args.is_empty() {
                return err(line, "wrong number of args for and: want at least 1 got 0");
            }
            args.iter().find(|a| !truthy(a)).unwrap_or(&args[args.len() - 1]).clone()
        }
        "or" => {
            if args.is_empty() {
                return err(line, "wrong number of args for or: want at least 1 got 0");
            }
            args.iter().find(|a| truthy(a)).unwrap_or(&args[args.len() - 1]).clone()
        }
        "not" => {
            want(name, &args, 1, line)?;
            Value::Bool(!truthy(&args[0]))
        }
        "len" => {
            want(name, &args, 1, line)?;
            Value::from(match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                other => return err(line, format!("error calling len: len of type {}", go_type(other))),
            })
        }
        "index" => {
            if args.is_empty() {
                return err(line, "wrong number of args for index: want at least 1 got 0");
            }
            let mut v = args[0].clone();
            for k in &args[1..] {
                v = match v {
                    Value::Object(mut m) => m.remove(&str_arg(k)).unwrap_or(Value::Null),
                    Value::Array(a) => {
                        let i = as_i64(k, "index", line)?;
                        match usize::try_from(i).ok().and_then(|i| a.get(i)) {
                            Some(x) => x.clone(),
                            None => return err(line, format!("error calling index: index out of range: {i}")),
                        }
                    }
                    Value::String(s) => {
                        let i = as_i64(k, "index", line)?;
                        match usize::try_from(i).ok().and_then(|i| s.as_bytes().get(i)) {
                            Some(b) => Value::from(*b),
                            None => return err(line, format!("error calling index: index out of range: {i}")),
                        }
                    }
                    Value::Null => return err(line, "error calling index: index of untyped nil"),
                    other => {
                        return err(line, format!("error calling index: can't index item of type {}", go_type(&other)));
                    }
                };
            }
            v
        }
        "slice" => {
            if args.is_empty() {
                return err(line, "wrong number of args for slice: want at least 1 got 0");
            }
            let idx: Vec<i64> = args[1..].iter().map(|a| as_i64(a, "slice", line)).collect::<Result<_>>()?;
            let len = match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                other => return err(line, format!("error calling slice: can't slice item of type {}", go_type(other))),
            } as i64;
            let from = idx.first().copied().unwrap_or(0);
            let to = idx.get(1).copied().unwrap_or(len);
            if from < 0 || to < from || to > len {
                return err(line, format!("error calling slice: index out of range: {to}"));
            }
            let (from, to) = (from as usize, to as usize);
            match &args[0] {
                Value::String(s) => Value::String(String::from_utf8_lossy(&s.as_bytes()[from..to]).into_owned()),
                Value::Array(a) => Value::Array(a[from..to].to_vec()),
                _ => Value::Null,
            }
        }
        "print" => Value::String(go_sprint(&args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(fmt_value).collect();
            Value::String(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            if args.is_empty() {
                return err(line, "wrong number of args for printf: want at least 1 got 0");
            }
            Value::String(sprintf(&str_arg(&args[0]), &args[1..]))
        }
        "eq" => {
            if args.len() < 2 {
                return err(line, "wrong number of args for eq: want at least 2");
            }
            Value::Bool(args[1..].iter().any(|b| values_equal(&args[0], b)))
        }
        "ne" => {
            want(name, &args, 2, line)?;
            Value::Bool(!values_equal(&args[0], &args[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, &args, 2, line)?;
            let o = compare(&args[0], &args[1], line)?;
            Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "json" => {
            want(name, &args, 1, line)?;
            Value::String(serde_json::to_string(&args[0]).map_err(|e| Error(format!("template: :{line}: json: {e}")))?)
        }
        "join" => {
            want(name, &args, 2, line)?;
            let sep = str_arg(&args[1]);
            match &args[0] {
                Value::Array(a) => Value::String(a.iter().map(str_arg).collect::<Vec<_>>().join(&sep)),
                Value::Null => Value::String(String::new()),
                Value::String(s) => Value::String(s.clone()),
                other => return err(line, format!("error calling join: wrong type {}", go_type(other))),
            }
        }
        "split" => {
            want(name, &args, 2, line)?;
            let (s, sep) = (str_arg(&args[0]), str_arg(&args[1]));
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep.as_str()).map(|p| Value::String(p.to_string())).collect()
            };
            Value::Array(parts)
        }
        "lower" => {
            want(name, &args, 1, line)?;
            Value::String(str_arg(&args[0]).to_lowercase())
        }
        "upper" => {
            want(name, &args, 1, line)?;
            Value::String(str_arg(&args[0]).to_uppercase())
        }
        "title" => {
            want(name, &args, 1, line)?;
            Value::String(title(&str_arg(&args[0])))
        }
        "truncate" => {
            want(name, &args, 2, line)?;
            let s = str_arg(&args[0]);
            let n = as_i64(&args[1], "truncate", line)?.max(0) as usize;
            Value::String(if s.chars().count() <= n { s } else { s.chars().take(n).collect() })
        }
        "pad" => {
            want(name, &args, 3, line)?;
            let before = as_i64(&args[1], "pad", line)?.max(0) as usize;
            let after = as_i64(&args[2], "pad", line)?.max(0) as usize;
            Value::String(format!("{}{}{}", " ".repeat(before), str_arg(&args[0]), " ".repeat(after)))
        }
        "html" => Value::String(
            go_sprint(&args)
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
                .replace('\'', "&#39;"),
        ),
        "js" => Value::String(
            go_sprint(&args)
                .replace('\\', "\\\\")
                .replace('\'', "\\'")
                .replace('"', "\\\"")
                .replace('<', "\\u003C")
                .replace('>', "\\u003E"),
        ),
        "urlquery" => Value::String(crate::client::encode_component(&go_sprint(&args))),
        _ => return err(line, format!("function {name:?} not defined")),
    })
}

/// Go's `strings.Title`: the first letter of each word in upper case.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
fn go_sprint(args: &[Value]) -> String {
    let mut s = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::String(_)) && !matches!(args[i - 1], Value::String(_)) {
            s.push(' ');
        }
        s.push_str(&fmt_value(a));
    }
    s
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %q %t %x %X %f %g %e %c %%`, with flags, width and
/// precision.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut argi = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero, mut space, mut sharp) = (false, false, false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => sharp = true,
                _ => break,
            }
            chars.next();
        }
        let mut width: Option<usize> = None;
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width = Some(width.unwrap_or(0) * 10 + d.to_digit(10).unwrap_or(0) as usize);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            prec = Some(0);
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                prec = Some(prec.unwrap_or(0) * 10 + d.to_digit(10).unwrap_or(0) as usize);
                chars.next();
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        argi += 1;
        let body = match (verb, arg) {
            ('v', _) => fmt_value(arg),
            ('s', Value::String(s)) => match prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            },
            ('s', Value::Array(_) | Value::Object(_) | Value::Null) => fmt_value(arg),
            ('q', Value::String(s)) => go_quote(s),
            ('t', Value::Bool(b)) => b.to_string(),
            ('d', Value::Number(n)) if n.as_i64().is_some() => {
                let i = n.as_i64().unwrap_or(0);
                let mut s = i.abs().to_string();
                if i < 0 {
                    s.insert(0, '-');
                } else if plus {
                    s.insert(0, '+');
                } else if space {
                    s.insert(0, ' ');
                }
                s
            }
            ('c', Value::Number(n)) => {
                n.as_u64().and_then(|u| char::from_u32(u as u32)).map(String::from).unwrap_or_default()
            }
            ('x' | 'X', Value::Number(n)) if n.as_i64().is_some() => {
                let i = n.as_i64().unwrap_or(0);
                let s = if verb == 'x' { format!("{:x}", i.unsigned_abs()) } else { format!("{:X}", i.unsigned_abs()) };
                let s = if sharp { format!("0x{s}") } else { s };
                if i < 0 { format!("-{s}") } else { s }
            }
            ('x' | 'X', Value::String(s)) => {
                let h: String = s.bytes().map(|b| format!("{b:02x}")).collect();
                if verb == 'X' { h.to_uppercase() } else { h }
            }
            ('f' | 'F' | 'e' | 'g', Value::Number(n)) => {
                let f = n.as_f64().unwrap_or(0.0);
                let s = match verb {
                    'e' => format!("{:.*e}", prec.unwrap_or(6), f),
                    'g' => match prec {
                        Some(p) => crate::units::format_g(f, p),
                        None => f.to_string(),
                    },
                    _ => format!("{:.*}", prec.unwrap_or(6), f),
                };
                if plus && f >= 0.0 { format!("+{s}") } else { s }
            }
            (v, a) => format!("%!{v}({}={})", go_type(a), fmt_value(a)),
        };
        let len = body.chars().count();
        match width {
            Some(w) if w > len => {
                let pad = w - len;
                if minus {
                    out.push_str(&body);
                    out.push_str(&" ".repeat(pad));
                } else if zero && matches!(verb, 'd' | 'f' | 'x' | 'X' | 'e' | 'g') {
                    let (sign, digits) = match body.strip_prefix('-') {
                        Some(d) => ("-", d),
                        None => ("", body.as_str()),
                    };
                    out.push_str(sign);
                    out.push_str(&"0".repeat(pad));
                    out.push_str(digits);
                } else {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(&body);
                }
            }
            _ => out.push_str(&body),
        }
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..].iter().map(|a| format!("{}={}", go_type(a), fmt_value(a))).collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: &Value) -> String {
        match render(t, v) {
            Ok(s) => s,
            Err(e) => format!("ERR {e}"),
        }
    }

    fn inspect_data() -> Value {
        json!({
            "Id": "abc123",
            "Name": "/life2",
            "State": {"Status": "exited", "ExitCode": 137, "Pid": 0, "Running": false, "StartedAt": "2024-01-01T00:00:00Z"},
            "Config": {"Entrypoint": ["echo"], "Cmd": ["Hello from CMD"], "Env": ["A=1", "PATH=/bin"], "Labels": {"b": "2", "a": "1"}, "Tty": false},
            "Ratio": 1.5,
            "Empty": [],
            "Nothing": null,
        })
    }

    #[test]
    fn fields_and_nesting() {
        let d = inspect_data();
        assert_eq!(r("{{.State.Status}} {{.State.ExitCode}}", &d), "exited 137");
        assert_eq!(r("{{.Name}}", &d), "/life2");
        assert_eq!(r("{{.Id}}", &d), "abc123");
        assert_eq!(r("{{.State.Pid}}", &d), "0");
        assert_eq!(r("{{.Missing}}", &d), "<no value>");
        assert_eq!(r("{{.ID}}", &d), "abc123");
        assert_eq!(r("{{.Server.APIVersion}}", &json!({"Server": {"ApiVersion": "1.53"}})), "1.53");
        assert_eq!(r("{{.Missing.Deeper}}", &d), "<no value>");
        assert_eq!(r("{{.Nothing}}", &d), "<no value>");
        assert_eq!(r("{{.Ratio}}", &d), "1.5");
        assert_eq!(r("{{.State.Running}}", &d), "false");
        assert!(r("{{.Name.Foo}}", &d).contains("can't evaluate field Foo in type string"));
        assert_eq!(r("{{.}}", &json!("x")), "x");
        assert_eq!(r("a{{/* comment */}}b", &d), "ab");
    }

    #[test]
    fn go_value_printing() {
        let d = inspect_data();
        assert_eq!(r("{{.Config.Env}}", &d), "[A=1 PATH=/bin]");
        assert_eq!(r("{{.Config.Labels}}", &d), "map[a:1 b:2]");
        assert_eq!(r("{{.Empty}}", &d), "[]");
        assert_eq!(fmt_value(&json!({"x": null, "y": [1, {"z": true}]})), "map[x:<nil> y:[1 map[z:true]]]");
        assert_eq!(fmt_value(&json!(3.0)), "3");
    }

    #[test]
    fn json_function_and_pipelines() {
        let d = inspect_data();
        assert_eq!(r("{{json .Config.Entrypoint}} {{json .Config.Cmd}}", &d), r#"["echo"] ["Hello from CMD"]"#);
        assert_eq!(r("{{.Config.Labels | json}}", &d), r#"{"a":"1","b":"2"}"#);
        assert_eq!(r("{{json .Nothing}}", &d), "null");
        assert_eq!(r("{{json .Name}}", &d), r#""/life2""#);
        assert_eq!(r("{{.Name | printf \"%s!\"}}", &d), "/life2!");
        assert_eq!(r("{{(index .Config.Env 1)}}", &d), "PATH=/bin");
        assert_eq!(r("{{(split (index .Config.Env 1) \"=\")}}", &d), "[PATH /bin]");
        assert_eq!(r("{{index (split (index .Config.Env 1) \"=\") 1}}", &d), "/bin");
        assert!(r("{{(json .State).Foo}}", &d).starts_with("ERR"));
    }

    #[test]
    fn functions() {
        let d = inspect_data();
        assert_eq!(r("{{join .Config.Env \",\"}}", &d), "A=1,PATH=/bin");
        assert_eq!(
            r("{{lower \"ABC\"}} {{upper .State.Status}} {{title \"hello world\"}}", &d),
            "abc EXITED Hello World"
        );
        assert_eq!(r("{{truncate .Id 3}}", &d), "abc");
        assert_eq!(r("{{len .Config.Env}} {{len .Name}}", &d), "2 6");
        assert_eq!(r("{{index .Config.Labels \"a\"}}", &d), "1");
        assert_eq!(r("{{index .Config.Labels \"zz\"}}", &d), "<no value>");
        assert_eq!(r("{{println .Name}}", &d), "/life2\n");
        assert_eq!(r("{{print 1 2 \"a\" \"b\" 3}}", &d), "1 2ab3");
        assert_eq!(
            r("{{printf \"%d-%s-%v-%5s|%-4s|%03d|%q\" 7 \"x\" .Config.Env \"ab\" \"c\" 5 \"q\"}}", &d),
            "7-x-[A=1 PATH=/bin]-   ab|c   |005|\"q\""
        );
        assert_eq!(r("{{pad \"x\" 1 2}}|", &d), " x  |");
        assert_eq!(r("{{eq .State.Status \"exited\"}} {{ne 1 2}} {{lt 1 2}} {{ge 2 3}}", &d), "true true true false");
        assert_eq!(r("{{eq .State.ExitCode 1 137}}", &d), "true");
        assert_eq!(r("{{and 1 0}} {{or 0 \"\" \"x\"}} {{not true}}", &d), "0 x false");
        assert_eq!(r("{{slice .Id 1 3}}", &d), "bc");
        assert!(r("{{nosuch .Id}}", &d).contains("function \"nosuch\" not defined"));
    }

    #[test]
    fn control_flow() {
        let d = inspect_data();
        assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}", &d), "down");
        assert_eq!(r("{{if .Missing}}a{{else if .Name}}b{{else}}c{{end}}", &d), "b");
        assert_eq!(r("{{range .Config.Env}}[{{.}}]{{end}}", &d), "[A=1][PATH=/bin]");
        assert_eq!(r("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", &d), "a=1;b=2;");
        assert_eq!(r("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}", &d), "0:A=1 1:PATH=/bin ");
        assert_eq!(r("{{range .Empty}}x{{else}}none{{end}}", &d), "none");
        assert_eq!(r("{{with .State}}{{.Status}}{{end}}", &d), "exited");
        assert_eq!(r("{{with .Missing}}x{{else}}y{{end}}", &d), "y");
        assert_eq!(r("{{$n := .Name}}{{$n}}", &d), "/life2");
        assert_eq!(r("{{range .Config.Env}}{{$.Name}} {{end}}", &d), "/life2 /life2 ");
        assert_eq!(r("{{range .Config.Env}}{{if eq . \"PATH=/bin\"}}{{break}}{{end}}{{.}}{{end}}", &d), "A=1");
        assert_eq!(r("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", &d), "2");
    }

    #[test]
    fn trim_markers_and_errors() {
        let d = inspect_data();
        assert_eq!(r("a  {{- .Id -}}  b", &d), "aabc123b");
        assert_eq!(r("{{- .Id}}\n", &d), "abc123\n");
        assert!(Template::parse("{{.Id").is_err());
        assert!(Template::parse("{{if .Id}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
        assert!(Template::parse("{{.Id | }}").is_err());
        assert_eq!(r("{{ -3 }}", &d), "-3");
        assert_eq!(r("{{\"a\\tb\"}}", &d), "a\tb");
        assert_eq!(r("{{`raw\\n`}}", &d), "raw\\n");
    }

    #[test]
    fn methods_with_arguments() {
        let row = json!({"Label": {"tier": "web"}, "Names": "up1"});
        assert_eq!(r("{{.Label \"tier\"}} {{.Names}}", &row), "web up1");
        assert_eq!(r("{{.Label \"nope\"}}", &row), "");
        let t = Template::parse("{{.Label \"tier\"}}").expect("parse");
        let hook = |name: &str, args: &[Value]| (name == "Label").then(|| json!(format!("<{}>", str_arg(&args[0]))));
        assert_eq!(t.execute_with(&row, &hook).expect("exec"), "<tier>");
    }

    #[test]
    fn quoting() {
        assert_eq!(go_quote("sh -c 'echo \"x\"'"), "\"sh -c 'echo \\\"x\\\"'\"");
        assert_eq!(go_quote("a\u{1}"), "\"a\\x01\"");
    }
}
