//! Docker's json-file log driver: one JSON object per line, `{"log":"...\n","stream":"stdout","time":"..."}`.
//! Output is split at newlines; a line longer than 16 KiB is written in pieces, as Docker does.
//!
//! Rotation follows moby's `loggerutils.LogFile`: before an entry is written, a file that has reached `max-size` is
//! rotated (`<log>.<n-1>` removed, `<log>.1` … shifted up, `<log>` renamed to `<log>.1`, a new `<log>` opened), so a
//! file holds at most `max-size` plus one entry. With `compress`, `<log>.1` is then gzipped into `<log>.1.gz` on a
//! thread of its own (the gzip header's extra field holds `{"lastTime": ...}`, the time of its last entry, as Docker
//! writes it, and `sourceInode`, the plain file's inode, for readers that were following it); the next rotation
//! waits for it. Readers (berthd) look for the plain file first, then the `.gz`, and the
//! plain file goes only once the `.gz` is complete.
//!
//! A write that fails (a full disk) drops its entries and cuts the file back to its last complete line; the shim
//! carries on serving its clients, and writing resumes when space is back.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use berth_runtime::shim::LogPolicy;

const MAX_LINE: usize = 16 * 1024;
/// Logs hold what containers print (secrets too): root's only, as the rest of the container's directory (Docker's
/// 0640 with group root amounts to the same).
const MODE: u32 = 0o600;

/// The json-file writer for one container, with a partial-line buffer per stream.
pub struct JsonLog {
    path: PathBuf,
    policy: LogPolicy,
    /// `None` once a rotation could not open a new file (tried again at the next write), and always for `none`.
    file: Option<File>,
    /// Bytes in the file, as far as whole entries go.
    size: u64,
    /// The file may end in a piece of an entry that could not be cut off: the next write starts a new line.
    broken: bool,
    partial: [Vec<u8>; 2],
    /// Time of the last entry written (the `lastTime` of a compressed file), and of the last one waiting in `out`.
    last_time: String,
    out_time: String,
    compressor: Option<std::thread::JoinHandle<()>>,
    /// Writes are failing (a full disk): said once on the shim's stderr (berthd's log) until one succeeds again.
    failing: bool,
}

/// Opens (creates) a log file for appending; `truncate` empties it (std refuses `O_APPEND | O_TRUNC`).
fn open_file(path: &Path, truncate: bool) -> std::io::Result<File> {
    let f = std::fs::OpenOptions::new().create(true).append(true).mode(MODE).open(path)?;
    if truncate {
        f.set_len(0)?;
    }
    Ok(f)
}

