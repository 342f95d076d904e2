//! The Dockerfile: parsing text into stages of typed instructions, as BuildKit's `frontend/dockerfile/parser`
//! (lines, directives, continuations, heredocs: `ast.rs`) and `frontend/dockerfile/instructions` (flags, arguments,
//! validation: `instructions.rs`, `mount.rs`) do it, and expanding an instruction's variables where Docker's builder
//! does (`expand.rs`).

mod ast;
mod expand;
mod instructions;
mod mount;

use std::time::Duration;

use berth_api::units::UnitError;

use crate::shell::{Env, ExpandError, Lex};

/// A Dockerfile that could not be parsed. `Display` is the message only; callers print
/// `Dockerfile:{line}: {message}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// 1-based line where the offending instruction starts (the last line for errors about the whole file).
    pub line: usize,
    /// BuildKit's message, e.g. `unknown instruction: RUNN`.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> ParseError {
        ParseError { line, message: message.into() }
    }
}

/// What is wrong with one instruction (or parser directive), in BuildKit's words; [`ParseError`] adds its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InstructionError {
    /// The message is the whole story (`FROM requires either one or three arguments`).
    #[error("{0}")]
    Invalid(String),
    /// An instruction word BuildKit does not know, as written.
    #[error("unknown instruction: {0}")]
    Unknown(String),
    /// A `--flag` the instruction does not take, or its value.
    #[error(transparent)]
    Flag(#[from] instructions::FlagError),
    /// A heredoc marker that could not be expanded.
    #[error(transparent)]
    Expand(#[from] ExpandError),
    /// A duration (`HEALTHCHECK --interval`) or a size (`RUN --mount=type=tmpfs,size=`), in Go's words.
    #[error(transparent)]
    Unit(#[from] UnitError),
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// The escape character (`\`, or `` ` `` after `# escape=``).
    pub escape: char,
    /// The `# syntax=` directive, if any (Berth does not switch front ends; the caller may warn).
    pub syntax: Option<String>,
    /// The `ARG`s before the first `FROM`, in order.
    pub meta_args: Vec<ArgDecl>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
}

/// One `FROM` and the instructions after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Position in [`Dockerfile::stages`].
    pub index: usize,
    /// The `AS` name, lowercased.
    pub name: Option<String>,
    /// The image (or earlier stage) named by `FROM`, unexpanded.
    pub base: String,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    /// 1-based line of the `FROM`.
    pub line: usize,
    /// The `FROM` instruction as written (continuations folded), e.g. `FROM busybox AS build`.
    pub original: String,
    pub instructions: Vec<Instruction>,
}

/// One instruction after `FROM`.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The instruction as the classic builder prints it in `Step 3/8 : RUN echo hi`: continuations folded (the
    /// escape character and the line break removed, the lines joined), comments between continuation lines dropped,
    /// leading and trailing whitespace trimmed. Heredoc bodies are not part of it, except for an `ONBUILD`'s inner
    /// instruction, whose `original` is the trigger as stored in the image (bodies and terminators appended).
    pub original: String,
    pub command: Command,
}

/// An `ARG` name with its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// Unexpanded, quotes still in (expand with [`Instruction::expand`] or [`Lex::process_word`]).
    pub default: Option<String>,
}

/// A command line as written: a JSON array is the exec form, anything else the shell form (invalid JSON included,
/// as Docker falls back to the shell form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    Shell(String),
    Exec(Vec<String>),
}

/// A here-document (`<<EOF … EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter, quotes removed (`EOF` for `<<"EOF"`); for `COPY` also the file name.
    pub name: String,
    /// The body, lines with their line ends, without the terminator line; for `<<-` leading tabs already removed.
    pub content: String,
    /// `false` when the delimiter was quoted: the body is then taken literally (for `COPY`/`ADD` the executor
    /// expands an unquoted one with the build environment, as BuildKit; for `RUN` the shell does).
    pub expand: bool,
    /// Whether it was `<<-` (informational: `content` is already stripped).
    pub chomp: bool,
}

impl Heredoc {
    /// The body as a `COPY`/`ADD` writes it: with `$VAR`s expanded (BuildKit's raw expansion: `\\` escapes and
    /// `$` are processed, quotes are left as they are) when the delimiter was unquoted, else as it is. `RUN`
    /// heredocs are not expanded by the builder (the shell does it).
    pub fn expanded_content(&self, env: &dyn Env) -> Result<String, crate::shell::ExpandError> {
        if self.expand { Lex::heredoc_body().process_word(&self.content, env) } else { Ok(self.content.clone()) }
    }
}

