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
            skip_missing_tool("docker-registry is not installed (apt-get install docker-registry)");
            return None;
        }
        let port = free_port();
        let dir = PathBuf::from(format!("/tmp/bt-reg-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let mut auth = String::new();
        if let Some((u, p)) = user {
            std::fs::write(dir.join("htpasswd"), format!("{u}:{}", bcrypt(p))).unwrap();
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
        assert!(wait_listening(&addr, 20), "docker-registry did not come up");
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

/// The bcrypt hash of `password`, for an htpasswd file.
fn bcrypt(password: &str) -> String {
    let hash = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            password,
        ])
        .output()
        .unwrap();
    assert!(hash.status.success(), "bcrypt: {}", stderr(&hash));
    stdout(&hash).trim().to_string()
}

fn fails(d: &Berthd, args: &[&str]) -> String {
    let out = d.berth(args);
    assert!(!out.status.success(), "berth {args:?} should fail; stdout: {}", stdout(&out));
    format!("{}{}", stdout(&out), stderr(&out))
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn save_load_and_export() {
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
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_save_and_load() {
    require_root();
    if docker_cli().is_none() {
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
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn push_and_pull_with_docker_registry() {
    require_root();
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
    let dead = free_port();
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
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_pushes_and_pulls_through_berthd() {
    require_root();
    if docker_cli().is_none() {
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
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn login_and_basic_auth() {
    require_root();
    let Some(reg) = DockerRegistry::start("auth", Some(("alice", "s3cret"))) else { return };
    auth_flow(&reg.addr);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn login_and_basic_auth_with_berth_registry() {
    require_root();
    let r = BerthRegistry::start("auth", &RegOpts { user: Some(("alice", "s3cret")), ..Default::default() });
    auth_flow(&r.addr);
}

/// Push refused without credentials, login (wrong, right), push, pull (berth and the docker CLI), logout.
fn auth_flow(addr: &str) {
    let d = Berthd::start();
    d.busybox();
    let name = format!("{addr}/private/bb:v1");
    d.ok(&["tag", "busybox", &name]);
    let out = fails(&d, &["push", &name]);
    assert!(out.contains("unauthorized") || out.contains("authentication required"), "{out}");
    let out = d.berth_input(&["login", "-u", "alice", "--password-stdin", addr], b"wrong\n");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("401 Unauthorized"), "{}", stderr(&out));
    let out = d.berth_input(&["login", "-u", "alice", "--password-stdin", addr], b"s3cret\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Login Succeeded"));
    let cfg = std::fs::read_to_string(d.dir.join("docker-config/config.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(v["auths"][addr]["auth"], "YWxpY2U6czNjcmV0", "{cfg}");
    assert!(d.ok(&["push", &name]).contains("v1: digest:"));
    d.ok(&["rmi", &name]);
    assert!(d.ok(&["pull", &name]).contains("Downloaded newer image"));
    // run pulls a missing image with the credentials of config.json too.
    d.ok(&["rmi", &name]);
    assert_eq!(d.ok(&["run", "--rm", &name, "echo", "pulled by run"]), "pulled by run\n");
    // The docker CLI reads the same file.
    if docker_cli().is_some() {
        d.ok(&["rmi", &name]);
        let out = d.docker(&["pull", &name]).unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(d.ok(&["logout", addr]).contains("Removing login credentials"));
    d.ok(&["rmi", &name]);
    let out = fails(&d, &["pull", &name]);
    assert!(out.contains("unauthorized") || out.contains("pull access denied"), "{out}");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn corrupt_blob_is_refused_and_pulls_resume() {
    require_root();
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

/// How to start a [`BerthRegistry`].
#[derive(Default)]
struct RegOpts<'a> {
    /// htpasswd basic auth with this user.
    user: Option<(&'a str, &'a str)>,
    /// HTTPS with a fresh self-signed certificate for 127.0.0.1 and `host` (`root/../cert.pem`).
    tls: bool,
    /// Listen on this address instead of 127.0.0.1.
    host: Option<String>,
}

/// `berth registry serve` on a free loopback port, stopped by its PID.
struct BerthRegistry {
    child: Child,
    addr: String,
    /// `<dir>/root` is the registry's storage; the certificate and htpasswd files live beside it.
    dir: PathBuf,
    root: PathBuf,
    scheme: &'static str,
}

impl BerthRegistry {
    fn start(tag: &str, o: &RegOpts) -> BerthRegistry {
        // Before the directory is made: a missing binary must not leave it behind.
        let berth = bin("berth");
        let port = free_port();
        let dir = PathBuf::from(format!("/tmp/bt-breg-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let root = dir.join("root");
        let host = o.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        let addr = format!("{host}:{port}");
        let mut cmd = Command::new(berth);
        cmd.args(["registry", "serve", "--addr", &addr, "--root"]).arg(&root);
        if let Some((u, p)) = o.user {
            std::fs::write(dir.join("htpasswd"), format!("# test users\n{u}:{}\n", bcrypt(p))).unwrap();
            cmd.arg("--htpasswd").arg(dir.join("htpasswd"));
        }
        if o.tls {
            tls_certificates(&dir, &["127.0.0.1", &host]);
            cmd.arg("--tls-cert").arg(dir.join("cert.pem")).arg("--tls-key").arg(dir.join("key.pem"));
        }
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        let r = BerthRegistry { child, addr, dir, root, scheme: if o.tls { "https" } else { "http" } };
        assert!(wait_listening(&r.addr, 20), "berth registry did not come up: {}", r.log());
        r
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// `curl -s -i` against the registry: (status, headers + body).
    fn curl(&self, args: &[&str]) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-i", "-g", "-H", "Expect:"]);
        if self.scheme == "https" {
            cmd.arg("--cacert").arg(self.dir.join("ca.pem"));
        }
        let out = cmd.args(args).output().unwrap();
        let text = stdout(&out);
        let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, text)
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// `berth registry gc` on its storage.
    fn gc(&self, args: &[&str]) -> String {
        let out =
            Command::new(bin("berth")).args(["registry", "gc", "--root"]).arg(&self.root).args(args).output().unwrap();
        assert!(out.status.success(), "gc: {}", stderr(&out));
        stdout(&out)
    }
}

impl Drop for BerthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn header(text: &str, name: &str) -> String {
    text.lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn have_curl() -> bool {
    if Command::new("curl").arg("--version").output().is_err() {
        skip_missing_tool("curl is not installed");
        return false;
    }
    true
}

#[test]
fn berth_registry_serves_the_distribution_api() {
    if !have_curl() {
        return;
    }
    let r = BerthRegistry::start("api", &RegOpts::default());
    let (s, text) = r.curl(&[&r.url("/v2/")]);
    assert_eq!(s, 200, "{text}");
    assert_eq!(header(&text, "docker-distribution-api-version"), "registry/2.0");

    // Chunked upload: POST, PATCHes, status, PUT with the digest.
    let data = b"hello, chunked blob";
    let hex = sha256_hex(data);
    let (s, text) = r.curl(&["-X", "POST", &r.url("/v2/a/b/blobs/uploads/")]);
    assert_eq!(s, 202, "{text}");
    let loc = header(&text, "location");
    assert!(loc.starts_with("/v2/a/b/blobs/uploads/"), "{text}");
    let (s, text) = r.curl(&["-X", "PATCH", "-H", "Content-Range: 0-4", "--data-binary", "hello", &r.url(&loc)]);
    assert_eq!((s, header(&text, "range")), (202, "0-4".to_string()), "{text}");
    // A chunk that does not continue the upload is refused.
    let (s, text) = r.curl(&["-X", "PATCH", "-H", "Content-Range: 2-3", "--data-binary", "xx", &r.url(&loc)]);
    assert_eq!((s, header(&text, "range")), (416, "0-4".to_string()), "{text}");
    let (s, text) = r.curl(&[&r.url(&loc)]);
    assert_eq!((s, header(&text, "range")), (204, "0-4".to_string()), "{text}");
    let (s, _) = r.curl(&["-X", "PATCH", "--data-binary", ", chunked blob", &r.url(&loc)]);
    assert_eq!(s, 202);
    // An upload belongs to its repository.
    let other_loc = loc.replace("/v2/a/b/", "/v2/c/");
    let (s, text) = r.curl(&[&r.url(&other_loc)]);
    assert!(s == 404 && text.contains("BLOB_UPLOAD_UNKNOWN"), "{text}");
    let (s, text) = r.curl(&["-X", "PUT", &r.url(&format!("{loc}?digest=sha256:{hex}"))]);
    assert_eq!(s, 201, "{text}");
    assert_eq!(header(&text, "docker-content-digest"), format!("sha256:{hex}"));
    assert_eq!(header(&text, "location"), format!("/v2/a/b/blobs/sha256:{hex}"));
    let (s, _) = r.curl(&[&r.url(&loc)]);
    assert_eq!(s, 404, "a finished upload is gone");
    let blob = r.url(&format!("/v2/a/b/blobs/sha256:{hex}"));
    let (s, text) = r.curl(&[&blob]);
    assert!(s == 200 && text.ends_with("hello, chunked blob"), "{text}");
    let (s, text) = r.curl(&["-I", &blob]);
    assert_eq!((s, header(&text, "content-length")), (200, data.len().to_string()), "{text}");
    let (s, text) = r.curl(&["-H", "Range: bytes=7-", &blob]);
    assert!(s == 206 && text.ends_with("chunked blob"), "{text}");
    assert_eq!(header(&text, "content-range"), format!("bytes 7-18/{}", data.len()));
    let (s, _) = r.curl(&["-H", "Range: bytes=99-", &blob]);
    assert_eq!(s, 416);
    // Not linked into another repository.
    let (s, _) = r.curl(&["-I", &r.url(&format!("/v2/other/blobs/sha256:{hex}"))]);
    assert_eq!(s, 404);
    let (s, text) = r.curl(&[&r.url(&format!("/v2/other/blobs/sha256:{hex}"))]);
    assert!(s == 404 && text.contains(r#""code":"BLOB_UNKNOWN""#), "{text}");
    // Cross-repository mount; a mount of something unknown opens an upload instead.
    let (s, text) = r.curl(&["-X", "POST", &r.url(&format!("/v2/other/blobs/uploads/?mount=sha256:{hex}&from=a/b"))]);
    assert_eq!((s, header(&text, "location")), (201, format!("/v2/other/blobs/sha256:{hex}")), "{text}");
    let (s, _) = r.curl(&["-I", &r.url(&format!("/v2/other/blobs/sha256:{hex}"))]);
    assert_eq!(s, 200);
    let (s, text) =
        r.curl(&["-X", "POST", &r.url(&format!("/v2/third/blobs/uploads/?mount=sha256:{}&from=a/b", "e".repeat(64)))]);
    assert!(s == 202 && header(&text, "location").starts_with("/v2/third/blobs/uploads/"), "{text}");
    let (s, _) = r.curl(&["-X", "DELETE", &r.url(&header(&text, "location"))]);
    assert_eq!(s, 204);

    // Monolithic upload with a wrong digest: refused, nothing stored.
    let wrong = "0".repeat(64);
    let (s, text) = r.curl(&[
        "-X",
        "POST",
        "--data-binary",
        "other content",
        &r.url(&format!("/v2/a/b/blobs/uploads/?digest=sha256:{wrong}")),
    ]);
    assert!(s == 400 && text.contains("DIGEST_INVALID"), "{text}");
    assert!(!r.root.join("blobs/sha256").join(&wrong).exists());
    assert_eq!(std::fs::read_dir(r.root.join("uploads")).unwrap().count(), 0, "the refused upload is gone");
    let (s, text) = r.curl(&["-X", "POST", "--data-binary", "x", &r.url("/v2/a/b/blobs/uploads/?digest=md5:00")]);
    assert!(s == 400 && text.contains("errors"), "{text}");
    let (s, text) = r.curl(&[&r.url("/v2/a/b/blobs/sha256:nothex")]);
    assert!(s == 400 && text.contains("DIGEST_INVALID"), "{text}");

    // Manifests: blobs must be there; tags list with pagination; catalog.
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{hex}","size":19}},"layers":[]}}"#
    );
    let mdigest = format!("sha256:{}", sha256_hex(manifest.as_bytes()));
    let ct = "Content-Type: application/vnd.oci.image.manifest.v1+json";
    for tag in ["v1", "v2", "v3"] {
        let (s, text) =
            r.curl(&["-X", "PUT", "-H", ct, "--data-binary", &manifest, &r.url(&format!("/v2/a/b/manifests/{tag}"))]);
        assert_eq!(s, 201, "{text}");
        assert_eq!(header(&text, "docker-content-digest"), mdigest);
    }
    let missing = manifest.replace(&hex, &"1".repeat(64));
    let (s, text) = r.curl(&["-X", "PUT", "-H", ct, "--data-binary", &missing, &r.url("/v2/a/b/manifests/bad")]);
    assert!(s == 400 && text.contains("MANIFEST_BLOB_UNKNOWN"), "{text}");
    let (s, text) = r.curl(&["-X", "PUT", "-H", ct, "--data-binary", "{not json", &r.url("/v2/a/b/manifests/bad")]);
    assert!(s == 400 && text.contains("MANIFEST_INVALID"), "{text}");
    let (s, text) = r.curl(&["-X", "PUT", "-H", ct, "--data-binary", &manifest, &r.url("/v2/a/b/manifests/sha256:{}")]);
    assert!(s == 400, "{text}");
    let (s, text) = r.curl(&["-X", "PUT", "-H", ct, "--data-binary", &manifest, &r.url("/v2/a/b/manifests/-bad-tag")]);
    assert!(s == 400 && text.contains("TAG_INVALID"), "{text}");
    let (s, text) = r.curl(&[&r.url("/v2/a/b/manifests/v1")]);
    assert!(s == 200 && text.ends_with(&manifest), "stored byte for byte: {text}");
    assert_eq!(header(&text, "content-type"), "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(header(&text, "docker-content-digest"), mdigest);
    let (s, text) = r.curl(&["-I", &r.url(&format!("/v2/a/b/manifests/{mdigest}"))]);
    assert_eq!((s, header(&text, "content-length")), (200, manifest.len().to_string()), "{text}");
    let (s, text) = r.curl(&[&r.url("/v2/a/b/manifests/nosuch")]);
    assert!(s == 404 && text.contains("MANIFEST_UNKNOWN"), "{text}");
    let (s, text) = r.curl(&[&r.url("/v2/nosuch/manifests/v1")]);
    assert!(s == 404 && text.contains("NAME_UNKNOWN"), "{text}");
    let (_, text) = r.curl(&[&r.url("/v2/a/b/tags/list?n=2")]);
    assert!(text.contains(r#"{"name":"a/b","tags":["v1","v2"]}"#), "{text}");
    assert_eq!(header(&text, "link"), r#"</v2/a/b/tags/list?n=2&last=v2>; rel="next""#, "{text}");
    let (_, text) = r.curl(&[&r.url("/v2/a/b/tags/list?n=2&last=v2")]);
    assert!(text.contains(r#""tags":["v3"]"#) && header(&text, "link").is_empty(), "{text}");
    let (_, text) = r.curl(&[&r.url("/v2/a/b/tags/list?n=0")]);
    assert!(text.contains(r#""tags":[]"#) && header(&text, "link").is_empty(), "{text}");
    let (_, text) = r.curl(&[&r.url("/v2/a/b/tags/list?last=v1")]);
    assert!(text.contains(r#""tags":["v2","v3"]"#), "{text}");
    let (s, text) = r.curl(&[&r.url("/v2/nosuch/tags/list")]);
    assert!(s == 404 && text.contains("NAME_UNKNOWN"), "{text}");

    // Referrers: a manifest whose subject is v1's.
    let sbom = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sbom","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:{hex}","size":19}},"layers":[],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{mdigest}","size":{}}},"annotations":{{"k":"v"}}}}"#,
        manifest.len()
    );
    let sdigest = format!("sha256:{}", sha256_hex(sbom.as_bytes()));
    let (s, text) =
        r.curl(&["-X", "PUT", "-H", ct, "--data-binary", &sbom, &r.url(&format!("/v2/a/b/manifests/{sdigest}"))]);
    assert_eq!((s, header(&text, "oci-subject")), (201, mdigest.clone()), "{text}");
    let (s, text) = r.curl(&[&r.url(&format!("/v2/a/b/referrers/{mdigest}"))]);
    assert_eq!(s, 200, "{text}");
    assert_eq!(header(&text, "content-type"), "application/vnd.oci.image.index.v1+json");
    let body: serde_json::Value = serde_json::from_str(text.rsplit("\r\n\r\n").next().unwrap()).unwrap();
    assert_eq!(body["manifests"][0]["digest"], sdigest.as_str(), "{body}");
    assert_eq!(body["manifests"][0]["artifactType"], "application/vnd.example.sbom");
    assert_eq!(body["manifests"][0]["annotations"]["k"], "v");
    assert_eq!(body["manifests"][0]["size"], sbom.len());
    let (_, text) = r.curl(&[&r.url(&format!("/v2/a/b/referrers/{mdigest}?artifactType=other"))]);
    assert!(text.contains(r#""manifests":[]"#) && header(&text, "oci-filters-applied") == "artifactType", "{text}");
    let (s, text) = r.curl(&[&r.url(&format!("/v2/a/b/referrers/sha256:{}", "9".repeat(64)))]);
    assert!(s == 200 && text.contains(r#""manifests":[]"#), "{text}");
    let (s, _) = r.curl(&[&r.url("/v2/a/b/referrers/notadigest")]);
    assert_eq!(s, 400);

    let (s, text) = r.curl(&[&r.url("/v2/_catalog")]);
    assert!(s == 200 && text.contains(r#"{"repositories":["a/b"]}"#), "{text}");
    let (s, _) = r.curl(&[&r.url("/v2/NOT..valid/tags/list")]);
    assert_eq!(s, 400);
    let (s, text) = r.curl(&[&r.url("/v2/a/../../etc/tags/list")]);
    assert!(s == 400 || s == 404, "{text}");

    // Deletes: a tag, a manifest by digest (and the tags on it), a blob link.
    let (s, _) = r.curl(&["-X", "DELETE", &r.url("/v2/a/b/manifests/v3")]);
    assert_eq!(s, 202);
    let (_, text) = r.curl(&[&r.url("/v2/a/b/tags/list")]);
    assert!(text.contains(r#""tags":["v1","v2"]"#), "{text}");
    let (s, _) = r.curl(&["-X", "DELETE", &r.url(&format!("/v2/a/b/manifests/{mdigest}"))]);
    assert_eq!(s, 202);
    let (_, text) = r.curl(&[&r.url("/v2/a/b/tags/list")]);
    assert!(text.contains(r#""tags":[]"#), "{text}");
    let (s, text) = r.curl(&[&r.url(&format!("/v2/a/b/manifests/{mdigest}"))]);
    assert!(s == 404 && text.contains("MANIFEST_UNKNOWN"), "{text}");
    let (s, _) = r.curl(&["-X", "DELETE", &r.url(&format!("/v2/other/blobs/sha256:{hex}"))]);
    assert_eq!(s, 202);
    let (s, _) = r.curl(&["-I", &r.url(&format!("/v2/other/blobs/sha256:{hex}"))]);
    assert_eq!(s, 404);

    // gc: the sbom still references the blob; within the grace period nothing goes; then the sbom goes too.
    assert!(r.gc(&[]).contains("removed 0 blobs"));
    let (s, _) = r.curl(&["-X", "DELETE", &r.url(&format!("/v2/a/b/manifests/{sdigest}"))]);
    assert_eq!(s, 202);
    let out = r.gc(&["--grace", "0s", "--dry-run"]);
    assert!(out.contains("would remove 3 blobs"), "{out}");
    assert!(r.root.join("blobs/sha256").join(&hex).exists());
    let out = r.gc(&["--grace", "0s"]);
    assert!(out.contains("removed 3 blobs"), "{out}");
    assert!(!r.root.join("blobs/sha256").join(&hex).exists());
    let (s, _) = r.curl(&["-I", &blob]);
    assert_eq!(s, 404);
}

#[test]
fn berth_registry_concurrent_identical_uploads() {
    if !have_curl() {
        return;
    }
    let r = BerthRegistry::start("concurrent", &RegOpts::default());
    // 4 MiB that do not compress, uploaded by 6 clients at once, half monolithic, half in one PATCH.
    let mut data = vec![0u8; 4 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let hex = sha256_hex(&data);
    let file = r.dir.join("blob");
    std::fs::write(&file, &data).unwrap();
    let body = format!("@{}", file.display());
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let (r, body, hex) = (&r, &body, &hex);
                s.spawn(move || {
                    let repo = format!("/v2/c{}/blobs/uploads/", i % 2);
                    if i % 2 == 0 {
                        let url = r.url(&format!("{repo}?digest=sha256:{hex}"));
                        r.curl(&[
                            "-X",
                            "POST",
                            "-H",
                            "Content-Type: application/octet-stream",
                            "--data-binary",
                            body,
                            &url,
                        ])
                    } else {
                        let (_, text) = r.curl(&["-X", "POST", &r.url(&repo)]);
                        let loc = header(&text, "location");
                        let (s, text) = r.curl(&["-X", "PATCH", "--data-binary", body, &r.url(&loc)]);
                        assert_eq!(s, 202, "{text}");
                        r.curl(&["-X", "PUT", &r.url(&format!("{loc}?digest=sha256:{hex}"))])
                    }
                })
            })
            .collect();
        for h in hs {
            let (s, text) = h.join().unwrap();
            assert_eq!(s, 201, "{text}");
        }
    });
    assert_eq!(std::fs::read(r.root.join("blobs/sha256").join(&hex)).unwrap(), data);
    assert_eq!(std::fs::read_dir(r.root.join("uploads")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(r.root.join("tmp")).unwrap().count(), 0);
    let out = Command::new("curl").args(["-s", &r.url(&format!("/v2/c1/blobs/sha256:{hex}"))]).output().unwrap();
    assert_eq!(sha256_hex(&out.stdout), hex);
}

#[test]
fn berth_registry_tls_and_auth() {
    if !have_curl() {
        return;
    }
    let r = BerthRegistry::start("tls", &RegOpts { user: Some(("alice", "s3cret")), tls: true, host: None });
    let (s, text) = r.curl(&[&r.url("/v2/")]);
    assert_eq!(s, 401, "{text}");
    assert_eq!(header(&text, "www-authenticate"), r#"Basic realm="berth-registry""#);
    assert!(text.contains(r#""code":"UNAUTHORIZED""#), "{text}");
    let (s, _) = r.curl(&["-u", "alice:wrong", &r.url("/v2/")]);
    assert_eq!(s, 401);
    let (s, _) = r.curl(&["-u", "bob:s3cret", &r.url("/v2/_catalog")]);
    assert_eq!(s, 401);
    for _ in 0..2 {
        let (s, text) = r.curl(&["-u", "alice:s3cret", &r.url("/v2/_catalog")]);
        assert_eq!(s, 200, "{text}");
    }
    let data = "tls blob";
    let hex = sha256_hex(data.as_bytes());
    let url = r.url(&format!("/v2/t/blobs/uploads/?digest=sha256:{hex}"));
    let (s, text) = r.curl(&["-u", "alice:s3cret", "-X", "POST", "--data-binary", data, &url]);
    assert_eq!(s, 201, "{text}");
    // Plain HTTP to the TLS port is not answered as HTTP.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://{}/v2/", r.addr)])
        .output()
        .unwrap();
    assert_ne!(stdout(&out), "200");
    // Unusable certificate or htpasswd files: the server does not start, and says why.
    let bad = Command::new(bin("berth"))
        .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(r.dir.join("root2"))
        .arg("--tls-cert")
        .arg(r.dir.join("htpasswd"))
        .arg("--tls-key")
        .arg(r.dir.join("key.pem"))
        .output()
        .unwrap();
    assert!(!bad.status.success() && stderr(&bad).contains("no certificate"), "{}", stderr(&bad));
    std::fs::write(r.dir.join("plain"), "alice:{SHA}abc\n").unwrap();
    let bad = Command::new(bin("berth"))
        .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(r.dir.join("root2"))
        .arg("--htpasswd")
        .arg(r.dir.join("plain"))
        .output()
        .unwrap();
    assert!(!bad.status.success() && stderr(&bad).contains("htpasswd -B"), "{}", stderr(&bad));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn push_and_pull_with_berth_registry() {
    require_root();
    let r = BerthRegistry::start("images", &RegOpts::default());
    let d1 = Berthd::start();
    d1.busybox();
    let d2 = Berthd::start();
    // Two daemons push the same image at once: concurrent uploads of the same blobs are safe.
    let names: Vec<String> = (0..2).map(|i| format!("{}/team/app:v{i}", r.addr)).collect();
    d1.ok(&["tag", "busybox", &names[0]]);
    let tar = d1.dir.join("bb.tar");
    d1.ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    d2.ok(&["load", "-i", tar.to_str().unwrap()]);
    d2.ok(&["tag", "busybox", &names[1]]);
    std::thread::scope(|s| {
        let a = s.spawn(|| d1.berth(&["push", &names[0]]));
        let b = s.spawn(|| d2.berth(&["push", &names[1]]));
        for out in [a.join().unwrap(), b.join().unwrap()] {
            assert!(out.status.success(), "{}", stderr(&out));
        }
    });
    let d3 = Berthd::start();
    for n in &names {
        let out = d3.ok(&["pull", n]);
        assert!(out.contains("Downloaded newer image") || out.contains("up to date"), "{out}");
    }
    assert_eq!(d3.ok(&["run", "--rm", &names[1], "echo", "from berth registry"]), "from berth registry\n");
    // Another repository of the same registry: the layer is mounted, not uploaded.
    let other = format!("{}/elsewhere/app:v1", r.addr);
    d1.ok(&["tag", "busybox", &other]);
    let out = d1.ok(&["push", &other]);
    assert!(out.contains("Mounted from") || out.contains("Layer already exists"), "{out}");
    // The docker CLI through berthd, both ways.
    if docker_cli().is_some() {
        let n = format!("{}/team/docker:v1", r.addr);
        d1.ok(&["tag", "busybox", &n]);
        let out = d1.docker(&["push", &n]).unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let out = d3.docker(&["pull", &n]).unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let out = d3.docker(&["pull", &format!("{}/team/docker:nosuch", r.addr)]).unwrap();
        assert!(!out.status.success() && stderr(&out).contains("manifest unknown"), "{}", stderr(&out));
    }
    let out = fails(&d3, &["pull", &format!("{}/team/app:nosuch", r.addr)]);
    assert!(out.contains("manifest unknown"), "{out}");
    // Garbage collection keeps what manifests reference.
    r.gc(&["--grace", "0s"]);
    d3.ok(&["rmi", &names[0]]);
    d3.ok(&["rmi", &names[1]]);
    let out = d3.ok(&["pull", &names[0]]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(d3.ok(&["run", "--rm", &names[0], "echo", "after gc"]), "after gc\n");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn real_docker_pushes_and_pulls_with_berth_registry() {
    require_root();
    let Some(peer) = PeerDockerd::start() else { return };
    let r = BerthRegistry::start("peer", &RegOpts { user: Some(("alice", "s3cret")), ..Default::default() });
    let d = Berthd::start();
    d.busybox();
    let tar = d.dir.join("bb.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    peer.ok(&["load", "-i", tar.to_str().unwrap()]);
    let name = format!("{}/peer/bb:v1", r.addr);
    peer.ok(&["tag", "busybox", &name]);
    let out = peer.docker(&["push", &name]);
    assert!(!out.status.success(), "a push without credentials must fail");
    let mut login = peer.cmd(&["login", "-u", "alice", "--password-stdin", &r.addr]);
    let mut child = login.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success() && stdout(&out).contains("Login Succeeded"), "{}", stderr(&out));
    let out = peer.ok(&["push", &name]);
    assert!(out.contains("v1: digest: sha256:"), "{out}");
    // Docker's own gzip layers, pulled by Berth (with the same credentials, in Berth's config) and run.
    let cfg = std::fs::read_to_string(peer.dir.join("config/config.json")).unwrap();
    std::fs::create_dir_all(d.dir.join("docker-config")).unwrap();
    std::fs::write(d.dir.join("docker-config/config.json"), cfg).unwrap();
    d.ok(&["rmi", "busybox"]);
    assert!(d.ok(&["pull", &name]).contains("Downloaded newer image"));
    assert_eq!(d.ok(&["run", "--rm", &name, "echo", "pushed by docker"]), "pushed by docker\n");
    // Berth's push, pulled by Docker.
    let berth_name = format!("{}/peer/from-berth:v1", r.addr);
    d.ok(&["tag", &name, &berth_name]);
    d.ok(&["push", &berth_name]);
    peer.ok(&["rmi", &name, "busybox"]);
    let out = peer.ok(&["pull", &berth_name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    peer.ok(&["pull", &name]);
    let out = peer.docker(&["pull", &format!("{}/peer/bb:nosuch", r.addr)]);
    assert!(!out.status.success() && stderr(&out).contains("manifest unknown"), "{}", stderr(&out));
    // Over TLS: Docker speaks HTTPS (unverified, 127.0.0.1 being insecure to it) to a TLS registry.
    let t = BerthRegistry::start("peer-tls", &RegOpts { user: None, tls: true, host: None });
    let tls_name = format!("{}/peer/tls:v1", t.addr);
    peer.ok(&["tag", &name, &tls_name]);
    peer.ok(&["push", &tls_name]);
    peer.ok(&["rmi", &tls_name]);
    peer.ok(&["pull", &tls_name]);
    assert!(t.log().contains("PUT /v2/peer/tls/manifests/v1 201"), "{}", t.log());
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn berth_pushes_and_pulls_over_tls() {
    require_root();
    // On loopback (insecure, as Docker treats it): HTTPS without verification, with basic auth.
    let r = BerthRegistry::start("tls-lo", &RegOpts { user: Some(("alice", "s3cret")), tls: true, host: None });
    let d = Berthd::start();
    d.busybox();
    let name = format!("{}/tls/bb:v1", r.addr);
    d.ok(&["tag", "busybox", &name]);
    let out = d.berth_input(&["login", "-u", "alice", "--password-stdin", &r.addr], b"s3cret\n");
    assert!(out.status.success(), "{}", stderr(&out));
    d.ok(&["push", &name]);
    d.ok(&["rmi", &name]);
    assert!(d.ok(&["pull", &name]).contains("Downloaded newer image"));

    // Elsewhere: verified against the CA in <certs dir>/<host:port>/ca.crt; refused without it.
    let Some(ip) = host_ipv4() else {
        skip("no non-loopback IPv4 address: verified TLS not tested");
        return;
    };
    let r = BerthRegistry::start("tls-ip", &RegOpts { user: None, tls: true, host: Some(ip) });
    let certs = r.dir.join("certs.d");
    std::fs::create_dir_all(certs.join(&r.addr)).unwrap();
    std::fs::copy(r.dir.join("ca.pem"), certs.join(&r.addr).join("ca.crt")).unwrap();
    let trusting = Berthd::start_with(&["--registry-certs-dir", certs.to_str().unwrap()]);
    let tar = d.dir.join("bb.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), "busybox"]);
    trusting.ok(&["load", "-i", tar.to_str().unwrap()]);
    let name = format!("{}/verified/bb:v1", r.addr);
    trusting.ok(&["tag", "busybox", &name]);
    trusting.ok(&["push", &name]);
    trusting.ok(&["rmi", &name]);
    assert!(trusting.ok(&["pull", &name]).contains("Downloaded newer image"));
    let out = fails(&d, &["pull", &name]);
    assert!(out.contains("certificate"), "an unknown CA must be refused: {out}");
    // Plain HTTP is never tried for a registry that is not insecure.
    let plain = BerthRegistry::start("plain-ip", &RegOpts { user: None, tls: false, host: host_ipv4() });
    let out = fails(&d, &["pull", &format!("{}/x/y:v1", plain.addr)]);
    assert!(out.contains("tls"), "{out}");
    // Unless it is named insecure.
    let insecure = Berthd::start_with(&["--insecure-registry", &plain.addr]);
    let out = insecure.berth(&["pull", &format!("{}/x/y:v1", plain.addr)]);
    assert!(stderr(&out).contains("manifest unknown") || stderr(&out).contains("not found"), "{}", stderr(&out));
}
