//! The build context: received from the client (spooled to disk, then unpacked onto a tmpfs of its own), its
//! `.dockerignore` applied, and small text files (the Dockerfile) read from it inside its root. (A context kept
//! between builds, Berth's own protocol, is `kept.rs`.)

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::error::Error;
use nix::fcntl::OFlag;
use nix::sys::stat::fstat;

use crate::archive::primitives::open_in_root;

use super::fs::*;

/// Reads a text file of the context (the Dockerfile, `.dockerignore`): resolved inside `ctx` (symlinks cannot lead
/// out of it), a regular file of at most 16 MiB. `None` when there is none.
pub fn read_small(ctx: &Path, rel: &str) -> Result<Option<String>, String> {
    let root = open_dir(ctx).map_err(|e| e.to_string())?;
    let fd = match open_in_root(root.as_fd(), rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(e.desc().to_string()),
    };
    let st = fstat(&fd).map_err(|e| e.desc().to_string())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err("not a regular file".into());
    }
    if st.st_size > 16 << 20 {
        return Err("larger than 16 MiB".into());
    }
    let mut text = String::new();
    std::fs::File::from(fd).take(16 << 20).read_to_string(&mut text).map_err(|e| e.to_string())?;
    Ok(Some(text))
}

/// Removes the file `rel` of the context, its parent resolved inside `ctx`.
pub fn remove_in_root(ctx: &Path, rel: &str) {
    let (parent, name) = rel.trim_start_matches('/').rsplit_once('/').unwrap_or(("", rel.trim_start_matches('/')));
    if let Ok(root) = open_dir(ctx)
        && let Ok(dir) = open_in_root(root.as_fd(), parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
    {
        let _ = nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    }
}

/// Receives the context: the body is spooled to `ws/context.tar` (one sequential write), then unpacked into a tmpfs
/// mounted on `mem` (thousands of small files cost no disk writes), or, when that fails (the tmpfs is full), into
/// `ws/context` on the data root's disk. Returns the context directory.
pub fn receive_context_spooled(body: impl Read, ws: &Path, mem: &Path) -> Result<PathBuf, Error> {
    let spool = ws.join("context.tar");
    {
        let f = std::fs::File::create(&spool).map_err(io(format!("create {}", spool.display())))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        std::io::copy(&mut { body }, &mut w)
            .map_err(|e| Error::InvalidArgument(format!("read the build context: {e}")))?;
        w.flush().map_err(io(format!("write {}", spool.display())))?;
    }
    let open = || std::fs::File::open(&spool).map_err(io(format!("open {}", spool.display())));
    let on_disk = || {
        let ctx = ws.join("context");
        std::fs::create_dir_all(&ctx).map_err(io("mkdir context"))?;
        receive_context(open()?, &ctx).map(|()| ctx)
    };
    let flags = nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV;
    let got = match nix::mount::mount(Some("tmpfs"), mem, Some("tmpfs"), flags, Some("mode=0700")) {
        Ok(()) => {
            let ctx = mem.join("context");
            match std::fs::create_dir(&ctx).map_err(io("mkdir context")).and_then(|()| receive_context(open()?, &ctx)) {
                Ok(()) => Ok(ctx),
                Err(Error::InvalidArgument(m)) => Err(Error::InvalidArgument(m)),
                Err(e) => {
                    tracing::info!("build context does not fit in memory ({e}); unpacking it on disk");
                    let _ = nix::mount::umount2(mem, nix::mount::MntFlags::MNT_DETACH);
                    on_disk()
                }
            }
        }
        Err(e) => {
            tracing::debug!("no tmpfs for the build context ({e}); unpacking it on disk");
            on_disk()
        }
    };
    let _ = std::fs::remove_file(&spool);
    got
}

/// Removes a context directory below the exec root, unmounting its tmpfs first.
pub fn remove_context_dir(mem: &Path) {
    let _ = nix::mount::umount2(mem, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir_all(mem);
}

/// A tar stream completed to whole blocks and an end-of-archive marker: the docker CLI's context with a Dockerfile
/// from outside the context (Go's `ReplaceFileTarWrapper`) ends right after the last file's data.
struct Padded<R> {
    inner: R,
    count: u64,
    pad: Option<u64>,
}

impl<R: Read> Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(left) = self.pad.as_mut() {
            let n = buf.len().min(*left as usize);
            buf[..n].fill(0);
            *left -= n as u64;
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.pad = Some((512 - self.count % 512) % 512 + 1024);
            return self.read(buf);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// Unpacks the context tar (plain or gzip) into the empty directory `dir`.
pub fn receive_context(body: impl Read, dir: &Path) -> Result<(), Error> {
    let mut body = std::io::BufReader::with_capacity(256 * 1024, body);
    let head = {
        use std::io::BufRead;
        body.fill_buf().map_err(|e| Error::InvalidArgument(format!("read the build context: {e}")))?.to_vec()
    };
    if head.is_empty() {
        return Ok(());
    }
    let reader: Box<dyn Read> = match berth_store::Compression::detect(&head) {
        berth_store::Compression::None => Box::new(Padded { inner: body, count: 0, pad: None }),
        berth_store::Compression::Gzip => {
            Box::new(Padded { inner: flate2::read::MultiGzDecoder::new(body), count: 0, pad: None })
        }
        other => {
            return Err(Error::InvalidArgument(format!(
                "unsupported compression of the build context: {} (send a plain or gzip-compressed tar)",
                other.name()
            )));
        }
    };
    let root = open_dir(dir)?;
    let opts = berth_store::ExtractOptions {
        overlay_whiteouts: false,
        root_metadata: false,
        no_overwrite_dir_non_dir: false,
        owner: None,
        host_ids: None,
    };
    berth_store::extract(reader, root, Path::new("."), opts).map(drop).map_err(|e| match e {
        berth_store::StoreError::InvalidArgument(m) => Error::InvalidArgument(format!("build context: {m}")),
        e => Error::Internal(format!("build context: {e}")),
    })
}

/// Removes what `excluded` says of the context below `dir`; returns the paths it removed (relative; a removed
/// directory's content is not listed).
pub fn apply_ignore(
    dir: &Path,
    excluded: &dyn Fn(&str) -> bool,
    may_contain_included: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, Error> {
    fn walk(
        base: &Path,
        rel: &str,
        excluded: &dyn Fn(&str) -> bool,
        inc: &dyn Fn(&str) -> bool,
        removed: &mut Vec<String>,
    ) -> Result<(), Error> {
        let here = if rel.is_empty() { base.to_path_buf() } else { base.join(rel) };
        let entries = std::fs::read_dir(&here).map_err(io(format!("read {}", here.display())))?;
        for e in entries {
            let e = e.map_err(io("read the context"))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let sub = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let ft = e.file_type().map_err(io("stat"))?;
            if excluded(&sub) {
                if ft.is_dir() && inc(&sub) {
                    // An exception below may bring some of it back.
                    walk(base, &sub, excluded, inc, removed)?;
                    if std::fs::read_dir(base.join(&sub)).map(|mut d| d.next().is_none()).unwrap_or(false) {
                        let _ = std::fs::remove_dir(base.join(&sub));
                        removed.push(sub);
                    }
                } else if ft.is_dir() {
                    std::fs::remove_dir_all(base.join(&sub)).map_err(io(format!("remove {sub}")))?;
                    removed.push(sub);
                } else {
                    std::fs::remove_file(base.join(&sub)).map_err(io(format!("remove {sub}")))?;
                    removed.push(sub);
                }
            } else if ft.is_dir() {
                walk(base, &sub, excluded, inc, removed)?;
            }
        }
        Ok(())
    }
    let mut removed = Vec::new();
    walk(dir, "", excluded, may_contain_included, &mut removed)?;
    Ok(removed)
}
