use std::time::Duration;

use super::*;
use crate::shell::Lex;

fn df(text: &str) -> Dockerfile {
    match parse(text) {
        Ok(df) => df,
        Err(e) => panic!("Dockerfile:{}: {}", e.line, e.message),
    }
}

fn err(text: &str) -> (usize, String) {
    let e = parse(text).expect_err("must not parse");
    (e.line, e.message)
}

/// The instructions of the only stage.
fn ins(text: &str) -> Vec<Instruction> {
    let mut d = df(text);
    assert_eq!(d.stages.len(), 1);
    d.stages.remove(0).instructions
}

/// The command of the only instruction after `FROM busybox`.
fn one(rest: &str) -> Command {
    let mut v = ins(&format!("FROM busybox\n{rest}\n"));
    assert_eq!(v.len(), 1, "{v:#?}");
    v.remove(0).command
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn sv(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn expanded(rest: &str, e: &[(&str, &str)]) -> Command {
    let i = ins(&format!("FROM busybox\n{rest}\n")).remove(0);
    i.expand(&Lex::new('\\'), &env(e)).expect("expands").command
}

// ---- directives ------------------------------------------------------------------------------------------------

#[test]
fn directives_at_the_top() {
    let d = df("# syntax=docker/dockerfile:1.7\n# ESCAPE = `\n# check=skip=all\nFROM busybox\nRUN echo a `\n  b\n");
    assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1.7"));
    assert_eq!(d.escape, '`');
    assert_eq!(d.stages[0].instructions[0].original, "RUN echo a   b");

    let d = df("#escape=\\\nFROM busybox\n");
    assert_eq!(d.escape, '\\');
    assert_eq!(d.syntax, None);
}

#[test]
fn directives_after_other_lines_are_comments() {
    // After a comment, a blank line or an instruction, `# escape=` is just a comment.
    for text in [
        "# hello\n# escape=`\nFROM busybox\nRUN a \\\n b\n",
        "\n# escape=`\nFROM busybox\nRUN a \\\n b\n",
        "FROM busybox\n# escape=`\nRUN a \\\n b\n",
        "# unknowndirective=x\n# escape=`\nFROM busybox\nRUN a \\\n b\n",
    ] {
        let d = df(text);
        assert_eq!(d.escape, '\\', "{text:?}");
        assert_eq!(d.stages[0].instructions[0].original, "RUN a  b", "{text:?}");
    }
}

#[test]
fn directive_errors() {
    assert_eq!(err("# escape=x\nFROM busybox\n"), (1, s("invalid escape token 'x' does not match ` or \\")));
    assert_eq!(err("# escape=`\n# escape=\\\nFROM busybox\n"), (2, s("only one escape parser directive can be used")));
    assert_eq!(err("# syntax=a\n# SYNTAX=b\nFROM busybox\n").1, "only one syntax parser directive can be used");
}

#[test]
fn backtick_escape_mode() {
    let d = df("# escape=`\nFROM busybox\nCOPY C:\\src\\ C:\\dst\\\nRUN dir `\n  c:\\\nENV A=`$B\n");
    let i = &d.stages[0].instructions;
    assert_eq!(
        i[0].command,
        Command::Copy(CopyArgs { sources: sv(&["C:\\src\\"]), dest: s("C:\\dst\\"), ..Default::default() })
    );
    assert_eq!(i[1].original, "RUN dir   c:\\");
    let lex = Lex::new(d.escape);
    let e = i[2].expand(&lex, &env(&[("B", "b")])).expect("expands");
    assert_eq!(e.command, Command::Env(vec![(s("A"), s("$B"))]));
}

#[test]
fn byte_order_mark_and_crlf() {
    let i = ins("\u{feff}FROM busybox\r\nRUN a \\\r\n  b\r\nCMD [\"x\"]\r\n");
    assert_eq!(i[0].original, "RUN a   b");
    assert_eq!(i[1].command, Command::Cmd(Form::Exec(sv(&["x"]))));
}

// ---- lines, comments, continuations ----------------------------------------------------------------------------

#[test]
fn comments_and_continuations() {
    let text = "# leading comment\n\
                FROM busybox\n\
                \n\
                   # indented comment\n\
                RUN apt-get update && \\\n\
                # a comment inside the continuation\n\
                \x20   # an indented one\n\
                \n\
                \x20   apt-get install -y curl \\   \n\
                \x20   && echo done\n\
                RUN echo \\\\\n\
                RUN echo last \\";
    let i = ins(text);
    assert_eq!(i.len(), 3);
    assert_eq!(i[0].line, 5);
    assert_eq!(i[0].original, "RUN apt-get update &&     apt-get install -y curl     && echo done");
    assert_eq!(
        i[0].command,
        Command::Run {
            cmd: Form::Shell(s("apt-get update &&     apt-get install -y curl     && echo done")),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![],
        }
    );
    // An escaped escape at the end does not continue.
    assert_eq!(i[1].original, "RUN echo \\\\");
    assert_eq!(i[1].line, 11);
    // A continuation at the end of the file just ends.
    assert_eq!(i[2].original, "RUN echo last");
}

#[test]
fn continuation_lines_keep_their_indentation() {
    // Only an instruction's first line is left-trimmed; tabs after the instruction word separate like spaces.
    let i = ins("FROM\tbusybox\nRUN\tapt-get install \\\n\tcurl \\\n\t--yes\nENV\tPATH\t/bin:$PATH\n");
    assert_eq!(
        i[0].command,
        Command::Run {
            cmd: Form::Shell(s("apt-get install \tcurl \t--yes")),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![]
        }
    );
    assert_eq!(i[1].command, Command::Env(vec![(s("PATH"), s("/bin:$PATH"))]));
    // A directive may be indented; a comment line inside a continuation does not end it.
    let d = df("  # escape = `\nFROM busybox\nENV a `\nENV b c\n");
    assert_eq!(d.stages[0].instructions[0].command, Command::Env(vec![(s("a"), s("ENV b c"))]));
    let i = ins("FROM busybox\nRUN echo a \\\n# comment\nRUN echo b\n");
    assert_eq!(i.len(), 1);
    assert_eq!(i[0].original, "RUN echo a RUN echo b");
}

#[test]
fn instructions_are_case_insensitive() {
    let i = ins("from busybox\nrun echo hi\nWorkDir /app\ncMd [\"sh\"]\n");
    assert_eq!(
        i[0].command,
        Command::Run {
            cmd: Form::Shell(s("echo hi")),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![]
        }
    );
    assert_eq!(i[0].original, "run echo hi");
    assert_eq!(i[1].command, Command::Workdir(s("/app")));
    assert_eq!(i[2].command, Command::Cmd(Form::Exec(sv(&["sh"]))));
}

#[test]
fn unknown_instruction() {
    assert_eq!(err("FROM busybox\n\nRUN a\n\n\n\nRUNN b\n"), (7, s("unknown instruction: RUNN")));
    assert_eq!(err("FROM busybox\nfoo bar\n"), (2, s("unknown instruction: foo")));
}

#[test]
fn stages_and_meta_args() {
    let d = df("ARG BASE=alpine\nARG V\nFROM --platform=$BUILDPLATFORM ${BASE}:3 AS Build\nARG X=1\n\
                RUN make\nFROM scratch\nCOPY --from=build /out /\n");
    assert_eq!(
        d.meta_args,
        vec![ArgDecl { name: s("BASE"), default: Some(s("alpine")) }, ArgDecl { name: s("V"), default: None }]
    );
    assert_eq!(d.stages.len(), 2);
    let b = &d.stages[0];
    assert_eq!((b.index, b.name.as_deref(), b.base.as_str()), (0, Some("build"), "${BASE}:3"));
    assert_eq!(b.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(b.line, 3);
    assert_eq!(b.original, "FROM --platform=$BUILDPLATFORM ${BASE}:3 AS Build");
    assert_eq!(b.instructions.len(), 2);
    assert_eq!(b.instructions[0].command, Command::Arg(vec![ArgDecl { name: s("X"), default: Some(s("1")) }]));
    assert_eq!((d.stages[1].index, d.stages[1].name.as_deref()), (1, None));

    let lex = Lex::new('\\');
    let meta = env(&[("BASE", "alpine"), ("BUILDPLATFORM", "linux/amd64")]);
    assert_eq!(b.base_expanded(&lex, &meta).expect("ok"), "alpine:3");
    assert_eq!(b.platform_expanded(&lex, &meta).expect("ok").as_deref(), Some("linux/amd64"));

    assert_eq!(d.stage("BUILD"), Some(0));
    assert_eq!(d.stage("build"), Some(0));
    assert_eq!(d.stage("1"), Some(1));
    assert_eq!(d.stage("2"), None);
    assert_eq!(d.stage("nope"), None);
}

#[test]
fn from_errors() {
    assert_eq!(err("FROM a b\n"), (1, s("FROM requires either one or three arguments")));
    assert_eq!(err("FROM\n").1, "FROM requires either one or three arguments");
    assert_eq!(err("FROM a AS b c\n").1, "FROM requires either one or three arguments");
    assert_eq!(err("FROM a FOR b\n").1, "FROM requires either one or three arguments");
    assert_eq!(
        err("FROM a AS 1st\n").1,
        "invalid name for build stage: \"1st\", name can't start with a number or contain symbols"
    );
    assert_eq!(
        err("FROM a AS b$c\n").1,
        "invalid name for build stage: \"b$c\", name can't start with a number or contain symbols"
    );
    assert_eq!(err("FROM --plat=x a\n").1, "unknown flag: plat");
    assert_eq!(err("FROM a AS x\nFROM b AS X\n"), (2, s("Duplicate stage name 'x', stage names should be unique")));
    df("FROM a AS my-stage_1.0\n");
}

#[test]
fn no_build_stage() {
    assert_eq!(err("ARG A\nENV B=1\nFROM busybox\n"), (2, s("no build stage in current context")));
    assert_eq!(err("RUN x\n"), (1, s("no build stage in current context")));
    assert_eq!(err("ARG A\n").1, "dockerfile contains no stages to build");
    assert_eq!(err("").1, "file with no instructions");
    assert_eq!(err("# just a comment\n\n").1, "file with no instructions");
}

// ---- JSON vs shell form, flags -------------------------------------------------------------------------------

#[test]
fn json_and_shell_forms() {
    assert_eq!(one("CMD [\"a\", \"b c\"]"), Command::Cmd(Form::Exec(sv(&["a", "b c"]))));
    assert_eq!(one("CMD []"), Command::Cmd(Form::Exec(vec![])));
    assert_eq!(one("CMD [ \"unterminated\""), Command::Cmd(Form::Shell(s("[ \"unterminated\""))));
    assert_eq!(one("CMD ['single']"), Command::Cmd(Form::Shell(s("['single']"))));
    assert_eq!(one("CMD echo [\"x\"]"), Command::Cmd(Form::Shell(s("echo [\"x\"]"))));
    assert_eq!(one("ENTRYPOINT [\"/bin/tini\", \"--\"]"), Command::Entrypoint(Form::Exec(sv(&["/bin/tini", "--"]))));
    assert_eq!(one("ENTRYPOINT exec top -b"), Command::Entrypoint(Form::Shell(s("exec top -b"))));
    assert_eq!(one("CMD [\"a\\u0041\"]"), Command::Cmd(Form::Exec(sv(&["aA"]))));
    // Only the first JSON value is read, as Go's decoder does.
    assert_eq!(one("CMD [\"a\"] trailing"), Command::Cmd(Form::Exec(sv(&["a"]))));
    assert_eq!(
        err("FROM busybox\nCMD [\"a\", 1]\n").1,
        "when using JSON array syntax, arrays must be comprised of strings only"
    );
    assert_eq!(
        one("RUN [\"echo\", \"hi\"]"),
        Command::Run {
            cmd: Form::Exec(sv(&["echo", "hi"])),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![]
        }
    );
}

#[test]
fn flags() {
    let Command::Copy(c) = one("COPY --from=build --chown=\"1000:1000\" --chmod=0644 --link /a /b") else { panic!() };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("1000:1000"));
    assert_eq!(c.chmod.as_deref(), Some("0644"));
    assert!(c.link);
    let Command::Copy(c) = one("COPY --link=false -- --weird /b") else { panic!() };
    assert!(!c.link);
    assert_eq!(c.sources, sv(&["--weird"]));

    let e = |rest: &str| err(&format!("FROM busybox\n{rest}\n")).1;
    assert_eq!(e("COPY --foo=bar a b"), "unknown flag: foo");
    assert_eq!(e("ADD --from=x a b"), "unknown flag: from");
    assert_eq!(e("COPY --parents=maybe a b"), "expecting boolean value for flag parents, not: maybe");
    assert_eq!(e("COPY --link= a b"), "missing a value on flag: link");
    assert_eq!(e("COPY --from a b"), "missing a value on flag: from");
    assert_eq!(e("COPY --from=a --from=b a b"), "duplicate flag specified: from");
    assert_eq!(e("ENV --x=1 a=b"), "unknown flag: x");
    assert_eq!(e("WORKDIR --x=1 /a"), "unknown flag: x");
    assert_eq!(e("RUN --mount=type=nfs echo"), "unsupported mount type \"nfs\"");
    assert_eq!(e("RUN --network=bridge echo"), "invalid network mode \"bridge\"");
    assert_eq!(e("RUN --security=odd echo"), "security \"odd\" is not valid");
}

#[test]
fn copy_and_add() {
    let Command::Copy(c) = one("COPY --parents --exclude=*.md --exclude=tmp a b/ c /dst/") else { panic!() };
    assert_eq!(c.sources, sv(&["a", "b/", "c"]));
    assert_eq!(c.dest, "/dst/");
    assert!(c.parents);
    assert_eq!(c.exclude, sv(&["*.md", "tmp"]));
    let Command::Copy(c) = one("COPY [\"a b\", \"/c d/\"]") else { panic!() };
    assert_eq!((c.sources, c.dest), (sv(&["a b"]), s("/c d/")));
    let Command::Add(a) =
        one("ADD --checksum=sha256:abc --keep-git-dir=true --chown=u https://example.com/x.tgz /opt/")
    else {
        panic!()
    };
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    assert!(a.keep_git_dir);
    assert_eq!(a.chown.as_deref(), Some("u"));
    assert_eq!(a.sources, sv(&["https://example.com/x.tgz"]));
    assert_eq!(a.unpack, None);
    let Command::Add(a) = one("ADD --unpack=false a.tar /") else { panic!() };
    assert_eq!(a.unpack, Some(false));
    let Command::Add(a) = one("ADD --unpack a.tar /") else { panic!() };
    assert_eq!(a.unpack, Some(true));
    assert_eq!(
        err("FROM busybox\nCOPY onlyone\n").1,
        "COPY requires at least two arguments, but only one was provided. Destination could not be determined"
    );
    assert_eq!(
        err("FROM busybox\nADD\n").1.split('.').next(),
        Some("ADD requires at least two arguments, but only one was provided")
    );
}

// ---- heredocs ----------------------------------------------------------------------------------------------------

fn run_parts(c: Command) -> (Form, Vec<Heredoc>) {
    match c {
        Command::Run { cmd, heredocs, .. } => (cmd, heredocs),
        other => panic!("not RUN: {other:?}"),
    }
}

fn hd(name: &str, content: &str, expand: bool, chomp: bool) -> Heredoc {
    Heredoc { name: s(name), content: s(content), expand, chomp }
}

#[test]
fn run_heredoc_as_script() {
    let i = ins("FROM busybox\nRUN <<EOF\necho hello\n# not a comment here\necho $HOME \\\nEOF\nCMD x\n");
    assert_eq!(i.len(), 2);
    assert_eq!(i[0].original, "RUN <<EOF");
    assert_eq!(i[1].line, 7);
    let (cmd, heredocs) = run_parts(i[0].command.clone());
    assert_eq!(cmd, Form::Shell(s("<<EOF")));
    assert_eq!(heredocs, vec![hd("EOF", "echo hello\n# not a comment here\necho $HOME \\\n", true, false)]);
    assert_eq!(run_line(&cmd, &heredocs), RunLine::Shell(s("echo hello\n# not a comment here\necho $HOME \\\n")));
}

#[test]
fn run_heredoc_shebang_and_empty() {
    let (cmd, h) = run_parts(one("RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF"));
    assert_eq!(
        run_line(&cmd, &h),
        RunLine::Script { name: s("EOF"), content: s("#!/usr/bin/env python3\nprint(1)\n") }
    );
    let (_, h) = run_parts(one("RUN <<EMPTY\nEMPTY"));
    assert_eq!(h, vec![hd("EMPTY", "", true, false)]);
    let (cmd, h) = run_parts(one("RUN 3<<EOF\nx\nEOF"));
    assert_eq!(h, vec![hd("EOF", "x\n", true, false)]);
    assert_eq!(cmd, Form::Shell(s("3<<EOF")));
}

#[test]
fn run_heredoc_chomp_and_quotes() {
    let (_, h) = run_parts(one("RUN <<-EOF\n\tindented\n\t\ttwice\n  spaces\n\tEOF"));
    assert_eq!(h, vec![hd("EOF", "indented\ntwice\n  spaces\n", true, true)]);
    let (_, h) = run_parts(one("RUN <<INDENT\n\tfoo\nINDENT"));
    assert_eq!(h, vec![hd("INDENT", "\tfoo\n", true, false)]);
    let (_, h) = run_parts(one("RUN <<'EOF'\ndon't expand $X\nEOF"));
    assert_eq!(h, vec![hd("EOF", "don't expand $X\n", false, false)]);
    let (_, h) = run_parts(one("RUN <<\"EOF\"\n$X\nEOF"));
    assert!(!h[0].expand);
    let (_, h) = run_parts(one("RUN <<-'E'\n\t$X\nE"));
    assert_eq!(h, vec![hd("E", "$X\n", false, true)]);
    // Quoted markers are not heredocs; neither is the JSON form.
    let (cmd, h) = run_parts(one("RUN echo \"<<EOF\" '<<X'"));
    assert!(h.is_empty());
    assert_eq!(cmd, Form::Shell(s("echo \"<<EOF\" '<<X'")));
    let (_, h) = run_parts(one("RUN [\"<<EOF\"]"));
    assert!(h.is_empty());
}

#[test]
fn run_with_several_heredocs() {
    // The bodies follow one another, in the order of the markers.
    let i = ins("FROM busybox\nRUN <<A cat - <<B > /out\nbody a\nA\nbody b\nB\nRUN echo after\n");
    assert_eq!(i.len(), 2);
    let (cmd, h) = run_parts(i[0].command.clone());
    assert_eq!(cmd, Form::Shell(s("<<A cat - <<B > /out")));
    assert_eq!(h, vec![hd("A", "body a\n", true, false), hd("B", "body b\n", true, false)]);
    assert_eq!(run_line(&cmd, &h), RunLine::Shell(s("<<A cat - <<B > /out\nbody a\nA\nbody b\nB")));
    assert_eq!(i[1].original, "RUN echo after");
    assert_eq!(i[1].line, 7);

    let (cmd, h) = run_parts(one("RUN python3 <<EOF\nprint(1)\nEOF"));
    assert_eq!(run_line(&cmd, &h), RunLine::Shell(s("python3 <<EOF\nprint(1)\nEOF")));
    let (cmd, h) = run_parts(one("RUN --mount=type=cache,target=/c <<EOF\necho hi\nEOF"));
    assert_eq!(cmd, Form::Shell(s("<<EOF")));
    assert_eq!(run_line(&cmd, &h), RunLine::Shell(s("echo hi\n")));
}

#[test]
fn copy_heredocs() {
    let Command::Copy(c) = one("COPY <<EOF /etc/motd\nhello $NAME\nEOF") else { panic!() };
    assert!(c.sources.is_empty());
    assert_eq!(c.dest, "/etc/motd");
    assert_eq!(c.heredocs, vec![hd("EOF", "hello $NAME\n", true, false)]);

    let Command::Copy(c) = one("COPY <<A <<B /dir/\nY\nA\nX\nB") else { panic!() };
    assert_eq!(c.heredocs, vec![hd("A", "Y\n", true, false), hd("B", "X\n", true, false)]);

    // Terminators are matched in order: X's body is "Y", then Y's body is "X".
    let Command::Copy(c) = one("COPY <<X <<Y /dest\nY\nX\nX\nY") else { panic!() };
    assert_eq!(c.heredocs, vec![hd("X", "Y\n", true, false), hd("Y", "X\n", true, false)]);

    let Command::Copy(c) = one("COPY --chmod=755 <<-'EOF' real.txt /d/\n\tno $expansion\n\tEOF") else { panic!() };
    assert_eq!(c.sources, sv(&["real.txt"]));
    assert_eq!(c.heredocs, vec![hd("EOF", "no $expansion\n", false, true)]);

    assert_eq!(err("FROM busybox\nCOPY a <<EOF\nx\nEOF\n").1, "COPY cannot accept a heredoc as a destination");
    assert_eq!(err("FROM busybox\nRUN <<EOF\nnever ends\n"), (2, s("unterminated heredoc")));
}

#[test]
fn heredoc_marker_forms() {
    // Blanks after `<<` are allowed.
    let (cmd, h) = run_parts(one("RUN <<  EOF\nx\nEOF"));
    assert_eq!(h, vec![hd("EOF", "x\n", true, false)]);
    assert_eq!(run_line(&cmd, &h), RunLine::Shell(s("x\n")));
    // Partly quoted delimiters do not expand; an escaped quote is just a character.
    let (_, h) = run_parts(one("RUN <<eo'f'\nx\neof"));
    assert_eq!(h, vec![hd("eof", "x\n", false, false)]);
    let (_, h) = run_parts(one("RUN <<eo\\'f\nx\neo'f"));
    assert_eq!(h, vec![hd("eo'f", "x\n", true, false)]);
    let (_, h) = run_parts(one("RUN <<'one two'\nx\none two"));
    assert_eq!(h, vec![hd("one two", "x\n", false, false)]);
    // Unset variables stay in the delimiter.
    let (_, h) = run_parts(one("RUN <<$EOF\nx\n$EOF"));
    assert_eq!(h[0].name, "$EOF");
    assert_eq!(
        ast::parse_heredoc_word("<<'EOF").map_err(|e| e.to_string()),
        Err(s("unexpected end of statement while looking for matching single-quote"))
    );
    for not in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF"] {
        assert_eq!(ast::parse_heredoc_word(not), Ok(None), "{not:?}");
    }
    for yes in ["<<EOF", "<<'EOF'", "<<\"EOF\"", "<<-EOF", "<<-'EOF'", "<<-\"EOF\"", "9<<EOF"] {
        assert_eq!(ast::parse_heredoc_word(yes).expect("ok").map(|h| h.0), Some(s("EOF")), "{yes:?}");
    }
}

#[test]
fn heredoc_body_expansion() {
    let Command::Copy(c) = one("COPY <<EOF <<'RAW' /d/\necho \"$A\" '${B:-b}' \\$C\nEOF\n$A\nRAW") else { panic!() };
    let e = env(&[("A", "a"), ("C", "c")]);
    assert_eq!(c.heredocs[0].expanded_content(&e).expect("ok"), "echo \"a\" 'b' $C\n");
    assert_eq!(c.heredocs[1].expanded_content(&e).expect("ok"), "$A\n");
}

#[test]
fn heredoc_markers_only_for_run_copy_add() {
    // USER does not take heredocs: the next line is an instruction of its own (here an unknown one).
    assert_eq!(err("FROM busybox\nUSER <<INVALID\nINVALID\n"), (3, s("unknown instruction: INVALID")));
}

// ---- ENV, LABEL, ARG ---------------------------------------------------------------------------------------------

#[test]
fn env_forms() {
    assert_eq!(
        one("ENV a=1 b=\"two words\" c=three\\ words"),
        Command::Env(vec![(s("a"), s("1")), (s("b"), s("\"two words\"")), (s("c"), s("three\\ words"))])
    );
    assert_eq!(
        expanded("ENV a=1 b=\"two words\" c=three\\ words d='$x' e=", &[("x", "X")]),
        Command::Env(vec![
            (s("a"), s("1")),
            (s("b"), s("two words")),
            (s("c"), s("three words")),
            (s("d"), s("$x")),
            (s("e"), s(""))
        ])
    );
    assert_eq!(one("ENV key value with  spaces"), Command::Env(vec![(s("key"), s("value with  spaces"))]));
    assert_eq!(
        expanded("ENV key \"quoted value\" $x", &[("x", "X")]),
        Command::Env(vec![(s("key"), s("quoted value X"))])
    );
    let e = |rest: &str| err(&format!("FROM busybox\n{rest}\n")).1;
    assert_eq!(e("ENV a"), "ENV must have two arguments");
    assert_eq!(e("ENV"), "ENV requires at least one argument");
    assert_eq!(e("ENV a=1 b"), "Syntax error - can't find = in \"b\". Must be of the form: name=value");
    assert_eq!(e("ENV =1"), "ENV names can not be blank");
}

#[test]
fn env_pairs_see_the_environment_before_the_instruction() {
    // As Docker documents: `ENV abc=bye def=$abc` sets def to the previous abc.
    assert_eq!(
        expanded("ENV abc=bye def=$abc", &[("abc", "hello")]),
        Command::Env(vec![(s("abc"), s("bye")), (s("def"), s("hello"))])
    );
}

#[test]
fn labels() {
    assert_eq!(
        one("LABEL a=1 \"com.example.key\"=\"v w\" multi.line=\"x\\\ny\""),
        Command::Label(vec![
            (s("a"), s("1")),
            (s("\"com.example.key\""), s("\"v w\"")),
            (s("multi.line"), s("\"xy\""))
        ])
    );
    assert_eq!(
        expanded("LABEL \"com.example.key\"=\"v w\" version=$V", &[("V", "1.0")]),
        Command::Label(vec![(s("com.example.key"), s("v w")), (s("version"), s("1.0"))])
    );
    assert_eq!(one("LABEL maintainer someone else"), Command::Label(vec![(s("maintainer"), s("someone else"))]));
    assert_eq!(err("FROM busybox\nLABEL a\n").1, "LABEL must have two arguments");
}

#[test]
fn args() {
    assert_eq!(one("ARG a"), Command::Arg(vec![ArgDecl { name: s("a"), default: None }]));
    assert_eq!(one("ARG a=1"), Command::Arg(vec![ArgDecl { name: s("a"), default: Some(s("1")) }]));
    assert_eq!(
        one("ARG a=1 b=2 c= d"),
        Command::Arg(vec![
            ArgDecl { name: s("a"), default: Some(s("1")) },
            ArgDecl { name: s("b"), default: Some(s("2")) },
            ArgDecl { name: s("c"), default: Some(s("")) },
            ArgDecl { name: s("d"), default: None },
        ])
    );
    assert_eq!(
        expanded("ARG v=\"${base:-x} y\"", &[]),
        Command::Arg(vec![ArgDecl { name: s("v"), default: Some(s("x y")) }])
    );
    // Each default sees the earlier ones; names are not expanded.
    assert_eq!(
        expanded("ARG a=1 b=${a}2 $c=x d=$z", &[("a", "0"), ("c", "C"), ("z", "Z")]),
        Command::Arg(vec![
            ArgDecl { name: s("a"), default: Some(s("1")) },
            ArgDecl { name: s("b"), default: Some(s("12")) },
            ArgDecl { name: s("$c"), default: Some(s("x")) },
            ArgDecl { name: s("d"), default: Some(s("Z")) },
        ])
    );
    assert_eq!(err("FROM busybox\nARG\n").1, "ARG requires at least one argument");
    assert_eq!(err("FROM busybox\nARG =x\n").1, "ARG names can not be blank");
}

// ---- the other instructions --------------------------------------------------------------------------------------

#[test]
fn simple_instructions() {
    assert_eq!(one("EXPOSE 8080/tcp 80 443/udp"), Command::Expose(sv(&["443/udp", "80", "8080/tcp"])));
    // Sorted as written (BuildKit sorts before expansion), then expanded and split.
    assert_eq!(expanded("EXPOSE $P 22", &[("P", "80 81")]), Command::Expose(sv(&["80", "81", "22"])));
    assert_eq!(one("VOLUME /data /logs"), Command::Volume(sv(&["/data", "/logs"])));
    assert_eq!(one("VOLUME [\"/a b\", \"/c\"]"), Command::Volume(sv(&["/a b", "/c"])));
    assert_eq!(expanded("VOLUME $D", &[("D", "/d")]), Command::Volume(sv(&["/d"])));
    assert_eq!(one("USER app:staff"), Command::User(s("app:staff")));
    assert_eq!(expanded("USER ${U}:${G}", &[("U", "1"), ("G", "2")]), Command::User(s("1:2")));
    assert_eq!(one("WORKDIR /my dir"), Command::Workdir(s("/my dir")));
    assert_eq!(expanded("WORKDIR $HOME/src", &[("HOME", "/root")]), Command::Workdir(s("/root/src")));
    assert_eq!(one("STOPSIGNAL SIGKILL"), Command::StopSignal(s("SIGKILL")));
    assert_eq!(expanded("STOPSIGNAL $S", &[("S", "9")]), Command::StopSignal(s("9")));
    assert_eq!(one("MAINTAINER Jane <jane@example.com>"), Command::Maintainer(s("Jane <jane@example.com>")));
    assert_eq!(one("SHELL [\"powershell\", \"-command\"]"), Command::Shell(sv(&["powershell", "-command"])));

    let e = |rest: &str| err(&format!("FROM busybox\n{rest}\n")).1;
    assert_eq!(e("SHELL /bin/bash -c"), "SHELL requires the arguments to be in JSON form");
    assert_eq!(e("SHELL []"), "SHELL requires at least one argument");
    assert_eq!(e("EXPOSE"), "EXPOSE requires at least one argument");
    assert_eq!(e("VOLUME"), "VOLUME requires at least one argument");
    assert_eq!(e("VOLUME [\"\"]"), "VOLUME specified can not be an empty string");
    assert_eq!(e("USER"), "USER requires exactly one argument");
    assert_eq!(e("WORKDIR"), "WORKDIR requires exactly one argument");
    assert_eq!(e("STOPSIGNAL"), "STOPSIGNAL requires exactly one argument");
    assert_eq!(e("MAINTAINER"), "MAINTAINER requires exactly one argument");
}

#[test]
fn healthchecks() {
    assert_eq!(one("HEALTHCHECK NONE"), Command::Healthcheck(Healthcheck::None));
    assert_eq!(one("healthcheck none"), Command::Healthcheck(Healthcheck::None));
    assert_eq!(
        one("HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --start-interval=2s --retries=3 \
             CMD curl -f http://localhost/ || exit 1"),
        Command::Healthcheck(Healthcheck::Check {
            test: Form::Shell(s("curl -f http://localhost/ || exit 1")),
            interval: Some(Duration::from_secs(30)),
            timeout: Some(Duration::from_secs(90)),
            start_period: Some(Duration::from_millis(500)),
            start_interval: Some(Duration::from_secs(2)),
            retries: Some(3),
        })
    );
    assert_eq!(
        one("HEALTHCHECK --interval=0s CMD [\"/check\", \"-v\"]"),
        Command::Healthcheck(Healthcheck::Check {
            test: Form::Exec(sv(&["/check", "-v"])),
            interval: None,
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: None,
        })
    );
    let e = |rest: &str| err(&format!("FROM busybox\n{rest}\n")).1;
    assert_eq!(e("HEALTHCHECK"), "HEALTHCHECK requires at least one argument");
    assert_eq!(e("HEALTHCHECK NONE x"), "HEALTHCHECK NONE takes no arguments");
    assert_eq!(e("HEALTHCHECK CMD"), "Missing command after HEALTHCHECK CMD");
    assert_eq!(e("HEALTHCHECK RUN x"), "Unknown type \"RUN\" in HEALTHCHECK (try CMD)");
    assert_eq!(e("HEALTHCHECK --interval=1us CMD x"), "Interval \"interval\" cannot be less than 1ms");
    assert_eq!(e("HEALTHCHECK --timeout=-1s CMD x"), "Interval \"timeout\" cannot be less than 1ms");
    assert_eq!(e("HEALTHCHECK --interval=abc CMD x"), "time: invalid duration \"abc\"");
    assert_eq!(e("HEALTHCHECK --retries=-1 CMD x"), "--retries cannot be negative (-1)");
    assert_eq!(e("HEALTHCHECK --retries=x CMD x"), "strconv.ParseInt: parsing \"x\": invalid syntax");
    assert_eq!(e("HEALTHCHECK --bogus=1 CMD x"), "unknown flag: bogus");
}

#[test]
fn onbuild() {
    let Command::Onbuild(inner) = one("ONBUILD RUN echo \"triggered\"") else { panic!() };
    assert_eq!(inner.original, "RUN echo \"triggered\"");
    assert_eq!(
        inner.command,
        Command::Run {
            cmd: Form::Shell(s("echo \"triggered\"")),
            mounts: vec![],
            network: None,
            security: None,
            heredocs: vec![]
        }
    );
    let Command::Onbuild(inner) = one("onbuild COPY --chown=1 . /app") else { panic!() };
    let Command::Copy(c) = &inner.command else { panic!() };
    assert_eq!(c.chown.as_deref(), Some("1"));
    let Command::Onbuild(inner) = one("ONBUILD RUN <<EOF\necho hi\nEOF") else { panic!() };
    assert_eq!(inner.original, "RUN <<EOF\necho hi\nEOF");
    assert_eq!(run_parts(inner.command).1, vec![hd("EOF", "echo hi\n", true, false)]);

    let e = |rest: &str| err(&format!("FROM busybox\n{rest}\n")).1;
    assert_eq!(e("ONBUILD"), "ONBUILD requires at least one argument");
    assert_eq!(e("ONBUILD ONBUILD RUN x"), "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    assert_eq!(e("ONBUILD FROM x"), "FROM isn't allowed as an ONBUILD trigger");
    assert_eq!(e("ONBUILD maintainer x"), "MAINTAINER isn't allowed as an ONBUILD trigger");
    assert_eq!(e("ONBUILD BOGUS x"), "unknown instruction: BOGUS");
}

#[test]
fn run_flags_and_mounts() {
    let c = one("RUN --mount=type=cache,target=/root/.cache,id=pip --mount=type=secret,id=tok,required \
                 --network=none --security=insecure pip install x");
    let Command::Run { cmd, mounts, network, security, .. } = c else { panic!() };
    assert_eq!(cmd, Form::Shell(s("pip install x")));
    assert_eq!(network.as_deref(), Some("none"));
    assert_eq!(security.as_deref(), Some("insecure"));
    assert_eq!(mounts.len(), 2);
    assert_eq!(
        (mounts[0].kind, mounts[0].target.as_str(), mounts[0].id.as_deref()),
        (MountKind::Cache, "/root/.cache", Some("pip"))
    );
    assert_eq!((mounts[1].kind, mounts[1].required, mounts[1].readonly), (MountKind::Secret, true, true));

    let c = expanded(
        "RUN --mount=type=bind,from=$S,source=$SRC,target=/t echo $NOT",
        &[("S", "build"), ("SRC", "/out"), ("NOT", "x")],
    );
    let Command::Run { cmd, mounts, .. } = c else { panic!() };
    assert_eq!(cmd, Form::Shell(s("echo $NOT")), "RUN's command is not expanded");
    assert_eq!(mounts[0].from.as_deref(), Some("build"));
    assert_eq!(mounts[0].source.as_deref(), Some("/out"));
}

// ---- expansion ---------------------------------------------------------------------------------------------------

#[test]
fn copy_expansion() {
    let c = expanded(
        "COPY --from=$STAGE --chown=$U:$G --chmod=$M --exclude=$X ${SRC}/a 'lit$X' $DST",
        &[("STAGE", "build"), ("U", "1"), ("G", "2"), ("M", "755"), ("X", "*.md"), ("SRC", "/s"), ("DST", "/d")],
    );
    let Command::Copy(c) = c else { panic!() };
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("1:2"));
    assert_eq!(c.chmod.as_deref(), Some("755"));
    assert_eq!(c.exclude, sv(&["*.md"]));
    assert_eq!(c.sources, sv(&["/s/a", "lit$X"]));
    assert_eq!(c.dest, "/d");
    // Sources are split on whitespace before expansion, so a quoted name with a space breaks, as in BuildKit (the
    // JSON form is the way to write such paths).
    let i = ins("FROM busybox\nCOPY \"b c\" /d\n").remove(0);
    assert_eq!(
        i.expand(&Lex::new('\\'), &()).expect_err("unbalanced").to_string(),
        "unexpected end of statement while looking for matching double-quote"
    );
    // Heredoc bodies are left for the executor.
    let Command::Copy(c) = expanded("COPY <<EOF /$F\n$BODY\nEOF", &[("F", "f"), ("BODY", "b")]) else { panic!() };
    assert_eq!(c.dest, "/f");
    assert_eq!(c.heredocs[0].content, "$BODY\n");
}

#[test]
fn not_expanded() {
    let e = [("X", "x")];
    assert_eq!(expanded("CMD echo $X", &e), Command::Cmd(Form::Shell(s("echo $X"))));
    assert_eq!(expanded("ENTRYPOINT [\"$X\"]", &e), Command::Entrypoint(Form::Exec(sv(&["$X"]))));
    assert_eq!(expanded("SHELL [\"$X\"]", &e), Command::Shell(sv(&["$X"])));
    assert_eq!(expanded("MAINTAINER $X", &e), Command::Maintainer(s("$X")));
    let Command::Onbuild(inner) = expanded("ONBUILD WORKDIR $X", &e) else { panic!() };
    assert_eq!(inner.command, Command::Workdir(s("$X")));
}

#[test]
fn expansion_errors() {
    let i = ins("FROM busybox\nWORKDIR ${DIR:?set DIR}\n").remove(0);
    let e = i.expand(&Lex::new('\\'), &()).expect_err("required");
    assert_eq!(e.to_string(), "DIR: set DIR");
}

// ---- multi-stage planning ----------------------------------------------------------------------------------------

#[test]
fn stage_references() {
    let d = df("ARG BUILDER=builder\nARG IMG=alpine\n\
                FROM golang AS builder\nRUN go build\n\
                FROM $IMG AS tools\n\
                FROM ${BUILDER} AS again\n\
                FROM scratch\n\
                COPY --from=builder /a /a\n\
                COPY --from=1 /b /b\n\
                COPY --from=$BUILDER /c /c\n\
                COPY --from=nginx:latest /etc/nginx /etc/nginx\n\
                COPY --from=4 /self /self\n\
                RUN --mount=type=bind,from=tools,target=/t --mount=type=cache,target=/c true\n\
                COPY local /local\n");
    let lex = Lex::new(d.escape);
    let meta = env(&[("BUILDER", "builder"), ("IMG", "alpine")]);
    assert_eq!(d.stage_refs(0, &lex, &meta), vec![StageRef::Image(s("golang"))]);
    assert_eq!(d.stage_refs(1, &lex, &meta), vec![StageRef::Image(s("alpine"))]);
    assert_eq!(d.stage_refs(2, &lex, &meta), vec![StageRef::Stage(0)]);
    assert_eq!(
        d.stage_refs(3, &lex, &meta),
        vec![
            StageRef::Image(s("scratch")),
            StageRef::Stage(0),
            StageRef::Stage(1),
            StageRef::Image(s("nginx:latest")),
            StageRef::Image(s("4")),
        ]
    );
    assert!(d.stage_refs(9, &lex, &meta).is_empty());
}

#[test]
fn run_line_forms() {
    assert_eq!(run_line(&Form::Exec(sv(&["a"])), &[]), RunLine::Exec(sv(&["a"])));
    assert_eq!(run_line(&Form::Shell(s("echo")), &[]), RunLine::Shell(s("echo")));
}

// ---- robustness --------------------------------------------------------------------------------------------------

#[test]
fn a_realistic_dockerfile() {
    let text = r#"# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG ALPINE=3.19

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine${ALPINE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 \
    GOFLAGS="-trimpath -mod=readonly"
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app ./cmd/app

FROM alpine:${ALPINE}
RUN apk add --no-cache ca-certificates && \
    # make a user
    adduser -D app
COPY --from=build --chown=app:app /out/app /usr/local/bin/app
COPY <<CONF /etc/app.conf
listen = ":8080"
CONF
USER app
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD wget -qO- http://localhost:8080/health || exit 1
ENTRYPOINT ["app"]
CMD ["--config", "/etc/app.conf"]
"#;
    let d = df(text);
    assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(d.meta_args.len(), 2);
    assert_eq!(d.stages.len(), 2);
    assert_eq!(d.stages[0].instructions.len(), 7);
    assert_eq!(d.stages[1].instructions.len(), 8);
    let lines: Vec<usize> = d.stages[1].instructions.iter().map(|i| i.line).collect();
    assert_eq!(lines, [18, 21, 22, 25, 26, 27, 28, 29]);
    assert_eq!(d.stages[1].instructions[0].original, "RUN apk add --no-cache ca-certificates &&     adduser -D app");
    let meta = env(&[("GO_VERSION", "1.22"), ("ALPINE", "3.19")]);
    let lex = Lex::new(d.escape);
    assert_eq!(d.stages[0].base_expanded(&lex, &meta).expect("ok"), "golang:1.22-alpine3.19");
    assert_eq!(d.stage_refs(1, &lex, &meta), vec![StageRef::Image(s("alpine:3.19")), StageRef::Stage(0)]);
    let env_i = d.stages[0].instructions[1].expand(&lex, &()).expect("ok");
    assert_eq!(
        env_i.command,
        Command::Env(vec![(s("CGO_ENABLED"), s("0")), (s("GOFLAGS"), s("-trimpath -mod=readonly"))])
    );
}

/// A tiny deterministic generator: Dockerfiles stitched from awkward fragments must parse or fail, never panic.
#[test]
fn never_panics() {
    const FRAGMENTS: &[&str] = &[
        "FROM ",
        "RUN ",
        "COPY ",
        "ENV ",
        "ARG ",
        "LABEL ",
        "ONBUILD ",
        "HEALTHCHECK ",
        "SHELL ",
        "CMD ",
        "<<",
        "<<-",
        "EOF",
        "'",
        "\"",
        "\\",
        "`",
        "\n",
        "\r\n",
        "\t",
        " ",
        "$",
        "${",
        "}",
        ":-",
        ":?",
        "#",
        "/",
        "//",
        "%",
        "%%",
        "[",
        "]",
        "[\"a\"",
        ",",
        "=",
        "--",
        "--mount=",
        "type=cache",
        "--from=",
        "AS ",
        "x",
        "é",
        "\u{feff}",
        "# escape=`\n",
        "# syntax=a\n",
        "*",
        "?",
        "**",
        "!",
        "-",
        "0",
        "1s",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let len = (next() % 24) as usize;
        let mut text = String::new();
        for _ in 0..len {
            text.push_str(FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize]);
        }
        let lex = Lex::new('\\');
        let _ = lex.process_word(&text, &());
        let _ = lex.process_words(&text, &());
        let _ = lex.referenced(&text);
        let _ = crate::ignore::Patterns::parse(&text).map(|p| (p.matches(&text), p.may_contain_included(&text)));
        if let Ok(d) = parse(&format!("FROM x\n{text}")) {
            for stage in &d.stages {
                for i in &stage.instructions {
                    let _ = i.expand(&lex, &());
                    if let Command::Run { cmd, heredocs, .. } = &i.command {
                        let _ = run_line(cmd, heredocs);
                    }
                }
                let _ = d.stage_refs(stage.index, &lex, &());
            }
        }
    }
}
