//! Issue 15: `docker commit` (`POST /commit`), `docker diff` (`GET /containers/{id}/changes`),
//! `GET /distribution/{name}/json`, and the classic builder's quirks real clients rely on — through the docker CLI
//! and the Docker SDK for Python (Debian's `/usr/bin/python3` with python3-docker), compared with a real dockerd
//! where one is installed.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use berth_integration::*;
use serde_json::Value;

fn py_ok(d: &Berthd, script: &str) -> String {
    let py = docker_py().unwrap();
    let full = format!("import docker, json\nc = docker.DockerClient(base_url='{}')\n{script}", d.host());
    let out = std::process::Command::new(py).args(["-c", &full]).output().unwrap();
    assert!(out.status.success(), "python: {}\n{}\n--- berthd ---\n{}", stdout(&out), stderr(&out), tail(&d.log(), 30));
    stdout(&out)
}

/// What the test container changes: a file added in a new directory, one changed, one deleted, an opaque directory
/// (removed and made again: overlay marks it opaque), a volume's mount point.
const CHANGES: &str = "echo hi > /etc/motd && mkdir -p /tmp/a && echo x > /tmp/a/f && echo root2 >> /etc/passwd \
                       && rm /bin/vi && rm -r /home && mkdir /home && touch /home/new && sleep 1000";

