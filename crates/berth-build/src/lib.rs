//! # berth-build: the Dockerfile front end of Berth's builder
//!
//! A pure library (no I/O, no async) with three parts, each modelled on the Go code Docker's builder runs, so that a
//! Dockerfile means the same thing to Berth as to `docker build`:
//!
//! - [`dockerfile`]: [`parse`] turns Dockerfile text into a [`Dockerfile`]: parser directives (`# syntax=`,
//!   `# escape=`), the meta `ARG`s before the first `FROM`, and [`Stage`]s of typed [`Instruction`]s, with
//!   BuildKit's error messages and the 1-based line of the offending instruction (print them as
//!   `Dockerfile:{line}: {message}`). It follows moby/buildkit's `frontend/dockerfile/parser` (line continuations,
//!   comments, heredocs, JSON vs shell form, `--flags`) and `frontend/dockerfile/instructions` (per-instruction
//!   flags and validation, `RUN --mount`, `HEALTHCHECK` durations). [`Instruction::expand`] substitutes variables
//!   where Docker does; [`Dockerfile::stage_refs`] lists what a stage depends on for multi-stage planning;
//!   [`dockerfile::run_line`] says what to execute for a `RUN` with heredocs.
//! - [`shell`]: [`shell::Lex`], BuildKit's `frontend/dockerfile/shell` — quotes, the escape character, `$VAR`,
//!   `${VAR:-default}` and friends, word splitting, and the names a word refers to (for cache keys).
//! - [`ignore`]: [`ignore::Patterns`], `.dockerignore` as moby/patternmatcher reads and matches it.
//!
//! ```
//! use berth_build::{parse, shell::Lex, Command};
//!
//! let df = parse("ARG BASE=busybox\nFROM $BASE AS build\nENV greeting=\"hello world\"\nRUN echo $greeting\n")
//!     .expect("valid Dockerfile");
//! assert_eq!(df.meta_args[0].name, "BASE");
//! let stage = &df.stages[0];
//! assert_eq!(stage.name.as_deref(), Some("build"));
//! let env = vec![("BASE".to_owned(), "busybox".to_owned())];
//! assert_eq!(stage.base_expanded(&Lex::new(df.escape), &env).expect("expands"), "busybox");
//! let expanded = stage.instructions[0].expand(&Lex::new(df.escape), &env).expect("expands");
//! assert_eq!(expanded.command, Command::Env(vec![("greeting".into(), "hello world".into())]));
//! ```

pub mod dockerfile;
mod glob;
pub mod ignore;
pub mod shell;

pub use glob::path_match;

pub use dockerfile::{
    ArgDecl, Command, CopyArgs, Dockerfile, Form, Healthcheck, Heredoc, Instruction, MountKind, ParseError, RunLine,
    RunMount, Stage, StageRef, parse, run_line,
};
