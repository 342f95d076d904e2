//! The builder end to end: Dockerfile instructions, the layer cache (hits, and misses for every input that changed),
//! multi-stage builds, `.dockerignore`, bad input — through `berth build` and the real docker CLI's classic builder.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use berth_integration::*;

/// No build container, workspace or mount is left behind.
fn assert_clean(d: &Berthd) {
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "", "build containers left");
    let ws: Vec<_> = std::fs::read_dir(d.dir.join("data/build"))
        .map(|r| {
            r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("ws-")).collect()
        })
        .unwrap_or_default();
    assert!(ws.is_empty(), "workspaces left: {ws:?}");
    let mounts: Vec<String> = mounts_under(&d.dir).into_iter().filter(|m| m.contains("/build/")).collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn instructions_config_and_history() {
    let d = daemon_with_busybox();
    let dir = context_dir(
        &d,
        "all",
        &[
            (
                "Dockerfile",
                "# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM ${BASE} AS base\nARG GREETING=hello\nENV APP=/app \\\n    MODE=\"two words\"\nWORKDIR $APP\nCOPY --chmod=755 run.sh ./bin/\nCOPY data/ data/\nADD files.tar /unpacked/\nRUN echo \"$GREETING $MODE\" > greeting && \\\n    chmod 640 greeting\nRUN <<EOF\necho heredoc > /heredoc.txt\nEOF\nCOPY <<EOF /etc/motd\nmotd for $APP\nEOF\nLABEL org.example.name=demo version=\"1.0\"\nEXPOSE 8080 9000/udp\nUSER 1000:1000\nVOLUME /data\nSTOPSIGNAL SIGTERM\nHEALTHCHECK --interval=5s --retries=2 CMD [\"true\"]\nENTRYPOINT [\"/app/bin/run.sh\"]\nCMD [\"--flag\"]\nONBUILD RUN echo triggered\n",
            ),
            ("run.sh", "#!/bin/sh\necho run \"$@\"\n"),
            ("data/a.txt", "A\n"),
            ("data/sub/b.txt", "B\n"),
        ],
    );
    // A tar for ADD to unpack.
    let tar_src = d.dir.join("tar-src");
    std::fs::create_dir_all(tar_src.join("inner")).unwrap();
    std::fs::write(tar_src.join("inner/x.txt"), "from tar\n").unwrap();
    let st = std::process::Command::new("tar")
        .args(["-C"])
        .arg(&tar_src)
        .arg("-cf")
        .arg(dir.join("files.tar"))
        .arg("inner")
        .status()
        .unwrap();
    assert!(st.success());
    let log = berth_build_ok(&d, &dir, &["-t", "demo:1", "-t", "demo:latest", "--label", "extra=yes"]);
    assert!(log.contains("#2 [2/19] ARG GREETING=hello"), "{log}");
    let cfg = |f: &str| d.ok(&["image", "inspect", "-f", f, "demo:1"]).trim().to_string();
    assert_eq!(cfg("{{.Config.WorkingDir}}"), "/app");
    assert_eq!(cfg("{{.Config.User}}"), "1000:1000");
    assert_eq!(cfg("{{json .Config.Entrypoint}}"), "[\"/app/bin/run.sh\"]");
    assert_eq!(cfg("{{json .Config.Cmd}}"), "[\"--flag\"]");
    assert_eq!(cfg("{{json .Config.ExposedPorts}}"), "{\"8080/tcp\":{},\"9000/udp\":{}}");
    assert_eq!(cfg("{{json .Config.Volumes}}"), "{\"/data\":{}}");
    assert_eq!(cfg("{{.Config.StopSignal}}"), "SIGTERM");
    assert_eq!(
        cfg("{{index .Config.Labels \"org.example.name\"}} {{.Config.Labels.version}} {{.Config.Labels.extra}}"),
        "demo 1.0 yes"
    );
    assert_eq!(cfg("{{json .Config.Healthcheck.Test}} {{.Config.Healthcheck.Retries}}"), "[\"CMD\",\"true\"] 2");
    assert_eq!(cfg("{{json .Config.OnBuild}}"), "[\"RUN echo triggered\"]");
    let env = cfg("{{json .Config.Env}}");
    assert!(env.contains("\"APP=/app\"") && env.contains("\"MODE=two words\""), "{env}");
    assert_eq!(image_id(&d, "demo:1"), image_id(&d, "demo:latest"));
    // The files, their modes and owners.
    let out = d.ok(&[
        "run", "--rm", "--user", "0", "--entrypoint", "sh", "demo:1", "-c",
        "cat greeting /heredoc.txt /etc/motd data/a.txt data/sub/b.txt /unpacked/inner/x.txt; stat -c '%a %u %n' greeting bin/run.sh data/a.txt",
    ]);
    assert_eq!(
        out,
        "hello two words\nheredoc\nmotd for /app\nA\nB\nfrom tar\n640 0 greeting\n755 0 bin/run.sh\n644 0 data/a.txt\n"
    );
    assert_eq!(d.ok(&["run", "--rm", "demo:1"]), "run --flag\n");
    // History: one entry per instruction, layers where files changed.
    let hist = d.ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "demo:1"]);
    assert!(hist.contains("/bin/sh -c echo \"$GREETING $MODE\" > greeting"), "{hist}");
    assert!(hist.lines().any(|l| l.starts_with("COPY data/ data/ # buildkit|") && !l.ends_with("|0B")), "{hist}");
    assert!(hist.contains("RUN |1 GREETING=hello /bin/sh -c echo heredoc > /heredoc.txt # buildkit|"), "{hist}");
    assert!(hist.lines().any(|l| l.starts_with("ENV APP=/app MODE=two words|0B")), "{hist}");
    // ONBUILD runs in a child build.
    let child = context_dir(&d, "child", &[("Dockerfile", "FROM demo:1\nUSER 0\nRUN test -f /app/greeting\n")]);
    let log = berth_build_ok(&d, &child, &["-t", "child"]);
    assert!(log.contains("triggered"), "{log}");
    assert_eq!(d.ok(&["image", "inspect", "-f", "{{json .Config.OnBuild}}", "child"]).trim(), "null");
    assert_clean(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn cache_hits_and_every_changed_input_misses() {
    let d = daemon_with_busybox();
    let dir = context_dir(
        &d,
        "cache",
        &[
            (
                "Dockerfile",
                "FROM busybox\nARG V=1\nRUN echo step1-$V > /s1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /s2\nCOPY b/ /b/\n",
            ),
            ("a.txt", "one\n"),
            ("b/x", "x\n"),
            ("b/ignored.log", "log\n"),
            (".dockerignore", "b/*.log\n"),
        ],
    );
    let first = berth_build_ok(&d, &dir, &["-t", "c"]);
    assert!(!first.contains("CACHED"), "{first}");
    let id1 = image_id(&d, "c");
    // Nothing changed: every step from the cache, the same image.
    let again = berth_build_ok(&d, &dir, &["-t", "c"]);
    assert_eq!(again.matches("CACHED").count(), 5, "{again}");
    assert_eq!(image_id(&d, "c"), id1);
    // The cache survives a daemon restart.
    let mut d = d;
    d.restart();
    let after = berth_build_ok(&d, &dir, &["-t", "c"]);
    assert_eq!(after.matches("CACHED").count(), 5, "{after}");
    assert_eq!(image_id(&d, "c"), id1);
    // A .dockerignore'd file changes nothing.
    std::fs::write(dir.join("b/ignored.log"), "other\n").unwrap();
    berth_build_ok(&d, &dir, &["-t", "c"]);
    assert_eq!(image_id(&d, "c"), id1);
    assert_eq!(d.ok(&["run", "--rm", "c", "ls", "/b"]), "x\n");
    // Content: the COPY and what follows rebuild, what came before does not.
    std::fs::write(dir.join("a.txt"), "two\n").unwrap();
    let log = berth_build_ok(&d, &dir, &["-t", "c"]);
    assert_eq!(log.matches("CACHED").count(), 2, "{log}");
    assert_eq!(d.ok(&["run", "--rm", "c", "cat", "/s2"]), "two\n");
    // Same content, other mtime: still cached (never mtime alone).
    let id2 = image_id(&d, "c");
    std::process::Command::new("touch").arg("-d").arg("2001-01-01").arg(dir.join("a.txt")).status().unwrap();
    berth_build_ok(&d, &dir, &["-t", "c"]);
    assert_eq!(image_id(&d, "c"), id2);
    // Mode: a miss.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("a.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let log = berth_build_ok(&d, &dir, &["-t", "c"]);
    assert_eq!(log.matches("CACHED").count(), 2, "{log}");
    assert_eq!(d.ok(&["run", "--rm", "c", "stat", "-c", "%a", "/a.txt"]), "600\n");
    // A build argument: the steps after its ARG rebuild.
    let log = berth_build_ok(&d, &dir, &["-t", "c", "--build-arg", "V=2"]);
    assert_eq!(log.matches("CACHED").count(), 0, "{log}");
    assert_eq!(d.ok(&["run", "--rm", "c", "cat", "/s1"]), "step1-2\n");
    // --no-cache rebuilds everything.
    let log = berth_build_ok(&d, &dir, &["-t", "c", "--no-cache"]);
    assert_eq!(log.matches("CACHED").count(), 0, "{log}");
    // builder prune empties the cache, and so does system prune (which keeps tagged images).
    d.ok(&["builder", "prune", "-f"]);
    let log = berth_build_ok(&d, &dir, &["-t", "c2"]);
    assert_eq!(log.matches("CACHED").count(), 0, "{log}");
    d.ok(&["run", "--name", "stopped", "busybox", "true"]);
    let out = d.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:") && out.contains("Total reclaimed space"), "{out}");
    assert!(d.berth(&["inspect", "stopped"]).status.code() != Some(0));
    let log = berth_build_ok(&d, &dir, &["-t", "c2"]);
    assert_eq!(log.matches("CACHED").count(), 0, "{log}");
    // image prune -a removes what no container uses.
    d.ok(&["image", "prune", "-a", "-f"]);
    assert!(!d.berth(&["image", "inspect", "c"]).status.success());
    assert_clean(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn multi_stage_target_and_copy_from() {
    let d = daemon_with_busybox();
    let dir = context_dir(
        &d,
        "multi",
        &[(
            "Dockerfile",
            "FROM busybox AS build\nRUN mkdir /out && echo built > /out/artifact\n\nFROM busybox AS other\nRUN echo other > /other\n\nFROM busybox AS unused\nRUN exit 1\n\nFROM busybox AS mounter\nRUN --mount=type=bind,from=build,source=/out,target=/in cat /in/artifact > /seen\n\nFROM scratch\nCOPY --from=build /out/artifact /artifact\nCOPY --from=1 /other /other\nCOPY --from=mounter /seen /seen\nCOPY --from=busybox /bin/busybox /bin/busybox\nCMD [\"/bin/busybox\", \"cat\", \"/artifact\", \"/other\", \"/seen\"]\n",
        )],
    );
    // The failing stage is not needed, so not built.
    berth_build_ok(&d, &dir, &["-t", "final"]);
    assert_eq!(d.ok(&["run", "--rm", "final"]), "built\nother\nbuilt\n");
    let layers = d.ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", "final"]);
    assert_eq!(layers.trim(), "4");
    // --target stops at a stage.
    berth_build_ok(&d, &dir, &["-t", "stage1", "--target", "build"]);
    assert_eq!(d.ok(&["run", "--rm", "stage1", "cat", "/out/artifact"]), "built\n");
    let out = berth_build(&d, &dir, &["--target", "nope"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("failed to reach build target nope"), "{}", stderr(&out));
    // Building the unused stage fails, with its output and code.
    let out = berth_build(&d, &dir, &["--target", "unused"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("returned a non-zero code: 1"), "{}", stderr(&out));
    assert_clean(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn bad_input_names_the_line_and_tags_nothing() {
    let d = daemon_with_busybox();
    let cases: &[(&str, &str)] = &[
        ("FROM busybox\nRUNN echo\n", "Dockerfile:2: unknown instruction: RUNN"),
        ("FROM busybox\nCOPY missing.txt /\n", "missing.txt"),
        ("FROM busybox\nCOPY ../x /\n", "outside the build context"),
        ("FROM busybox\nRUN echo out-before-failure && exit 3\n", "returned a non-zero code: 3"),
        ("FROM busybox\nCOPY --bogus=1 a /\n", "unknown flag: bogus"),
        ("FROM nosuchimage:1\n", "nosuchimage"),
        ("RUN true\n", "Dockerfile:1"),
        ("FROM busybox\nCOPY link /x\n", "link"),
        // A here-document's name never becomes a host path.
        (
            "FROM busybox\nRUN <</tmp/berth-heredoc-escape\n#!/bin/sh\necho x\n/tmp/berth-heredoc-escape\n",
            "invalid here-document name",
        ),
        // A --from the plan cannot see (a stage-local variable) fails at once instead of waiting.
        ("FROM busybox AS a\nRUN true\nFROM busybox\nARG SRC=a\nCOPY --from=$SRC /bin/sh /x\n", "could not plan"),
        ("FROM busybox\nFROM 0\n", "0"),
    ];
    for (i, (df, want)) in cases.iter().enumerate() {
        // `FROM 0` must not name stage 0; but "0" is also a short image ID when a local image's ID starts with 0
        // (Docker resolves short IDs too), and then it rightly builds: that case only holds without such an image.
        if df.ends_with("FROM 0\n") {
            let ids = d.ok(&["images", "-aq", "--no-trunc"]);
            if let Some(id) = ids.split_whitespace().find(|id| id.trim_start_matches("sha256:").starts_with('0')) {
                eprintln!("NOTE: the `FROM 0` case is not checked: image {id} is named by the prefix 0");
                continue;
            }
        }
        let dir = context_dir(&d, &format!("bad{i}"), &[("Dockerfile", df)]);
        // A symlink that points outside the context resolves inside it (and so names nothing).
        std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).unwrap();
        let out = berth_build(&d, &dir, &["-t", "bad:1"]);
        assert!(!out.status.success(), "{df:?} built");
        let err = stderr(&out);
        assert!(err.contains(want), "{df:?}: want {want:?} in:\n{err}");
        if df.contains("out-before-failure") {
            assert!(err.contains("out-before-failure"), "the failing step's output: {err}");
        }
        let tagged = d.berth(&["image", "inspect", "bad:1"]);
        assert!(!tagged.status.success(), "{df:?} tagged an image");
    }
    assert!(!Path::new("/tmp/berth-heredoc-escape").exists());
    // A .dockerignore that points outside the context is not followed there.
    let dir = context_dir(&d, "ignore-link", &[("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"), ("a.txt", "a\n")]);
    std::os::unix::fs::symlink("/etc/passwd", dir.join(".dockerignore")).unwrap();
    berth_build_ok(&d, &dir, &["-t", "ignore-link"]);
    assert_eq!(d.ok(&["run", "--rm", "ignore-link", "cat", "/ctx/a.txt"]), "a\n");
    assert_clean(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn dockerfile_from_stdin_is_not_in_the_context() {
    let d = daemon_with_busybox();
    let dir = context_dir(&d, "stdin", &[("a.txt", "a\n")]);
    let p = dir.display().to_string();
    let df = b"FROM busybox\nCOPY . /ctx/\n";
    for round in 0..2 {
        let out = d.berth_input(&["build", "--progress=plain", "-t", "stdin", "-f", "-", &p], df);
        assert!(out.status.success(), "{}", stderr(&out));
        if round == 1 {
            assert_eq!(stderr(&out).matches("CACHED").count(), 1, "{}", stderr(&out));
        }
    }
    assert_eq!(d.ok(&["run", "--rm", "stdin", "ls", "-A", "/ctx"]), "a.txt\n");
    assert_clean(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_classic_builder() {
    let d = daemon_with_busybox();
    let dir = context_dir(
        &d,
        "docker",
        &[
            ("Dockerfile", "FROM busybox\nCOPY hello.txt /\nRUN cat /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n"),
            ("hello.txt", "hi from docker build\n"),
        ],
    );
    let p = dir.display().to_string();
    let Some(out) = d.docker(&["build", "-t", "viadocker", &p]) else { return };
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}\n{}", tail(&d.log(), 30));
    assert!(
        text.contains("Step 1/4 : FROM busybox") && text.contains("Successfully tagged viadocker:latest"),
        "{text}"
    );
    assert!(text.contains("hi from docker build"), "{text}");
    assert_eq!(d.ok(&["run", "--rm", "viadocker"]), "hi from docker build\n");
    let again = d.docker(&["build", "-q", "-t", "viadocker", &p]).unwrap();
    assert!(again.status.success());
    assert_eq!(stdout(&again).trim(), image_id(&d, "viadocker"));
    // -f from outside the context.
    let df = d.dir.join("Dockerfile.outside");
    std::fs::write(&df, "FROM busybox\nCOPY hello.txt /copied\n").unwrap();
    let out = d.docker(&["build", "-f", &df.display().to_string(), "-t", "outside", &p]).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d.ok(&["run", "--rm", "outside", "cat", "/copied"]), "hi from docker build\n");
    assert_clean(&d);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn add_fetches_urls() {
    let d = daemon_with_busybox();
    let served = d.dir.join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(served.join("remote.txt"), "fetched over http\n").unwrap();
    let server = HttpServer::start(&served);
    let port = server.port;
    let df = format!(
        "FROM busybox\nADD http://127.0.0.1:{port}/remote.txt /fetched/\nADD http://127.0.0.1:{port}/remote.txt /renamed.txt\n"
    );
    let dir = context_dir(&d, "url", &[("Dockerfile", &df)]);
    berth_build_ok(&d, &dir, &["-t", "url"]);
    let out =
        d.ok(&["run", "--rm", "url", "sh", "-c", "cat /fetched/remote.txt /renamed.txt; stat -c %a /renamed.txt"]);
    assert_eq!(out, "fetched over http\nfetched over http\n600\n");
    // A changed remote file is a cache miss.
    std::fs::write(served.join("remote.txt"), "changed\n").unwrap();
    let log = berth_build_ok(&d, &dir, &["-t", "url"]);
    assert_eq!(log.matches("CACHED").count(), 0, "{log}");
    // Missing: a clear error naming the line.
    let dir =
        context_dir(&d, "url404", &[("Dockerfile", &format!("FROM busybox\nADD http://127.0.0.1:{port}/nope /x\n"))]);
    let out = berth_build(&d, &dir, &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Dockerfile:2") && stderr(&out).contains("404"), "{}", stderr(&out));
    assert_clean(&d);
}
