//! Containers' logs on berthd's side.
//!
//! * The log configuration (`config.rs`, re-exported here; `HostConfig.LogConfig`): the drivers Berth has
//!   (`json-file`, `local`, `none`), their options checked as Docker checks them, the daemon's default driver and
//!   options merged in at create as dockerd's `mergeAndVerifyLogConfig` does, and the [`LogPolicy`] the shim applies
//!   (rotation, compression).
//! * `GET /containers/{id}/logs`: reads the json-file log that the shim writes — with the rotated files
//!   (`<log>.N`, `<log>.N.gz`) — filters it and streams it in Docker's format (multiplexed frames, or raw for a TTY),
//!   following the file across rotations while the container runs.

use std::fs::File;
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

/// One line of a json-file log, as serde reads it (the slow path: [`Line::parse`] reads Docker's own layout).
#[derive(serde::Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// One line of the log, read: the stream (1 or 2), the time's text and the log text, unescaped into `text`.
struct Line<'a> {
    stream: u8,
    time: &'a [u8],
}

impl<'a> Line<'a> {
    /// Reads `line` (`{"log":"…","stream":"stdout","time":"…"}`), appending its log text to `text`. Docker's layout
    /// (what Berth's shim and Docker's json-file driver write) is read in one pass without allocating; anything
    /// else goes through serde. `None` for a line that is not an entry.
    fn parse(line: &'a [u8], text: &mut Vec<u8>, time_buf: &'a mut String) -> Option<Line<'a>> {
        let mark = text.len();
        if let Some(l) = Line::fast(line, text) {
            return Some(l);
        }
        text.truncate(mark);
        let e: Entry = serde_json::from_slice(line).ok()?;
        text.extend_from_slice(e.log.as_bytes());
        *time_buf = e.time;
        Some(Line { stream: if e.stream == "stderr" { 2 } else { 1 }, time: time_buf.as_bytes() })
    }

    fn fast(line: &'a [u8], text: &mut Vec<u8>) -> Option<Line<'a>> {
        let rest = line.strip_prefix(br#"{"log":""#)?;
        let rest = unescape(rest, text)?;
        let (stream, rest) = if let Some(r) = rest.strip_prefix(br#","stream":"stdout","time":""#) {
            (1, r)
        } else {
            (2, rest.strip_prefix(br#","stream":"stderr","time":""#)?)
        };
        let end = memchr::memchr(b'"', rest)?;
        let (time, tail) = rest.split_at(end);
        matches!(tail, b"\"}\n" | b"\"}").then_some(Line { stream, time })
    }
}

/// Unescapes the JSON string that starts `s` (after its opening quote) into `out`; returns what follows its closing
/// quote. `None` for anything but a well-formed string.
fn unescape<'s>(s: &'s [u8], out: &mut Vec<u8>) -> Option<&'s [u8]> {
    let mut i = 0;
    loop {
        let j = i + memchr::memchr2(b'"', b'\\', &s[i..])?;
        out.extend_from_slice(&s[i..j]);
        if s[j] == b'"' {
            return Some(&s[j + 1..]);
        }
        let esc = *s.get(j + 1)?;
        i = j + 2;
        match esc {
            b'"' | b'\\' | b'/' => out.push(esc),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let hex = |at: usize| -> Option<u32> {
                    let h = std::str::from_utf8(s.get(at..at + 4)?).ok()?;
                    u32::from_str_radix(h, 16).ok()
                };
                let mut c = hex(i)?;
                i += 4;
                if (0xd800..0xdc00).contains(&c) && s.get(i..i + 2) == Some(b"\\u") {
                    let low = hex(i + 2)?;
                    if (0xdc00..0xe000).contains(&low) {
                        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
                        i += 6;
                    }
                }
                let ch = char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
                out.extend_from_slice(ch.encode_utf8(&mut [0u8; 4]).as_bytes());
            }
            _ => return None,
        }
    }
}