fn diff_lines(out: &str) -> Vec<String> {
    out.lines().map(str::to_string).collect()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn diff_and_commit_through_the_docker_cli() {
    let Some(d) = docker_cli_daemon() else { return };
    docker_ok(&d, &["run", "-d", "--name", "c1", "-e", "KEEP=1", "-v", "/data", "busybox", "sh", "-c", CHANGES]);
    assert!(d.eventually(10, || d.docker(&["exec", "c1", "test", "-e", "/home/new"]).unwrap().status.success()));
    let diff = diff_lines(&docker_ok(&d, &["diff", "c1"]));
    // Docker's order (a walk of the writable layer) and kinds; no /etc/hosts, /proc, /.dockerenv: the start made them.
    let want = [
        "C /bin",
        "D /bin/vi",
        "A /data",
        "C /etc",
        "A /etc/motd",
        "C /etc/passwd",
        "C /home",
        "A /home/new",
        "C /tmp",
        "A /tmp/a",
        "A /tmp/a/f",
    ];
    assert_eq!(diff, want, "docker diff");
    assert_eq!(diff_lines(&d.ok(&["diff", "c1"])), want, "berth diff");

    // Commit a running container (paused meanwhile), with changes, message, author and a tag. Neither `diff` nor
    // `commit` mounts anything.
    let mounts = mounts_under(&d.dir);
    let since = unix_now();
    let id = docker_ok(
        &d,
        &[
            "commit",
            "-m",
            "the message",
            "-a",
            "someone <s@example.com>",
            "-c",
            "ENV ADDED=2",
            "-c",
            "CMD [\"cat\", \"/etc/motd\"]",
            "-c",
            "EXPOSE 8080",
            "-c",
            "LABEL made=commit",
            "c1",
            "committed:v1",
        ],
    );
    let until = unix_now();
    let id = id.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(d.inspect("c1", "{{.State.Status}}"), "running", "commit resumes the container");
    assert_eq!(mounts_under(&d.dir), mounts, "mounts left by commit");
    assert_eq!(docker_ok(&d, &["run", "--rm", "committed:v1"]), "hi\n");
    let out = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "committed:v1",
            "sh",
            "-c",
            "cat /tmp/a/f; tail -1 /etc/passwd; ls /home; test -e /bin/vi || echo novi; echo $KEEP$ADDED",
        ],
    );
    assert_eq!(out, "x\nroot2\nnew\nnovi\n12\n");
    let cfg: Value = serde_json::from_str(&docker_ok(&d, &["image", "inspect", "committed:v1"])).unwrap();
    let img = &cfg[0];
    assert_eq!(img["Id"], id);
    assert_eq!(img["Author"], "someone <s@example.com>");
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["cat", "/etc/motd"]));
    assert_eq!(img["Config"]["Labels"]["made"], "commit");
    assert!(img["Config"]["ExposedPorts"]["8080/tcp"].is_object(), "{img}");
    assert!(img["Config"]["Volumes"]["/data"].is_object(), "the container's volume stays declared: {img}");
    let env: Vec<String> = serde_json::from_value(img["Config"]["Env"].clone()).unwrap();
    assert!(env.contains(&"KEEP=1".to_string()) && env.contains(&"ADDED=2".to_string()), "{env:?}");
    let base: Value = serde_json::from_str(&docker_ok(&d, &["image", "inspect", "busybox"])).unwrap();
    let layers = |v: &Value| v["RootFS"]["Layers"].as_array().unwrap().len();
    assert_eq!(layers(img), layers(&base[0]) + 1);
    // History: the container's command as created_by, the message as comment.
    let hist = docker_ok(&d, &["history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "committed:v1"]);
    let first = hist.lines().next().unwrap();
    assert_eq!(first, format!("sh -c {CHANGES}|the message"));

    // The container's `commit` event, with Docker's attributes, and the image's `tag`.
    let evs = docker_ok(
        &d,
        &["events", "--since", &since, "--until", &until, "--filter", "event=commit", "--format", "{{json .}}"],
    );
    let evs: Vec<Value> = evs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(evs.len(), 1, "{evs:?}");
    let a = &evs[0]["Actor"]["Attributes"];
    assert_eq!((a["name"].as_str(), a["comment"].as_str()), (Some("c1"), Some("the message")));
    assert_eq!((a["imageID"].as_str(), a["imageRef"].as_str()), (Some(id.as_str()), Some("committed:v1")));
    let tags = docker_ok(
        &d,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=image",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ],
    );
    assert_eq!(tags, "tag committed:v1\n");

    // Without changes and stopped: an image that runs the container's command; `--pause=false` is accepted.
    docker_ok(&d, &["create", "--name", "c2", "busybox", "echo", "from c2"]);
    assert_eq!(docker_ok(&d, &["diff", "c2"]), "", "a new container has no changes");
    let plain = docker_ok(&d, &["commit", "--pause=false", "c2"]).trim().to_string();
    assert_eq!(docker_ok(&d, &["run", "--rm", &plain]), "from c2\n");
    let p: Value = serde_json::from_str(&docker_ok(&d, &["image", "inspect", &plain])).unwrap();
    assert_eq!(layers(&p[0]), layers(&base[0]), "nothing changed: no layer");
    assert_eq!(docker_ok(&d, &["image", "ls", "-q", "--filter", "dangling=true"]).lines().count(), 1);

    // Bad input: Docker's statuses.
    let out = d.docker(&["commit", "-c", "RUN echo no", "c2"]).unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("run is not a valid change command"), "{}", stderr(&out));
    let out = d.docker(&["commit", "nosuch"]).unwrap();
    assert!(stderr(&out).contains("No such container: nosuch"), "{}", stderr(&out));
    let (status, _, body) = api(&d, "POST", "/commit?container=c2&repo=UPPER", b"");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = api(&d, "GET", "/containers/nosuch/changes", b"");
    assert_eq!(status, 404);
    docker_ok(&d, &["rm", "-f", "c1", "c2"]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_py_commit_and_diff() {
    let Some(d) = docker_cli_daemon() else { return };
    if docker_py().is_none() {
        return;
    }
    docker_ok(&d, &["run", "-d", "--name", "py1", "busybox", "sh", "-c", "echo py > /tmp/f && sleep 1000"]);
    assert!(d.eventually(10, || d.docker(&["exec", "py1", "test", "-e", "/tmp/f"]).unwrap().status.success()));
    let out = py_ok(
        &d,
        "ct = c.containers.get('py1')\n\
         print(json.dumps(c.api.diff('py1')))\n\
         img = ct.commit(repository='pyimg', tag='t1', message='m', author='a', changes=['ENV X=1', 'WORKDIR /tmp'], \
         conf={'Cmd': ['cat', 'f']})\n\
         print(img.id)\n\
         print(c.containers.run('pyimg:t1', remove=True).decode(), end='')\n\
         print(json.dumps(c.api.diff(c.api.create_container('busybox', 'true')['Id'])))\n",
    );
    let lines: Vec<&str> = out.lines().collect();
    let diff: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(diff, serde_json::json!([{"Path": "/tmp", "Kind": 0}, {"Path": "/tmp/f", "Kind": 1}]));
    assert!(lines[1].starts_with("sha256:"), "{out}");
    assert_eq!(lines[2], "py", "the body's Cmd and WORKDIR: {out}");
    assert_eq!(lines[3], "null", "no changes: Docker's null");
    assert_eq!(d.inspect("pyimg:t1", "{{.Config.WorkingDir}} {{.Author}}"), "/tmp a");
    docker_ok(&d, &["rm", "-f", "py1"]);
}

/// The commit's layer is stored and the daemon dies before the image is: after a restart there is no image, the
/// layer and its blob are gone, and the commit runs again.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn a_crash_during_commit_leaves_no_half_image() {
    use std::os::unix::process::ExitStatusExt;
    let Some(mut d) = docker_cli_daemon() else { return };
    d.ok(&["run", "--name", "keep", "busybox", "sh", "-c", "echo data > /kept"]);
    let names = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let layers = d.dir.join("data/layers");
    let blobs = d.dir.join("data/content/blobs/sha256");
    let (layers_before, blobs_before) = (names(&layers), names(&blobs));
    d.set_env("BERTH_FAULT", Some("commit.after-layer"));
    d.restart();
    let out = d.berth(&["commit", "keep", "half:1"]);
    assert!(!out.status.success(), "the commit succeeded although berthd was to die");
    let st = d.wait_exit(20).expect("berthd did not die");
    d.set_env("BERTH_FAULT", None);
    d.restart();
    assert_eq!(st.signal(), Some(libc::SIGKILL), "berthd ended with {st:?}, not by the fault");
    assert!(d.berth(&["image", "inspect", "half:1"]).status.code() != Some(0), "half a commit is listed");
    assert_eq!(names(&layers), layers_before, "layer directories left by the crash");
    assert_eq!(names(&blobs), blobs_before, "blobs left by the crash");
    d.ok(&["commit", "keep", "half:1"]);
    assert_eq!(d.ok(&["run", "--rm", "half:1", "cat", "/kept"]), "data\n");
}

/// Berth's `diff` lists what a real dockerd lists for the same container on the same image.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn diff_matches_a_real_dockerd() {
    let Some(d) = docker_cli_daemon() else { return };
    let Some(peer) = PeerDockerd::start() else { return };
    let out = std::process::Command::new(repo_root().join("contrib/mkimage-busybox.sh"))
        .env("BERTH", docker_cli().unwrap())
        .env("DOCKER_HOST", format!("unix://{}", peer.socket().display()))
        .env("DOCKER_CONFIG", peer.dir.join("config"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let run = ["run", "-d", "--network", "none", "--name", "same", "-v", "/data", "busybox", "sh", "-c", CHANGES];
    peer.ok(&run);
    docker_ok(&d, &run);
    let ready = |o: std::process::Output| o.status.success();
    assert!(d.eventually(10, || ready(peer.docker(&["exec", "same", "test", "-e", "/home/new"]))));
    assert!(d.eventually(10, || ready(d.docker(&["exec", "same", "test", "-e", "/home/new"]).unwrap())));
    // Sorted: dockerd 20.10's "naive" diff (overlay2 on kernels with redirect_dir) lists in map order.
    let sorted = |s: String| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(docker_ok(&d, &["diff", "same"])), sorted(peer.ok(&["diff", "same"])));
    // A commit of the running container: the same events (a pause around it) and the same history entry.
    let since = unix_now();
    let commit = ["commit", "-m", "msg", "-c", "ENV Z=1", "same", "peer:1"];
    peer.ok(&commit);
    docker_ok(&d, &commit);
    let until = unix_now();
    let evs = [
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--format",
        "{{.Type}} {{.Action}}{{range $k, $v := .Actor.Attributes}} {{$k}}{{end}}",
    ];
    assert_eq!(docker_ok(&d, &evs), peer.ok(&evs));
    let hist = ["history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}|{{.Size}}", "peer:1"];
    let first = |s: String| s.lines().next().unwrap_or("").split('|').take(2).collect::<Vec<_>>().join("|");
    assert_eq!(first(docker_ok(&d, &hist)), first(peer.ok(&hist)));
    peer.ok(&["rm", "-f", "same"]);
    docker_ok(&d, &["rm", "-f", "same"]);
}

/// Archives `ADD` must unpack, made by GNU tar as users make them: `archive.<ext>` holding `dir/<ext>.txt`.
fn archives(ctx: &Path) -> Vec<&'static str> {
    let src = ctx.join("src");
    std::fs::create_dir_all(src.join("dir")).unwrap();
    let mut made = Vec::new();
    for (ext, flag) in [("tar.gz", "-z"), ("tar.bz2", "-j"), ("tar.xz", "-J"), ("tar.zst", "--zstd")] {
        std::fs::write(src.join("dir").join(format!("{ext}.txt")), format!("{ext}\n")).unwrap();
        let out = std::process::Command::new("tar")
            .arg("-C")
            .arg(&src)
            .args(["-c", flag, "-f"])
            .arg(ctx.join(format!("archive.{ext}")))
            .arg(format!("dir/{ext}.txt"))
            .output()
            .unwrap();
        if out.status.success() {
            made.push(ext);
        } else {
            skip_missing_tool(&format!("tar {flag} failed ({}): ADD of .{ext} not tested", stderr(&out).trim()));
        }
    }
    // A GNU sparse file (`tar -S`), which stores only its data.
    let sparse = std::fs::File::create(src.join("dir/sparse")).unwrap();
    sparse.set_len(4 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&sparse, b"end\n", (4 << 20) - 4).unwrap();
    let out = std::process::Command::new("tar")
        .arg("-C")
        .arg(&src)
        .args(["-S", "-czf"])
        .arg(ctx.join("sparse.tar.gz"))
        .arg("dir/sparse")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // A compressed file that is no tar: copied as it is.
    std::fs::write(src.join("plain"), "not a tar\n").unwrap();
    let out = std::process::Command::new("gzip").arg("-k").arg(src.join("plain")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::rename(src.join("plain.gz"), ctx.join("plain.gz")).unwrap();
    std::fs::remove_dir_all(&src).unwrap();
    made
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn classic_build_api_as_clients_use_it() {
    let Some(d) = docker_cli_daemon() else { return };
    if docker_py().is_none() {
        return;
    }
    let ctx = d.dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let made = archives(&ctx);
    assert!(made.contains(&"tar.gz"), "GNU tar czf must work here");
    // The Dockerfile lives outside the context: docker-py sends `dockerfile` twice (a name in the context, then the
    // text), and Docker reads the first.
    let outside = d.dir.join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    let mut df = String::from("FROM busybox\n");
    for ext in &made {
        df.push_str(&format!("ADD archive.{ext} /x/\n"));
    }
    df.push_str("ADD sparse.tar.gz /s/\nADD plain.gz /p/\n");
    df.push_str("RUN echo to-out; echo to-err >&2\nRUN grep myhost /etc/hosts\n");
    std::fs::write(outside.join("Dockerfile"), &df).unwrap();
    let out = py_ok(
        &d,
        &format!(
            "img, logs = c.images.build(path='{}', dockerfile='{}', tag='outside:1', extra_hosts={{'myhost': '10.1.2.3'}})\n\
             for l in logs:\n    print(json.dumps(l))\n",
            ctx.display(),
            outside.join("Dockerfile").display()
        ),
    );
    let msgs: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let streams: Vec<&str> = msgs.iter().filter_map(|m| m["stream"].as_str()).collect();
    assert!(streams.contains(&"to-out\n"), "{streams:?}");
    assert!(streams.contains(&"\x1b[91mto-err\n\x1b[0m"), "stderr as its own red chunk: {streams:?}");
    assert!(streams.iter().any(|s| s.contains("10.1.2.3") && s.contains("myhost")), "extrahosts in RUN: {streams:?}");
    for ext in &made {
        assert_eq!(
            docker_ok(&d, &["run", "--rm", "outside:1", "cat", &format!("/x/dir/{ext}.txt")]),
            format!("{ext}\n")
        );
    }
    let script = "wc -c < /s/dir/sparse; tail -c 4 /s/dir/sparse; gunzip -c /p/plain.gz";
    assert_eq!(docker_ok(&d, &["run", "--rm", "outside:1", "sh", "-c", script]), "4194304\nend\nnot a tar\n");

    // A failing RUN: the error's detail carries the exit code.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN exit 3\n").unwrap();
    let out =
        py_ok(&d, &format!("for l in c.api.build(path='{}', decode=True):\n    print(json.dumps(l))\n", ctx.display()));
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["errorDetail"]["code"], 3, "{out}");
    assert!(last["error"].as_str().unwrap().contains("returned a non-zero code: 3"), "{out}");

    // cache_from: only the named images are the cache. A source built here, the builder's own cache dropped: the
    // same Dockerfile with the source as cache gives the same image; with an unrelated source nothing is cached.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nENV A=1\nRUN echo $A > /a\nCMD [\"cat\", \"/a\"]\n").unwrap();
    let build = |tag: &str, cache_from: &str| -> (String, String) {
        let out = py_ok(
            &d,
            &format!(
                "out = ''\n\
                 for l in c.api.build(path='{}', tag='{tag}', cache_from={cache_from}, decode=True):\n    \
                 out += l.get('stream', '') + l.get('error', '')\n\
                 print(json.dumps([c.images.get('{tag}').id, out]))\n",
                ctx.display()
            ),
        );
        serde_json::from_str(out.trim()).unwrap()
    };
    let (src_id, _) = build("cachesrc:1", "None");
    docker_ok(&d, &["builder", "prune", "-af"]);
    let (id, log) = build("fromcache:1", "['cachesrc:1']");
    assert_eq!(id, src_id, "the source's steps reused: {log}");
    assert_eq!(log.matches("Using cache").count(), 3, "{log}");
    let (id, log) = build("unrelated:1", "['busybox']");
    assert_ne!(id, src_id);
    assert!(!log.contains("Using cache"), "the builder's own cache is not used with cache_from: {log}");
    assert_eq!(docker_ok(&d, &["run", "--rm", "unrelated:1"]), "1\n");
}

/// `GET /distribution/{name}/json` against Berth's own registry on loopback with basic auth: docker-py's
/// `images.get_registry_data` sees the pushed manifest's digest and platform, nothing is pulled; without
/// credentials the registry's refusal comes back, a missing tag is a 404.
#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn distribution_inspect_without_pulling() {
    let Some(d) = docker_cli_daemon() else { return };
    let Some(py) = docker_py() else { return };
    let dir = d.dir.join("reg");
    std::fs::create_dir_all(&dir).unwrap();
    let hash = std::process::Command::new(py)
        .args(["-W", "ignore", "-c", "import crypt; print(crypt.crypt('pw', crypt.mksalt(crypt.METHOD_BLOWFISH)))"])
        .output()
        .unwrap();
    assert!(hash.status.success(), "bcrypt: {}", stderr(&hash));
    std::fs::write(dir.join("htpasswd"), format!("u:{}\n", stdout(&hash).trim())).unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut reg = std::process::Command::new(bin("berth"))
        .args(["registry", "serve", "--addr", &addr, "--root"])
        .arg(dir.join("root"))
        .arg("--htpasswd")
        .arg(dir.join("htpasswd"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Stop<'a>(&'a mut std::process::Child);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _stop = Stop(&mut reg);
    assert!(wait_listening(&addr, 20), "the registry did not come up");
    let name = format!("{addr}/dist/busybox:1");
    docker_ok(&d, &["login", "-u", "u", "-p", "pw", &addr]);
    docker_ok(&d, &["tag", "busybox", &name]);
    docker_ok(&d, &["push", &name]);
    let repo_digest = d.inspect(&name, "{{index .RepoDigests 0}}");
    let digest = repo_digest.rsplit_once('@').unwrap().1.to_string();
    docker_ok(&d, &["rmi", &name]);
    let images_before = docker_ok(&d, &["images", "-q", "--no-trunc"]);
    let out = py_ok(
        &d,
        &format!(
            "c.login(username='u', password='pw', registry='{addr}')\n\
             rd = c.images.get_registry_data('{name}')\n\
             print(json.dumps([rd.id, rd.attrs['Descriptor'], rd.has_platform('linux/{arch}'), rd.attrs['Platforms']]))\n",
            arch = berth_store::image::host_architecture()
        ),
    );
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v[0], digest, "{v}");
    assert_eq!(v[1]["digest"], digest);
    assert!(v[1]["mediaType"].as_str().unwrap().contains("manifest"), "{v}");
    assert!(v[1]["size"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v[2], true, "{v}");
    assert_eq!(v[3][0]["os"], "linux", "{v}");
    assert_eq!(docker_ok(&d, &["images", "-q", "--no-trunc"]), images_before, "nothing pulled");
    // No credentials: the registry's refusal; a tag it lacks: Docker's 404.
    let (status, _, body) = api(&d, "GET", &format!("/distribution/{name}/json"), b"");
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    let auth = berth_api_auth("u", "pw", &addr);
    let (status, _, body) = api_with(&d, "GET", &format!("/distribution/{addr}/dist/busybox:nope/json"), &auth);
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = api_with(&d, "GET", &format!("/distribution/{name}/json"), &auth);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

/// An `X-Registry-Auth` header value: base64url of the credentials' JSON.
fn berth_api_auth(user: &str, password: &str, server: &str) -> String {
    let json = serde_json::json!({"username": user, "password": password, "serveraddress": server}).to_string();
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import base64,sys; print(base64.urlsafe_b64encode(sys.argv[1].encode()).decode())", &json])
        .output()
        .unwrap();
    stdout(&out).trim().to_string()
}

/// [`api`] with an `X-Registry-Auth` header.
fn api_with(d: &Berthd, method: &str, path: &str, auth: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    let head =
        format!("{method} {path} HTTP/1.0\r\nHost: berth\r\nX-Registry-Auth: {auth}\r\nContent-Length: 0\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, out[split + 4..].to_vec())
}
