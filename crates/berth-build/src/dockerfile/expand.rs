//! Environment replacement: which parts of which instruction Docker's builder expands.

use crate::shell::{Env, ExpandError, Lex};

use super::{ArgDecl, Command, CopyArgs, Instruction, RunMount};

impl Instruction {
    /// A copy with variables expanded where Docker's builder expands them: `ADD` and `COPY` (sources, destination,
    /// `--from`, `--chown`, `--chmod`, `--checksum`, `--exclude`), `ENV` and `LABEL` (keys and values), `ARG` (names
    /// and defaults), `EXPOSE`, `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`, and the fields of `RUN --mount`
    /// (`target`, `source`, `from`, `id`). Quotes and escapes are processed there too (`ENV a="b c"` → `b c`).
    /// Not expanded: the commands of `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`, `HEALTHCHECK` (the shell does it at run
    /// time), `ONBUILD`, `MAINTAINER`, and heredoc bodies (the executor expands a `COPY` heredoc whose `expand` is
    /// set).
    ///
    /// Every word of one instruction sees the environment as it was before the instruction, as in BuildKit: after
    /// `ENV abc=hello`, `ENV abc=bye def=$abc` sets `def` to `hello`. (Meta args before the first `FROM` are
    /// different: BuildKit expands each one with the meta args before it; the executor does that with
    /// [`Lex::process_word`] on each [`ArgDecl::default`].)
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
            Command::Arg(decls) => Command::Arg(
                decls
                    .iter()
                    .map(|d| Ok(ArgDecl { name: word(&d.name)?, default: opt(&d.default)? }))
                    .collect::<Result<Vec<_>, ExpandError>>()?,
            ),
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
