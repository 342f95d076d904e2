//! The event bus: what `GET /events` replays and streams.
//!
//! Managers publish an [`Event`] (one line at the place of the change, once the change is visible to the API) through
//! the [`Events`] the daemon holds. The bus keeps the last [`HISTORY`] events in memory, appends every event to a
//! JSON-lines file in the data root (`events.jsonl`, 0600, written by a thread of its own so the async threads never
//! wait on the disk; rotated to `events.jsonl.1` at [`FILE_LIMIT`] bytes) and reads the last hour of it back at start,
//! so `--since` reaches across a daemon restart. Subscribers get a bounded broadcast channel: one that reads too
//! slowly loses its place and its stream is ended, the daemon never waits for it.
//!
//! This module is a leaf: it imports no manager (publishers import it).

pub mod filter;

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Events kept in memory for replay (Docker keeps 1,000).
pub const HISTORY: usize = 4096;
/// Events a subscriber may fall behind the newest before it is dropped.
pub const SUBSCRIBER_BACKLOG: usize = 1024;
/// The size at which `events.jsonl` is rotated (two files at most are kept).
pub const FILE_LIMIT: u64 = 4 << 20;
/// How far back the file is read at start.
pub const FILE_AGE: Duration = Duration::from_secs(3600);
/// Events waiting for the writer thread; beyond that they are not written (and said so once).
const WRITE_QUEUE: usize = 8192;

/// One event, as published and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `container`, `image`, `network`, `volume`, `daemon`, `builder`.
    #[serde(rename = "type")]
    pub typ: String,
    /// `create`, `start`, `die`, `health_status: healthy`, ...
    pub action: String,
    /// The object's ID (an image reference for pulls and pushes, as Docker).
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub time_nano: i64,
}

/// Builds the attributes of an event: `attrs(&[("name", n)])`.
pub fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// What the writer thread is handed: an event to append, or a request to say when all before it are written.
enum ToWriter {
    Event(Event),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The daemon's event bus.
pub struct Events {
    history: Mutex<VecDeque<Event>>,
    tx: broadcast::Sender<Event>,
    writer: Option<std::sync::mpsc::SyncSender<ToWriter>>,
    /// Set once a full write queue has been reported.
    dropped: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

/// What a subscription starts with: the past events (oldest first) and the live ones after them, with no gap and
/// no repeat between the two.
pub struct Subscription {
    pub past: Vec<Event>,
    pub live: broadcast::Receiver<Event>,
}

impl Events {
    /// A bus in memory only (unit tests).
    #[cfg(test)]
    pub fn in_memory() -> Events {
        let (tx, _) = broadcast::channel(SUBSCRIBER_BACKLOG);
        Events { history: Mutex::new(VecDeque::new()), tx, writer: None, dropped: Default::default() }
    }

    /// A bus persisted in `dir/events.jsonl`: the last hour of it is read back (the newest [`HISTORY`] events), then
    /// a writer thread appends what is published.
    pub fn open(dir: &Path) -> std::io::Result<Events> {
        Events::open_with_limit(dir, FILE_LIMIT)
    }

    /// [`Events::open`] with another rotation size.
    fn open_with_limit(dir: &Path, limit: u64) -> std::io::Result<Events> {
        let path = dir.join("events.jsonl");
        let cutoff = nanos(SystemTime::now().checked_sub(FILE_AGE).unwrap_or(UNIX_EPOCH));
        let mut history = VecDeque::new();
        for p in [rotated(&path), path.clone()] {
            for e in read_file(&p) {
                if e.time_nano >= cutoff {
                    history.push_back(e);
                    if history.len() > HISTORY {
                        history.pop_front();
                    }
                }
            }
        }
        let file = open_append(&path)?;
        let (wtx, wrx) = std::sync::mpsc::sync_channel(WRITE_QUEUE);
        std::thread::Builder::new().name("events-writer".into()).spawn(move || write_loop(path, file, wrx, limit))?;
        let (tx, _) = broadcast::channel(SUBSCRIBER_BACKLOG);
        Ok(Events { history: Mutex::new(history), tx, writer: Some(wtx), dropped: Default::default() })
    }

    /// Publishes an event of scope `local`, now.
    pub fn publish(&self, typ: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        self.push(typ, action, id, attributes, None);
    }

    /// The summary event of a prune (Docker's `prune` of type `container`, `image`, `network`, `volume` or
    /// `builder`): no actor ID, the bytes freed as `reclaimed` (always `0` for networks).
    pub fn publish_prune(&self, typ: &str, reclaimed: u64) {
        self.publish(typ, "prune", "", attrs(&[("reclaimed", &reclaimed.to_string())]));
    }

