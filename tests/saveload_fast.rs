//! `save` / `load` as the streaming load does them: a multi-layer image's round trip (same ID, same files, into a
//! fresh daemon and into one that has it already), interchange with a real dockerd 20.10 both ways, and damaged
//! archives (truncated, a flipped byte inside a layer) refused with Docker's words and at no cost: no image, no
//! half-unpacked layer, no blob being written, no scratch directory, no descriptor left in berthd.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use berth_integration::*;

/// Regular files of a tar: (name, offset of the data, size).
fn tar_entries(bytes: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() {
        let h = &bytes[at..at + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let name = String::from_utf8_lossy(&h[..100]).trim_end_matches('\0').to_string();
        let size_field =
            String::from_utf8_lossy(&h[124..136]).trim_matches(|c: char| c == '\0' || c == ' ').to_string();
        let size = usize::from_str_radix(&size_field, 8).unwrap();
        if h[156] == b'0' || h[156] == 0 {
            out.push((name, at + 512, size));
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

/// A three-layer image `multi:v1` (an imported root, then a 3 MB random file, then a removal and a symlink).
fn multi_layer_image(d: &Berthd) -> String {
    image(d, "base", &["CMD [\"sh\"]"], |_| {});
    let ctx = d.dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let mut big = vec![0u8; 3 << 20];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for b in big.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    std::fs::write(ctx.join("big"), &big).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM base\nCOPY big /big\nRUN rm /bin/vi && ln -s /big /link\n").unwrap();
    d.ok(&["build", "-q", "-t", "multi:v1", ctx.to_str().unwrap()]);
    let layers = d.inspect("multi:v1", "{{len .RootFS.Layers}}");
    assert_eq!(layers, "3", "the image has {layers} layers");
    d.inspect("multi:v1", "{{.Id}}")
}

fn files_of(d: &Berthd, image: &str) -> String {
    d.ok(&["run", "--rm", image, "sh", "-c", "md5sum /big; readlink /link; ls /bin/vi 2>&1 || true"])
}

/// Names in a directory of the data root.
fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(r) => r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// What berthd's descriptors point to.
/// What the process's descriptors point at, sorted.
fn fd_targets(pid: i32) -> Vec<String> {
    let mut v: Vec<String> = fds_of(pid).into_values().collect();
    v.sort();
    v
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn multi_layer_round_trip_keeps_the_id_and_the_files() {
    require_root();
    let d1 = Berthd::start();
    let id = multi_layer_image(&d1);
    let want = files_of(&d1, "multi:v1");
    assert!(want.contains("/big") && want.contains("No such file"), "{want}");
    let tar = d1.dir.join("multi.tar");
    d1.ok(&["save", "-o", tar.to_str().unwrap(), "multi:v1"]);
    // Saved as stored: the layers' blobs as they are, named by their digests (the diff ids).
    let bytes = std::fs::read(&tar).unwrap();
    let diff_ids = d1.inspect("multi:v1", "{{range .RootFS.Layers}}{{.}} {{end}}");
    for diff in diff_ids.split_whitespace() {
        let path = format!("blobs/sha256/{}", diff.trim_start_matches("sha256:"));
        let (_, at, size) = tar_entries(&bytes).into_iter().find(|(n, _, _)| *n == path).unwrap();
        let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes[at..at + size]);
        assert_eq!(format!("sha256:{}", hex::encode(digest)), diff);
    }

    // Into a daemon that has nothing: every layer unpacked from the stream.
    let d2 = Berthd::start();
    assert_eq!(d2.ok(&["load", "-i", tar.to_str().unwrap()]), "Loaded image: multi:v1\n");
    assert_eq!(d2.inspect("multi:v1", "{{.Id}}"), id);
    assert_eq!(files_of(&d2, "multi:v1"), want);
    // Again, from stdin, with the image there: the same image, nothing new in the store.
    let layers_before = names_in(&d2.dir.join("data/layers"));
    let out = d2.berth_input(&["load"], &bytes);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d2.inspect("multi:v1", "{{.Id}}"), id);
    assert_eq!(names_in(&d2.dir.join("data/layers")), layers_before);
    // After rmi (the layers go with the image): unpacked again.
    d2.ok(&["rmi", "multi:v1"]);
    d2.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(files_of(&d2, "multi:v1"), want);
    assert!(d2.log().contains("load breakdown: "), "no breakdown logged");
    // The saved archive is the same byte for byte as the first one.
    let again = d2.dir.join("again.tar");
    d2.ok(&["save", "-o", again.to_str().unwrap(), "multi:v1"]);
    assert!(std::fs::read(&again).unwrap() == bytes, "save of the loaded image differs from the original save");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn real_docker_loads_berths_save_and_berth_loads_dockers() {
    require_root();
    let Some(peer) = PeerDockerd::start() else { return };
    let d1 = Berthd::start();
    let id = multi_layer_image(&d1);
    let want = files_of(&d1, "multi:v1");
    let tar = d1.dir.join("multi.tar");
    d1.ok(&["save", "-o", tar.to_str().unwrap(), "multi:v1"]);
    let out = peer.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("Loaded image: multi:v1"), "{out}");
    assert_eq!(peer.ok(&["inspect", "-f", "{{.Id}}", "multi:v1"]).trim(), id);
    let theirs = peer.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "multi:v1",
        "sh",
        "-c",
        "md5sum /big; readlink /link; ls /bin/vi 2>&1 || true",
    ]);
    assert_eq!(theirs, want);

    // Docker's own save format (`<id>/layer.tar`, `repositories`) into a daemon that has nothing.
    let from_docker = d1.dir.join("from-docker.tar");
    peer.ok(&["save", "-o", from_docker.to_str().unwrap(), "multi:v1"]);
    let d2 = Berthd::start();
    assert_eq!(d2.ok(&["load", "-i", from_docker.to_str().unwrap()]), "Loaded image: multi:v1\n");
    assert_eq!(d2.inspect("multi:v1", "{{.Id}}"), id);
    assert_eq!(files_of(&d2, "multi:v1"), want);
    peer.ok(&["rmi", "multi:v1"]);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn a_damaged_archive_gets_dockers_error_and_leaves_nothing() {
    require_root();
    let d1 = Berthd::start();
    multi_layer_image(&d1);
    let tar = d1.dir.join("multi.tar");
    d1.ok(&["save", "-o", tar.to_str().unwrap(), "multi:v1"]);
    let bytes = std::fs::read(&tar).unwrap();
    let entries = tar_entries(&bytes);
    // The 3 MB layer: a byte flipped in its middle, the archive otherwise whole.
    let (_, at, size) = entries.iter().max_by_key(|e| e.2).cloned().unwrap();
    let mut corrupt = bytes.clone();
    corrupt[at + size / 2] ^= 0xff;
    let corrupt_file = d1.dir.join("corrupt.tar");
    std::fs::write(&corrupt_file, &corrupt).unwrap();
    // Cut inside that layer, and inside a header.
    let truncated = [&bytes[..at + size / 2], &bytes[..at - 200]];

    let d2 = Berthd::start();
    d2.busybox();
    let data = d2.dir.join("data");
    let layers = names_in(&data.join("layers"));
    let blobs = names_in(&data.join("content/blobs/sha256"));
    let images = d2.ok(&["images", "-q"]);
    let fds = fd_targets(d2.pid());
    let check_nothing_left = |what: &str| {
        assert_eq!(d2.ok(&["images", "-q"]), images, "{what}: an image was made");
        assert_eq!(names_in(&data.join("layers")), layers, "{what}: layers left");
        assert_eq!(names_in(&data.join("content/blobs/sha256")), blobs, "{what}: blobs left");
        assert_eq!(names_in(&data.join("content/ingest")), Vec::<String>::new(), "{what}: ingest left");
        // The count may only go down (an idle connection closed), never up; the CLI's connection is closed on
        // berthd's side once it has noticed the CLI's end (bounded wait).
        let settled = d2.eventually(5, || fd_targets(d2.pid()).len() <= fds.len());
        assert!(settled, "{what}: berthd holds {:?}, before {fds:?}", fd_targets(d2.pid()));
    };

    for (i, cut) in truncated.iter().enumerate() {
        let out = d2.berth_input(&["load"], cut);
        assert!(!out.status.success(), "truncated archive {i} was loaded");
        assert!(
            stderr(&out).contains("Error processing tar file(exit status 1): unexpected EOF"),
            "truncated archive {i}: {}",
            stderr(&out)
        );
        check_nothing_left(&format!("truncated archive {i}"));
    }
    let out = d2.berth(&["load", "-i", corrupt_file.to_str().unwrap()]);
    assert!(!out.status.success(), "a corrupt archive was loaded");
    let err = stderr(&out);
    assert!(err.contains("invalid diffID for layer 1: expected \"sha256:"), "{err}");
    assert!(err.contains("\", got \"sha256:"), "{err}");
    check_nothing_left("corrupt layer");

    // The docker CLI gets the same words.
    if docker_cli().is_some() {
        let half = d2.dir.join("half.tar");
        std::fs::write(&half, truncated[0]).unwrap();
        let out = d2.docker(&["load", "-i", half.to_str().unwrap()]).unwrap();
        assert!(!out.status.success());
        assert!(stderr(&out).contains("unexpected EOF"), "{}", stderr(&out));
        check_nothing_left("docker CLI, truncated");
    }

    // And the whole archive still loads.
    d2.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(files_of(&d2, "multi:v1"), files_of(&d1, "multi:v1"));
}