/// `<log>.<n>` (and `<log>.<n>.gz`).
fn numbered(path: &Path, n: u32, gz: bool) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}{}", if gz { ".gz" } else { "" }));
    PathBuf::from(s)
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_there(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl JsonLog {
    pub fn open(path: &Path, policy: LogPolicy) -> std::io::Result<JsonLog> {
        let mut log = JsonLog {
            path: path.to_path_buf(),
            file: None,
            size: 0,
            broken: false,
            partial: [Vec::new(), Vec::new()],
            last_time: String::new(),
            out_time: String::new(),
            compressor: None,
            failing: false,
            policy,
        };
        if log.policy.disabled {
            return Ok(log);
        }
        let file = open_file(path, false)?;
        log.size = file.metadata()?.len();
        if log.size > 0 {
            let mut last = [0u8];
            log.broken = file.read_exact_at(&mut last, log.size - 1).is_err() || last[0] != b'\n';
        }
        log.file = Some(file);
        Ok(log)
    }

    /// Finishes, in the background, a compression that a previous shim left undone (it died, or the disk was full).
    /// Called once the container exists: the thread it starts must not be running when the shim clones the
    /// container's init (a fork of a multi-threaded process may inherit a lock that no thread will release).
    pub fn resume_compression(&mut self) {
        let first = numbered(&self.path, 1, false);
        if !self.policy.disabled && self.compresses() && first.exists() {
            self.start_compression(first);
        }
    }

    fn max_files(&self) -> u32 {
        self.policy.max_files.max(1)
    }

    fn compresses(&self) -> bool {
        self.policy.compress && self.max_files() >= 2
    }

    /// Appends output of `stream` (1 stdout, 2 stderr): complete lines are written at once (all of them in one
    /// `write`), the rest is kept.
    pub fn write(&mut self, stream: u8, data: &[u8]) {
        if self.policy.disabled {
            return;
        }
        let idx = usize::from(stream == 2);
        self.partial[idx].extend_from_slice(data);
        let mut out = Vec::with_capacity(self.partial[idx].len() * 3 / 2 + 256);
        let time = berth_api::time::now();
        time.clone_into(&mut self.out_time);
        let buf = std::mem::take(&mut self.partial[idx]);
        let mut rest: &[u8] = &buf;
        while let Some(pos) = memchr::memchr(b'\n', rest) {
            let (line, tail) = rest.split_at(pos + 1);
            self.entry(&mut out, line, stream, &time);
            rest = tail;
        }
        while rest.len() >= MAX_LINE {
            let (line, tail) = rest.split_at(MAX_LINE);
            self.entry(&mut out, line, stream, &time);
            rest = tail;
        }
        let kept = rest.len();
        let mut buf = buf;
        buf.drain(..buf.len() - kept);
        self.partial[idx] = buf;
        self.write_out(&mut out);
    }

    /// Writes what is left of unfinished lines (at the end of the container's output), and waits for a compression
    /// in flight.
    pub fn flush(&mut self) {
        if self.policy.disabled {
            return;
        }
        let time = berth_api::time::now();
        time.clone_into(&mut self.out_time);
        let mut out = Vec::new();
        for (idx, stream) in [(0usize, 1u8), (1, 2)] {
            let buf = std::mem::take(&mut self.partial[idx]);
            if !buf.is_empty() {
                self.entry(&mut out, &buf, stream, &time);
            }
        }
        self.write_out(&mut out);
        if let Some(h) = self.compressor.take() {
            let _ = h.join();
        }
        // Not synced, like Docker's json-file driver: the lines are in the kernel once written, which is what a
        // reader (and a restarted berthd) needs; an fsync here cost every container exit a disk flush.
    }

    /// Adds one entry to `out`, rotating first (after writing what `out` holds) when the file is full.
    fn entry(&mut self, out: &mut Vec<u8>, line: &[u8], stream: u8, time: &str) {
        if self.policy.max_size.is_some_and(|max| self.size + out.len() as u64 >= max) {
            self.write_out(out);
            self.rotate();
        }
        encode(out, line, stream, time);
    }

    /// Writes `out` (whole entries) and empties it. On failure the entries are dropped and the file is cut back to
    /// its last whole entry.
    fn write_out(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            return;
        }
        if self.file.is_none() {
            // A rotation could not open the new file: try again.
            self.file = open_file(&self.path, false).ok();
            if let Some(f) = &self.file {
                self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                self.broken = self.size > 0;
            }
        }
        let Some(file) = &mut self.file else {
            out.clear();
            return;
        };
        if self.broken {
            if file.write_all(b"\n").is_err() {
                out.clear();
                return;
            }
            self.size += 1;
            self.broken = false;
        }
        match file.write_all(out) {
            Ok(()) => {
                self.size += out.len() as u64;
                self.last_time.clone_from(&self.out_time);
                self.failing = false;
            }
            Err(e) => {
                if !self.failing {
                    self.failing = true;
                    // The shim's stderr is the log of the berthd that started it (gone, perhaps, after a restart:
                    // never `eprintln!`, which panics when stderr cannot be written). Once per failing spell.
                    let _ = writeln!(
                        std::io::stderr(),
                        "berth-shim: writing the container's log: {e}; its output is dropped until it can be written"
                    );
                }
                // Part of it may be there: cut it off, or failing that, start the next write on a new line.
                if file.set_len(self.size).is_err() {
                    self.size = file.metadata().map(|m| m.len()).unwrap_or(self.size);
                    self.broken = true;
                }
            }
        }
        out.clear();
    }

    /// moby's rotation: shift the numbered files up, the current file becomes `.1`, a new current file.
    fn rotate(&mut self) {
        // The previous rotation's compression must be done before its file moves.
        if let Some(h) = self.compressor.take() {
            let _ = h.join();
        }
        self.file = None;
        let max_files = self.max_files();
        let shifted = (|| -> std::io::Result<()> {
            if max_files < 2 {
                return remove_if_there(&self.path);
            }
            let gz = self.policy.compress;
            remove_if_there(&numbered(&self.path, max_files - 1, gz))?;
            for i in (2..max_files).rev() {
                rename_if_there(&numbered(&self.path, i - 1, gz), &numbered(&self.path, i, gz))?;
            }
            rename_if_there(&self.path, &numbered(&self.path, 1, false))
        })();
        // As moby: whatever happened, carry on with an empty current file (the old lines are lost if it failed).
        self.file = open_file(&self.path, true).ok();
        self.size = 0;
        self.broken = false;
        if shifted.is_ok() && self.compresses() {
            self.start_compression(numbered(&self.path, 1, false));
        }
    }

    fn start_compression(&mut self, src: PathBuf) {
        let last_time = self.last_time.clone();
        let job = move || {
            let _ = compress(&src, &last_time);
        };
        match std::thread::Builder::new().name("log-compress".into()).spawn(job.clone()) {
            Ok(h) => self.compressor = Some(h),
            Err(_) => job(),
        }
    }
}

