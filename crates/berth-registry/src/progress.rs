//! Progress in docker's JSON message format (`{"status":"Downloading","progressDetail":{...},"id":"..."}`), the
//! stream `POST /images/create` and `POST /images/{name}/push` answer with.

use serde_json::{Value, json};

/// Where progress messages go; dropping messages when nobody listens any more is fine.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    tx: Option<tokio::sync::mpsc::UnboundedSender<Value>>,
}

/// go-units' `HumanSize` (decimal, 3 significant digits): `2.5MB`, `512B`.
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    let s = format!("{v:.3}");
    let digits = if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{:.*}", digits, s.parse::<f64>().unwrap_or(v));
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    format!("{s}{}", units[i])
}

/// docker's progress bar: `[=====>      ]  1.2MB/3.4MB`.
pub fn bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let width = 50u64;
    let bars = (current.min(total) * width / total) as usize;
    let mut s = "=".repeat(bars);
    s.push('>');
    let pad = (width as usize + 1).saturating_sub(s.len());
    format!("[{s}{}] {:>8}/{}", " ".repeat(pad), human_size(current), human_size(total))
}

impl Progress {
    /// A sink that sends to `tx`.
    pub fn new(tx: tokio::sync::mpsc::UnboundedSender<Value>) -> Progress {
        Progress { tx: Some(tx) }
    }

    /// A sink that drops everything.
    pub fn none() -> Progress {
        Progress { tx: None }
    }

    /// Sends a raw message.
    pub fn send(&self, v: Value) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(v);
        }
    }

    /// `{"status": status}`.
    pub fn status(&self, status: impl Into<String>) {
        self.send(json!({"status": status.into()}));
    }

    /// `{"status": status, "progressDetail": {}, "id": id}`.
    pub fn item(&self, id: &str, status: &str) {
        self.send(json!({"status": status, "progressDetail": {}, "id": id}));
    }

    /// A progress line for `id`.
    pub fn bytes(&self, id: &str, status: &str, current: u64, total: u64) {
        self.send(json!({
            "status": status,
            "progressDetail": {"current": current, "total": total},
            "progress": bar(current, total),
            "id": id,
        }));
    }
}

/// The error message docker's clients expect at the end of a failed stream.
pub fn error_message(msg: &str) -> Value {
    json!({"errorDetail": {"message": msg}, "error": msg})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bars() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2_500_000), "2.5MB");
        assert_eq!(human_size(772_800), "772.8kB");
        assert!(bar(50, 100).starts_with("[=========================>"));
        assert!(bar(100, 100).contains("=>]") || bar(100, 100).contains("==]"));
    }
}
