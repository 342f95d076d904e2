//! Berth's build context protocol (`berth build`: the file list first, then only the files berthd does not keep
//! already for that context): what a rebuild sends (the daemon's own count, in the build's stream), changes the
//! times do not show, deletions, `.dockerignore`, hostile lists, cut-short transfers, concurrent builds and prune.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use berth_integration::*;

/// [`context_dir`] with byte contents (one type for the literals of a call).
fn context(d: &Berthd, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    context_dir(d, name, files)
}

/// Builds `dir` as `tag`; returns the build's output (the daemon's stream, plain).
fn build(d: &Berthd, dir: &Path, tag: &str) -> String {
    berth_build_ok(d, dir, &["-t", tag])
}

/// The daemon's count of the files it received: "Build context: N files received (B bytes)".
fn received(out: &str) -> (u64, u64) {
    let line = out.lines().find(|l| l.contains("Build context: ")).unwrap_or_else(|| panic!("no count in:\n{out}"));
    let rest = &line[line.find("Build context: ").unwrap() + 15..];
    let n: u64 = rest.split_whitespace().next().unwrap().parse().unwrap();
    let bytes: u64 = rest.split('(').nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    (n, bytes)
}

fn kept_contexts(d: &Berthd) -> Vec<String> {
    std::fs::read_dir(d.dir.join("data/build/contexts"))
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

const DOCKERFILE: &[u8] =
    b"FROM busybox\nCOPY big.bin /big.bin\nCOPY small/ /small/\nRUN cat /small/* | wc -c > /count\n";

fn big() -> Vec<u8> {
    (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn rebuild_sends_only_what_changed_and_sees_every_change() {
    let d = daemon_with_busybox();
    let big = big();
    let mut files: Vec<(String, Vec<u8>)> = vec![("Dockerfile".into(), DOCKERFILE.to_vec()), ("big.bin".into(), big)];
    for i in 0..50 {
        files.push((format!("small/f{i:02}"), format!("file {i:02}\n").into_bytes()));
    }
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (p.as_str(), c.as_slice())).collect();
    let dir = context(&d, "a", &refs);
    // Old enough that their times vouch for them (a file changed within the listing's racy window is sent again).
    std::thread::sleep(std::time::Duration::from_millis(50));

    let out = build(&d, &dir, "ctx:a");
    assert_eq!(received(&out).0, 52, "a first build sends everything:\n{out}");
    let first = image_id(&d, "ctx:a");

    // Unchanged: nothing is sent, every step hits, same image.
    let out = build(&d, &dir, "ctx:a");
    assert_eq!(received(&out), (0, 0), "{out}");
    assert!(out.matches("CACHED").count() >= 3, "every step hits:\n{out}");
    assert_eq!(image_id(&d, "ctx:a"), first);

    // Changed with the same size and the same mtime: its ctime and the racy rule give it away.
    let f = dir.join("small/f07");
    let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
    std::fs::write(&f, b"FILE 07\n").unwrap();
    std::fs::File::options().write(true).open(&f).unwrap().set_modified(mtime).unwrap();
    assert_eq!(std::fs::metadata(&f).unwrap().modified().unwrap(), mtime);
    let out = build(&d, &dir, "ctx:a");
    assert_eq!(received(&out), (1, 8), "only the changed file is sent:\n{out}");
    let second = image_id(&d, "ctx:a");
    assert_ne!(second, first);
    assert_eq!(d.ok(&["run", "--rm", "ctx:a", "cat", "/small/f07"]), "FILE 07\n");
    // The 3 MB file's step was a cache hit (its digest was kept, not computed again).
    let step = out.lines().find(|l| l.contains("COPY big.bin")).and_then(|l| l.split_whitespace().next());
    let step = step.unwrap_or_else(|| panic!("no COPY big.bin step in:\n{out}"));
    assert!(out.lines().any(|l| l == format!("{step} CACHED")), "the big file's step is a cache hit:\n{out}");
    assert_eq!(d.ok(&["run", "--rm", "ctx:a", "cat", "/count"]).trim(), "400");

    // Deleted: gone in the image.
    std::fs::remove_file(dir.join("small/f03")).unwrap();
    let out = build(&d, &dir, "ctx:a");
    assert_eq!(received(&out).0, 0, "{out}");
    let ls = d.ok(&["run", "--rm", "ctx:a", "ls", "/small"]);
    assert!(!ls.contains("f03") && ls.contains("f04"), "{ls}");
    assert!(!dir.join("small/f03").exists());
    // The kept tree matches the context.
    let kept = kept_contexts(&d);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let tree = d.dir.join("data/build/contexts").join(&kept[0]).join("tree");
    assert!(!tree.join("small/f03").exists());
    assert_eq!(std::fs::read(tree.join("small/f07")).unwrap(), b"FILE 07\n");

    // The classic tar (the docker CLI's way) gives the same image as the kept context.
    if let Some(cli) = docker_cli() {
        let out = std::process::Command::new(cli)
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", "ctx:classic", &dir.display().to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(image_id(&d, "ctx:classic"), image_id(&d, "ctx:a"), "the cache is shared");
    }
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn dockerignore_is_respected_and_prune_removes_kept_contexts() {
    let d = daemon_with_busybox();
    let dir = context(
        &d,
        "ign",
        &[
            ("Dockerfile", b"FROM busybox\nCOPY . /ctx/\n"),
            (".dockerignore", b"secret*\n!secret-ok\nDockerfile\nbuild/\n"),
            ("secret.key", b"no"),
            ("secret-ok", b"yes"),
            ("build/out.o", b"obj"),
            ("src/main.c", b"int main;"),
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(50));
    build(&d, &dir, "ctx:ign");
    let ls = d.ok(&["run", "--rm", "ctx:ign", "find", "/ctx"]);
    for absent in ["secret.key", "Dockerfile", "build", "out.o"] {
        assert!(!ls.contains(absent), "{absent} in {ls}");
    }
    for present in ["secret-ok", "src/main.c", ".dockerignore"] {
        assert!(ls.contains(present), "{present} missing from {ls}");
    }
    let first = image_id(&d, "ctx:ign");
    let out = build(&d, &dir, "ctx:ign");
    // The Dockerfile is sent again (the daemon removes it from the kept context, as .dockerignore says), nothing else.
    assert_eq!(received(&out).0, 1, "{out}");
    assert_eq!(image_id(&d, "ctx:ign"), first);
    let tree = d.dir.join("data/build/contexts").join(&kept_contexts(&d)[0]).join("tree");
    assert!(!tree.join("Dockerfile").exists() && !tree.join("secret.key").exists());

    // Prune: the kept context goes, and the next build sends everything again.
    assert_eq!(kept_contexts(&d).len(), 1);
    d.ok(&["builder", "prune", "-f"]);
    assert!(kept_contexts(&d).is_empty(), "{:?}", kept_contexts(&d));
    let out = build(&d, &dir, "ctx:ign");
    assert_eq!(received(&out).0, 4, "{out}");
    d.ok(&["system", "prune", "-f"]);
    assert!(kept_contexts(&d).is_empty(), "system prune: {:?}", kept_contexts(&d));
}

/// An allow-list `.dockerignore` (`*`, then what goes in): the excluded directories that hold a file let through
/// are listed as its parents, as the tar path's extraction makes them.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn an_allow_list_dockerignore_builds() {
    let d = daemon_with_busybox();
    let dir = context(
        &d,
        "allow",
        &[
            ("Dockerfile", b"FROM busybox\nCOPY . /ctx/\n"),
            (".dockerignore", b"*\n!src/app/main.py\n!Dockerfile\n"),
            ("src/app/main.py", b"print(1)"),
            ("src/app/other.py", b"no"),
            ("notes.txt", b"no"),
        ],
    );
    build(&d, &dir, "ctx:allow");
    let ls = d.ok(&["run", "--rm", "ctx:allow", "find", "/ctx"]);
    assert!(ls.contains("/ctx/src/app/main.py"), "{ls}");
    for absent in ["other.py", "notes.txt"] {
        assert!(!ls.contains(absent), "{absent} in {ls}");
    }
    // And again, from what is kept: only the .dockerignore is sent again (it excludes itself, so the daemon keeps
    // it out of the kept context, as an excluded Dockerfile).
    let out = build(&d, &dir, "ctx:allow");
    assert_eq!(received(&out), (1, 31), "{out}");
}

/// compose's `dockerfile_inline` goes under a name of its own each time: a changed one of the same size is built.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn compose_inline_dockerfiles_are_never_taken_from_a_kept_context() {
    let d = daemon_with_busybox();
    let dir = context(&d, "inline", &[("data.txt", b"x")]);
    for v in ["1.2.3", "1.2.4"] {
        let file = format!(
            "services:\n  app:\n    image: ctx-inline:latest\n    build:\n      context: .\n      dockerfile_inline: |\n        FROM busybox\n        RUN echo {v} > /v\n"
        );
        std::fs::write(dir.join("compose.yaml"), file).unwrap();
        let out = d.berth_cmd().current_dir(&dir).args(["compose", "-p", "inline", "build"]).output().unwrap();
        assert!(out.status.success(), "compose build: {}", stderr(&out));
        assert_eq!(d.ok(&["run", "--rm", "ctx-inline:latest", "cat", "/v"]).trim(), v);
    }
}

/// A list line for `POST /build?berthcontext=`.
fn list(entries: serde_json::Value, send: &[usize]) -> Vec<u8> {
    let mut b = serde_json::to_vec(&serde_json::json!({"listed": 0, "entries": entries, "send": send})).unwrap();
    b.push(b'\n');
    b
}

fn file(path: &str, size: u64) -> serde_json::Value {
    serde_json::json!({"path": path, "type": "file", "size": size, "mode": 0o644, "mtime": 1_000_000_000})
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn hostile_lists_and_cut_transfers_are_refused() {
    let d = Berthd::start();
    let marker = "berth-ctx-escape-9f1c";
    let outside = [PathBuf::from("/").join(marker), PathBuf::from("/tmp").join(marker), d.dir.join(marker)];
    let hostile = [
        serde_json::json!([file("../berth-ctx-escape-9f1c", 1)]),
        serde_json::json!([file("/tmp/berth-ctx-escape-9f1c", 1)]),
        serde_json::json!([file("a/../../berth-ctx-escape-9f1c", 1)]),
        // Through a symlink the list itself makes.
        serde_json::json!([
            {"path": "l", "type": "symlink", "mode": 0o777, "mtime": 0, "link": "/tmp"},
            file("l/berth-ctx-escape-9f1c", 1)
        ]),
        serde_json::json!([file("x", 1), file("x", 1)]),
        serde_json::json!([{"path": "x", "type": "file", "size": 1, "mode": 0o104755, "mtime": 0}]),
    ];
    for entries in &hostile {
        let (status, _, body) = api(
            &d,
            "POST",
            "/berth/build/context?key=hostile",
            &serde_json::to_vec(&serde_json::json!({"listed": 0, "entries": entries})).unwrap(),
        );
        assert_eq!(status, 400, "{entries}: {}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["message"].is_string(), "{v}");
        let mut b = list(entries.clone(), &[0]);
        b.push(b'x');
        let (status, _, body) = api(&d, "POST", "/build?berthcontext=hostile", &b);
        assert_eq!(status, 400, "{entries}: {}", String::from_utf8_lossy(&body));
        assert!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["message"].is_string());
    }
    for bad_key in ["../x", "a/b", ""] {
        let (status, _, _) =
            api(&d, "POST", &format!("/build?berthcontext={bad_key}x/"), &list(serde_json::json!([]), &[]));
        assert_eq!(status, 400, "{bad_key}");
    }
    let (status, _, _) = api(&d, "POST", "/build?berthcontext=k", b"not json\n");
    assert_eq!(status, 400);
    for p in &outside {
        assert!(!p.exists(), "{} written", p.display());
    }

    // A transfer cut short (5 of 10 bytes) leaves nothing the next build trusts.
    let entries = serde_json::json!([file("Dockerfile", 10)]);
    let mut b = list(entries.clone(), &[0]);
    b.extend_from_slice(b"FROM ");
    let (status, _, body) = api(&d, "POST", "/build?berthcontext=cut", &b);
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = api(
        &d,
        "POST",
        "/berth/build/context?key=cut",
        &serde_json::to_vec(&serde_json::json!({"listed": 0, "entries": entries})).unwrap(),
    );
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["need"], serde_json::json!([0]), "{v}");
    // And a list that claims a file is kept when it is not is refused.
    let (status, _, _) = api(&d, "POST", "/build?berthcontext=cut", &list(entries, &[]));
    assert_eq!(status, 400);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn concurrent_builds_of_one_context() {
    let d = daemon_with_busybox();
    let dir = context(
        &d,
        "conc",
        &[("Dockerfile", b"FROM busybox\nCOPY . /c/\nRUN ls /c > /list\n"), ("a", b"a"), ("b", b"b")],
    );
    std::thread::sleep(std::time::Duration::from_millis(50));
    let p = dir.display().to_string();
    let children: Vec<_> = (0..3)
        .map(|i| {
            let mut c = d.berth_cmd();
            c.args(["build", "-q", "-t", &format!("ctx:conc{i}"), &p]);
            c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let ids: Vec<String> = (0..3).map(|i| image_id(&d, &format!("ctx:conc{i}"))).collect();
    // Each built on its own or from another's cache: the same content, and the kept context is whole.
    assert_eq!(d.ok(&["run", "--rm", "ctx:conc2", "cat", "/list"]), "Dockerfile\na\nb\n");
    let out = build(&d, &dir, "ctx:conc");
    assert_eq!(received(&out).0, 0, "{out}");
    assert!(ids.contains(&image_id(&d, "ctx:conc")), "{ids:?}");
}
