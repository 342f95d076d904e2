//! Timestamps as Docker writes them: RFC 3339 in UTC with nanoseconds, and Go's zero time for "never".

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Go's zero `time.Time`, which Docker reports for events that have not happened (e.g. `FinishedAt` of a running container).
pub const ZERO: &str = "0001-01-01T00:00:00Z";

/// `2026-11-22T10:51:52.123456789Z`
pub fn rfc3339_nanos(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// Now, formatted with [`rfc3339_nanos`].
pub fn now() -> String {
    rfc3339_nanos(SystemTime::now())
}

/// Parses an RFC 3339 timestamp, or Docker's zero time (→ `None`).
pub fn parse(s: &str) -> Option<SystemTime> {
    if s.is_empty() || s == ZERO {
        return None;
    }
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok().or_else(|| humantime::parse_rfc3339(s).ok())
}

/// Seconds since the epoch (what `Created` holds in image and container lists).
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Parses the `since`/`until` forms Docker accepts: a Unix timestamp (`1700000000`, `1700000000.5`), an RFC 3339 date,
/// or a duration relative to `now` (`10m`, `1h30m`, `45s`).
pub fn parse_since(s: &str, now: SystemTime) -> Option<SystemTime> {
    // `seconds[.fraction]`, exactly (the docker CLI sends `1700000000.123456789`; a float would lose the nanoseconds).
    if let Some((secs, frac)) = s.split_once('.').or(Some((s, ""))) {
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if digits(secs) && (frac.is_empty() || digits(frac)) {
            let secs: u64 = secs.parse().ok()?;
            let frac = &frac[..frac.len().min(9)];
            let nanos: u32 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().ok()? };
            return Some(UNIX_EPOCH + Duration::new(secs, nanos));
        }
    }
    if let Some(t) = parse(s) {
        return Some(t);
    }
    crate::units::go_duration(s).ok().and_then(|d| now.checked_sub(d))
}

/// Go-units' `HumanDuration`, as Docker prints ages: `Less than a second`, `About a minute`, `3 hours`, `2 weeks`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    // Minutes truncate, hours round, as in go-units.
    let minutes = secs / 60;
    let hours = (d.as_secs_f64() / 3600.0 + 0.5) as u64;
    match () {
        _ if d.as_secs_f64() < 1.0 => "Less than a second".into(),
        _ if secs == 1 => "1 second".into(),
        _ if secs < 60 => format!("{secs} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", secs / 3600 / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let s = rfc3339_nanos(t);
        assert_eq!(s, "2023-11-14T22:13:20.000000005Z");
        assert_eq!(parse(&s), Some(t));
        assert_eq!(parse(ZERO), None);
        assert_eq!(parse_since("1700000000", SystemTime::now()), Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
        assert_eq!(parse_since("10m", t), Some(t - Duration::from_secs(600)));
        assert_eq!(parse_since("1.5h", t), Some(t - Duration::from_secs(5400)));
        let exact = UNIX_EPOCH + Duration::new(1_700_000_000, 1);
        assert_eq!(parse_since("1700000000.000000001", t), Some(exact));
        assert_eq!(parse_since("1700000000.5", t), Some(UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000)));
        assert_eq!(parse_since("garbage", t), None);
        assert_eq!(human_duration(Duration::from_millis(300)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(45)), "45 seconds");
        assert_eq!(human_duration(Duration::from_secs(80)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(113)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(59 * 60 + 59)), "59 minutes");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600)), "3 hours");
        assert_eq!(human_duration(Duration::from_secs(20 * 86400)), "2 weeks");
    }

    #[test]
    fn human_durations_like_go_units() {
        let d = |s: u64| human_duration(Duration::from_secs(s));
        assert_eq!(human_duration(Duration::from_millis(300)), "Less than a second");
        assert_eq!(d(1), "1 second");
        assert_eq!(d(45), "45 seconds");
        assert_eq!(d(113), "About a minute");
        assert_eq!(d(120), "2 minutes");
        assert_eq!(d(3599), "59 minutes");
        assert_eq!(d(5399), "About an hour");
        assert_eq!(d(5400), "2 hours");
        assert_eq!(d(3 * 86400), "3 days");
        assert_eq!(d(20 * 86400), "2 weeks");
        assert_eq!(d(90 * 86400), "3 months");
        assert_eq!(d(3 * 365 * 86400), "3 years");
    }
}
