//! `berth kube play`'s ConfigMap and Secret volumes are read-only mounts of volumes of the pod, as the kubelet and
//! Podman mount them: the files have their content and modes (`items`, `defaultMode`, `items[].mode`, `subPath`),
//! writing to them fails, they are not in the container's writable layer (`diff`, `export`, `commit`, its upper
//! directory on disk), a read-only root file system works with them, and `kube down` (or a failed play) leaves no
//! volume, directory or helper container behind.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_integration::*;

const SECRET: &str = "s3cr3t-in-a-volume";

/// A Pod with a ConfigMap (items, nested path, modes, a subPath) and a Secret (defaultMode), mounted in a
/// container and, with a read-only root, in a second; `init` is an init container's command.
fn pod(conf: &str, init: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: app}}
data:
  app.conf: "{conf}"
  extra: "second key"
---
apiVersion: v1
kind: Secret
metadata: {{name: creds}}
stringData:
  password: {SECRET}
---
apiVersion: v1
kind: Pod
metadata: {{name: files}}
spec:
  initContainers:
    - name: init
      image: busybox
      command: [sh, -c, "{init}"]
      volumeMounts: [{{name: conf, mountPath: /etc/app}}]
  containers:
    - name: app
      image: busybox
      command: [sleep, "300"]
      volumeMounts:
        - {{name: conf, mountPath: /etc/app}}
        - {{name: conf, mountPath: /etc/one.conf, subPath: conf/app.conf}}
        - {{name: creds, mountPath: /run/creds, readOnly: false}}
    - name: ro
      image: busybox
      command: [sleep, "300"]
      securityContext: {{readOnlyRootFilesystem: true}}
      volumeMounts:
        - {{name: conf, mountPath: /srv/conf}}
        - {{name: creds, mountPath: /srv/creds}}
  volumes:
    - name: conf
      configMap:
        name: app
        defaultMode: 0440
        items:
          - {{key: app.conf, path: conf/app.conf}}
          - {{key: extra, path: extra.txt, mode: 0600}}
    - name: creds
      secret: {{secretName: creds, defaultMode: 0400}}
"#
    )
}

/// The names of the entries of `<data root>/volumes` (the store's own files aside).
fn volume_dirs(d: &Berthd) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.dir.join("data/volumes"))
        .map(|r| r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.retain(|n| n.starts_with("files_"));
    v.sort();
    v
}

/// Whether `needle` is in a file below `dir` (not following symlinks).
fn found_below(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return hits };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            hits.extend(found_below(&p, needle));
        } else if t.is_file() && std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
            hits.push(p.display().to_string());
        }
    }
    hits
}

