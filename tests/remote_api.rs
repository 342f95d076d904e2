//! Issue 12, "Also build": the Engine API over TCP with mutual TLS (`berthd -H tcp://… --tlsverify`), the berth and
//! docker CLIs as its clients, clients without a certificate of the CA refused at the handshake, plain TCP refused
//! without `--insecure-tcp-for-tests`, and `ssh://` hosts for the berth CLI (through a fake `ssh` program on PATH:
//! there is no ssh server here; it runs the remote command locally, as sshd would on the remote host).
//! Loopback only.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_integration::{
    Berthd, bin, docker_cli, free_port, processes_with, require_root, skip_missing_tool, stderr, stdout, tail,
    wait_listening,
};

/// A directory of the test's own (certificates, shims), removed at the end.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let p = PathBuf::from(format!("/tmp/bt-remote-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TestDir(p)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl").current_dir(dir).args(args.split_whitespace()).output().unwrap();
    assert!(out.status.success(), "openssl {args}: {}", stderr(&out));
}

const EC: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

/// A CA in `dir` (`ca.pem`, `ca-key.pem`).
fn make_ca(dir: &Path, cn: &str) {
    std::fs::create_dir_all(dir).unwrap();
    openssl(dir, &format!("req -x509 {EC} -days 2 -subj /CN={cn} -keyout ca-key.pem -out ca.pem"));
}

/// A certificate `<name>-cert.pem`/`<name>-key.pem` signed by the CA of `dir`, with `ext` (its SANs and usage).
fn make_cert(dir: &Path, name: &str, ext: &str) {
    openssl(dir, &format!("req {EC} -subj /CN={name} -keyout {name}-key.pem -out {name}.csr"));
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &format!(
            "x509 -req -in {name}.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile {name}.ext \
             -out {name}-cert.pem"
        ),
    );
}

