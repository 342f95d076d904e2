//! Images in and out: `save`/`load`/`export` (with the docker CLI too), and pull/push/login against Debian's
//! `docker-registry` (distribution 2.8.2), which each test starts on a free loopback port and stops by its PID.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_integration::*;

/// A private `docker-registry`.
struct DockerRegistry {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl DockerRegistry {
    /// Starts one, with htpasswd basic auth when `user` is given; `None` (loudly) where it is not installed.
    fn start(tag: &str, user: Option<(&str, &str)>) -> Option<DockerRegistry> {
        if !Path::new("/usr/bin/docker-registry").exists() {
            eprintln!("SKIPPED: docker-registry is not installed (apt-get install docker-registry)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = PathBuf::from(format!("/tmp/bt-reg-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let mut auth = String::new();
        if let Some((u, p)) = user {
            let hash = Command::new("python3")
                .args([
                    "-c",
                    "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
                    p,
                ])
                .output()
                .unwrap();
            assert!(hash.status.success(), "bcrypt: {}", stderr(&hash));
            std::fs::write(dir.join("htpasswd"), format!("{u}:{}", stdout(&hash).trim())).unwrap();
            auth = format!("auth:\n  htpasswd:\n    realm: test\n    path: {}\n", dir.join("htpasswd").display());
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.join("data").display()
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(DockerRegistry { child, addr, dir })
    }

    /// The blob files the registry stores, largest first.
    fn blobs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let root = self.dir.join("data/docker/registry/v2/blobs/sha256");
        for a in std::fs::read_dir(&root).unwrap().flatten() {
            for b in std::fs::read_dir(a.path()).unwrap().flatten() {
                out.push(b.path().join("data"));
            }
        }
        out.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)));
        out
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fails(d: &Berthd, args: &[&str]) -> String {
    let out = d.berth(args);
    assert!(!out.status.success(), "berth {args:?} should fail; stdout: {}", stdout(&out));
    format!("{}{}", stdout(&out), stderr(&out))
}

#[test]
fn save_load_and_export() {
    if !can_run() {
        return;
    }
    let d1 = Berthd::start();
    d1.busybox();
    d1.ok(&["tag", "busybox", "other:v1"]);
    let tar = d1.dir.join("images.tar");
    d1.ok(&["save", "-o", tar.to_str().unwrap(), "busybox", "other:v1"]);
    let list = Command::new("tar").arg("tf").arg(&tar).output().unwrap();
    let names = stdout(&list);
    for want in ["manifest.json", "index.json", "oci-layout", "blobs/sha256/"] {
        assert!(names.lines().any(|l| l == want), "{want} missing from {names}");
    }
    let manifest = Command::new("tar").arg("xOf").arg(&tar).arg("manifest.json").output().unwrap();
    let m: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["busybox:latest", "other:v1"]), "{m}");
    let out = fails(&d1, &["save", "-o", d1.dir.join("x.tar").to_str().unwrap(), "nosuch"]);
    assert!(out.contains("No such image: nosuch:latest"), "{out}");
    assert!(!d1.dir.join("x.tar").exists(), "a failed save leaves no file");

    let d2 = Berthd::start();
    let out = d2.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: busybox:latest\nLoaded image: other:v1\n");
    assert_eq!(d2.ok(&["run", "--rm", "other:v1", "echo", "loaded"]), "loaded\n");
    assert_eq!(d2.inspect("busybox", "{{.Id}}"), d1.inspect("busybox", "{{.Id}}"));

    // Not an image archive, a truncated one, an escaping path: refused, nothing loaded.
    let out = d2.berth_input(&["load"], b"this is not a tar");
    assert!(!out.status.success());
    let bytes = std::fs::read(&tar).unwrap();
    let out = d2.berth_input(&["load"], &bytes[..bytes.len() / 2]);
    assert!(!out.status.success(), "a truncated archive must fail");
    let evil = d2.dir.join("evil.tar");
    let py = format!(
        "import tarfile,io\nt=tarfile.open('{}','w')\nfor n in ['../escaped','manifest.json']:\n  i=tarfile.TarInfo(n); b=b'[]'; i.size=len(b); t.addfile(i, io.BytesIO(b))\nt.close()",
        evil.display()
    );
    assert!(Command::new("python3").args(["-c", &py]).status().unwrap().success());
    let out = fails(&d2, &["load", "-i", evil.to_str().unwrap()]);
    assert!(out.contains("leaves the archive"), "{out}");
    assert!(!d2.dir.join("data/content/escaped").exists() && !d2.dir.join("data/escaped").exists());