/// Gzips `src` into `<src>.gz` and removes `src` once the copy is complete (a reader finds one or the other). The
/// gzip header's extra field is Docker's `{"lastTime": ...}` with the plain file's `sourceInode`.
fn compress(src: &Path, last_time: &str) -> std::io::Result<()> {
    let mut input = File::open(src)?;
    let mut dest = src.as_os_str().to_owned();
    dest.push(".gz");
    let dest = PathBuf::from(dest);
    let result = (|| -> std::io::Result<()> {
        let out = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(MODE).open(&dest)?;
        // Docker's `lastTime`, and the plain file's inode: a reader that was following that file finds its
        // compressed copy by it (Docker's readers ignore the field).
        let mut meta = serde_json::json!({ "sourceInode": std::os::unix::fs::MetadataExt::ino(&input.metadata()?) });
        if !last_time.is_empty() {
            meta["lastTime"] = last_time.into();
        }
        let extra = serde_json::to_vec(&meta)?;
        let mut gz = flate2::GzBuilder::new().extra(extra).write(out, flate2::Compression::default());
        std::io::copy(&mut input, &mut gz)?;
        gz.finish()?;
        Ok(())
    })();
    match result {
        Ok(()) => std::fs::remove_file(src),
        Err(e) => {
            let _ = std::fs::remove_file(&dest);
            Err(e)
        }
    }
}