/// The time of an entry: Docker's `2006-01-02T15:04:05.999999999Z` read directly, anything else by
/// [`berth_api::time::parse`].
fn entry_time(t: &[u8]) -> Option<SystemTime> {
    fn num(b: &[u8]) -> Option<u64> {
        b.iter().try_fold(0u64, |n, d| d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0')))
    }
    let fast = || -> Option<SystemTime> {
        if t.len() < 20 || t[4] != b'-' || t[7] != b'-' || t[10] != b'T' || t[13] != b':' || t[16] != b':' {
            return None;
        }
        let (y, mo, d) = (num(&t[0..4])?, num(&t[5..7])?, num(&t[8..10])?);
        let (h, mi, sec) = (num(&t[11..13])?, num(&t[14..16])?, num(&t[17..19])?);
        let rest = &t[19..];
        let nanos = match rest {
            b"Z" => 0,
            [b'.', frac @ .., b'Z'] if !frac.is_empty() && frac.len() <= 9 => {
                num(frac)? * 10u64.pow(9 - frac.len() as u32)
            }
            _ => return None,
        };
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 || y < 1970 {
            return None;
        }
        // Days since the epoch (Howard Hinnant's days_from_civil).
        let (y, m) = (y as i64 - i64::from(mo <= 2), mo as i64);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
        let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
        Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos as u32))
    };
    fast().or_else(|| berth_api::time::parse(std::str::from_utf8(t).ok()?))
}

/// What is sent to the client at a time: entries gather up to this before they go (an entry a message made the
/// daemon's side cost a channel handoff and an HTTP chunk per line).
const BATCH: usize = 128 * 1024;

/// Where entries go: the client's channel, with the filters. Entries are encoded into a batch that is sent when it
/// is full and whenever the reading waits ([`Sink::send`]).
struct Sink {
    tx: mpsc::Sender<Bytes>,
    o: LogOptions,
    batch: Vec<u8>,
    time_buf: String,
}

impl Sink {
    fn new(tx: mpsc::Sender<Bytes>, o: LogOptions) -> Sink {
        Sink { tx, o, batch: Vec::with_capacity(BATCH), time_buf: String::new() }
    }

    /// Adds one line of the log; false once the reading is over (the client went away, or past `until`).
    fn line(&mut self, line: &[u8]) -> bool {
        let start = self.batch.len();
        // Room for the frame header, filled in once the payload's length is known.
        if !self.o.raw {
            self.batch.extend_from_slice(&[0u8; 8]);
        }
        let payload = self.batch.len();
        let mut text = std::mem::take(&mut self.batch);
        let mut time_buf = std::mem::take(&mut self.time_buf);
        let keep = match Line::parse(line, &mut text, &mut time_buf) {
            None => Some(false),
            Some(l) => {
                let timed = self.o.since.is_some() || self.o.until.is_some();
                let t = if timed { entry_time(l.time) } else { None };
                if self.o.until.is_some_and(|u| t.is_some_and(|t| t > u)) {
                    None
                } else if (l.stream == 1 && !self.o.stdout)
                    || (l.stream == 2 && !self.o.stderr)
                    || self.o.since.is_some_and(|s| t.is_none_or(|t| t < s))
                {
                    Some(false)
                } else {
                    if self.o.timestamps {
                        // The time goes before the text: move the text up.
                        let n = l.time.len() + 1;
                        let len = text.len();
                        text.resize(len + n, 0);
                        text.copy_within(payload..len, payload + n);
                        text[payload..payload + n - 1].copy_from_slice(l.time);
                        text[payload + n - 1] = b' ';
                    }
                    if !self.o.raw {
                        let h = berth_api::stream::frame_header(l.stream, text.len() - payload);
                        text[start..payload].copy_from_slice(&h);
                    }
                    Some(true)
                }
            }
        };
        self.batch = text;
        self.time_buf = time_buf;
        match keep {
            None => {
                self.batch.truncate(start);
                false
            }
            Some(false) => {
                self.batch.truncate(start);
                true
            }
            Some(true) => self.batch.len() < BATCH || self.send(),
        }
    }

