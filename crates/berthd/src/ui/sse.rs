//! The live parts, as Server-Sent Events: fed by the event bus (`events::watch`) and the API's log stream, never by
//! polling. A comment line every [`KEEPALIVE`] lets a closed page's stream end even when nothing happens.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use super::{Ui, UiError, checked};
use crate::filters::Filters;

const KEEPALIVE: Duration = Duration::from_secs(15);
/// The longest unfinished log line kept before it is shown as it is.
const MAX_PARTIAL: usize = 64 << 10;
/// How far back the events page starts.
const EVENTS_HISTORY: Duration = Duration::from_secs(3600);

/// One SSE message; `data` split into lines as the format wants. SSE ends a line at `\r` too, so a carriage return
/// inside the data (a progress bar's) becomes a line break of its own: a container's output can neither cut a line
/// short nor start a field (`event:`) of its own.
pub(super) fn message(event: &str, data: &str) -> Bytes {
    let mut m = String::new();
    if !event.is_empty() {
        m.push_str("event: ");
        m.push_str(event);
        m.push('\n');
    }
    for line in data.split('\n') {
        for part in line.trim_end_matches('\r').split('\r') {
            m.push_str("data: ");
            m.push_str(part);
            m.push('\n');
        }
    }
    m.push('\n');
    Bytes::from(m)
}

/// An SSE response of `messages`, with keep-alives.
pub(super) fn respond(messages: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    let keepalive = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(KEEPALIVE).await;
        Some((Bytes::from_static(b": keep-alive\n\n"), ()))
    });
    // The stream ends with its messages (the keep-alives alone do not keep it going).
    let merged = futures_util::stream::select(
        messages.map(Some).chain(futures_util::stream::once(async { None })),
        keepalive.map(Some),
    )
    .take_while(|m| std::future::ready(m.is_some()))
    .filter_map(std::future::ready)
    .map(Ok::<_, std::convert::Infallible>);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(merged),
    )
        .into_response()
}

/// `/sse/containers`: a message for each change of a container (the page then fetches its rows again).
pub async fn containers(State(ui): State<Arc<Ui>>) -> Response {
    let mut f = Filters::default();
    f.add("type", "container");
    let changes = crate::events::watch(&ui.daemon().events, None, None, f).filter_map(|e| {
        // What leaves the list as it was.
        let quiet = e.action == "top"
            || e.action.starts_with("exec_")
            || matches!(e.action.as_str(), "attach" | "detach" | "resize" | "copy" | "archive-path" | "extract-to-dir");
        std::future::ready((!quiet).then(|| message("change", &format!("{} {}", e.action, e.id))))
    });
    respond(changes)
}

/// `/sse/events`: the last hour of events, then live ones, as the API renders them.
pub async fn events(State(ui): State<Arc<Ui>>) -> Response {
    let since = SystemTime::now().checked_sub(EVENTS_HISTORY);
    let stream = crate::events::watch(&ui.daemon().events, since, None, Filters::default())
        .map(|e| message("", &crate::views::event::render(&e, berth_api::API_VERSION).to_string()));
    respond(stream)
}

/// A line of a container's log.
pub struct Line {
    pub stderr: bool,
    pub text: String,
}

impl Line {
    pub(super) fn message(&self) -> Bytes {
        message(if self.stderr { "err" } else { "out" }, &self.text)
    }
}

/// Splits a log stream into lines per stream (stdout, stderr).
#[derive(Default)]
struct Lines {
    frames: Vec<u8>,
    partial: [Vec<u8>; 2],
}

impl Lines {
    /// Feeds bytes of the API's log body (multiplexed frames, or raw for a TTY); returns the complete lines.
    fn feed(&mut self, raw: bool, chunk: &[u8]) -> Vec<Line> {
        let mut out = Vec::new();
        if raw {
            self.push(0, chunk, &mut out);
            return out;
        }
        self.frames.extend_from_slice(chunk);
        loop {
            if self.frames.len() < 8 {
                break;
            }
            let len = u32::from_be_bytes([self.frames[4], self.frames[5], self.frames[6], self.frames[7]]) as usize;
            if self.frames.len() < 8 + len {
                break;
            }
            let which = usize::from(self.frames[0] == 2);
            let payload: Vec<u8> = self.frames[8..8 + len].to_vec();
            self.frames.drain(..8 + len);
            self.push(which, &payload, &mut out);
        }
        out
    }

