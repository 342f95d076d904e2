//! From nodes to typed instructions, as BuildKit's `frontend/dockerfile/instructions` (`parse.go`, `bflag.go`):
//! each instruction's allowed flags, argument counts and validation, with BuildKit's messages.

use std::collections::HashMap;
use std::time::Duration;

use berth_api::units::go_duration_nanos;

use super::InstructionError::{self, Invalid};
use super::ast::{self, Node, RawHeredoc};
use super::mount::parse_mount;
use super::{ArgDecl, Command, CopyArgs, Form, Healthcheck, Heredoc, Instruction, ParseError, Stage};

/// A `FROM` starts a stage; everything else is an instruction.
pub(crate) enum Parsed {
    Stage(Stage),
    Instruction(Instruction),
}

pub(crate) fn parse_node(node: &Node) -> Result<Parsed, ParseError> {
    let at = |e: InstructionError| ParseError::new(node.start_line, e.to_string());
    if node.cmd.eq_ignore_ascii_case("from") {
        return parse_from(node).map(Parsed::Stage).map_err(at);
    }
    let command = parse_command(node, &node.heredocs).map_err(at)?;
    Ok(Parsed::Instruction(Instruction { line: node.start_line, original: node.original.trim().to_owned(), command }))
}

/// A `--flag` an instruction does not take, or a flag's value, in BuildKit's words (`BFlags.Parse`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FlagError {
    /// A flag word without its `--` (as written, without the dashes).
    #[error("arg should start with -- : {0}")]
    NoDashes(String),
    /// A flag the instruction does not take.
    #[error("unknown flag: {0}")]
    Unknown(String),
    /// A flag given twice that takes one value.
    #[error("duplicate flag specified: {0}")]
    Duplicate(String),
    /// `--flag` without `=value` (or a boolean with `=`).
    #[error("missing a value on flag: {0}")]
    MissingValue(String),
    /// A boolean flag whose value is neither `true` nor `false`.
    #[error("expecting boolean value for flag {name}, not: {value}")]
    NotBool {
        /// The flag.
        name: String,
        /// Its value.
        value: String,
    },
}

#[derive(Clone, Copy, PartialEq)]
enum FlagType {
    Bool,
    Str,
    Strings,
}

/// The flags an instruction was given, checked against the ones it allows (BuildKit's `BFlags`). Messages name the
/// flag without its dashes (`unknown flag: foo`), as BuildKit did until 2024 and as Berth's build tests expect;
/// current BuildKit writes `unknown flag: --foo`.
#[derive(Default)]
struct Flags {
    values: HashMap<String, Vec<String>>,
}

impl Flags {
    fn parse(given: &[String], allowed: &[(&str, FlagType)]) -> Result<Flags, FlagError> {
        let mut flags = Flags::default();
        for arg in given {
            let Some(arg) = arg.strip_prefix("--") else {
                return Err(FlagError::NoDashes(arg.clone()));
            };
            if arg.is_empty() {
                break;
            }
            let (name, value) = match arg.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (arg, None),
            };
            let Some(&(_, kind)) = allowed.iter().find(|(n, _)| *n == name) else {
                return Err(FlagError::Unknown(name.to_owned()));
            };
            if kind != FlagType::Strings && flags.values.contains_key(name) {
                return Err(FlagError::Duplicate(name.to_owned()));
            }
            let value = match (kind, value) {
                (FlagType::Bool, None) => "true".to_owned(),
                (FlagType::Bool, Some("")) => return Err(FlagError::MissingValue(name.to_owned())),
                (FlagType::Bool, Some(v)) => match v.to_lowercase().as_str() {
                    lower @ ("true" | "false") => lower.to_owned(),
                    _ => return Err(FlagError::NotBool { name: name.to_owned(), value: v.to_owned() }),
                },
                (_, None) => return Err(FlagError::MissingValue(name.to_owned())),
                (_, Some(v)) => v.to_owned(),
            };
            flags.values.entry(name.to_owned()).or_default().push(value);
        }
        Ok(flags)
    }

    fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last().cloned())
    }

    /// A string flag, `None` when absent or empty (as BuildKit, which cannot tell the two apart).
    fn non_empty(&self, name: &str) -> Option<String> {
        self.string(name).filter(|v| !v.is_empty())
    }

    fn bool(&self, name: &str) -> bool {
        self.string(name).as_deref() == Some("true")
    }

    fn strings(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }
}