    /// Sends what the batch holds; false once the client has gone.
    fn send(&mut self) -> bool {
        if self.batch.is_empty() {
            return !self.tx.is_closed();
        }
        let b = Bytes::from(std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH)));
        self.tx.blocking_send(b).is_ok()
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

    /// Where this rotated file's complete lines end (plain files).
    fn end(&self) -> u64 {
        complete_end(&self.file, self.file.metadata().map(|m| m.len()).unwrap_or(0))
    }

    /// Where its last `n` lines start (a byte offset in a plain file, a number of lines to skip in a compressed
    /// one: a gzip stream cannot be read backwards), and how many lines that is.
    fn tail(&self, n: usize) -> (u64, usize) {
        if !self.gz {
            return tail_start(&self.file, self.end(), n);
        }
        let mut total = 0usize;
        gz_lines(&self.file, |_| {
            total += 1;
            true
        });
        let got = total.min(n);
        ((total - got) as u64, got)
    }

    /// Where the lines not before `since` start (see [`Part::tail`] for what the number is).
    fn since(&self, since: Option<SystemTime>) -> u64 {
        match since {
            Some(s) if !self.gz => since_start(&self.file, self.end(), s),
            _ => 0,
        }
    }

    /// Sends its lines from `from` (see [`Part::tail`]) to its end; false once the reading is over.
    fn send(&self, from: u64, sink: &mut Sink) -> bool {
        if !self.gz {
            return send_lines(&self.file, from, Some(self.end()), sink).1;
        }
        let mut skip = from;
        gz_lines(&self.file, |l| {
            if skip > 0 {
                skip -= 1;
                return true;
            }
            sink.line(l)
        })
    }
}

/// A file read from a position without moving its offset (a part may be read more than once).
struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
}

impl std::io::Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// How much is read from a log file at a time.
const BLOCK: usize = 256 << 10;

/// Calls `f` with every complete line of the gzipped log `file`, read in large blocks; false when `f` said stop.
fn gz_lines(file: &File, mut f: impl FnMut(&[u8]) -> bool) -> bool {
    use std::io::Read;
    let mut dec = flate2::read::GzDecoder::new(ReadAt { file, pos: 0 });
    let mut buf = vec![0u8; BLOCK];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = match dec.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return true,
            Ok(n) => n,
        };
        filled += n;
        let Some(last) = memchr::memrchr(b'\n', &buf[..filled]) else { continue };
        if !each_line(&buf[..=last], &mut f) {
            return false;
        }
        buf.copy_within(last + 1..filled, 0);
        filled -= last + 1;
    }
}

/// Calls `f` with each line of `block` (whole lines, each with its newline); false when `f` said stop.
fn each_line(block: &[u8], f: &mut impl FnMut(&[u8]) -> bool) -> bool {
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', block) {
        if !f(&block[start..=nl]) {
            return false;
        }
        start = nl + 1;
    }
    true
}

/// Sends the complete lines of `file` from `from` up to `to` (`None`: as far as it goes now), read in large blocks.
/// Returns where the lines sent end, and whether the reading is still wanted.
fn send_lines(file: &File, from: u64, to: Option<u64>, sink: &mut Sink) -> (u64, bool) {
    let mut buf = vec![0u8; BLOCK];
    let mut offset = from;
    loop {
        let want = to.map_or(buf.len(), |t| t.saturating_sub(offset).min(buf.len() as u64) as usize);
        if want == 0 {
            return (offset, true);
        }
        let n = match file.read_at(&mut buf[..want], offset) {
            Ok(0) | Err(_) => return (offset, true),
            Ok(n) => n,
        };
        let Some(last) = memchr::memrchr(b'\n', &buf[..n]) else {
            if n == buf.len() {
                // One line longer than the buffer.
                buf.resize(buf.len() * 2, 0);
                continue;
            }
            return (offset, true);
        };
        if !each_line(&buf[..=last], &mut |l| sink.line(l)) {
            return (offset, false);
        }
        offset += last as u64 + 1;
    }
}

/// Where the complete lines of the first `len` bytes of `f` end (after its last newline; a line being written is
/// not complete).
fn complete_end(f: &File, len: u64) -> u64 {
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = len;
    while pos > 0 {
        let step = (buf.len() as u64).min(pos);
        let start = pos - step;
        if f.read_exact_at(&mut buf[..step as usize], start).is_err() {
            return 0;
        }
        if let Some(i) = memchr::memrchr(b'\n', &buf[..step as usize]) {
            return start + i as u64 + 1;
        }
        pos = start;
    }
    0
}

/// Where the last `n` lines of the first `end` bytes of `f` start (`end` is the end of a complete line), read
/// backwards in blocks from `end` as Docker's tail does, and how many lines that is (fewer if the file has fewer).
fn tail_start(f: &File, end: u64, n: usize) -> (u64, usize) {
    if n == 0 || end == 0 {
        return (end, 0);
    }
    let mut buf = vec![0u8; 64 << 10];
    // The newline at `end - 1` ends the last line; each newline before it starts a line.
    let mut pos = end - 1;
    let mut found = 0usize;
    while pos > 0 {
        let step = (buf.len() as u64).min(pos);
        let start = pos - step;
        if f.read_exact_at(&mut buf[..step as usize], start).is_err() {
            break;
        }
        for i in memchr::memrchr_iter(b'\n', &buf[..step as usize]) {
            found += 1;
            if found == n {
                return (start + i as u64 + 1, n);
            }
        }
        pos = start;
    }
    (0, found + 1)
}