/// `RUN --mount=type=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// One `RUN --mount`, parsed as BuildKit's `parseMount`. Defaults BuildKit fills in later (a secret's target
/// `/run/secrets/<id>`, a cache's id = its target, an ssh id `default`) are left to the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub kind: MountKind,
    /// `target`/`dst`/`destination` (may be empty for secret and ssh mounts).
    pub target: String,
    /// `source`/`src`.
    pub source: Option<String>,
    /// `from`: a stage name or index, or an image.
    pub from: Option<String>,
    /// Explicit `ro`/`rw`, else read-only for bind, secret and ssh, writable for cache and tmpfs.
    pub readonly: bool,
    pub id: Option<String>,
    /// `shared` (the default), `private` or `locked`; only for cache mounts.
    pub sharing: String,
    /// Octal file mode (cache, secret, ssh).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs size in bytes (go-units `RAMInBytes`, an int64 as in Docker).
    pub size: Option<i64>,
    /// secret and ssh: fail when the secret or agent is not provided.
    pub required: bool,
}

/// `COPY` and `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    /// Source paths (or URLs for `ADD`), heredoc sources not included.
    pub sources: Vec<String>,
    pub dest: String,
    /// `COPY --from`.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `COPY --parents`.
    pub parents: bool,
    /// `--exclude` (repeatable).
    pub exclude: Vec<String>,
    /// `ADD --checksum`.
    pub checksum: Option<String>,
    /// `ADD --keep-git-dir`.
    pub keep_git_dir: bool,
    /// `ADD --unpack[=bool]`: `None` when not given (BuildKit then unpacks local archives, not remote ones).
    pub unpack: Option<bool>,
    /// Inline sources (`COPY <<EOF /file`): each becomes a file named after its delimiter.
    pub heredocs: Vec<Heredoc>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    /// `HEALTHCHECK [flags] CMD …`; a zero or absent duration means "the default".
    Check {
        test: Form,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}

/// What an instruction does. Values are raw (unexpanded) unless noted.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `RUN`. With heredocs, `cmd` is the command line as written (`cat - <<B`); see [`run_line`] for what to run.
    Run {
        cmd: Form,
        mounts: Vec<RunMount>,
        /// `--network`: `default`, `none` or `host`.
        network: Option<String>,
        /// `--security`: `sandbox` or `insecure`.
        security: Option<String>,
        heredocs: Vec<Heredoc>,
    },
    Copy(CopyArgs),
    Add(CopyArgs),
    Workdir(String),
    /// Pairs as written, quotes still in (both `ENV k v` and `ENV k=v …`).
    Env(Vec<(String, String)>),
    Arg(Vec<ArgDecl>),
    /// Pairs as written, quotes still in.
    Label(Vec<(String, String)>),
    /// Sorted, as BuildKit does.
    Expose(Vec<String>),
    User(String),
    Volume(Vec<String>),
    Cmd(Form),
    Entrypoint(Form),
    Healthcheck(Healthcheck),
    /// Always the JSON form.
    Shell(Vec<String>),
    StopSignal(String),
    /// The trigger, parsed (never `ONBUILD`, `FROM` or `MAINTAINER`).
    Onbuild(Box<Instruction>),
    Maintainer(String),
}

/// What the executor runs for a `RUN`, following BuildKit's `dispatchRun`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunLine {
    /// Exec form: run these arguments directly.
    Exec(Vec<String>),
    /// Run the stage's `SHELL` (default `/bin/sh -c`) with this script as its last argument.
    Shell(String),
    /// A lone heredoc whose body starts with `#!`: write `content` to a file named `name` (mode 0755; BuildKit
    /// mounts it read-only at `/dev/pipes/<name>`) and execute that path directly, no shell.
    Script { name: String, content: String },
}

/// What to run for `RUN cmd` with its `heredocs`:
/// - no heredocs: the command as it is;
/// - the command is nothing but one heredoc (`RUN <<EOF`): its body as the shell script, or, when the body starts
///   with `#!`, the body as an executable file ([`RunLine::Script`]);
/// - otherwise (`RUN <<A cat - <<B`, `RUN python3 <<EOF`) the command line followed by each body and its
///   terminator, one script for the shell, which then feeds the heredocs itself.
pub fn run_line(cmd: &Form, heredocs: &[Heredoc]) -> RunLine {
    let line = match cmd {
        Form::Exec(args) => return RunLine::Exec(args.clone()),
        Form::Shell(line) => line,
    };
    let Some(first) = heredocs.first() else {
        return RunLine::Shell(line.clone());
    };
    if heredocs.len() == 1 && ast::parse_heredoc_word(line).ok().flatten().is_some() {
        if first.content.starts_with("#!") {
            return RunLine::Script { name: first.name.clone(), content: first.content.clone() };
        }
        return RunLine::Shell(first.content.clone());
    }
    let mut full = line.clone();
    for heredoc in heredocs {
        full.push('\n');
        full.push_str(&heredoc.content);
        full.push_str(&heredoc.name);
    }
    RunLine::Shell(full)
}