/// One entry, `{"log":"…","stream":"stdout","time":"…"}` and a newline, appended to `out`: byte for byte what
/// serde_json writes for it (invalid UTF-8 replaced by U+FFFD), without its per-character machinery.
fn encode(out: &mut Vec<u8>, line: &[u8], stream: u8, time: &str) {
    out.extend_from_slice(br#"{"log":""#);
    match std::str::from_utf8(line) {
        Ok(text) => escape(out, text.as_bytes()),
        Err(_) => escape(out, String::from_utf8_lossy(line).as_bytes()),
    }
    out.extend_from_slice(if stream == 2 {
        br#"","stream":"stderr","time":""#
    } else {
        br#"","stream":"stdout","time":""#
    });
    escape(out, time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// serde_json's escapes: the short ones, `\u00XX` for other control characters, nothing else (UTF-8 as it is).
fn escape(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x20.. => continue,
            b'\n' => b'n',
            b'\t' => b't',
            b'\r' => b'r',
            0x08 => b'b',
            0x0c => b'f',
            _ => 0,
        };
        out.extend_from_slice(&text[start..i]);
        if short == 0 {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        } else {
            out.extend_from_slice(&[b'\\', short]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-log-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    fn logs_of(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["log"].as_str().unwrap_or("").into())
            .collect()
    }

    #[test]
    fn splits_lines_and_keeps_partials() {
        let dir = scratch("split");
        let path = dir.join("c-json.log");
        let mut log = JsonLog::open(&path, LogPolicy::default()).expect("open");
        log.write(1, b"hello\nwor");
        log.write(2, b"err\n");
        log.write(1, b"ld\n");
        log.write(1, b"tail");
        log.flush();
        let text = std::fs::read_to_string(&path).expect("read");
        let entries: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
        let logs: Vec<(&str, &str)> =
            entries.iter().map(|e| (e["log"].as_str().unwrap_or(""), e["stream"].as_str().unwrap_or(""))).collect();
        assert_eq!(logs, vec![("hello\n", "stdout"), ("err\n", "stderr"), ("world\n", "stdout"), ("tail", "stdout")]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rotates_as_docker_does() {
        let dir = scratch("rotate");
        let path = dir.join("c-json.log");
        let policy = LogPolicy { max_size: Some(300), max_files: 3, ..LogPolicy::default() };
        let mut log = JsonLog::open(&path, policy).expect("open");
        for i in 0..40 {
            log.write(1, format!("line {i:03}\n").as_bytes());
        }
        log.flush();
        let cur = std::fs::read_to_string(&path).expect("current");
        let one = std::fs::read_to_string(numbered(&path, 1, false)).expect(".1");
        let two = std::fs::read_to_string(numbered(&path, 2, false)).expect(".2");
        assert!(!numbered(&path, 3, false).exists());
        // Each file: whole entries, at most max-size plus one entry.
        let entry_len = one.lines().next().map(|l| l.len() + 1).unwrap_or(0);
        for f in [&one, &two] {
            assert!(f.len() >= 300 && f.len() < 300 + entry_len, "{} bytes", f.len());
        }
        let all: Vec<String> = [two, one, cur].iter().flat_map(|t| logs_of(t)).collect();
        let last = all.last().cloned().unwrap_or_default();
        assert_eq!(last, "line 039\n");
        let first: usize = all[0][5..8].parse().expect("number");
        let expect: Vec<String> = (first..40).map(|i| format!("line {i:03}\n")).collect();
        assert_eq!(all, expect);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn compresses_rotated_files() {
        let dir = scratch("gz");
        let path = dir.join("c-json.log");
        let policy = LogPolicy { max_size: Some(200), max_files: 2, compress: true, ..LogPolicy::default() };
        let mut log = JsonLog::open(&path, policy).expect("open");
        for i in 0..12 {
            log.write(2, format!("line {i:03}\n").as_bytes());
        }
        log.flush();
        assert!(!numbered(&path, 1, false).exists());
        let gz = std::fs::File::open(numbered(&path, 1, true)).expect(".1.gz");
        let mut dec = flate2::read::GzDecoder::new(gz);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut dec, &mut text).expect("gunzip");
        let extra = dec.header().and_then(|h| h.extra()).map(|e| e.to_vec()).unwrap_or_default();
        let meta: serde_json::Value = serde_json::from_slice(&extra).expect("extra is JSON");
        let last = text.lines().last().and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok());
        assert_eq!(meta["lastTime"], last.expect("an entry")["time"]);
        let mut all = logs_of(&text);
        all.extend(logs_of(&std::fs::read_to_string(&path).expect("current")));
        assert_eq!(all.last().map(String::as_str), Some("line 011\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The entries are serde_json's, byte for byte, whatever the bytes.
    #[test]
    fn encodes_as_serde_json() {
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            log: &'a str,
            stream: &'a str,
            time: &'a str,
        }
        let all: Vec<u8> = (0..=255u8).collect();
        let cases: Vec<&[u8]> = vec![
            b"plain line\n",
            b"",
            b"quote \" backslash \\ tab \t cr \r bell \x07 del \x7f <html>&\n",
            "utf-8: é € 😀\n".as_bytes(),
            b"bad utf-8: \xff\xfe \xc3 end",
            &all,
        ];
        for line in cases {
            for stream in [1u8, 2] {
                let mut ours = Vec::new();
                encode(&mut ours, line, stream, "2026-11-22T10:00:00.000000001Z");
                let text = String::from_utf8_lossy(line);
                let e = Entry {
                    log: &text,
                    stream: if stream == 2 { "stderr" } else { "stdout" },
                    time: "2026-11-22T10:00:00.000000001Z",
                };
                let mut theirs = serde_json::to_vec(&e).expect("json");
                theirs.push(b'\n');
                assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
            }
        }
    }

    #[test]
    fn none_writes_nothing() {
        let dir = scratch("none");
        let path = dir.join("c-json.log");
        let mut log = JsonLog::open(&path, LogPolicy { disabled: true, ..LogPolicy::default() }).expect("open");
        log.write(1, b"x\n");
        log.flush();
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