/// The test's PKI: `ca/` (CA, server and client certificates) and `other/` (another CA and a client of it).
fn pki(dir: &Path) -> (PathBuf, PathBuf) {
    let ca = dir.join("ca");
    make_ca(&ca, "berthTestCA");
    make_cert(&ca, "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    make_cert(&ca, "client", "extendedKeyUsage=clientAuth\n");
    let other = dir.join("other");
    make_ca(&other, "otherCA");
    make_cert(&other, "client", "extendedKeyUsage=clientAuth\n");
    (ca, other)
}

/// Waits (bounded) for a listener on `port`: berthd binds its TCP endpoints with its socket, but the harness only
/// waits for the socket.
fn wait_port(d: &Berthd, port: u16) {
    assert!(
        wait_listening(&format!("127.0.0.1:{port}"), 10),
        "berthd does not listen on {port}: {}",
        tail(&d.log(), 20)
    );
}

/// berthd on its socket and on `tcp://127.0.0.1:<port>` with mutual TLS, with busybox.
fn tls_daemon(ca: &Path) -> (Berthd, String) {
    let port = free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let file = |n: &str| ca.join(n).display().to_string();
    let (cacert, cert, key) = (file("ca.pem"), file("server-cert.pem"), file("server-key.pem"));
    let d =
        Berthd::start_with(&["-H", &tcp, "--tlsverify", "--tlscacert", &cacert, "--tlscert", &cert, "--tlskey", &key]);
    wait_port(&d, port);
    d.busybox();
    (d, tcp)
}

/// The berth CLI with only `args` saying where the daemon is (no DOCKER_HOST).
fn berth_remote(d: &Berthd, args: &[&str]) -> Output {
    d.berth_cmd()
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .env("HOME", d.dir.join("home"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(d: &Berthd, o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}\n--- berthd log ---\n{}",
        o.status.code(),
        stdout(o),
        stderr(o),
        tail(&d.log(), 30)
    );
    stdout(o)
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn berth_cli_over_mutual_tls() {
    require_root();
    let t = TestDir::new("cli");
    let (ca, _) = pki(&t.0);
    let (d, tcp) = tls_daemon(&ca);
    let file = |n: &str| ca.join(n).display().to_string();
    let (cacert, cert, key) = (file("ca.pem"), file("client-cert.pem"), file("client-key.pem"));
    let tls: Vec<&str> = vec!["-H", &tcp, "--tlsverify", "--tlscacert", &cacert, "--tlscert", &cert, "--tlskey", &key];
    let with = |args: &[&str]| berth_remote(&d, &[tls.as_slice(), args].concat());

    let v = ok(&d, &with(&["version", "--format", "{{.Server.Version}}"]), "version over TLS");
    assert!(!v.trim().is_empty(), "no server version: {v:?}");
    // attach (hijacked connection) over TLS.
    let out = ok(&d, &with(&["run", "--rm", "busybox", "echo", "hi"]), "run --rm over TLS");
    assert_eq!(out, "hi\n");
    // stdin through the hijacked TLS connection too.
    let mut child = d
        .berth_cmd()
        .env_remove("DOCKER_HOST")
        .args(&tls)
        .args(["run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"over tls\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(ok(&d, &o, "run -i over TLS"), "OVER TLS\n");
    ok(&d, &with(&["run", "-d", "--name", "box", "busybox", "sleep", "600"]), "run -d over TLS");
    let out = ok(&d, &with(&["exec", "box", "sh", "-c", "echo from-exec; exit 0"]), "exec over TLS");
    assert_eq!(out, "from-exec\n");
    let o = with(&["exec", "box", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "exec's exit status over TLS: {}", stderr(&o));

    // The docker CLI's environment: DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH with ca/cert/key.pem.
    let certs = t.0.join("certpath");
    std::fs::create_dir_all(&certs).unwrap();
    for (from, to) in [("ca.pem", "ca.pem"), ("client-cert.pem", "cert.pem"), ("client-key.pem", "key.pem")] {
        std::fs::copy(ca.join(from), certs.join(to)).unwrap();
    }
    let o = d
        .berth_cmd()
        .env("DOCKER_HOST", &tcp)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &certs)
        .args(["ps", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    assert_eq!(ok(&d, &o, "ps with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH"), "box\n");
    // Without DOCKER_TLS_VERIFY the CLI speaks plain HTTP to the TLS port: no answer it could take for the API's.
    let o = d.berth_cmd().env("DOCKER_HOST", &tcp).env_remove("DOCKER_TLS_VERIFY").args(["ps"]).output().unwrap();
    assert!(!o.status.success(), "plain HTTP to the TLS port worked: {}", stdout(&o));
    ok(&d, &with(&["rm", "-f", "box"]), "rm over TLS");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn docker_cli_over_mutual_tls() {
    require_root();
    let Some(docker) = docker_cli() else { return };
    let t = TestDir::new("docker");
    let (ca, _) = pki(&t.0);
    let (d, tcp) = tls_daemon(&ca);
    let file = |n: &str| ca.join(n).display().to_string();
    let (cacert, cert, key) = (file("ca.pem"), file("client-cert.pem"), file("client-key.pem"));
    let run = |args: &[&str]| {
        Command::new(&docker)
            .args(["--tlsverify", "--tlscacert", &cacert, "--tlscert", &cert, "--tlskey", &key, "-H", &tcp])
            .args(args)
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CLI_HINTS", "false")
            .env("DOCKER_CONFIG", t.0.join("docker-config"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    ok(&d, &run(&["run", "-d", "--name", "dbox", "busybox", "sleep", "600"]), "docker run -d");
    let out = ok(&d, &run(&["ps", "--format", "{{.Names}}"]), "docker ps");
    assert_eq!(out, "dbox\n");
    let out = ok(&d, &run(&["run", "--rm", "busybox", "echo", "hi"]), "docker run --rm");
    assert_eq!(out, "hi\n");
    let out = ok(&d, &run(&["exec", "dbox", "echo", "exec-hi"]), "docker exec");
    assert_eq!(out, "exec-hi\n");
    ok(&d, &run(&["rm", "-f", "dbox"]), "docker rm -f");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn clients_without_a_certificate_of_the_ca_are_refused() {
    require_root();
    let t = TestDir::new("refused");
    let (ca, other) = pki(&t.0);
    let (d, tcp) = tls_daemon(&ca);
    let cacert = ca.join("ca.pem").display().to_string();
    let refused = |extra: &[&str], what: &str| {
        let o =
            berth_remote(&d, &[&["-H", tcp.as_str(), "--tlsverify", "--tlscacert", &cacert], extra, &["ps"]].concat());
        assert!(!o.status.success(), "{what}: accepted: {}", stdout(&o));
        let e = stderr(&o);
        // rustls reports the server's alert at the handshake or at the first read after it (TLS 1.3 sends the
        // client's certificate after the client considers the handshake done).
        assert!(
            e.contains("TLS handshake") || e.contains("alert") || e.contains("certificate"),
            "{what}: not refused by TLS: {e}"
        );
    };
    refused(&[], "no client certificate");
    let file = |n: &str| other.join(n).display().to_string();
    refused(&["--tlscert", &file("client-cert.pem"), "--tlskey", &file("client-key.pem")], "another CA's client");
    // The daemon said why it refused.
    assert!(d.eventually(5, || d.log().matches("TLS handshake with 127.0.0.1").count() >= 2), "{}", tail(&d.log(), 20));
    // curl with no client certificate: the handshake fails, no HTTP answer at all.
    let o = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--cacert", &cacert])
        .arg(format!("https://127.0.0.1:{}/_ping", tcp.rsplit(':').next().unwrap()))
        .output();
    if let Ok(o) = o {
        assert!(!o.status.success(), "curl without a certificate got {}", stdout(&o));
        assert_eq!(stdout(&o), "000", "an HTTP status came back without a client certificate");
    } else {
        skip_missing_tool("curl is not installed; the curl part did not run");
    }
    // The daemon is still serving its clients.
    let file = |n: &str| ca.join(n).display().to_string();
    let o = berth_remote(
        &d,
        &[
            "-H",
            &tcp,
            "--tlsverify",
            "--tlscacert",
            &cacert,
            "--tlscert",
            &file("client-cert.pem"),
            "--tlskey",
            &file("client-key.pem"),
            "ps",
        ],
    );
    ok(&d, &o, "ps with the right certificate after refusals");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn plain_tcp_needs_the_explicit_opt_in() {
    require_root();
    let t = TestDir::new("plain");
    let port = free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let mut child = Command::new(bin("berthd"))
        .args(["--config-file", "/dev/null", "-H", &tcp, "--data-root"])
        .arg(t.0.join("data"))
        .arg("--exec-root")
        .arg(t.0.join("run"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It refuses before touching anything: a bounded wait for its exit, else it is killed and the test fails.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berthd serves plain TCP without --tlsverify");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = child.wait_with_output().unwrap();
    assert!(!status.success(), "berthd exited 0");
    let e = stderr(&o);
    assert!(e.contains("refusing to serve the Engine API on") && e.contains("--tlsverify"), "unclear message: {e}");
    assert!(!t.0.join("data").exists(), "the data root was created before the refusal");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "something listens on {port}");
    // Also through the configuration file's keys.
    let conf = t.0.join("daemon.json");
    std::fs::write(&conf, format!(r#"{{"hosts": ["{tcp}"], "tls": true}}"#)).unwrap();
    let o = Command::new(bin("berthd"))
        .arg("--config-file")
        .arg(&conf)
        .arg("--data-root")
        .arg(t.0.join("data"))
        .arg("--exec-root")
        .arg(t.0.join("run"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("refusing"),
        "daemon.json tls without tlsverify: {}",
        stderr(&o)
    );

    // With the opt-in: served in plain HTTP, with a loud warning.
    let port = free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let d = Berthd::start_with(&["-H", &tcp, "--insecure-tcp-for-tests"]);
    wait_port(&d, port);
    assert!(d.log().contains("ANYONE WHO CAN REACH THIS PORT IS ROOT"), "no warning: {}", tail(&d.log(), 20));
    let o = berth_remote(&d, &["-H", &tcp, "version", "--format", "{{.Server.Version}}"]);
    ok(&d, &o, "version over plain TCP");
}

/// A fake `ssh` for `ssh://` hosts: records its arguments, checks docker's shape (`[options] -- HOST COMMAND...`)
/// and runs COMMAND here (as sshd would on HOST), with DOCKER_HOST of the "remote" daemon.
const FAKE_SSH: &str = r#"#!/bin/sh
echo "$*" >> "$FAKE_SSH_LOG"
while [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done
[ "$1" = "--" ] || { echo "fake ssh: no -- in the arguments" >&2; exit 255; }
shift 2
DOCKER_HOST="$FAKE_SSH_REMOTE_HOST" exec "$@"
"#;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn berth_cli_over_ssh() {
    require_root();
    let t = TestDir::new("ssh");
    let shims = t.0.join("bin");
    std::fs::create_dir_all(&shims).unwrap();
    std::fs::write(shims.join("ssh"), FAKE_SSH).unwrap();
    std::fs::set_permissions(shims.join("ssh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(bin("berth"), shims.join("berth")).unwrap();
    let d = berth_integration::daemon_with_busybox();
    let log = t.0.join("ssh.log");
    let path = format!("{}:{}", shims.display(), std::env::var("PATH").unwrap_or_default());
    // Each command bounded (60 s, far above the second it takes): a relay that does not end when the daemon's side
    // does would otherwise hang the test instead of failing it.
    let ssh = |args: &[&str]| {
        Command::new("timeout")
            .arg("60")
            .arg(bin("berth"))
            .env("DOCKER_CONFIG", d.dir.join("docker-config"))
            .stdin(Stdio::null())
            .env("DOCKER_HOST", "ssh://alice@remote.example:2222")
            .env("PATH", &path)
            .env("FAKE_SSH_LOG", &log)
            .env("FAKE_SSH_REMOTE_HOST", d.host())
            .args(args)
            .output()
            .unwrap()
    };
    let v = ok(&d, &ssh(&["version", "--format", "{{.Server.Version}}"]), "version over ssh");
    assert!(!v.trim().is_empty());
    assert_eq!(ok(&d, &ssh(&["run", "--rm", "busybox", "echo", "hi"]), "run --rm over ssh"), "hi\n");
    ok(&d, &ssh(&["run", "-d", "--name", "sbox", "busybox", "sleep", "600"]), "run -d over ssh");
    assert_eq!(ok(&d, &ssh(&["exec", "sbox", "echo", "exec-hi"]), "exec over ssh"), "exec-hi\n");
    assert_eq!(ok(&d, &ssh(&["ps", "--format", "{{.Names}}"]), "ps over ssh"), "sbox\n");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.lines().count() >= 5, "one ssh per connection: {calls}");
    for l in calls.lines() {
        assert_eq!(l, "-o ConnectTimeout=30 -T -l alice -p 2222 -- remote.example berth system dial-stdio");
    }
    // Every ssh (and the dial-stdio it ran) ends with its connection: none left behind.
    assert!(
        d.eventually(5, || processes_with("dial-stdio").is_empty()),
        "dial-stdio processes left: {:?}",
        processes_with("dial-stdio")
    );
    ok(&d, &ssh(&["rm", "-f", "sbox"]), "rm over ssh");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn contexts_in_the_docker_cli_layout() {
    require_root();
    let t = TestDir::new("ctx");
    let (ca, _) = pki(&t.0);
    let (d, tcp) = tls_daemon(&ca);
    let file = |n: &str| ca.join(n).display().to_string();
    let endpoint =
        format!("host={tcp},ca={},cert={},key={}", file("ca.pem"), file("client-cert.pem"), file("client-key.pem"));
    let config = t.0.join("docker-config");
    let berth = |args: &[&str]| {
        d.berth_cmd().env_remove("DOCKER_HOST").env("DOCKER_CONFIG", &config).args(args).output().unwrap()
    };
    ok(&d, &berth(&["context", "create", "remote", "--description", "over TLS", "--docker", &endpoint]), "create");
    // docker's layout: meta.json under the name's sha256, the TLS files beside.
    let meta = std::fs::read_dir(config.join("contexts/meta")).unwrap().count();
    assert_eq!(meta, 1);
    assert_eq!(ok(&d, &berth(&["--context", "remote", "ps", "--format", "{{.Names}}"]), "ps --context"), "");
    ok(&d, &berth(&["context", "use", "remote"]), "context use");
    let ls = ok(&d, &berth(&["context", "ls"]), "context ls");
    assert!(ls.lines().any(|l| l.starts_with("remote *") && l.contains(&tcp)), "{ls}");
    assert_eq!(ok(&d, &berth(&["run", "--rm", "busybox", "echo", "ctx"]), "run in the context"), "ctx\n");
    // The docker CLI reads the same context.
    if let Some(docker) = docker_cli() {
        let o = Command::new(docker)
            .args(["ps", "-a", "--format", "{{.Names}}"])
            .env_remove("DOCKER_HOST")
            .env("DOCKER_CONFIG", &config)
            .env("DOCKER_CLI_HINTS", "false")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        ok(&d, &o, "docker ps in berth's context");
    }
    let inspect = ok(&d, &berth(&["context", "inspect", "-f", "{{.Endpoints.docker.Host}}", "remote"]), "inspect");
    assert_eq!(inspect.trim(), tcp);
    let o = berth(&["context", "rm", "remote"]);
    assert!(!o.status.success(), "removed the context in use");
    ok(&d, &berth(&["context", "use", "default"]), "use default");
    ok(&d, &berth(&["context", "rm", "remote"]), "rm");
    assert_eq!(std::fs::read_dir(config.join("contexts/meta")).unwrap().count(), 0);
}
