//! Store tests that span modules: import, resolve, tag, remove and garbage collection.
#![allow(clippy::unwrap_used)]

use std::os::fd::AsFd;

use super::*;

/// A tar with one file `hello` holding `text`.
fn tar_with(text: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_uid(nix::unistd::getuid().as_raw() as u64);
    h.set_gid(nix::unistd::getgid().as_raw() as u64);
    h.set_cksum();
    b.append_data(&mut h, "hello", text.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

fn store() -> (tempfile::TempDir, Store) {
    let tmp = tempfile::tempdir().unwrap();
    let s = Store::open(tmp.path()).unwrap();
    (tmp, s)
}

#[test]
fn import_resolve_tag_untag() {
    let (_tmp, s) = store();
    let opts = ImportOptions { changes: vec!["CMD [\"sh\"]".into()], ..Default::default() };
    let id = s.import_image(&tar_with("hi")[..], opts).unwrap();
    s.tag(&id, "busybox").unwrap();
    let img = s.resolve_image("busybox:latest").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.repo_tags, vec!["busybox:latest".to_string()]);
    assert_eq!(img.config["config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(img.size, 2);
    assert_eq!(img.lower_dirs().len(), 1);
    assert_eq!(std::fs::read_to_string(img.lower_dirs()[0].join("hello")).unwrap(), "hi");
    // By full id, bare hex and a prefix.
    assert_eq!(s.resolve_image(id.as_str()).unwrap().id, id);
    assert_eq!(s.resolve_image(id.hex()).unwrap().id, id);
    assert_eq!(s.resolve_image(&id.hex()[..6]).unwrap().id, id);
    assert_eq!(s.resolve_image("docker.io/library/busybox").unwrap().id, id);
    let err = s.resolve_image("nosuch").unwrap_err();
    assert_eq!(err.to_string(), "No such image: nosuch:latest");
    s.tag(&id, "other:v1").unwrap();
    assert_eq!(s.list_images().unwrap()[0].repo_tags.len(), 2);
    s.untag("other:v1").unwrap();
    assert!(s.untag("other:v1").unwrap_err().is_not_found());
    assert!(matches!(s.tag(&id, "Bad:x"), Err(StoreError::InvalidArgument(_))));
}

#[test]
fn remove_collects_unused_layers_and_blobs() {
    let (tmp, s) = store();
    let a = s.import_image(&tar_with("a")[..], ImportOptions::default()).unwrap();
    let b = s
        .import_image(&tar_with("a")[..], ImportOptions { message: Some("again".into()), ..Default::default() })
        .unwrap();
    assert_ne!(a, b, "different configs give different ids");
    let layer = s.resolve_image(a.as_str()).unwrap().layers[0].clone();
    let deleted = s.remove_image(&a).unwrap();
    assert_eq!(deleted, vec![a.to_string()], "the layer is shared with b and stays");
    assert!(s.layer_dir(&layer).is_dir());
    let deleted = s.remove_image(&b).unwrap();
    assert_eq!(deleted, vec![b.to_string(), layer.to_string()]);
    assert!(!s.layer_dir(&layer).exists());
    assert!(s.list_images().unwrap().is_empty());
    assert!(!s.content().contains(b.digest()));
    // Reopening finds a consistent, empty store.
    drop(s);
    let s = Store::open(tmp.path()).unwrap();
    assert!(s.list_layers().unwrap().is_empty());
}

#[test]
fn truncated_import_leaves_nothing() {
    let (tmp, s) = store();
    let data = tar_with(&"x".repeat(10_000));
    assert!(s.import_image(&data[..3000], ImportOptions::default()).is_err());
    assert!(s.list_images().unwrap().is_empty());
    assert!(s.list_layers().unwrap().is_empty());
    let leftovers: Vec<_> =
        std::fs::read_dir(tmp.path().join("layers")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("empty")]);
    assert_eq!(s.content().total_size().unwrap(), 0);
}

/// A tar of `(path, contents)` regular files.
fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, text) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        // Set the name by hand: the tar crate refuses `..`, which is what an evil layer would hold.
        h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, text.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
#[ignore = "needs root (mknod, trusted xattrs): test.sh runs it with --include-ignored"]
fn whiteouts_become_overlay_whiteouts() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let (_tmp, s) = store();
    let base = s.import_layer(&tar_of(&[("etc/a", "1"), ("etc/b", "2"), ("keep", "k")])[..], None).unwrap();
    let top = s
        .import_layer(&tar_of(&[("etc/.wh..wh..opq", ""), ("etc/c", "3"), (".wh.keep", "")])[..], Some(&base.chain_id))
        .unwrap();
    let dir = s.layer_dir(&top.chain_id);
    let wh = std::fs::symlink_metadata(dir.join("keep")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "`.wh.keep` is a 0:0 character device");
    let etc = std::fs::File::open(dir.join("etc")).unwrap();
    assert_eq!(crate::layer::fgetxattr(etc.as_fd(), c"trusted.overlay.opaque").unwrap().as_deref(), Some(&b"y"[..]));
    assert!(!dir.join("etc/.wh..wh..opq").exists());
    assert_eq!(std::fs::read_to_string(dir.join("etc/c")).unwrap(), "3");
    // An entry that climbs out of the layer lands inside it.
    let evil = s.import_layer(&tar_of(&[("../../escaped", "x")])[..], None).unwrap();
    assert!(s.layer_dir(&evil.chain_id).join("escaped").is_file());
    assert!(!s.root().join("escaped").exists() && !s.root().parent().unwrap().join("escaped").exists());
}