    fn push(&mut self, which: usize, data: &[u8], out: &mut Vec<Line>) {
        let buf = &mut self.partial[which];
        buf.extend_from_slice(data);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            out.push(Line { stderr: which == 1, text: text.into_owned() });
        }
        // A line without its end yet is bounded: past this much it goes out as it is (Docker's log lines are cut at
        // 16 KiB too), so output without newlines cannot grow the buffer without limit.
        if buf.len() >= MAX_PARTIAL {
            let text = String::from_utf8_lossy(buf).into_owned();
            buf.clear();
            out.push(Line { stderr: which == 1, text });
        }
    }

    /// What is left at the end, as lines.
    fn finish(&mut self) -> Vec<Line> {
        let mut out = Vec::new();
        for which in 0..2 {
            if !self.partial[which].is_empty() {
                let text = String::from_utf8_lossy(&self.partial[which]).into_owned();
                self.partial[which].clear();
                out.push(Line { stderr: which == 1, text });
            }
        }
        out
    }
}

/// A container's log from the API (`query` after `stdout=1&stderr=1&timestamps=1`), as batches of lines; the last
/// batch holds what was left unterminated when the log ended.
pub(super) async fn log_lines(
    ui: &Ui,
    id: &str,
    query: &str,
) -> Result<impl Stream<Item = Vec<Line>> + Send + 'static + use<>, UiError> {
    let path = format!("/containers/{}/logs?stdout=1&stderr=1&timestamps=1{query}", super::pages::seg(id));
    let resp = checked(ui.api(Method::GET, &path).await).await?;
    let raw = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == berth_api::stream::RAW);
    let body = resp.into_body().into_data_stream();
    Ok(futures_util::stream::unfold((body, Lines::default(), false), move |(mut body, mut lines, done)| async move {
        if done {
            return None;
        }
        loop {
            match body.next().await {
                Some(Ok(chunk)) => {
                    let found = lines.feed(raw, &chunk);
                    if !found.is_empty() {
                        return Some((found, (body, lines, false)));
                    }
                }
                _ => return Some((lines.finish(), (body, lines, true))),
            }
        }
    }))
}

/// `/containers/{id}/logs.txt`: the whole log as text (timestamps, stderr lines marked), to download.
pub async fn download(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Result<Response, UiError> {
    let text = log_lines(&ui, &id, "").await?.map(|batch| {
        let mut out = String::new();
        for l in batch {
            // "<timestamp> [stderr] text"
            match (l.stderr, l.text.split_once(' ')) {
                (true, Some((ts, rest))) => out.push_str(&format!("{ts} [stderr] {rest}\n")),
                _ => {
                    out.push_str(&l.text);
                    out.push('\n');
                }
            }
        }
        Ok::<_, std::convert::Infallible>(Bytes::from(out))
    });
    let file = format!("attachment; filename=\"{}.log\"", super::pages::seg(&id));
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, file)],
        Body::from_stream(text),
    )
        .into_response())
}

/// How many lines of a container's log the page starts with.
const LOG_TAIL: usize = 500;

/// `/sse/containers/{id}/logs`: the last lines of the log, then the new ones as they come (the API's `follow`), with
/// their timestamps; `event: end` when the log ends (the container stopped).
pub async fn logs(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Result<Response, UiError> {
    let lines = log_lines(&ui, &id, &format!("&follow=1&tail={LOG_TAIL}"))
        .await?
        .flat_map(|batch| futures_util::stream::iter(batch.iter().map(Line::message).collect::<Vec<_>>()))
        .chain(futures_util::stream::once(async { message("end", "") }));
    Ok(respond(lines))
}

/// One stats sample as the charts want it: CPU in percent, memory in use and its limit, network bytes.
fn sample(v: &serde_json::Value) -> serde_json::Value {
    let (rx, tx) = v.get("networks").and_then(serde_json::Value::as_object).into_iter().flatten().fold(
        (0u64, 0u64),
        |(r, t), (_, n)| {
            let g = |k: &str| n.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
            (r + g("rx_bytes"), t + g("tx_bytes"))
        },
    );
    serde_json::json!({
        "cpu": berth_api::stats::cpu_percent(v),
        "mem": berth_api::stats::memory_usage(&v["memory_stats"]),
        "limit": v.pointer("/memory_stats/limit").and_then(serde_json::Value::as_u64).unwrap_or(0),
        "rx": rx,
        "tx": tx,
    })
}

/// `/sse/containers/{id}/stats`: the API's stats stream (a sample a second), as the charts' numbers; `event: end`
/// when it ends.
pub async fn stats(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Result<Response, UiError> {
    let path = format!("/containers/{}/stats?stream=1", super::pages::seg(&id));
    let resp = checked(ui.api(Method::GET, &path).await).await?;
    let body = resp.into_body().into_data_stream();
    let samples = futures_util::stream::unfold((body, Vec::new(), false), |(mut body, mut buf, done)| async move {
        if done {
            return None;
        }
        loop {
            if let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) else { continue };
                return Some((message("stats", &sample(&v).to_string()), (body, buf, false)));
            }
            match body.next().await {
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                _ => return Some((message("end", ""), (body, buf, true))),
            }
        }
    });
    Ok(respond(samples))
}

