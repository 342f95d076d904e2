//! Pulls that stream each layer into the store while it downloads: a zstd-compressed layer (OCI's `+zstd` media
//! type) is pulled and runs, and nothing is left in the downloads directory after it.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use berth_integration::*;

/// `curl -sf` with `args`; panics on failure, returns stdout.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").arg("-sfS").args(args).output().unwrap();
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    stdout(&out)
}

/// Uploads `bytes` as a blob of `repo` (monolithic: `POST`, then `PUT ?digest=`); returns its digest.
fn upload(addr: &str, repo: &str, bytes: &[u8], scratch: &std::path::Path) -> String {
    let digest = format!("sha256:{}", sha256_hex(bytes));
    std::fs::write(scratch, bytes).unwrap();
    let headers =
        curl(&["-D", "-", "-o", "/dev/null", "-X", "POST", &format!("http://{addr}/v2/{repo}/blobs/uploads/")]);
    let loc = headers
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
        .unwrap()
        .trim()
        .to_string();
    let url = if loc.starts_with("http") { loc } else { format!("http://{addr}{loc}") };
    let sep = if url.contains('?') { '&' } else { '?' };
    let data = format!("@{}", scratch.display());
    curl(&[
        "-X",
        "PUT",
        "--data-binary",
        &data,
        "-H",
        "content-type: application/octet-stream",
        &format!("{url}{sep}digest={digest}"),
    ]);
    digest
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn zstd_layers_are_pulled() {
    require_root();
    for tool in ["curl", "zstd", "gunzip"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            skip_missing_tool(&format!("{tool} is not installed"));
            return;
        }
    }
    let d = Berthd::start();
    d.busybox();
    let reg = LocalRegistry::start(d.dir.join("registry"));
    let (addr, repo) = (reg.addr.clone(), "z/bb");
    let gz_name = format!("{addr}/{repo}:gzip");
    d.ok(&["tag", "busybox", &gz_name]);
    d.ok(&["push", &gz_name]);

    // The same image with its layer recompressed as zstd, under an OCI manifest.
    let accept = "accept: application/vnd.docker.distribution.manifest.v2+json";
    let m: serde_json::Value =
        serde_json::from_str(&curl(&["-H", accept, &format!("http://{addr}/v2/{repo}/manifests/gzip")])).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let zst = Command::new("sh")
        .args(["-c", &format!("curl -sfS http://{addr}/v2/{repo}/blobs/{layer} | gunzip | zstd -q -c")])
        .output()
        .unwrap();
    assert!(zst.status.success() && zst.stdout.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), "zstd failed");
    let scratch = d.dir.join("blob");
    let zdigest = upload(&addr, repo, &zst.stdout, &scratch);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": m["config"]["digest"], "size": m["config"]["size"]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": zdigest,
                    "size": zst.stdout.len()}],
    });
    std::fs::write(&scratch, serde_json::to_vec(&manifest).unwrap()).unwrap();
    curl(&[
        "-X",
        "PUT",
        "-H",
        "content-type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &format!("@{}", scratch.display()),
        &format!("http://{addr}/v2/{repo}/manifests/zstd"),
    ]);

    // Pulled into a daemon without the layer (the other one has it under its diff id and would skip it).
    let d2 = Berthd::start();
    let name = format!("{addr}/{repo}:zstd");
    let out = d2.ok(&["pull", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(d2.ok(&["run", "--rm", &name, "echo", "from zstd"]), "from zstd\n");
    let downloads = d2.dir.join("data/downloads");
    let left: Vec<_> =
        std::fs::read_dir(&downloads).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "downloads left after the pull: {left:?}");
    drop(reg);
}