/// What a stage depends on (see [`Dockerfile::stage_refs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageRef {
    /// An earlier stage, by index.
    Stage(usize),
    /// An image to pull (or `scratch`).
    Image(String),
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let parsed = ast::parse(text)?;
    let mut dockerfile =
        Dockerfile { escape: parsed.escape, syntax: parsed.syntax, meta_args: Vec::new(), stages: Vec::new() };
    let mut last_line = 0;
    for node in &parsed.nodes {
        last_line = node.end_line;
        match instructions::parse_node(node)? {
            instructions::Parsed::Stage(mut stage) => {
                if let Some(name) = &stage.name
                    && dockerfile.stages.iter().any(|s| s.name.as_ref() == Some(name))
                {
                    return Err(ParseError::new(
                        node.start_line,
                        format!("Duplicate stage name '{name}', stage names should be unique"),
                    ));
                }
                stage.index = dockerfile.stages.len();
                dockerfile.stages.push(stage);
            }
            instructions::Parsed::Instruction(instruction) => match dockerfile.stages.last_mut() {
                Some(stage) => stage.instructions.push(instruction),
                None => match instruction.command {
                    Command::Arg(args) => dockerfile.meta_args.extend(args),
                    _ => return Err(ParseError::new(node.start_line, "no build stage in current context")),
                },
            },
        }
    }
    if dockerfile.stages.is_empty() {
        return Err(ParseError::new(last_line.max(1), "dockerfile contains no stages to build"));
    }
    Ok(dockerfile)
}

impl Dockerfile {
    /// The stage a `COPY --from` or `--target` names: by name (case-insensitive), else by decimal index.
    pub fn stage(&self, name_or_index: &str) -> Option<usize> {
        let lower = name_or_index.to_lowercase();
        if let Some(stage) = self.stages.iter().find(|s| s.name.as_deref() == Some(lower.as_str())) {
            return Some(stage.index);
        }
        name_or_index.parse::<usize>().ok().filter(|&i| i < self.stages.len())
    }

    /// What stage `stage` depends on, in order, without duplicates: its `FROM` (when it names an earlier stage, else
    /// the image), every `COPY --from` and `RUN --mount=…,from=…` (its `ONBUILD` triggers are not looked at), each
    /// expanded with `meta_env` (the meta args) and resolved to an earlier stage by name or index, else an image.
    /// `FROM` resolves by name only, as BuildKit does.
    pub fn stage_refs(&self, stage: usize, lex: &Lex, meta_env: &dyn Env) -> Vec<StageRef> {
        let Some(st) = self.stages.get(stage) else {
            return Vec::new();
        };
        let mut refs = Vec::new();
        let mut push = |r: StageRef| {
            if !refs.contains(&r) {
                refs.push(r);
            }
        };
        let expand = |word: &str| lex.process_word(word, meta_env).unwrap_or_else(|_| word.to_owned());
        let base = expand(&st.base);
        let lower = base.to_lowercase();
        match self.stages[..stage].iter().find(|s| s.name.as_deref() == Some(lower.as_str())) {
            Some(s) => push(StageRef::Stage(s.index)),
            None => push(StageRef::Image(base)),
        }
        let resolve = |from: &str| match self.stage(from) {
            Some(i) if i < stage => StageRef::Stage(i),
            _ => StageRef::Image(from.to_owned()),
        };
        for instruction in &st.instructions {
            match &instruction.command {
                Command::Copy(args) => {
                    if let Some(from) = &args.from {
                        push(resolve(&expand(from)));
                    }
                }
                Command::Run { mounts, .. } => {
                    for from in mounts.iter().filter_map(|m| m.from.as_deref()) {
                        push(resolve(&expand(from)));
                    }
                }
                _ => {}
            }
        }
        refs
    }
}

impl Stage {
    /// `FROM`'s image expanded with the meta args.
    pub fn base_expanded(&self, lex: &Lex, meta_env: &dyn Env) -> Result<String, crate::shell::ExpandError> {
        lex.process_word(&self.base, meta_env)
    }

    /// `--platform` expanded with the meta args (and the automatic platform args the caller puts in `meta_env`).
    pub fn platform_expanded(
        &self,
        lex: &Lex,
        meta_env: &dyn Env,
    ) -> Result<Option<String>, crate::shell::ExpandError> {
        self.platform.as_deref().map(|p| lex.process_word(p, meta_env)).transpose()
    }
}

#[cfg(test)]
mod tests;