fn no_flags(node: &Node) -> Result<(), FlagError> {
    Flags::parse(&node.flags, &[]).map(drop)
}

fn at_least_one(command: &str) -> InstructionError {
    Invalid(format!("{command} requires at least one argument"))
}

fn exactly_one(node: &Node, command: &str) -> Result<String, InstructionError> {
    match node.args.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(Invalid(format!("{command} requires exactly one argument"))),
    }
}

/// BuildKit's `handleJSONArgs`: the JSON array as is, else the words joined into one shell command.
fn form(node: &Node) -> Form {
    if node.json { Form::Exec(node.args.clone()) } else { Form::Shell(node.args.join(" ")) }
}

fn heredoc(raw: &RawHeredoc, chomp: bool) -> Heredoc {
    Heredoc {
        name: raw.name.clone(),
        content: if chomp { chomp_tabs(&raw.content) } else { raw.content.clone() },
        expand: raw.expand,
        chomp,
    }
}

/// `<<-`: leading tabs removed from every line.
fn chomp_tabs(content: &str) -> String {
    content.split_inclusive('\n').map(|line| line.trim_start_matches('\t')).collect()
}

fn parse_from(node: &Node) -> Result<Stage, InstructionError> {
    let name = match node.args.as_slice() {
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            if !valid_stage_name(&lower) {
                return Err(Invalid(format!(
                    "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                )));
            }
            Some(lower)
        }
        [_] => None,
        _ => return Err(Invalid("FROM requires either one or three arguments".to_owned())),
    };
    let flags = Flags::parse(&node.flags, &[("platform", FlagType::Str)])?;
    Ok(Stage {
        index: 0,
        name,
        base: node.args[0].clone(),
        platform: flags.non_empty("platform"),
        line: node.start_line,
        original: node.original.trim().to_owned(),
        instructions: Vec::new(),
    })
}

/// `^[a-z][a-z0-9-_.]*$`.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn parse_command(node: &Node, heredocs: &[RawHeredoc]) -> Result<Command, InstructionError> {
    let cmd = node.cmd.to_lowercase();
    Ok(match cmd.as_str() {
        "run" => {
            let flags = Flags::parse(
                &node.flags,
                &[("mount", FlagType::Strings), ("network", FlagType::Str), ("security", FlagType::Str)],
            )?;
            let mounts = flags.strings("mount").iter().map(|m| parse_mount(m)).collect::<Result<Vec<_>, _>>()?;
            let network = flags.string("network");
            if let Some(n) = &network
                && !matches!(n.as_str(), "default" | "none" | "host")
            {
                return Err(Invalid(format!("invalid network mode {n:?}")));
            }
            let security = flags.string("security");
            if let Some(s) = &security
                && !matches!(s.as_str(), "sandbox" | "insecure")
            {
                return Err(Invalid(format!("security {s:?} is not valid")));
            }
            Command::Run {
                cmd: form(node),
                mounts,
                network,
                security,
                heredocs: heredocs.iter().map(|h| heredoc(h, h.chomp)).collect(),
            }
        }
        "copy" | "add" => {
            let upper = cmd.to_uppercase();
            if node.args.len() < 2 {
                return Err(Invalid(format!(
                    "{upper} requires at least two arguments, but only one was provided. Destination could not be \
                     determined"
                )));
            }
            let allowed: &[(&str, FlagType)] = if cmd == "copy" {
                &[
                    ("chown", FlagType::Str),
                    ("from", FlagType::Str),
                    ("chmod", FlagType::Str),
                    ("link", FlagType::Bool),
                    ("parents", FlagType::Bool),
                    ("exclude", FlagType::Strings),
                ]
            } else {
                &[
                    ("chown", FlagType::Str),
                    ("chmod", FlagType::Str),
                    ("link", FlagType::Bool),
                    ("keep-git-dir", FlagType::Bool),
                    ("checksum", FlagType::Str),
                    ("exclude", FlagType::Strings),
                    ("unpack", FlagType::Bool),
                ]
            };
            let flags = Flags::parse(&node.flags, allowed)?;
            let (dest, sources) = node.args.split_last().ok_or_else(|| at_least_one(&upper))?;
            if ast::parse_heredoc_word(dest).ok().flatten().is_some() {
                return Err(Invalid(format!("{upper} cannot accept a heredoc as a destination")));
            }
            let mut args = CopyArgs {
                dest: dest.clone(),
                from: flags.non_empty("from"),
                chown: flags.non_empty("chown"),
                chmod: flags.non_empty("chmod"),
                link: flags.bool("link"),
                parents: flags.bool("parents"),
                exclude: flags.strings("exclude"),
                checksum: flags.non_empty("checksum"),
                keep_git_dir: flags.bool("keep-git-dir"),
                unpack: flags.string("unpack").map(|v| v == "true"),
                ..CopyArgs::default()
            };
            for source in sources {
                match ast::parse_heredoc_word(source).ok().flatten() {
                    Some((name, expand, chomp)) => {
                        let found = heredocs.iter().find(|h| h.name == name);
                        let raw = RawHeredoc {
                            content: found.map(|h| h.content.clone()).unwrap_or_default(),
                            name,
                            expand,
                            chomp,
                        };
                        args.heredocs.push(heredoc(&raw, chomp));
                    }
                    None => args.sources.push(source.clone()),
                }
            }
            if cmd == "copy" { Command::Copy(args) } else { Command::Add(args) }
        }
        "workdir" => {
            let path = exactly_one(node, "WORKDIR")?;
            no_flags(node)?;
            Command::Workdir(path)
        }
        "user" => {
            let user = exactly_one(node, "USER")?;
            no_flags(node)?;
            Command::User(user)
        }
        "maintainer" => {
            let who = exactly_one(node, "MAINTAINER")?;
            no_flags(node)?;
            Command::Maintainer(who)
        }
        "stopsignal" => {
            let signal = exactly_one(node, "STOPSIGNAL")?;
            no_flags(node)?;
            Command::StopSignal(signal)
        }
        "env" => {
            no_flags(node)?;
            Command::Env(pairs(&node.args, "ENV")?)
        }
        "label" => {
            no_flags(node)?;
            Command::Label(pairs(&node.args, "LABEL")?)
        }
        "arg" => {
            if node.args.is_empty() {
                return Err(at_least_one("ARG"));
            }
            no_flags(node)?;
            let mut decls = Vec::new();
            for arg in &node.args {
                decls.push(match arg.split_once('=') {
                    Some(("", _)) => return Err(Invalid("ARG names can not be blank".to_owned())),
                    Some((name, default)) => ArgDecl { name: name.to_owned(), default: Some(default.to_owned()) },
                    None => ArgDecl { name: arg.clone(), default: None },
                });
            }
            Command::Arg(decls)
        }
        "expose" => {
            if node.args.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            no_flags(node)?;
            let mut ports = node.args.clone();
            ports.sort();
            Command::Expose(ports)
        }
        "volume" => {
            if node.args.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            no_flags(node)?;
            let mut volumes = Vec::new();
            for v in &node.args {
                let v = v.trim();
                if v.is_empty() {
                    return Err(Invalid("VOLUME specified can not be an empty string".to_owned()));
                }
                volumes.push(v.to_owned());
            }
            Command::Volume(volumes)
        }
        "cmd" => {
            no_flags(node)?;
            Command::Cmd(form(node))
        }
        "entrypoint" => {
            no_flags(node)?;
            Command::Entrypoint(form(node))
        }
        "shell" => {
            no_flags(node)?;
            if node.args.is_empty() {
                return Err(at_least_one("SHELL"));
            }
            if !node.json {
                return Err(Invalid("SHELL requires the arguments to be in JSON form".to_owned()));
            }
            Command::Shell(node.args.clone())
        }
        "healthcheck" => Command::Healthcheck(parse_healthcheck(node)?),
        "onbuild" => {
            let (Some(sub), Some(trigger)) = (&node.sub, node.args.first()) else {
                return Err(at_least_one("ONBUILD"));
            };
            no_flags(node)?;
            let trigger = trigger.trim().to_uppercase();
            match trigger.as_str() {
                "ONBUILD" => return Err(Invalid("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_owned())),
                "MAINTAINER" | "FROM" => return Err(Invalid(format!("{trigger} isn't allowed as an ONBUILD trigger"))),
                _ => {}
            }
            let inner = parse_command(sub, heredocs)?;
            let trimmed = node.original.trim_start();
            let mut expression = trimmed.get(node.cmd.len()..).unwrap_or_default().trim().to_owned();
            for h in heredocs {
                expression.push('\n');
                expression.push_str(&h.content);
                expression.push_str(&h.name);
            }
            Command::Onbuild(Box::new(Instruction { line: node.start_line, original: expression, command: inner }))
        }
        _ => return Err(InstructionError::Unknown(node.cmd.clone())),
    })
}

/// `ENV`/`LABEL` keys and values (BuildKit's `parseKvps`).
fn pairs(args: &[String], command: &str) -> Result<Vec<(String, String)>, InstructionError> {
    if args.is_empty() {
        return Err(at_least_one(command));
    }
    if !args.len().is_multiple_of(2) {
        return Err(Invalid(format!("Bad input to {command}, too many arguments")));
    }
    args.chunks(2)
        .map(|kv| match kv {
            [k, _] if k.is_empty() => Err(Invalid(format!("{command} names can not be blank"))),
            [k, v] => Ok((k.clone(), v.clone())),
            _ => Err(Invalid(format!("Bad input to {command}, too many arguments"))),
        })
        .collect()
}

fn parse_healthcheck(node: &Node) -> Result<Healthcheck, InstructionError> {
    let Some(kind) = node.args.first() else {
        return Err(at_least_one("HEALTHCHECK"));
    };
    let kind = kind.to_uppercase();
    let rest = &node.args[1..];
    if kind == "NONE" {
        // BuildKit does not look at the flags of HEALTHCHECK NONE.
        if !rest.is_empty() {
            return Err(Invalid("HEALTHCHECK NONE takes no arguments".to_owned()));
        }
        return Ok(Healthcheck::None);
    }
    let flags = Flags::parse(
        &node.flags,
        &[
            ("interval", FlagType::Str),
            ("timeout", FlagType::Str),
            ("start-period", FlagType::Str),
            ("start-interval", FlagType::Str),
            ("retries", FlagType::Str),
        ],
    )?;
    if kind != "CMD" {
        return Err(Invalid(format!("Unknown type {kind:?} in HEALTHCHECK (try CMD)")));
    }
    if rest.is_empty() {
        return Err(Invalid("Missing command after HEALTHCHECK CMD".to_owned()));
    }
    let test = if node.json { Form::Exec(rest.to_vec()) } else { Form::Shell(rest.join(" ")) };
    let retries = match flags.non_empty("retries") {
        None => None,
        Some(v) => {
            let n: i64 = v.parse().map_err(|_| Invalid(format!("strconv.ParseInt: parsing {v:?}: invalid syntax")))?;
            if n < 0 {
                return Err(Invalid(format!("--retries cannot be negative ({n})")));
            }
            Some(
                u32::try_from(n)
                    .map_err(|_| Invalid(format!("strconv.ParseInt: parsing {v:?}: value out of range")))?,
            )
        }
    };
    Ok(Healthcheck::Check {
        test,
        interval: interval(&flags, "interval")?,
        timeout: interval(&flags, "timeout")?,
        start_period: interval(&flags, "start-period")?,
        start_interval: interval(&flags, "start-interval")?,
        retries,
    })
}

/// BuildKit's `parseOptInterval`: absent or zero is `None`; anything else must be at least 1ms.
fn interval(flags: &Flags, name: &str) -> Result<Option<Duration>, InstructionError> {
    let Some(value) = flags.non_empty(name) else {
        return Ok(None);
    };
    let nanos = go_duration_nanos(&value)?;
    if nanos == 0 {
        return Ok(None);
    }
    match u64::try_from(nanos) {
        Ok(nanos) if nanos >= 1_000_000 => Ok(Some(Duration::from_nanos(nanos))),
        _ => Err(Invalid(format!("Interval {name:?} cannot be less than 1ms"))),
    }
}