fn lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort();
    v
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn configmap_and_secret_volumes_are_read_only_mounts_outside_the_layer() {
    let d = daemon_with_busybox();
    let dir = d.dir.join("kube-ro");
    std::fs::create_dir_all(&dir).unwrap();
    let mounts = mounts_under(&d.dir);
    std::fs::write(dir.join("pod.yaml"), pod("v1", "cat /etc/app/conf/app.conf > /dev/null")).unwrap();
    berth_ok_in(&d, &dir, &["kube", "play", "pod.yaml"]);
    // Content and modes: items' paths (nested), items' mode over defaultMode, defaultMode for the Secret; the
    // subPath is the one file.
    let out = d.ok(&[
        "exec",
        "files-app",
        "sh",
        "-c",
        "cd /etc/app && find . -type f | sort && stat -c '%n %a %u' conf/app.conf extra.txt /run/creds/password /etc/one.conf && cat conf/app.conf /etc/one.conf extra.txt /run/creds/password",
    ]);
    assert_eq!(
        out,
        format!(
            "./conf/app.conf\n./extra.txt\nconf/app.conf 440 0\nextra.txt 600 0\n/run/creds/password 400 0\n/etc/one.conf 440 0\nv1v1second key{SECRET}"
        )
    );
    // Writing fails: changing, adding, removing, in the volume, in the subPath file, in the Secret (its mount's
    // readOnly: false notwithstanding, as in Kubernetes).
    for cmd in [
        "echo x > /etc/app/conf/app.conf",
        "echo x > /etc/app/new",
        "rm /etc/app/extra.txt",
        "echo x > /etc/one.conf",
        "echo x > /run/creds/password",
        "chmod 666 /run/creds/password",
    ] {
        let o = d.berth(&["exec", "files-app", "sh", "-c", cmd]);
        assert!(!o.status.success(), "{cmd}: succeeded");
        assert!(stderr(&o).contains("Read-only file system"), "{cmd}: {}", stderr(&o));
    }
    assert_eq!(
        d.ok(&["exec", "files-app", "cat", "/etc/app/conf/app.conf", "/run/creds/password"]),
        format!("v1{SECRET}")
    );
    // The read-only root has them too.
    assert_eq!(
        d.ok(&["exec", "files-ro", "cat", "/srv/conf/conf/app.conf", "/srv/creds/password"]),
        format!("v1{SECRET}")
    );
    assert!(!d.berth(&["exec", "files-ro", "touch", "/x"]).status.success(), "the root is writable");
    // Not in the writable layer: diff shows the mount points only (nothing below them), export and a commit do not
    // have the files' content.
    let diff = d.ok(&["diff", "files-app"]);
    assert_eq!(lines(&diff), ["A /etc/app", "A /etc/one.conf", "A /run", "A /run/creds", "C /etc"], "{diff}");
    let tar = dir.join("app.tar");
    d.ok(&["export", "-o", tar.to_str().unwrap(), "files-app"]);
    let exported = std::fs::read(&tar).unwrap();
    for needle in [SECRET.as_bytes(), b"second key"] {
        assert!(
            !exported.windows(needle.len()).any(|w| w == needle),
            "{} in the export",
            String::from_utf8_lossy(needle)
        );
    }
    d.ok(&["commit", "files-app", "kube-ro-commit:1"]);
    let o = d.berth(&["run", "--rm", "kube-ro-commit:1", "sh", "-c", "cat /run/creds/password /etc/app/extra.txt"]);
    assert!(!o.status.success(), "the committed image has the files: {}", stdout(&o));
    d.ok(&["rmi", "kube-ro-commit:1"]);
    // On the host: in the pod's volumes below the data root (others may not enter it), nowhere under the
    // containers' directories (their writable layers).
    let data = d.dir.join("data");
    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(mode & 0o007, 0, "the data root is open to others: {mode:o}");
    let hits = found_below(&data, SECRET.as_bytes());
    assert_eq!(hits, [data.join("volumes/files_creds/_data/password").display().to_string()], "{hits:?}");
    // What the play made: the pod's containers (the helper that wrote the volumes is gone) and two volumes.
    let names = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(lines(&names), ["files-app", "files-ro"], "{names}");
    assert_eq!(lines(&d.ok(&["volume", "ls", "-q"])), ["files_conf", "files_creds"]);
    // An update needs --replace: the volumes are made afresh with the new content.
    std::fs::write(dir.join("pod.yaml"), pod("v2", "true")).unwrap();
    berth_ok_in(&d, &dir, &["kube", "play", "--replace", "pod.yaml"]);
    assert_eq!(d.ok(&["exec", "files-app", "cat", "/etc/app/conf/app.conf", "/etc/one.conf"]), "v2v2");
    // down leaves nothing: containers, pods, volumes, their directories.
    let out = berth_ok_in(&d, &dir, &["kube", "down", "pod.yaml"]);
    assert!(out.contains("files_conf") && out.contains("files_creds"), "{out}");
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "");
    assert_eq!(volume_dirs(&d), Vec::<String>::new());
    assert!(found_below(&data, SECRET.as_bytes()).is_empty());
    assert_eq!(mounts_under(&d.dir), mounts, "mounts left");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn a_failed_play_leaves_no_file_volume_and_a_foreign_volume_is_not_taken() {
    let d = daemon_with_busybox();
    let dir = d.dir.join("kube-ro-fail");
    std::fs::create_dir_all(&dir).unwrap();
    let mounts = mounts_under(&d.dir);
    // The volumes are made and filled, then the init container fails (after reading them).
    std::fs::write(dir.join("pod.yaml"), pod("v1", "cat /etc/app/conf/app.conf; exit 3")).unwrap();
    let o = berth_in(&d, &dir, &["kube", "play", "pod.yaml"]);
    assert!(!o.status.success(), "the play succeeded");
    assert!(
        stderr(&o).contains("init container files-init exited with 3") && stderr(&o).contains("v1"),
        "{}",
        stderr(&o)
    );
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "", "the play left containers");
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "", "the play left volumes");
    assert_eq!(volume_dirs(&d), Vec::<String>::new());
    assert!(found_below(&d.dir.join("data"), SECRET.as_bytes()).is_empty(), "the Secret is left on disk");
    assert_eq!(mounts_under(&d.dir), mounts, "mounts left");
    // A volume of that name that is not the pod's is neither used nor removed.
    d.ok(&["volume", "create", "files_creds"]);
    std::fs::write(dir.join("pod.yaml"), pod("v1", "true")).unwrap();
    let o = berth_in(&d, &dir, &["kube", "play", "pod.yaml"]);
    assert!(!o.status.success(), "the play took the volume files_creds");
    assert!(stderr(&o).contains("volume files_creds exists and is not pod files's"), "{}", stderr(&o));
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "files_creds");
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    d.ok(&["volume", "rm", "files_creds"]);
    // A leftover of the pod's own (its pod removed without `kube down`) is replaced by fresh content.
    berth_ok_in(&d, &dir, &["kube", "play", "pod.yaml"]);
    d.ok(&["pod", "rm", "-f", "files"]);
    std::fs::write(dir.join("pod.yaml"), pod("v3", "true")).unwrap();
    berth_ok_in(&d, &dir, &["kube", "play", "pod.yaml"]);
    assert_eq!(d.ok(&["exec", "files-app", "cat", "/etc/one.conf"]), "v3");
    berth_ok_in(&d, &dir, &["kube", "down", "pod.yaml"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "");
    assert_eq!(volume_dirs(&d), Vec::<String>::new());
}