    /// Publishes an event of another time (unit tests).
    #[cfg(test)]
    pub fn publish_at(&self, typ: &str, action: &str, id: &str, attributes: BTreeMap<String, String>, t: SystemTime) {
        self.push(typ, action, id, attributes, Some(t));
    }

    fn push(&self, typ: &str, action: &str, id: &str, attributes: BTreeMap<String, String>, t: Option<SystemTime>) {
        // One lock orders history, subscribers and file alike (and the times: taken under it); nothing under it
        // waits.
        let Ok(mut h) = self.history.lock() else { return };
        let e = Event {
            typ: typ.to_string(),
            action: action.to_string(),
            id: id.to_string(),
            attributes,
            time_nano: nanos(t.unwrap_or_else(SystemTime::now)),
        };
        if h.len() >= HISTORY {
            h.pop_front();
        }
        h.push_back(e.clone());
        if let Some(w) = &self.writer
            && w.try_send(ToWriter::Event(e.clone())).is_err()
            && !self.dropped.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!("events: the writer is behind, events are not all written to disk");
        }
        let _ = self.tx.send(e);
    }

    /// Waits (blocking, at most `timeout`) until the events published so far are written (a clean shutdown).
    pub fn flush(&self, timeout: Duration) {
        let Some(w) = &self.writer else { return };
        let (tx, rx) = std::sync::mpsc::channel();
        if w.send(ToWriter::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(timeout);
        }
    }

    /// Subscribes: the events of the history at or after `since` (none without it), then the live ones.
    pub fn subscribe(&self, since: Option<SystemTime>) -> Subscription {
        let since = since.map(nanos);
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let past = h.iter().filter(|e| since.is_some_and(|s| e.time_nano >= s)).cloned().collect();
        Subscription { past, live: self.tx.subscribe() }
    }
}

/// What `GET /events` follows: the history from `since` (or, with only `until`, all of it), then live events, each
/// passing `filters`; the stream ends at `until` (at once after the replay when it is past), or when the subscriber
/// falls [`SUBSCRIBER_BACKLOG`] events behind.
pub fn watch(
    bus: &Events,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    filters: crate::filters::Filters,
) -> impl futures_util::Stream<Item = Event> + Send + 'static {
    let replay_from = since.or(until.map(|_| UNIX_EPOCH));
    let Subscription { past, live } = bus.subscribe(replay_from);
    let until_nano = until.map(nanos);
    let deadline =
        until.map(|u| tokio::time::Instant::now() + u.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO));
    let past: VecDeque<Event> = past.into_iter().filter(|e| until_nano.is_none_or(|u| e.time_nano <= u)).collect();
    futures_util::stream::unfold((past, live, filters), move |(mut past, mut live, filters)| async move {
        while let Some(e) = past.pop_front() {
            if filter::matches(&filters, &e) {
                return Some((e, (past, live, filters)));
            }
        }
        loop {
            let next = match deadline {
                Some(d) => tokio::select! {
                    r = live.recv() => r,
                    _ = tokio::time::sleep_until(d) => return None,
                },
                None => live.recv().await,
            };
            match next {
                Ok(e) if until_nano.is_some_and(|u| e.time_nano > u) => return None,
                Ok(e) if filter::matches(&filters, &e) => return Some((e, (past, live, filters))),
                Ok(_) => continue,
                // Too slow (or the daemon is going away): the stream ends, the bus does not wait.
                Err(_) => return None,
            }
        }
    })
}