    // export: the container's file system, entries named like docker's (no leading "./"), volumes left out.
    d1.ok(&[
        "run",
        "--name",
        "c1",
        "-v",
        "/vol",
        "busybox",
        "sh",
        "-c",
        "echo x > /newfile; echo v > /vol/f; rm /bin/vi",
    ]);
    let out = d1.berth_cmd().args(["export", "c1"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let exported = d1.dir.join("c1.tar");
    std::fs::write(&exported, &out.stdout).unwrap();
    let names = stdout(&Command::new("tar").arg("tf").arg(&exported).output().unwrap());
    assert!(names.lines().any(|l| l == "newfile"), "{names}");
    assert!(names.lines().any(|l| l == "bin/busybox"), "{names}");
    assert!(!names.lines().any(|l| l == "bin/vi" || l.starts_with("./") || l == "vol/f"), "{names}");
    let out = fails(&d1, &["export", "-o", "/tmp/x.tar", "nosuch"]);
    assert!(out.contains("No such container: nosuch"), "{out}");
}

#[test]
fn docker_cli_save_and_load() {
    if !can_run() || docker_cli().is_none() {
        return;
    }
    let d1 = Berthd::start();
    d1.busybox();
    let d2 = Berthd::start();
    let tar = d1.dir.join("bb.tar");
    let out = d1.docker(&["save", "-o", tar.to_str().unwrap(), "busybox"]).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = d2.docker(&["load", "-i", tar.to_str().unwrap()]).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Loaded image: busybox:latest"), "{}", stdout(&out));
    let out = d2.docker(&["run", "--rm", "busybox", "echo", "ok"]).unwrap();
    assert_eq!(stdout(&out), "ok\n", "{}", stderr(&out));
}

#[test]
fn push_and_pull_with_docker_registry() {
    if !can_run() {
        return;
    }
    let Some(reg) = DockerRegistry::start("plain", None) else { return };
    let d1 = Berthd::start();
    d1.busybox();
    let name = format!("{}/test/bb:v1", reg.addr);
    d1.ok(&["tag", "busybox", &name]);
    let out = d1.ok(&["push", &name]);
    assert!(out.contains(&format!("The push refers to repository [{}/test/bb]", reg.addr)), "{out}");
    assert!(out.contains(": Pushed") && out.contains("v1: digest: sha256:"), "{out}");
    // Again: nothing to upload.
    assert!(d1.ok(&["push", &name]).contains("Layer already exists"));
    // Another repository of the same registry: the layer is mounted, not uploaded.
    let other = format!("{}/other/bb:v1", reg.addr);
    d1.ok(&["tag", "busybox", &other]);
    assert!(d1.ok(&["push", &other]).contains("Mounted from test/bb"));

    let d2 = Berthd::start();
    let out = d2.ok(&["pull", &name]);
    assert!(
        out.contains("Pull complete") && out.contains(&format!("Status: Downloaded newer image for {name}")),
        "{out}"
    );
    assert!(out.ends_with(&format!("{name}\n")), "{out}");
    assert_eq!(d2.inspect(&name, "{{.Id}}"), d1.inspect("busybox", "{{.Id}}"));
    let digests = d2.inspect(&name, "{{json .RepoDigests}}");
    assert!(digests.contains(&format!("{}/test/bb@sha256:", reg.addr)), "{digests}");
    assert_eq!(d2.ok(&["run", "--rm", &name, "echo", "pulled"]), "pulled\n");
    let out = d2.ok(&["pull", &name]);
    assert!(out.contains("Already exists") && out.contains("Status: Image is up to date"), "{out}");
    // By digest, and every tag.
    let digest = digests.trim_matches(|c| c == '[' || c == ']' || c == '"').to_string();
    assert!(d2.ok(&["pull", &digest]).contains("Digest: sha256:"));
    d2.ok(&["pull", "-a", &format!("{}/other/bb", reg.addr)]);
    assert!(d2.ok(&["images", "--digests"]).contains(&format!("{}/other/bb", reg.addr)));

    // Failures: unknown tag, unknown repository, unreachable registry, nothing local to push.
    let out = fails(&d2, &["pull", &format!("{}/test/bb:nosuch", reg.addr)]);
    assert!(out.contains("manifest unknown"), "{out}");
    let out = fails(&d2, &["pull", &format!("{}/nosuch/repo", reg.addr)]);
    assert!(out.contains("not found"), "{out}");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let t = Instant::now();
    let out = fails(&d2, &["pull", &format!("127.0.0.1:{dead}/a/b")]);
    assert!(out.contains("connection refused") || out.contains("Connection refused"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(20));
    let out = fails(&d2, &["push", &format!("{}/never/tagged", reg.addr)]);
    assert!(out.contains("An image does not exist locally with the tag"), "{out}");
    let out = fails(&d2, &["pull", "-a", &format!("{}/test/bb:v1", reg.addr)]);
    assert!(out.contains("tag can't be used with --all-tags"), "{out}");
}

#[test]
fn docker_cli_pushes_and_pulls_through_berthd() {
    if !can_run() || docker_cli().is_none() {
        return;
    }
    let Some(reg) = DockerRegistry::start("cli", None) else { return };
    let d1 = Berthd::start();
    d1.busybox();
    let name = format!("{}/cli/bb:v1", reg.addr);
    d1.ok(&["tag", "busybox", &name]);
    let out = d1.docker(&["push", &name]).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let d2 = Berthd::start();
    let out = d2.docker(&["pull", &name]).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Downloaded newer image"), "{}", stdout(&out));
    let out = d2.docker(&["image", "inspect", "-f", "{{.RepoDigests}}", &name]).unwrap();
    assert!(stdout(&out).contains("@sha256:"), "{}", stdout(&out));
    let out = d2.docker(&["pull", &format!("{}/cli/bb:nosuch", reg.addr)]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("manifest unknown"), "{}", stderr(&out));
}

#[test]
fn login_and_basic_auth() {
    if !can_run() {
        return;
    }
    let Some(reg) = DockerRegistry::start("auth", Some(("alice", "s3cret"))) else { return };
    let d = Berthd::start();
    d.busybox();
    let name = format!("{}/private/bb:v1", reg.addr);
    d.ok(&["tag", "busybox", &name]);
    let out = fails(&d, &["push", &name]);
    assert!(out.contains("unauthorized") || out.contains("authentication required"), "{out}");
    let out = d.berth_input(&["login", "-u", "alice", "--password-stdin", &reg.addr], b"wrong\n");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("401 Unauthorized"), "{}", stderr(&out));
    let out = d.berth_input(&["login", "-u", "alice", "--password-stdin", &reg.addr], b"s3cret\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Login Succeeded"));
    let cfg = std::fs::read_to_string(d.dir.join("docker-config/config.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(v["auths"][&reg.addr]["auth"], "YWxpY2U6czNjcmV0", "{cfg}");
    assert!(d.ok(&["push", &name]).contains("v1: digest:"));
    d.ok(&["rmi", &name]);
    assert!(d.ok(&["pull", &name]).contains("Downloaded newer image"));
    // The docker CLI reads the same file.
    if docker_cli().is_some() {
        let out = d.docker(&["pull", &name]).unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(d.ok(&["logout", &reg.addr]).contains("Removing login credentials"));
    let out = fails(&d, &["pull", &name]);
    assert!(out.contains("unauthorized") || out.contains("pull access denied"), "{out}");
}

#[test]
fn corrupt_blob_is_refused_and_pulls_resume() {
    if !can_run() {
        return;
    }
    let Some(reg) = DockerRegistry::start("corrupt", None) else { return };
    let d1 = Berthd::start();
    d1.busybox();
    let name = format!("{}/c/bb:v1", reg.addr);
    d1.ok(&["tag", "busybox", &name]);
    d1.ok(&["push", &name]);
    let layer = reg.blobs().into_iter().next().unwrap();
    let good = std::fs::read(&layer).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&layer, &bad).unwrap();

    let d2 = Berthd::start();
    let out = fails(&d2, &["pull", &name]);
    assert!(out.contains("verification failed for digest sha256:"), "{out}");
    assert_eq!(d2.ok(&["images", "-q"]), "", "no half image");
    let downloads = d2.dir.join("data/downloads");
    let left: Vec<_> = std::fs::read_dir(&downloads).map(|r| r.flatten().collect()).unwrap_or_default();
    assert!(left.is_empty(), "a blob that fails verification is not kept: {left:?}");

    // Repaired registry, and half of the layer already downloaded: the pull resumes from there.
    std::fs::write(&layer, &good).unwrap();
    let hex = layer.parent().unwrap().file_name().unwrap().to_str().unwrap().to_string();
    std::fs::create_dir_all(&downloads).unwrap();
    std::fs::write(downloads.join(format!("{hex}.partial")), &good[..mid]).unwrap();
    let out = d2.ok(&["pull", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(d2.ok(&["run", "--rm", &name, "echo", "resumed"]), "resumed\n");
    assert!(!downloads.join(format!("{hex}.partial")).exists());
}
