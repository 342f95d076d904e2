//! Containers' logs on berthd's side.
//!
//! * The log configuration (`config.rs`, re-exported here; `HostConfig.LogConfig`): the drivers Berth has
//!   (`json-file`, `local`, `none`), their options checked as Docker checks them, the daemon's default driver and
//!   options merged in at create as dockerd's `mergeAndVerifyLogConfig` does, and the [`LogPolicy`] the shim applies
//!   (rotation, compression).
//! * `GET /containers/{id}/logs`: reads the json-file log that the shim writes — with the rotated files
//!   (`<log>.N`, `<log>.N.gz`) — filters it and streams it in Docker's format (multiplexed frames, or raw for a TTY),
//!   following the file across rotations while the container runs.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_runtime::shim::LogPolicy;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::containers::record::Container;

mod config;
pub use config::*;

// ---------------------------------------------------------------------------------------------------------------
// Reading

/// What the client asked for.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    pub timestamps: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Raw stream (TTY) rather than multiplexed frames.
    pub raw: bool,
}

#[derive(serde::Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// Encodes one log entry; `None` when filtered out (by stream or `since`; `until` ends the reading, see [`Sink`]).
fn encode(e: &Entry, t: Option<SystemTime>, o: &LogOptions) -> Option<Bytes> {
    let stream = if e.stream == "stderr" { 2 } else { 1 };
    if (stream == 1 && !o.stdout) || (stream == 2 && !o.stderr) {
        return None;
    }
    if o.since.is_some_and(|s| t.is_none_or(|t| t < s)) {
        return None;
    }
    let mut payload = Vec::with_capacity(e.log.len() + 40);
    if o.timestamps {
        payload.extend_from_slice(e.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(e.log.as_bytes());
    if o.raw {
        return Some(Bytes::from(payload));
    }
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend(berth_api::stream::frame_header(stream, payload.len()));
    out.extend(payload);
    Some(Bytes::from(out))
}

/// Where entries go: the client's channel, with the filters.
struct Sink {
    tx: mpsc::Sender<Bytes>,
    o: LogOptions,
}

impl Sink {
    /// Sends one line of the log; false once the reading is over (the client went away, or past `until`).
    fn line(&mut self, line: &[u8]) -> bool {
        let Ok(e) = serde_json::from_slice::<Entry>(line) else { return true };
        let t = berth_api::time::parse(&e.time);
        if self.o.until.is_some_and(|u| t.is_some_and(|t| t > u)) {
            return false;
        }
        match encode(&e, t, &self.o) {
            Some(b) => self.tx.blocking_send(b).is_ok(),
            None => true,
        }
    }
}

/// One of the log's files, open: the current one, a rotated one, or a compressed rotated one.
struct Part {
    file: File,
    gz: bool,
    dev: u64,
    ino: u64,
}

impl Part {
    fn open(path: &Path, gz: bool) -> Option<Part> {
        let file = File::open(path).ok()?;
        let m = file.metadata().ok()?;
        Some(Part { file, gz, dev: m.dev(), ino: m.ino() })
    }

    /// `<log>.N`, else `<log>.N.gz` (a compression removes the plain file only once the `.gz` is complete).
    fn rotated(path: &Path, n: u32) -> Option<Part> {
        let name = |gz: bool| {
            let mut s = path.as_os_str().to_owned();
            s.push(format!(".{n}{}", if gz { ".gz" } else { "" }));
            PathBuf::from(s)
        };
        Part::open(&name(false), false).or_else(|| Part::open(&name(true), true))
    }

    /// The gzip header's extra field: Docker's `{"lastTime": ...}`, plus the shim's `sourceInode` (the inode of the
    /// plain file it was made from).
    fn gz_meta(&self) -> Option<serde_json::Value> {
        let mut head = [0u8; 12];
        self.file.read_exact_at(&mut head, 0).ok()?;
        if head[..2] != [0x1f, 0x8b] || head[3] & 4 == 0 {
            return None;
        }
        let mut extra = vec![0u8; usize::from(u16::from_le_bytes([head[10], head[11]]))];
        self.file.read_exact_at(&mut extra, 12).ok()?;
        serde_json::from_slice(&extra).ok()
    }

    /// Whether this is (the compressed copy of) the plain file `dev`/`ino`.
    fn is(&self, dev: u64, ino: u64) -> bool {
        if self.gz {
            self.gz_meta().and_then(|m| m["sourceInode"].as_u64()) == Some(ino)
        } else {
            (self.dev, self.ino) == (dev, ino)
        }
    }

    /// Whether every entry of this compressed file is older than `since` (the header says so).
    fn all_before(&self, since: Option<SystemTime>) -> bool {
        let (Some(since), true) = (since, self.gz) else { return false };
        let last = self.gz_meta().and_then(|m| m["lastTime"].as_str().and_then(berth_api::time::parse));
        last.is_some_and(|t| t < since)
    }

    /// Every line of a rotated file, in order.
    fn each_line(&self, mut f: impl FnMut(&[u8]) -> bool) -> bool {
        let mut reader: Box<dyn BufRead + '_> = if self.gz {
            Box::new(BufReader::new(flate2::read::GzDecoder::new(&self.file)))
        } else {
            Box::new(BufReader::new(&self.file))
        };
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return true,
                Ok(_) => {
                    if !f(&line) {
                        return false;
                    }
                }
            }
        }
    }

    /// The last `n` lines of a rotated file.
    fn last_lines(&self, n: usize) -> Vec<Vec<u8>> {
        if self.gz {
            let mut ring = VecDeque::new();
            self.each_line(|l| {
                ring.push_back(l.to_vec());
                if ring.len() > n {
                    ring.pop_front();
                }
                true
            });
            return ring.into();
        }
        let len = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        last_lines(&self.file, len, n).0
    }
}