/// What a crash between a pull's layers and its image row leaves (a chain of layers no image uses, a config blob
/// without its image) is gone when the store opens again; a complete image stays.
#[test]
fn reopening_collects_a_chain_of_unused_layers_and_orphan_blobs() {
    let (tmp, s) = store();
    let kept = s.import_image(&tar_with("kept")[..], ImportOptions::default()).unwrap();
    let bottom = s.import_layer(&tar_with("one")[..], None).unwrap();
    let top = s.import_layer(&tar_with("two")[..], Some(&bottom.chain_id)).unwrap();
    let config = s.content().write(b"{\"config blob\": \"of an image never recorded\"}").unwrap();
    drop(s);
    let s = Store::open(tmp.path()).unwrap();
    for l in [&bottom, &top] {
        assert!(s.layer(&l.chain_id).unwrap().is_none(), "layer {} is still recorded", l.chain_id);
        assert!(!s.layer_dir(&l.chain_id).exists());
        assert!(!s.content().contains(l.diff_id.digest()));
    }
    assert!(!s.content().contains(&config));
    let img = s.resolve_image(kept.as_str()).unwrap();
    assert!(s.layer_dir(&img.layers[0]).is_dir());
    assert!(s.content().contains(kept.digest()));
}

/// An image and its names are one transaction: a bad name records nothing, good ones are there with the image.
#[test]
fn an_image_is_recorded_with_its_names_or_not_at_all() {
    let (_tmp, s) = store();
    let layer = s.import_layer(&tar_with("named")[..], None).unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.as_str()]},
    }))
    .unwrap();
    let bad = s.create_image_named(&config, &["ok:1".into(), "Bad:x".into()], &[]);
    assert!(matches!(bad, Err(StoreError::InvalidArgument(_))), "{bad:?}");
    assert!(s.list_images().unwrap().is_empty());
    let digest = format!("localhost:5000/app@{}", Digest::of(b"a manifest"));
    let id = s.create_image_named(&config, &["ok:1".into()], std::slice::from_ref(&digest)).unwrap();
    let img = s.resolve_image("ok:1").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(s.resolve_image(&digest).unwrap().id, id);
}

#[test]
fn layers_unpack_out_of_order_and_commit_on_their_parents() {
    let (_tmp, s) = store();
    let (lower, upper) = (tar_with("lower"), tar_with("upper"));
    let (dl, du) = (DiffId::from(Digest::of(&lower)), DiffId::from(Digest::of(&upper)));
    let timings = UnpackTimings::default();
    // The upper layer first, while its parent is not in the store yet; gzip like a registry's blob.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &upper).unwrap();
    let u = s.unpack_layer(&gz.finish().unwrap()[..], Some(&timings)).unwrap();
    assert_eq!(u.diff_id(), du);
    let l = s.unpack_layer(&lower[..], Some(&timings)).unwrap();
    // Not on a parent the store does not have.
    let missing = ChainId::compute(None, &du);
    assert!(s.commit_unpacked(s.unpack_layer(&upper[..], None).unwrap(), Some(&missing), &du, None).is_err());
    // Nor under a diff id it does not hash to: refused, and nothing left behind.
    let wrong = s.unpack_layer(&upper[..], None).unwrap();
    assert!(matches!(s.commit_unpacked(wrong, None, &dl, None), Err(StoreError::InvalidArgument(_))));
    let base = s.commit_unpacked(l, None, &dl, Some(&timings)).unwrap();
    let top = s.commit_unpacked(u, Some(&base.chain_id), &du, Some(&timings)).unwrap();
    assert_eq!(top.chain_id, ChainId::compute(Some(&base.chain_id), &du));
    assert_eq!(std::fs::read_to_string(s.layer_dir(&top.chain_id).join("hello")).unwrap(), "upper");
    assert!(s.content().contains(du.digest()));
    // Every temporary directory went with its value.
    let layers = s.layer_dir(&top.chain_id).parent().unwrap().parent().unwrap().to_path_buf();
    let temps: Vec<_> = std::fs::read_dir(&layers)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(TMP_PREFIX))
        .map(|e| e.path())
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
    use std::sync::atomic::Ordering::Relaxed;
    assert!(timings.extract.load(Relaxed) > 0 && timings.inflate.load(Relaxed) > 0);
}