/// How often the containers page's sparklines get a sample.
const SPARK_INTERVAL: Duration = Duration::from_secs(2);

/// `/sse/containers/stats`: every [`SPARK_INTERVAL`], one message with a sample of each running container
/// (`{"<id>": {"cpu": .., "mem": ..}}`), for the sparklines of the containers page: one stream per page, whatever the
/// number of rows. Samples are taken only while a page listens (the stream is dropped with the page).
pub async fn all_stats(State(ui): State<Arc<Ui>>) -> Response {
    use std::collections::HashMap;
    type Pre = HashMap<String, crate::stats::Sample>;
    let ticks = futures_util::stream::unfold((ui, Pre::new(), true), |(ui, mut pre, first)| async move {
        if !first {
            tokio::time::sleep(SPARK_INTERVAL).await;
        }
        let mut now: Pre = HashMap::new();
        let mut out = serde_json::Map::new();
        for c in ui.daemon().all_containers() {
            if !c.is_running() {
                continue;
            }
            let Ok(Some(s)) = crate::stats::sample(&c).await else { continue };
            let frame = crate::stats::Frame { sample: Some(s.clone()), pre: pre.remove(&c.id) };
            if frame.pre.is_some() {
                let v = crate::views::stats::to_json(&crate::views::stats::render(&c.id, "", &frame));
                let one = sample(&v);
                out.insert(c.id.clone(), serde_json::json!({"cpu": one["cpu"], "mem": one["mem"]}));
            }
            now.insert(c.id.clone(), s);
        }
        Some((message("stats", &serde_json::Value::Object(out).to_string()), (ui, now, false)))
    });
    respond(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stats_sample() {
        let v = serde_json::json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 5000, "limit": 10000, "stats": {"inactive_file": 1000}},
            "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 20}, "eth1": {"rx_bytes": 1, "tx_bytes": 2}}
        });
        assert_eq!(sample(&v), serde_json::json!({"cpu": 40.0, "mem": 4000.0, "limit": 10000, "rx": 11, "tx": 22}));
    }

    #[test]
    fn messages_split_lines() {
        assert_eq!(&message("out", "a\nb\r")[..], b"event: out\ndata: a\ndata: b\n\n");
        assert_eq!(&message("", "x")[..], b"data: x\n\n");
        // A carriage return inside the data cannot end the line early nor start a field of its own.
        assert_eq!(
            &message("out", "50%\r60%\r\revent: end")[..],
            b"event: out\ndata: 50%\ndata: 60%\ndata: \ndata: event: end\n\n"
        );
    }

    #[test]
    fn an_endless_line_is_cut() {
        let mut l = Lines::default();
        let out = l.feed(true, &vec![b'x'; MAX_PARTIAL + 10]);
        assert_eq!(out.len(), 1, "cut once it is MAX_PARTIAL long");
        assert_eq!(l.finish().len(), 0, "nothing held back after the cut");
    }

    #[test]
    fn log_frames_become_lines() {
        let mut l = Lines::default();
        let frame = |which: u8, s: &str| {
            let mut f = vec![which, 0, 0, 0];
            f.extend_from_slice(&(s.len() as u32).to_be_bytes());
            f.extend_from_slice(s.as_bytes());
            f
        };
        let mut all = frame(1, "one\ntw");
        all.extend(frame(2, "oops\n"));
        all.extend(frame(1, "o\n"));
        // Cut anywhere: frames are reassembled.
        let (a, b) = all.split_at(5);
        let mut out = l.feed(false, a);
        out.extend(l.feed(false, b));
        let text: Vec<String> = out.iter().map(|l| String::from_utf8_lossy(&l.message()).into_owned()).collect();
        assert_eq!(text, ["event: out\ndata: one\n\n", "event: err\ndata: oops\n\n", "event: out\ndata: two\n\n"]);
        assert!(l.feed(true, b"tty line\npart").len() == 1);
        assert_eq!(l.finish().len(), 1);
    }
}