/// The time of the line of `f` that starts at `at` (before `end`), and where the next line starts.
fn line_at(f: &File, at: u64, end: u64) -> (Option<SystemTime>, u64) {
    let mut buf = vec![0u8; 4096];
    loop {
        let want = (buf.len() as u64).min(end - at) as usize;
        let n = f.read_at(&mut buf[..want], at).unwrap_or(0);
        match memchr::memchr(b'\n', &buf[..n]) {
            Some(i) => {
                let (mut text, mut time_buf) = (Vec::new(), String::new());
                let t = Line::parse(&buf[..=i], &mut text, &mut time_buf).and_then(|l| entry_time(l.time));
                return (t, at + i as u64 + 1);
            }
            None if n == buf.len() => buf.resize(buf.len() * 2, 0),
            None => return (None, end),
        }
    }
}

/// Where the first line at or after `at` (and before `end`) starts; `end` if there is none.
fn next_line_start(f: &File, at: u64, end: u64) -> u64 {
    let mut buf = vec![0u8; 4096];
    // The byte before `at` says whether a line starts at `at`.
    let mut pos = at - 1;
    while pos < end {
        let want = (buf.len() as u64).min(end - pos) as usize;
        let n = match f.read_at(&mut buf[..want], pos) {
            Ok(0) | Err(_) => return end,
            Ok(n) => n,
        };
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            return pos + i as u64 + 1;
        }
        pos += n as u64;
    }
    end
}

/// Where the first line of the first `end` bytes of `f` whose time is not before `since` starts, by binary search
/// on the lines' times (the lines of one file are in time order); `end` when every line is older. A line without
/// a time counts as older (the filter drops it anyway).
fn since_start(f: &File, end: u64, since: SystemTime) -> u64 {
    // Lines starting before `lo` are older; lines starting at or after `hi` are not. `lo` is a line's start.
    let (mut lo, mut hi) = (0u64, end);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let mut at = if mid == lo { lo } else { next_line_start(f, mid, hi) };
        if at >= hi {
            // No line starts in [mid, hi): try the one at `lo`.
            at = lo;
        }
        match line_at(f, at, hi) {
            (Some(t), _) if t >= since => hi = at,
            (_, next) => lo = next,
        }
    }
    lo
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
        let (offset, wanted) = send_lines(&self.part.file, self.offset, None, sink);
        let progressed = offset != self.offset;
        self.offset = offset;
        (progressed || !wanted, wanted)
    }
}

/// Streams the log of `c` from `path` (its rotated files included) into a channel, in batches of entries.
pub fn stream(c: Arc<Container>, path: PathBuf, policy: &LogPolicy, o: LogOptions) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(16);
    let max_files = policy.max_files.max(1);
    tokio::task::spawn_blocking(move || {
        let mut sink = Sink::new(tx, o);
        read(&c, &path, max_files, &mut sink);
        sink.send();
    });
    rx
}

