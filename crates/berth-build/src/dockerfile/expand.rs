//! Environment replacement: which parts of which instruction Docker's builder expands.

use crate::shell::{Env, ExpandError, Layered, Lex};

use super::{ArgDecl, Command, CopyArgs, Instruction, RunMount};

impl Instruction {
    /// A copy with variables expanded where Docker's builder expands them: `ADD` and `COPY` (sources, destination,
    /// `--from`, `--chown`, `--chmod`, `--checksum`, `--exclude`), `ENV` and `LABEL` (keys and values), `ARG`
    /// defaults, `EXPOSE`, `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`, and the fields of `RUN --mount`
    /// (`target`, `source`, `from`, `id`). Quotes and escapes are processed there too (`ENV a="b c"` → `b c`).
    /// Not expanded: the commands of `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`, `HEALTHCHECK` (the shell does it at run
    /// time), `ONBUILD`, `MAINTAINER`, and heredoc bodies (see [`super::Heredoc::expanded_content`]).
    ///
    /// Every word of one instruction sees the environment as it was before the instruction, as in BuildKit: after
    /// `ENV abc=hello`, `ENV abc=bye def=$abc` sets `def` to `hello`. `ARG` is the exception, as in BuildKit's
    /// `dispatchArg`: names are not expanded and each default sees the earlier ones (`ARG a=1 b=$a` gives `b=1`).
    /// A `--build-arg` value replaces a default unexpanded, and an `ARG` without default inherits the meta arg of
    /// that name: both are the executor's business (as are meta args, expanded the same way one after the other).
    pub fn expand(&self, lex: &Lex, env: &dyn Env) -> Result<Instruction, ExpandError> {
        let word = |w: &String| lex.process_word(w, env);
        let opt = |w: &Option<String>| w.as_ref().map(|w| lex.process_word(w, env)).transpose();
        let all = |ws: &[String]| ws.iter().map(|w| lex.process_word(w, env)).collect::<Result<Vec<_>, _>>();
        let pairs = |ps: &[(String, String)]| {
            ps.iter().map(|(k, v)| Ok((word(k)?, word(v)?))).collect::<Result<Vec<_>, ExpandError>>()
        };
        let copy = |a: &CopyArgs| -> Result<CopyArgs, ExpandError> {
            Ok(CopyArgs {
                sources: all(&a.sources)?,
                dest: word(&a.dest)?,
                from: opt(&a.from)?,
                chown: opt(&a.chown)?,
                chmod: opt(&a.chmod)?,
                exclude: all(&a.exclude)?,
                checksum: opt(&a.checksum)?,
                ..a.clone()
            })
        };
        let command = match &self.command {
            Command::Run { cmd, mounts, network, security, heredocs } => Command::Run {
                cmd: cmd.clone(),
                mounts: mounts
                    .iter()
                    .map(|m| {
                        Ok(RunMount {
                            target: word(&m.target)?,
                            source: opt(&m.source)?,
                            from: opt(&m.from)?,
                            id: opt(&m.id)?,
                            ..m.clone()
                        })
                    })
                    .collect::<Result<Vec<_>, ExpandError>>()?,
                network: network.clone(),
                security: security.clone(),
                heredocs: heredocs.clone(),
            },
            Command::Copy(a) => Command::Copy(copy(a)?),
            Command::Add(a) => Command::Add(copy(a)?),
            Command::Workdir(w) => Command::Workdir(word(w)?),
            Command::Env(ps) => Command::Env(pairs(ps)?),
            Command::Label(ps) => Command::Label(pairs(ps)?),
            Command::Arg(decls) => {
                // As BuildKit's dispatchArg: names as written, each default sees the ones before it.
                let mut seen: Vec<(String, String)> = Vec::new();
                let mut out = Vec::new();
                for d in decls {
                    let default = match &d.default {
                        Some(v) => Some(lex.process_word(v, &Layered(&seen, env))?),
                        None => None,
                    };
                    if let Some(v) = &default {
                        seen.push((d.name.clone(), v.clone()));
                    }
                    out.push(ArgDecl { name: d.name.clone(), default });
                }
                Command::Arg(out)
            }
            Command::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(lex.process_words(p, env)?);
                }
                Command::Expose(out)
            }
            Command::User(u) => Command::User(word(u)?),
            Command::Volume(vs) => Command::Volume(all(vs)?),
            Command::StopSignal(s) => Command::StopSignal(word(s)?),
            other => other.clone(),
        };
        Ok(Instruction { line: self.line, original: self.original.clone(), command })
    }
}
