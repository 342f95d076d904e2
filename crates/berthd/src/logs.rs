//! `GET /containers/{id}/logs`: reads the json-file log that the shim writes, filters it and streams it in Docker's
//! format (multiplexed frames, or raw for a TTY), following the file while the container runs.

use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::containers::Container;

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

/// Encodes one log entry; `None` when filtered out.
fn encode(line: &str, o: &LogOptions) -> Option<Bytes> {
    let e: Entry = serde_json::from_str(line).ok()?;
    let stream = if e.stream == "stderr" { 2 } else { 1 };
    if (stream == 1 && !o.stdout) || (stream == 2 && !o.stderr) {
        return None;
    }
    if o.since.is_some() || o.until.is_some() {
        let t = berth_api::time::parse(&e.time)?;
        if o.since.is_some_and(|s| t < s) || o.until.is_some_and(|u| t > u) {
            return None;
        }
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

/// Streams the log of `c` from `path` into a channel.
pub fn stream(c: Arc<Container>, path: std::path::PathBuf, o: LogOptions) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(64);
    tokio::task::spawn_blocking(move || {
        let file = match std::fs::File::open(&path) {
            Ok(f) => Some(f),
            Err(_) if o.follow && c.is_running() => None,
            Err(_) => return,
        };
        let mut reader = file.map(std::io::BufReader::new);
        // The first pass: everything there now, honouring --tail.
        if let Some(r) = reader.as_mut() {
            let mut lines: std::collections::VecDeque<Bytes> = std::collections::VecDeque::new();
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if !line.ends_with('\n') => {
                        // A line being written right now: read it again on the next pass.
                        let back = line.len() as i64;
                        let _ = r.seek_relative(-back);
                        break;
                    }
                    Ok(_) => {}
                }
                if let Some(b) = encode(&line, &o) {
                    lines.push_back(b);
                    if o.tail.is_some_and(|t| lines.len() > t) {
                        lines.pop_front();
                    }
                }
            }
            if o.tail == Some(0) {
                lines.clear();
            }
            for b in lines {
                if tx.blocking_send(b).is_err() {
                    return;
                }
            }
        }
        if !o.follow {
            return;
        }
        let mut line = String::new();
        loop {
            if reader.is_none() {
                reader = std::fs::File::open(&path).ok().map(std::io::BufReader::new);
            }
            let running = c.is_running();
            let mut progressed = false;
            if let Some(r) = reader.as_mut() {
                loop {
                    line.clear();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(n) if !line.ends_with('\n') => {
                            let _ = r.seek_relative(-(n as i64));
                            break;
                        }
                        Ok(_) => {}
                    }
                    progressed = true;
                    if let Some(b) = encode(&line, &o) {
                        if tx.blocking_send(b).is_err() {
                            return;
                        }
                    }
                }
            }
            if o.until.is_some_and(|u| SystemTime::now() > u) || (!running && !progressed) || tx.is_closed() {
                return;
            }
            if !progressed {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn encodes_frames_and_filters() {
        let line = r#"{"log":"hi\n","stream":"stderr","time":"2026-11-22T10:00:00.000000001Z"}"#;
        let b = encode(line, &opts()).expect("entry");
        assert_eq!(&b[..8], &[2, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&b[8..], b"hi\n");
        let raw = encode(line, &LogOptions { raw: true, timestamps: true, ..opts() }).expect("entry");
        assert_eq!(&raw[..], b"2026-11-22T10:00:00.000000001Z hi\n");
        assert!(encode(line, &LogOptions { stderr: false, ..opts() }).is_none());
        let later = berth_api::time::parse("2026-11-22T11:00:00Z");
        assert!(encode(line, &LogOptions { since: later, ..opts() }).is_none());
    }
}