fn read(c: &Container, path: &Path, max_files: u32, sink: &mut Sink) {
    let (follow, until) = (sink.o.follow, sink.o.until);
    let Some(mut current) = first_pass(path, max_files, sink) else { return };
    if !follow {
        return;
    }
    loop {
        let running = c.is_running();
        let mut progressed = false;
        match current.as_mut() {
            Some(cur) => {
                let (p, wanted) = cur.drain(sink);
                if !wanted {
                    return;
                }
                progressed = p;
                if !p {
                    match follow_rotation(path, max_files, cur, sink) {
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
                if let (rotated, Some(part)) = snapshot(path, max_files) {
                    for p in &rotated {
                        if !p.send(0, sink) {
                            return;
                        }
                    }
                    current = Some(Current { part, offset: 0 });
                    progressed = true;
                }
            }
        }
        // What was read goes out before waiting for more.
        if !sink.send() || until.is_some_and(|u| SystemTime::now() > u) || (!running && !progressed) {
            return;
        }
        if !progressed {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Everything there now (or its last `tail` lines, or what is not before `since`). Returns the current file to
/// follow (`Some(None)`: none yet), or `None` when the reading is over.
fn first_pass(path: &Path, max_files: u32, sink: &mut Sink) -> Option<Option<Current>> {
    let (rotated, current) = snapshot(path, max_files);
    let Some(current) = current else {
        // Not started yet: nothing to read.
        return Some(None);
    };
    let end = complete_end(&current.file, current.file.metadata().map(|m| m.len()).unwrap_or(0));
    match sink.o.tail {
        None => {
            let since = sink.o.since;
            for p in rotated.iter().filter(|p| !p.all_before(since)) {
                if !p.send(p.since(since), sink) {
                    return None;
                }
            }
            let offset = since.map_or(0, |s| since_start(&current.file, end, s));
            let mut cur = Current { part: current, offset };
            let (_, wanted) = cur.drain(sink);
            wanted.then_some(Some(cur))
        }
        Some(n) => {
            // Newest first: the current file backwards, then the rotated ones until there are enough.
            let (start, got) = tail_start(&current.file, end, n);
            let mut need = n - got;
            let mut older = Vec::new();
            for p in rotated.iter().rev() {
                if need == 0 {
                    break;
                }
                let (from, got) = p.tail(need);
                need -= got;
                older.push((p, from));
            }
            for (p, from) in older.into_iter().rev() {
                if !p.send(from, sink) {
                    return None;
                }
            }
            let (offset, wanted) = send_lines(&current.file, start, Some(end), sink);
            wanted.then_some(Some(Current { part: current, offset }))
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
        if !p.send(0, sink) {
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

    /// What the sink sent, as (stream, text) per frame (or one raw piece).
    fn sent(rx: &mut mpsc::Receiver<Bytes>, raw: bool) -> Vec<(u8, String)> {
        let mut all = Vec::new();
        while let Ok(b) = rx.try_recv() {
            all.extend_from_slice(&b);
        }
        if raw {
            return vec![(1, String::from_utf8_lossy(&all).into_owned())];
        }
        let mut out = Vec::new();
        let mut rest = &all[..];
        while rest.len() >= 8 {
            let mut h = [0u8; 8];
            h.copy_from_slice(&rest[..8]);
            let (s, n) = berth_api::stream::parse_header(&h);
            out.push((s, String::from_utf8_lossy(&rest[8..8 + n]).into_owned()));
            rest = &rest[8 + n..];
        }
        assert!(rest.is_empty());
        out
    }

    fn sink(o: LogOptions) -> (Sink, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(1024);
        (Sink::new(tx, o), rx)
    }

    #[test]
    fn encodes_frames_and_filters() {
        let line = br#"{"log":"hi\n","stream":"stderr","time":"2026-11-22T10:00:00.000000001Z"}
"#;
        let run = |o: LogOptions| {
            let raw = o.raw;
            let (mut s, mut rx) = sink(o);
            assert!(s.line(line));
            assert!(s.send());
            let got = sent(&mut rx, raw);
            if raw && got[0].1.is_empty() { Vec::new() } else { got }
        };
        assert_eq!(run(opts()), vec![(2, "hi\n".to_string())]);
        assert_eq!(
            run(LogOptions { raw: true, timestamps: true, ..opts() }),
            vec![(1, "2026-11-22T10:00:00.000000001Z hi\n".to_string())]
        );
        assert_eq!(
            run(LogOptions { timestamps: true, ..opts() }),
            vec![(2, "2026-11-22T10:00:00.000000001Z hi\n".to_string())]
        );
        assert!(run(LogOptions { stderr: false, ..opts() }).is_empty());
        let later = berth_api::time::parse("2026-11-22T11:00:00Z");
        assert!(run(LogOptions { since: later, ..opts() }).is_empty());
        let earlier = berth_api::time::parse("2026-11-22T09:00:00Z");
        assert_eq!(run(LogOptions { since: earlier, ..opts() }).len(), 1);
        // Past `until`: the reading ends.
        let (mut s, _rx) = sink(LogOptions { until: earlier, ..opts() });
        assert!(!s.line(line));
    }

    /// Docker's layout is read without serde; escapes, other key orders and fields go the slow way to the same
    /// result; a line that is not an entry is skipped.
    #[test]
    fn parses_lines_fast_and_slow() {
        type Case = (&'static [u8], Option<(u8, &'static str, &'static str)>);
        let cases: &[Case] = &[
            (
                br#"{"log":"a \"q\" \\ \/ \t\u0001\u00e9\ud83d\ude00 <>\n","stream":"stdout","time":"2026-01-02T03:04:05.5Z"}"#,
                Some((1, "a \"q\" \\ / \t\u{1}é😀 <>\n", "2026-01-02T03:04:05.5Z")),
            ),
            (br#"{"stream":"stderr","log":"x\n","time":"2026-01-02T03:04:05Z"}"#, Some((2, "x\n", "2026-01-02T03:04:05Z"))),
            (
                br#"{"log":"x\n","stream":"stdout","attrs":{"a":"b"},"time":"2026-01-02T03:04:05Z"}"#,
                Some((1, "x\n", "2026-01-02T03:04:05Z")),
            ),
            (br#"{"log":"cut"#, None),
            (b"garbage\n", None),
        ];
        for (line, want) in cases {
            let (mut text, mut tb) = (Vec::new(), String::new());
            let got = Line::parse(line, &mut text, &mut tb).map(|l| {
                (l.stream, String::from_utf8_lossy(&text).into_owned(), String::from_utf8_lossy(l.time).into_owned())
            });
            let want = want.map(|(s, t, tm)| (s, t.to_string(), tm.to_string()));
            assert_eq!(got, want, "{}", String::from_utf8_lossy(line));
        }
        // Every escape serde_json writes reads back to the text, on the fast path.
        let text: String = (0u8..=127).map(char::from).chain("é€😀".chars()).collect();
        let line = serde_json::json!({"log": text, "stream": "stdout", "time": "2026-01-02T03:04:05Z"}).to_string();
        let mut out = Vec::new();
        assert!(Line::fast(line.as_bytes(), &mut out).is_some());
        assert_eq!(String::from_utf8(out).expect("utf-8"), text);
    }

    #[test]
    fn reads_times_as_docker_writes_them() {
        for t in [
            "2026-11-22T10:00:00.000000001Z",
            "2026-11-22T10:00:00Z",
            "2026-02-28T23:59:59.5Z",
            "2024-02-29T12:00:00.123456Z",
            "1970-01-01T00:00:00Z",
            "2000-03-01T00:00:00.999999999Z",
        ] {
            assert_eq!(entry_time(t.as_bytes()), berth_api::time::parse(t), "{t}");
        }
        // Not the fixed layout: the general parser's answer.
        assert_eq!(entry_time(b"2026-11-22T10:00:00+01:00"), berth_api::time::parse("2026-11-22T10:00:00+01:00"));
        assert_eq!(entry_time(b"nonsense"), None);
    }

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("berthd-logs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        Dir(dir)
    }

    fn time_of(i: usize) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + i as u64)
    }

    /// An entry of line `i` (stdout, or stderr for multiples of 7) at second `i` after 2026-01-01.
    fn entry_line(i: usize) -> String {
        let stream = if i.is_multiple_of(7) { "stderr" } else { "stdout" };
        let t = berth_api::time::rfc3339_nanos(time_of(i));
        let e = serde_json::json!({"log": format!("line {i}\n"), "stream": stream, "time": t});
        format!("{e}\n")
    }

    /// A log of lines 0..n in `files` files (oldest in `.{files-1}`, `.1` gzipped when `gz`), the current one ending
    /// in a line being written.
    fn write_log(dir: &Path, n: usize, files: usize, gz: bool) -> PathBuf {
        let path = dir.join("c-json.log");
        let per = n.div_ceil(files);
        for f in 0..files {
            let lo = n.saturating_sub(per * (f + 1));
            let hi = n - per * f;
            let text: String = (lo..hi).map(entry_line).collect();
            if f == 0 {
                std::fs::write(&path, format!("{text}{{\"log\":\"partial")).expect("write");
            } else if gz && f == 1 {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut e, text.as_bytes()).expect("gz");
                std::fs::write(format!("{}.{f}.gz", path.display()), e.finish().expect("gz")).expect("write");
            } else {
                std::fs::write(format!("{}.{f}", path.display()), text).expect("write");
            }
        }
        path
    }

    /// The texts `first_pass` sends.
    fn first(path: &Path, files: u32, o: LogOptions) -> Vec<String> {
        let (mut s, mut rx) = sink(o);
        let _ = first_pass(path, files, &mut s);
        s.send();
        sent(&mut rx, false).into_iter().map(|(_, t)| t).collect()
    }

    fn lines(r: std::ops::Range<usize>) -> Vec<String> {
        r.map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn tail_reads_backwards_across_rotated_files() {
        for gz in [false, true] {
            let dir = scratch(&format!("tail-{gz}"));
            let path = write_log(&dir.0, 3000, 3, gz);
            let tail = |n| first(&path, 3, LogOptions { tail: Some(n), ..opts() });
            assert!(tail(0).is_empty());
            assert_eq!(tail(1), lines(2999..3000));
            assert_eq!(tail(10), lines(2990..3000));
            // Into the previous file, and the one before (compressed or not).
            assert_eq!(tail(1500), lines(1500..3000));
            assert_eq!(tail(2500), lines(500..3000));
            assert_eq!(tail(3000), lines(0..3000));
            assert_eq!(tail(1_000_000), lines(0..3000));
            // `all`: everything, in order; the line being written is not there yet.
            assert_eq!(first(&path, 3, opts()), lines(0..3000));
            // Lines of the other stream count, as Docker counts them.
            let err = first(&path, 3, LogOptions { tail: Some(14), stdout: false, ..opts() });
            assert_eq!(err, vec!["line 2989\n".to_string(), "line 2996\n".to_string()]);
        }
    }

    #[test]
    fn tail_start_counts_lines_from_the_end() {
        let dir = scratch("tailstart");
        let path = dir.0.join("f");
        let text: String = (0..20000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, format!("{text}partial")).expect("write");
        let f = File::open(&path).expect("open");
        let end = complete_end(&f, text.len() as u64 + 7);
        assert_eq!(end, text.len() as u64);
        let (at, n) = tail_start(&f, end, 3);
        assert_eq!((&text[at as usize..], n), ("line 19997\nline 19998\nline 19999\n", 3));
        assert_eq!(tail_start(&f, end, 20000), (0, 20000));
        assert_eq!(tail_start(&f, end, 20001), (0, 20000));
        assert_eq!(tail_start(&f, end, 0), (end, 0));
        assert_eq!(tail_start(&f, 0, 5), (0, 0));
        // A file of one line, and no newline at all.
        std::fs::write(&path, "one\n").expect("write");
        let f = File::open(&path).expect("open");
        assert_eq!(tail_start(&f, 4, 5), (0, 1));
        std::fs::write(&path, "no newline").expect("write");
        let f = File::open(&path).expect("open");
        assert_eq!(complete_end(&f, 10), 0);
    }

    #[test]
    fn since_searches_each_file() {
        for gz in [false, true] {
            let dir = scratch(&format!("since-{gz}"));
            let path = write_log(&dir.0, 3000, 3, gz);
            let since = |i: usize| first(&path, 3, LogOptions { since: Some(time_of(i)), ..opts() });
            assert_eq!(since(0), lines(0..3000));
            // In the oldest file, in the middle one (compressed or not), in the current one, at a file's first line.
            assert_eq!(since(10), lines(10..3000));
            assert_eq!(since(1500), lines(1500..3000));
            assert_eq!(since(2000), lines(2000..3000));
            assert_eq!(since(2999), lines(2999..3000));
            assert!(since(3000).is_empty());
            // Between two entries' times: from the next one.
            let between = time_of(1234) + Duration::from_millis(500);
            assert_eq!(first(&path, 3, LogOptions { since: Some(between), ..opts() }), lines(1235..3000));
            // With `until`.
            let window = LogOptions { since: Some(time_of(900)), until: Some(time_of(1100)), ..opts() };
            assert_eq!(first(&path, 3, window), lines(900..1101));
        }
    }

    #[test]
    fn since_binary_search_in_one_file() {
        let dir = scratch("bsearch");
        let path = dir.0.join("f");
        let text: String = (0..5000).map(entry_line).collect();
        std::fs::write(&path, &text).expect("write");
        let f = File::open(&path).expect("open");
        let end = text.len() as u64;
        let starts: Vec<u64> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i as u64 + 1)).collect();
        for i in [0, 1, 2, 77, 2500, 4998, 4999] {
            assert_eq!(since_start(&f, end, time_of(i)), starts[i], "line {i}");
        }
        assert_eq!(since_start(&f, end, time_of(5000)), end);
        assert_eq!(since_start(&f, 0, time_of(1)), 0);
        // A line without a time counts as older.
        let one = entry_line(3);
        std::fs::write(&path, format!("garbage\n{one}")).expect("write");
        let f = File::open(&path).expect("open");
        assert_eq!(since_start(&f, 8 + one.len() as u64, time_of(0)), 8);
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
