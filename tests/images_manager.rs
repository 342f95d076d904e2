//! The images manager end to end: the builder's `FROM` pulls through the same code as `pull` (so it trusts the CA of
//! `--registry-certs-dir`), and the image list's filters (`before`, `since`, `reference`, `dangling`, `label`,
//! unknown keys refused) through the Engine API.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_integration::*;

/// A `certs.d` directory in `dir` that trusts the CA of `r`.
fn certs_dir(r: &LocalRegistry, dir: &Path) -> PathBuf {
    let certs = dir.join("certs.d");
    std::fs::create_dir_all(certs.join(&r.addr)).unwrap();
    std::fs::copy(dir.join("ca.pem"), certs.join(&r.addr).join("ca.crt")).unwrap();
    certs
}

fn build(d: &Berthd, name: &str, dockerfile: &str, extra: &[&str]) -> std::process::Output {
    let dir = d.dir.join(format!("ctx-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    let mut args = vec!["build", "--progress=plain", "-t", name];
    args.extend_from_slice(extra);
    let p = dir.display().to_string();
    args.push(&p);
    d.berth(&args)
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn from_pulls_from_a_tls_registry_with_a_private_ca_in_the_certs_dir() {
    require_root();
    let Some(ip) = host_ipv4() else {
        skip("no non-loopback IPv4 address: a verified TLS registry cannot be tested here");
        return;
    };
    let dir = PathBuf::from(format!("/tmp/bt-imgmgr-{}", std::process::id()));
    let r = LocalRegistry::start_on(dir.clone(), &ip, true);
    let certs = certs_dir(&r, &dir);
    let d = Berthd::start_with(&["--registry-certs-dir", certs.to_str().unwrap()]);
    d.busybox();
    let base = format!("{}/base/bb:v1", r.addr);
    d.ok(&["tag", "busybox", &base]);
    d.ok(&["push", &base]);
    d.ok(&["rmi", &base]);

    // FROM an image that is not here: the builder pulls it, trusting the CA of --registry-certs-dir.
    let out = build(&d, "fromtls", &format!("FROM {base}\nRUN echo built > /built\n"), &[]);
    assert!(
        out.status.success(),
        "build failed:\n{}\n{}\n--- registry log ---\n{}",
        stdout(&out),
        stderr(&out),
        tail(&r.log(), 20)
    );
    assert!(r.log().contains("GET /v2/base/bb/manifests/v1"), "the build did not pull: {}", r.log());
    assert_eq!(d.ok(&["run", "--rm", "fromtls", "cat", "/built"]), "built\n");
    assert!(d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).contains(&base), "FROM's image not stored");
    // `--pull` pulls again even with the image here.
    let before = r.log().matches("GET /v2/base/bb/manifests/v1").count();
    let out = build(&d, "fromtls2", &format!("FROM {base}\n"), &["--pull"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(r.log().matches("GET /v2/base/bb/manifests/v1").count() > before, "--pull did not pull");

    // A daemon without the CA refuses the same registry (certificate unknown), in builds as in pulls.
    let other = Berthd::start();
    other.busybox();
    let out = build(&other, "untrusted", &format!("FROM {base}\n"), &[]);
    assert!(!out.status.success(), "an unknown CA must be refused");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("certificate") || text.contains("UnknownIssuer"), "{text}");
}

/// `GET /images/json?filters=...` through the API: (status, body).
fn list(d: &Berthd, filters: &str) -> (u16, serde_json::Value) {
    let q: String = filters
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let (status, _, body) = api(d, "GET", &format!("/images/json?filters={q}"), b"");
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

fn tags(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["RepoTags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn image_list_filters() {
    let d = daemon_with_busybox();
    // Three images created one after the other (image times have a second's resolution in configs' dates).
    image(&d, "first:v1", &["LABEL tier=db"], |_| {});
    std::thread::sleep(Duration::from_millis(1100));
    image(&d, "second:v1", &["LABEL tier=web"], |_| {});
    std::thread::sleep(Duration::from_millis(1100));
    image(&d, "third", &[], |_| {});
    d.ok(&["tag", "third", "me/third:v1"]);
    d.ok(&["rmi", "third"]);
    d.ok(&["tag", "second:v1", "second:v2"]);
    let ok = |f: &str| {
        let (status, v) = list(&d, f);
        assert_eq!(status, 200, "{f}: {v}");
        tags(&v)
    };
    assert_eq!(ok(r#"{"before":["me/third:v1"],"since":["first:v1"]}"#), ["second:v1", "second:v2"]);
    assert_eq!(ok(r#"{"since":["second:v1"]}"#), ["me/third:v1"]);
    assert_eq!(ok(r#"{"reference":["*/*"]}"#), ["me/third:v1"]);
    // Only the matching tags are listed.
    assert_eq!(ok(r#"{"reference":["second:*2"]}"#), ["second:v2"]);
    assert_eq!(ok(r#"{"label":{"tier=web":true}}"#), ["second:v1", "second:v2"]);
    assert_eq!(ok(r#"{"label":["tier"],"label!":["tier=db"]}"#), ["second:v1", "second:v2"]);
    assert_eq!(ok(r#"{"dangling":["true"]}"#), Vec::<String>::new());
    assert_eq!(ok(r#"{"until":["2000-01-01T00:00:00Z"]}"#), Vec::<String>::new());
    // Docker's 400s.
    let (status, v) = list(&d, r#"{"bogus":["1"]}"#);
    assert_eq!((status, v["message"].as_str()), (400, Some("invalid filter 'bogus'")));
    let (status, v) = list(&d, r#"{"dangling":["maybe"]}"#);
    assert_eq!((status, v["message"].as_str()), (400, Some("invalid filter 'dangling=maybe'")));
    let (status, _) = list(&d, r#"{"before":["no-such-image"]}"#);
    assert_eq!(status, 404);
    // Prune refuses list-only filters, as Docker.
    let (status, _, body) = api(&d, "POST", "/images/prune?filters=%7B%22reference%22%3A%5B%22x%22%5D%7D", b"");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
}