/// The last `n` complete lines of the first `len` bytes of `f` (read backwards, as Docker's tail does), and where
/// the complete lines end (a line being written is not complete).
fn last_lines(f: &File, len: u64, n: usize) -> (Vec<Vec<u8>>, u64) {
    const CHUNK: u64 = 64 << 10;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut pos = len;
    let mut newlines = 0usize;
    let mut tail_partial: Option<usize> = None;
    // n lines need n newlines after the one that ends the line before them (or the start of the file).
    while pos > 0 && newlines <= n {
        let step = CHUNK.min(pos);
        pos -= step;
        let mut chunk = vec![0u8; step as usize];
        if f.read_exact_at(&mut chunk, pos).is_err() {
            break;
        }
        newlines += chunk.iter().filter(|b| **b == b'\n').count();
        if tail_partial.is_none() && newlines > 0 {
            // Bytes after the last newline of the file: an entry being written.
            let after: usize = chunks.iter().map(Vec::len).sum();
            let in_chunk = chunk.len() - 1 - chunk.iter().rposition(|b| *b == b'\n').unwrap_or(0);
            tail_partial = Some(after + in_chunk);
        }
        chunks.push(chunk);
    }
    let partial = tail_partial.unwrap_or_else(|| chunks.iter().map(Vec::len).sum());
    let data: Vec<u8> = chunks.into_iter().rev().flatten().collect();
    let complete = &data[..data.len() - partial];
    let mut lines: Vec<Vec<u8>> = complete.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    if pos > 0 && !lines.is_empty() {
        // The first piece starts in the middle of a line.
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    (lines.split_off(skip), len - partial as u64)
}

/// The log's files, oldest first, and the current one (if there is one), taken with no rotation in between. The
/// current file is opened first and the numbered ones from the newest: a rotation only moves files to higher numbers,
/// so none is missed, and one met twice (same inode) is kept once. If the current file changed meanwhile, it is done
/// again (a few times at most: a rotation takes a writer at least `max-size` bytes).
fn snapshot(path: &Path, max_files: u32) -> (Vec<Part>, Option<Part>) {
    let mut attempt = 0;
    loop {
        let current = Part::open(path, false);
        let mut seen: Vec<(u64, u64)> = current.iter().map(|p| (p.dev, p.ino)).collect();
        let mut rotated = Vec::new();
        for n in 1..max_files.max(1) {
            if let Some(p) = Part::rotated(path, n)
                && !seen.contains(&(p.dev, p.ino))
            {
                seen.push((p.dev, p.ino));
                rotated.push(p);
            }
        }
        rotated.reverse();
        let now = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        attempt += 1;
        // Rotated files without a current one: between the rename and the new file of a rotation.
        let between = current.is_none() && !rotated.is_empty();
        if (now == current.as_ref().map(|c| (c.dev, c.ino)) && !between) || attempt >= 8 {
            return (rotated, current);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The file being written, read up to its last complete line.
struct Current {
    part: Part,
    offset: u64,
}

impl Current {
    /// Sends the complete lines after `offset`. Returns (progressed, still wanted).
    fn drain(&mut self, sink: &mut Sink) -> (bool, bool) {
        let mut buf = vec![0u8; 256 << 10];
        let mut progressed = false;
        loop {
            let n = match self.part.file.read_at(&mut buf, self.offset) {
                Ok(0) | Err(_) => return (progressed, true),
                Ok(n) => n,
            };
            let Some(last) = buf[..n].iter().rposition(|b| *b == b'\n') else {
                if n == buf.len() {
                    // One line longer than the buffer.
                    buf.resize(buf.len() * 2, 0);
                    continue;
                }
                return (progressed, true);
            };
            for line in buf[..=last].split_inclusive(|b| *b == b'\n') {
                if !sink.line(line) {
                    return (true, false);
                }
            }
            self.offset += last as u64 + 1;
            progressed = true;
        }
    }
}

/// Streams the log of `c` from `path` (its rotated files included) into a channel.
pub fn stream(c: Arc<Container>, path: PathBuf, policy: &LogPolicy, o: LogOptions) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(64);
    let max_files = policy.max_files.max(1);
    tokio::task::spawn_blocking(move || {
        let follow = o.follow;
        let until = o.until;
        let mut sink = Sink { tx, o };
        let Some(mut current) = first_pass(&path, max_files, &mut sink) else { return };
        if !follow {
            return;
        }
        loop {
            let running = c.is_running();
            let mut progressed = false;
            match current.as_mut() {
                Some(cur) => {
                    let (p, wanted) = cur.drain(&mut sink);
                    if !wanted {
                        return;
                    }
                    progressed = p;
                    if !p {
                        match follow_rotation(&path, max_files, cur, &mut sink) {
                            Some(Some(next)) => {
                                *cur = next;
                                progressed = true;
                            }
                            Some(None) => {}
                            None => return,
                        }
                    }
                }
                None => {
                    // No file yet (a container not started): it appears at the start.
                    if let (rotated, Some(part)) = snapshot(&path, max_files) {
                        for p in &rotated {
                            if !p.each_line(|l| sink.line(l)) {
                                return;
                            }
                        }
                        current = Some(Current { part, offset: 0 });
                        progressed = true;
                    }
                }
            }
            if until.is_some_and(|u| SystemTime::now() > u) || (!running && !progressed) || sink.tx.is_closed() {
                return;
            }
            if !progressed {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    rx
}

/// Everything there now (or its last `tail` lines). Returns the current file to follow (`Some(None)`: none yet), or
/// `None` when the reading is over.
fn first_pass(path: &Path, max_files: u32, sink: &mut Sink) -> Option<Option<Current>> {
    let (rotated, current) = snapshot(path, max_files);
    let Some(current) = current else {
        // Not started yet: nothing to read.
        return Some(None);
    };
    let len = current.file.metadata().map(|m| m.len()).unwrap_or(0);
    match sink.o.tail {
        None => {
            let since = sink.o.since;
            for p in rotated.iter().filter(|p| !p.all_before(since)) {
                if !p.each_line(|l| sink.line(l)) {
                    return None;
                }
            }
            let mut cur = Current { part: current, offset: 0 };
            let (_, wanted) = cur.drain(sink);
            wanted.then_some(Some(cur))
        }
        Some(n) => {
            // Newest first: the current file backwards, then the rotated ones until there are enough.
            let mut pieces: Vec<Vec<Vec<u8>>> = Vec::new();
            let mut need = n;
            let (lines, offset) = last_lines(&current.file, len, need);
            need -= lines.len();
            pieces.push(lines);
            for p in rotated.iter().rev() {
                if need == 0 {
                    break;
                }
                let lines = p.last_lines(need);
                need -= lines.len();
                pieces.push(lines);
            }
            for line in pieces.iter().rev().flatten() {
                if !sink.line(line) {
                    return None;
                }
            }
            Some(Some(Current { part: current, offset }))
        }
    }
}

/// When the current file has been rotated (its name is another file now): the rest of it, then the files written
/// since (found after it among the rotated ones; all of them if it is gone), and the new current file to follow.
/// `Some(None)`: no rotation; `None`: the reading is over.
fn follow_rotation(path: &Path, max_files: u32, cur: &mut Current, sink: &mut Sink) -> Option<Option<Current>> {
    // Missing for a moment while a single file (`max-file` 1) is replaced.
    let Ok(now) = std::fs::metadata(path) else { return Some(None) };
    if (now.dev(), now.ino()) == (cur.part.dev, cur.part.ino) {
        return Some(None);
    }
    // Its writer has moved on: what is in it now is all there will be.
    if !cur.drain(sink).1 {
        return None;
    }
    let (rotated, current) = snapshot(path, max_files);
    let start = rotated.iter().rposition(|p| p.is(cur.part.dev, cur.part.ino)).map_or(0, |i| i + 1);
    for p in &rotated[start..] {
        if !p.each_line(|l| sink.line(l)) {
            return None;
        }
    }
    Some(current.map(|part| Current { part, offset: 0 }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn opts() -> LogOptions {
        LogOptions {
            stdout: true,
            stderr: true,
            follow: false,
            since: None,
            until: None,
            timestamps: false,
            tail: None,
            raw: false,
        }
    }

    fn entry(line: &str) -> (Entry, Option<SystemTime>) {
        let e: Entry = serde_json::from_str(line).expect("entry");
        let t = berth_api::time::parse(&e.time);
        (e, t)
    }

    #[test]
    fn encodes_frames_and_filters() {
        let (e, t) = entry(r#"{"log":"hi\n","stream":"stderr","time":"2026-11-22T10:00:00.000000001Z"}"#);
        let b = encode(&e, t, &opts()).expect("entry");
        assert_eq!(&b[..8], &[2, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&b[8..], b"hi\n");
        let raw = encode(&e, t, &LogOptions { raw: true, timestamps: true, ..opts() }).expect("entry");
        assert_eq!(&raw[..], b"2026-11-22T10:00:00.000000001Z hi\n");
        assert!(encode(&e, t, &LogOptions { stderr: false, ..opts() }).is_none());
        let later = berth_api::time::parse("2026-11-22T11:00:00Z");
        assert!(encode(&e, t, &LogOptions { since: later, ..opts() }).is_none());
    }

    #[test]
    fn last_lines_backwards() {
        let dir = std::env::temp_dir().join(format!("berthd-logs-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("f");
        let mut text = String::new();
        for i in 0..20000 {
            text.push_str(&format!("line {i}\n"));
        }
        text.push_str("partial");
        std::fs::write(&path, &text).expect("write");
        let f = File::open(&path).expect("open");
        let len = text.len() as u64;
        let (lines, end) = last_lines(&f, len, 3);
        assert_eq!(lines, vec![b"line 19997\n".to_vec(), b"line 19998\n".to_vec(), b"line 19999\n".to_vec()]);
        assert_eq!(end, len - "partial".len() as u64);
        let (all, _) = last_lines(&f, len, 1_000_000);
        assert_eq!(all.len(), 20000);
        assert_eq!(all[0], b"line 0\n".to_vec());
        assert!(last_lines(&f, len, 0).0.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn options_as_docker_checks_them() {
        let o = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let p = policy(JSON_FILE, &o(&[("max-size", "1m"), ("max-file", "2")])).expect("valid");
        assert_eq!((p.max_size, p.max_files, p.compress), (Some(1_000_000), 2, false));
        let init = "failed to initialize logging driver";
        // Driver, options, Docker's message.
        type Case = (&'static str, &'static [(&'static str, &'static str)], String);
        let refused: &[Case] = &[
            ("asdf", &[], "logger: no log driver named 'asdf' is registered".into()),
            (JSON_FILE, &[("foo", "1")], "unknown log opt 'foo' for json-file log driver".into()),
            (LOCAL, &[("foo", "1")], "unknown log opt 'foo' for log driver local".into()),
            (
                JSON_FILE,
                &[("tag", "x")],
                "log opt 'tag' is not supported by Berth (its log entries carry no attributes)".into(),
            ),
            (JSON_FILE, &[("max-size", "abc")], format!("{init}: invalid size: 'abc'")),
            (JSON_FILE, &[("max-file", "x")], format!("{init}: strconv.Atoi: parsing \"x\": invalid syntax")),
            (
                JSON_FILE,
                &[("max-file", "99999999999999999999")],
                format!("{init}: strconv.Atoi: parsing \"99999999999999999999\": value out of range"),
            ),
            (JSON_FILE, &[("max-file", "0")], format!("{init}: max-file cannot be less than 1")),
            (
                JSON_FILE,
                &[("compress", "true"), ("max-file", "3")],
                format!("{init}: compress cannot be true when max-file is less than 2 or max-size is not set"),
            ),
            (JSON_FILE, &[("compress", "yes")], format!("{init}: strconv.ParseBool: parsing \"yes\": invalid syntax")),
            (LOCAL, &[("max-file", "1")], format!("{init}: compression cannot be enabled when max file count is 1")),
            (LOCAL, &[("max-size", "x")], format!("{init}: invalid value for max-size: x: invalid size: 'x'")),
            (
                LOCAL,
                &[("max-file", "x")],
                format!("{init}: invalid value for max-file: x: strconv.Atoi: parsing \"x\": invalid syntax"),
            ),
            (
                LOCAL,
                &[("compress", "x")],
                format!("{init}: invalid boolean value for compress: strconv.ParseBool: parsing \"x\": invalid syntax"),
            ),
            (
                "syslog",
                &[],
                "logger: the 'syslog' log driver is not supported by Berth (its log drivers are json-file, local and \
                 none)"
                    .into(),
            ),
            (JSON_FILE, &[("mode", "fast")], "logger: logging mode not supported: fast".into()),
            (
                JSON_FILE,
                &[("max-buffer-size", "1m")],
                "logger: max-buffer-size option is only supported with 'mode=non-blocking'".into(),
            ),
            (
                JSON_FILE,
                &[("mode", "non-blocking"), ("max-buffer-size", "x")],
                "error parsing option max-buffer-size: invalid size: 'x'".into(),
            ),
        ];
        for (driver, pairs, want) in refused {
            assert_eq!(
                policy(driver, &o(pairs)).map_err(|e| e.to_string()).err().as_ref(),
                Some(want),
                "{driver} {pairs:?}"
            );
        }
        let local = policy(LOCAL, &o(&[])).expect("local");
        assert_eq!((local.max_size, local.max_files, local.compress), (Some(20 << 20), 5, true));
        assert!(policy(NONE, &o(&[("anything", "x")])).expect("none").disabled);
        assert_eq!(
            LogConfig::new("asdf", HashMap::new()).map_err(|e| e.to_string()),
            Err("failed to set log opts: logger: no log driver named 'asdf' is registered".to_string())
        );
    }
}
