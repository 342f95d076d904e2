//! Docker's json-file log driver format: one JSON object per line, `{"log":"...\n","stream":"stdout","time":"..."}`.
//! Output is split at newlines; a line longer than 16 KiB is written in pieces, as Docker does.

use std::io::Write;

const MAX_LINE: usize = 16 * 1024;

/// The json-file writer for one container, with a partial-line buffer per stream.
pub struct JsonLog {
    file: std::fs::File,
    partial: [Vec<u8>; 2],
}

#[derive(serde::Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

impl JsonLog {
    pub fn open(path: &std::path::Path) -> std::io::Result<JsonLog> {
        use std::os::unix::fs::OpenOptionsExt;
        // Logs hold what containers print (secrets too): root only, as the rest of the container's directory.
        let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
        Ok(JsonLog { file, partial: [Vec::new(), Vec::new()] })
    }

    /// Appends output of `stream` (1 stdout, 2 stderr): complete lines are written at once, the rest is kept.
    pub fn write(&mut self, stream: u8, data: &[u8]) {
        let idx = usize::from(stream == 2);
        self.partial[idx].extend_from_slice(data);
        let mut out = Vec::new();
        let time = berth_api::time::now();
        let buf = std::mem::take(&mut self.partial[idx]);
        let mut rest: &[u8] = &buf;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            let (line, tail) = rest.split_at(pos + 1);
            encode(&mut out, line, stream, &time);
            rest = tail;
        }
        while rest.len() >= MAX_LINE {
            let (line, tail) = rest.split_at(MAX_LINE);
            encode(&mut out, line, stream, &time);
            rest = tail;
        }
        self.partial[idx] = rest.to_vec();
        if !out.is_empty() {
            append(&mut self.file, &out);
        }
    }

    /// Writes what is left of unfinished lines (at the end of the container's output).
    pub fn flush(&mut self) {
        let time = berth_api::time::now();
        let mut out = Vec::new();
        for (idx, stream) in [(0usize, 1u8), (1, 2)] {
            let buf = std::mem::take(&mut self.partial[idx]);
            if !buf.is_empty() {
                encode(&mut out, &buf, stream, &time);
            }
        }
        if !out.is_empty() {
            append(&mut self.file, &out);
        }
        // Not synced, like Docker's json-file driver: the lines are in the kernel once written, which is what a
        // reader (and a restarted berthd) needs; an fsync here cost every container exit a disk flush.
    }
}

/// Appends whole lines to the log. A write that fails (a full disk) drops those lines, takes back a part that was
/// written (no half line is left), and is reported on the shim's standard error (berthd's log) once until writes
/// succeed again; the container and the shim go on.
fn append(file: &mut std::fs::File, out: &[u8]) {
    static FAILING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let mut done = 0;
    while done < out.len() {
        match file.write(&out[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                if done > 0
                    && let Ok(m) = file.metadata()
                {
                    let _ = file.set_len(m.len().saturating_sub(done as u64));
                }
                if !FAILING.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    eprintln!(
                        "berth-shim: writing the container's log: {e}; its output is dropped until it can be written"
                    );
                }
                return;
            }
        }
    }
    FAILING.store(false, std::sync::atomic::Ordering::Relaxed);
}

fn encode(out: &mut Vec<u8>, line: &[u8], stream: u8, time: &str) {
    let text = String::from_utf8_lossy(line);
    let entry = Entry { log: &text, stream: if stream == 2 { "stderr" } else { "stdout" }, time };
    if serde_json::to_writer(&mut *out, &entry).is_ok() {
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_keeps_partials() {
        let dir = std::env::temp_dir().join(format!("berth-log-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("c-json.log");
        let mut log = JsonLog::open(&path).expect("open");
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
}
