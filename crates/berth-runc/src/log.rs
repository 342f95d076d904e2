//! runc's logging: `--log FILE` (default stderr), `--log-format text|json`, `--debug`. containerd's runc shim reads
//! the last `"level":"error"` line of the JSON log to report why a command failed.

use std::fs::File;
use std::io::Write;
use std::path::Path;

pub struct Logger {
    /// The log file; `None`: stderr.
    file: Option<File>,
    json: bool,
    debug: bool,
}

impl Logger {
    /// Opens (appends to) `path`; when it cannot be opened, logs to stderr and says so there.
    pub fn open(path: Option<&Path>, json: bool, debug: bool) -> Logger {
        let file = path.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| {
                    let _ = writeln!(std::io::stderr(), "berth-runc: cannot open log {}: {e}", p.display());
                })
                .ok()
        });
        Logger { file, json, debug }
    }

    /// One log line of `level`.
    pub fn line(&self, level: &str, msg: &str) -> String {
        let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            // logrus' text format: values quoted as Go's %q when they need it.
            format!("time={:?} level={level} msg={:?}", time, msg)
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let line = self.line(level, msg) + "\n";
        // The log is best effort: a failure to write it must not hide the command's own result.
        let _ = match &self.file {
            Some(f) => (&*f).write_all(line.as_bytes()),
            None => std::io::stderr().write_all(line.as_bytes()),
        };
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }

    /// Logs the error, prints it on stderr too (unless the log is stderr), and exits 1: runc's `fatal`.
    pub fn fatal(&self, err: &anyhow::Error) -> ! {
        let msg = format!("{err:#}");
        self.write("error", &msg);
        if self.file.is_some() {
            let _ = writeln!(std::io::stderr(), "{msg}");
        }
        std::process::exit(1)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_what_containerd_reads() {
        let l = Logger { file: None, json: true, debug: false };
        let v: serde_json::Value = serde_json::from_str(&l.line("error", "container \"a\" does not exist")).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"a\" does not exist");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn text_lines_quote_like_logrus() {
        let l = Logger { file: None, json: false, debug: false };
        let line = l.line("error", "bad \"x\"");
        assert!(line.starts_with("time=\""), "{line}");
        assert!(line.ends_with("level=error msg=\"bad \\\"x\\\"\""), "{line}");
    }
}