fn rotated(path: &Path) -> PathBuf {
    path.with_extension("jsonl.1")
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

/// The events of a file (a damaged line, such as a half line after a crash, is skipped).
fn read_file(path: &Path) -> Vec<Event> {
    let Ok(f) = std::fs::File::open(path) else { return Vec::new() };
    std::io::BufReader::new(f).lines().map_while(Result::ok).filter_map(|l| serde_json::from_str(&l).ok()).collect()
}

fn write_loop(path: PathBuf, mut file: std::fs::File, rx: std::sync::mpsc::Receiver<ToWriter>, limit: u64) {
    let mut warned = false;
    while let Ok(msg) = rx.recv() {
        let e = match msg {
            ToWriter::Event(e) => e,
            ToWriter::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let mut line = serde_json::to_vec(&e).unwrap_or_default();
        line.push(b'\n');
        let res = (|| -> std::io::Result<()> {
            if file.metadata()?.len() + line.len() as u64 > limit {
                std::fs::rename(&path, rotated(&path))?;
                file = open_append(&path)?;
            }
            file.write_all(&line)
        })();
        if let Err(err) = res
            && !std::mem::replace(&mut warned, true)
        {
            tracing::warn!("events: cannot write {}: {err}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_since_selects() {
        let bus = Events::in_memory();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        for i in 0..HISTORY + 10 {
            bus.publish_at("container", "start", &format!("c{i}"), attrs(&[]), t0 + Duration::from_secs(i as u64));
        }
        let all = bus.subscribe(Some(UNIX_EPOCH)).past;
        assert_eq!(all.len(), HISTORY);
        assert_eq!(all[0].id, "c10");
        let recent = bus.subscribe(Some(t0 + Duration::from_secs(HISTORY as u64 + 8))).past;
        assert_eq!(recent.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["c4104", "c4105"]);
        assert!(bus.subscribe(None).past.is_empty());
    }

    #[tokio::test]
    async fn slow_subscriber_is_dropped_and_publishing_never_waits() {
        let bus = Events::in_memory();
        let mut slow = bus.subscribe(None).live;
        let start = std::time::Instant::now();
        for i in 0..SUBSCRIBER_BACKLOG * 4 {
            bus.publish("container", "start", &format!("c{i}"), attrs(&[]));
        }
        // Generous: 4096 publishes without a reader take milliseconds; a blocked publisher would never return.
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(matches!(slow.recv().await, Err(broadcast::error::RecvError::Lagged(_))));
    }

    #[tokio::test]
    async fn live_follows_past_without_gap() {
        let bus = Events::in_memory();
        bus.publish("container", "create", "a", attrs(&[]));
        let mut s = bus.subscribe(Some(UNIX_EPOCH));
        bus.publish("container", "start", "a", attrs(&[]));
        assert_eq!(s.past.len(), 1);
        assert_eq!(s.live.recv().await.expect("live").action, "start");
    }

    #[tokio::test]
    async fn watch_replays_filters_and_ends_at_until() {
        use futures_util::StreamExt;
        let bus = Events::in_memory();
        let now = SystemTime::now();
        let t = |s: u64| now - Duration::from_secs(s);
        bus.publish_at("container", "create", "a", attrs(&[]), t(30));
        bus.publish_at("network", "create", "n", attrs(&[]), t(20));
        bus.publish_at("container", "start", "a", attrs(&[]), t(10));
        let f = crate::filters::Filters::parse(r#"{"type":["container"]}"#).expect("filters");
        // `until` in the past: the replay, then the end.
        let got: Vec<_> = watch(&bus, Some(t(25)), Some(t(5)), f.clone()).collect().await;
        assert_eq!(got.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["start"]);
        // Only `until`: all of the history up to it.
        let got: Vec<_> = watch(&bus, None, Some(t(15)), f.clone()).collect().await;
        assert_eq!(got.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["create"]);
        // Live events until a near `until`.
        let s = watch(&bus, Some(now), Some(now + Duration::from_millis(300)), f);
        bus.publish("container", "die", "a", attrs(&[]));
        bus.publish("network", "destroy", "n", attrs(&[]));
        let got: Vec<_> = tokio::time::timeout(Duration::from_secs(5), s.collect::<Vec<_>>()).await.expect("ends");
        assert_eq!(got.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["die"]);
    }

    #[test]
    fn the_log_is_rotated_and_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bus = Events::open_with_limit(dir.path(), 1000).expect("open");
        for i in 0..100 {
            bus.publish("container", "start", &format!("c{i}"), attrs(&[]));
        }
        bus.flush(Duration::from_secs(5));
        let path = dir.path().join("events.jsonl");
        let sizes = [std::fs::metadata(&path), std::fs::metadata(rotated(&path))].map(|m| m.expect("file").len());
        assert!(sizes.iter().all(|s| *s <= 1000), "{sizes:?}");
        drop(bus);
        // Read back: the newest events, in order, the oldest gone with the files rotated out.
        let past = Events::open_with_limit(dir.path(), 1000).expect("reopen").subscribe(Some(UNIX_EPOCH)).past;
        assert!(past.len() < 100 && past.len() > 5, "{}", past.len());
        assert_eq!(past.last().expect("some").id, "c99");
        let n = past.len();
        assert_eq!(past[0].id, format!("c{}", 100 - n));
    }

    #[test]
    fn persisted_across_reopen_with_old_events_left_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = SystemTime::now() - Duration::from_secs(7200);
        {
            let bus = Events::open(dir.path()).expect("open");
            bus.publish_at("container", "create", "old", attrs(&[]), old);
            bus.publish("container", "die", "new", attrs(&[("exitCode", "3")]));
            bus.flush(Duration::from_secs(5));
            assert_eq!(read_file(&dir.path().join("events.jsonl")).len(), 2);
        }
        let path = dir.path().join("events.jsonl");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).expect("file").permissions().mode() & 0o777, 0o600);
        let bus = Events::open(dir.path()).expect("reopen");
        let past = bus.subscribe(Some(UNIX_EPOCH)).past;
        assert_eq!(past.len(), 1);
        assert_eq!(past[0].id, "new");
        assert_eq!(past[0].attributes["exitCode"], "3");
    }
}
