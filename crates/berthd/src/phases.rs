//! Where the time of a container's create, start, exit and removal goes: with `--log-level debug`, berthd logs one
//! line per operation with each phase's duration in microseconds (`phases: start 0123456789ab total=… network=…`),
//! which `BENCH_ONLY=phases bench/run.sh` sums up. Nothing is measured at other levels.

use std::time::Instant;

pub struct Phases {
    what: &'static str,
    id: String,
    started: Instant,
    last: Instant,
    parts: Vec<(&'static str, u128)>,
}

impl Phases {
    /// Starts timing operation `what` of container `id`; `None` unless debug logging is on.
    pub fn begin(what: &'static str, id: &str) -> Option<Phases> {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return None;
        }
        let now = Instant::now();
        Some(Phases { what, id: id.chars().take(12).collect(), started: now, last: now, parts: Vec::new() })
    }

    /// Ends phase `name` (it ran since the last mark).
    pub fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.parts.push((name, now.duration_since(self.last).as_micros()));
        self.last = now;
    }

    /// Logs the phases.
    pub fn done(self) {
        let parts: Vec<String> = self.parts.iter().map(|(n, us)| format!("{n}={us}")).collect();
        tracing::debug!(
            "phases: {} {} total={} {}",
            self.what,
            self.id,
            self.started.elapsed().as_micros(),
            parts.join(" ")
        );
    }
}

/// Marks phase `name` of an optional [`Phases`].
pub fn mark(p: &mut Option<Phases>, name: &'static str) {
    if let Some(p) = p {
        p.mark(name);
    }
}

/// Logs the phases of an optional [`Phases`].
pub fn done(p: Option<Phases>) {
    if let Some(p) = p {
        p.done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_in_order() {
        let now = Instant::now();
        let mut p = Phases { what: "start", id: "abc".into(), started: now, last: now, parts: Vec::new() };
        p.mark("a");
        p.mark("b");
        assert_eq!(p.parts.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["a", "b"]);
    }
}
