//! Docker's units and times, as the docker CLI prints and parses them: `4.26MB` (go-units `HumanSizeWithPrecision`),
//! `7.6GiB` (`BytesSize`), `512m` (`RAMInBytes`), Go durations (`1h30m`), `--since`/`--until` timestamps, and Go's
//! `time.Time.String()` for `CreatedAt` columns.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};

pub use berth_api::units::{bytes_size, format_g, go_duration, human_size, human_size4, ram_in_bytes};

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The local time zone's offset from UTC, in seconds, at `unix` (from the C library).
fn local_offset(unix: i64) -> (i64, String) {
    let t = unix as libc::time_t;
    // SAFETY: `tm` is plain old data that localtime_r fills in; both pointers are valid for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: see above; localtime_r is thread-safe.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return (0, "UTC".into());
    }
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: tm_zone points at a NUL-terminated static string owned by the C library.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }.to_string_lossy().into_owned()
    };
    (tm.tm_gmtoff, zone)
}

/// Parses the timestamp forms docker's `--since`/`--until` take (RFC 3339 with or without fraction, zone, time
/// or seconds; local time when no zone is given) into a Unix time.
pub(crate) fn parse_rfc3339ish(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let mut rest = &s[10..];
    let (mut h, mut mi, mut sec, mut nanos) = (0, 0, 0, 0u32);
    if let Some(t) = rest.strip_prefix('T') {
        let digits = |x: &str| x.get(..2).and_then(|v| v.parse::<i64>().ok());
        h = digits(t)?;
        rest = &t[2..];
        if let Some(t) = rest.strip_prefix(':') {
            mi = digits(t)?;
            rest = &t[2..];
            if let Some(t) = rest.strip_prefix(':') {
                sec = digits(t)?;
                rest = &t[2..];
                if let Some(t) = rest.strip_prefix('.') {
                    let n = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                    let frac = &t[..n];
                    let padded = format!("{frac:0<9}");
                    nanos = padded.get(..9)?.parse().ok()?;
                    rest = &t[n..];
                }
            }
        }
    }
    let days = days_from_civil(y, mo, d);
    let naive = days * 86400 + h * 3600 + mi * 60 + sec;
    let offset = match rest {
        "Z" | "z" => 0,
        "" => local_offset(naive).0,
        z if (z.starts_with('+') || z.starts_with('-')) && z.len() == 6 && &z[3..4] == ":" => {
            let hh: i64 = z[1..3].parse().ok()?;
            let mm: i64 = z[4..6].parse().ok()?;
            let o = hh * 3600 + mm * 60;
            if z.starts_with('-') { -o } else { o }
        }
        _ => return None,
    };
    Some((naive - offset, nanos))
}

/// Docker's `GetTimestamp`: a Go duration (relative to `now`), an RFC 3339 date, or a Unix timestamp, as the
/// `seconds[.nanoseconds]` string the API's `since`/`until` expect.
pub fn api_timestamp(value: &str, now: SystemTime) -> Result<String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    if value != "0"
        && let Ok(d) = go_duration(value)
    {
        let t = now.checked_sub(d).unwrap_or(UNIX_EPOCH);
        let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        return Ok(secs.to_string());
    }
    if value.contains('-') && value.len() >= 10 && value.as_bytes()[4] == b'-' {
        return match parse_rfc3339ish(value) {
            Some((secs, nanos)) => Ok(format!("{secs}.{nanos:09}")),
            None => bail!("invalid value for \"since/until\": failed to parse value as time or duration: {value:?}"),
        };
    }
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    if secs.parse::<i64>().is_err() || (!frac.is_empty() && frac.parse::<u64>().is_err()) {
        bail!("invalid value for \"since/until\": failed to parse value as time or duration: {value:?}");
    }
    Ok(value.to_string())
}

/// Go's `time.Unix(secs, 0).String()` in local time: `2024-03-01 10:11:12 +0100 CET`.
pub fn go_time_string(secs: i64) -> String {
    let (offset, zone) = local_offset(secs);
    let local = secs + offset;
    let days = local.div_euclid(86400);
    let tod = local.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.abs();
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} {sign}{:02}{:02} {zone}",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60,
        o / 3600,
        o % 3600 / 60
    )
}

/// Go's `Time.String()` of an RFC 3339 time as the API sends it (`Created` of a network): the wall clock as
/// written, the fraction without trailing zeros, then the zone (`+0000 UTC` for `Z`; an offset is named after
/// the local zone when that zone has it then, as Go's parser does). Unparsable text gives Go's zero time.
pub fn go_time_string_of(rfc3339: &str) -> String {
    const ZERO: &str = "0001-01-01 00:00:00 +0000 UTC";
    let b = rfc3339.as_bytes();
    let shape = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't')
        && b[13] == b':'
        && b[16] == b':'
        && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19].iter().all(|r| b[r.clone()].iter().all(u8::is_ascii_digit));
    if !shape {
        return ZERO.to_string();
    }
    let mut rest = &rfc3339[19..];
    let mut frac = "";
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        frac = r[..n].trim_end_matches('0');
        rest = &r[n..];
    }
    let zone = match rest {
        "Z" | "z" => "+0000 UTC".to_string(),
        z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) && &z[3..4] == ":" => {
            let (Ok(hh), Ok(mm)) = (z[1..3].parse::<i64>(), z[4..6].parse::<i64>()) else {
                return ZERO.to_string();
            };
            let offset = (hh * 3600 + mm * 60) * if z.starts_with('-') { -1 } else { 1 };
            let numeric = format!("{}{}{}", &z[..1], &z[1..3], &z[4..6]);
            let local = parse_rfc3339ish(rfc3339).map(|(secs, _)| local_offset(secs));
            match local {
                Some((o, name)) if o == offset && !name.is_empty() => format!("{numeric} {name}"),
                _ => format!("{numeric} {numeric}"),
            }
        }
        _ => return ZERO.to_string(),
    };
    let dot = if frac.is_empty() { "" } else { "." };
    format!("{} {}{dot}{frac} {zone}", &rfc3339[..10], &rfc3339[11..19])
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub use berth_api::time::human_duration;

/// `5 minutes ago` for a Unix time (docker's `RunningFor` / `CreatedSince`).
pub fn ago(unix: i64, now: SystemTime) -> String {
    let then = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    let d = now.duration_since(then).unwrap_or(Duration::ZERO);
    format!("{} ago", human_duration(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(123.0), "123B");
        assert_eq!(human_size(1200.0), "1.2kB");
        assert_eq!(human_size(4_260_000.0), "4.26MB");
        assert_eq!(human_size(4_264_123.0), "4.26MB");
        assert_eq!(human_size(1_000_000.0), "1MB");
        assert_eq!(human_size(999.6), "1e+03B");
        assert_eq!(bytes_size(8_238_166_016.0), "7.672GiB");
        assert_eq!(human_size4(1_234_567.0), "1.235MB");
        assert_eq!(format_g(0.0001234, 3), "0.000123");
        assert_eq!(format_g(0.00001234, 3), "1.23e-05");
        assert_eq!(format_g(12.5, 3), "12.5");
    }

    #[test]
    fn go_time_of_rfc3339() {
        assert_eq!(go_time_string_of("2026-11-30T10:00:00.123456789Z"), "2026-11-30 10:00:00.123456789 +0000 UTC");
        assert_eq!(go_time_string_of("2026-11-30T10:00:00.500Z"), "2026-11-30 10:00:00.5 +0000 UTC");
        assert_eq!(go_time_string_of("2026-11-30T10:00:00.000Z"), "2026-11-30 10:00:00 +0000 UTC");
        assert_eq!(go_time_string_of("0001-01-01T00:00:00Z"), "0001-01-01 00:00:00 +0000 UTC");
        assert_eq!(go_time_string_of(""), "0001-01-01 00:00:00 +0000 UTC");
        // No time zone is 3h17 ahead of UTC.
        assert_eq!(go_time_string_of("2026-11-30T10:00:00+03:17"), "2026-11-30 10:00:00 +0317 +0317");
    }

    #[test]
    fn timestamps() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(api_timestamp("1h", now).ok().as_deref(), Some("1699996400"));
        assert_eq!(api_timestamp("1700000000", now).ok().as_deref(), Some("1700000000"));
        assert_eq!(api_timestamp("1700000000.5", now).ok().as_deref(), Some("1700000000.5"));
        assert_eq!(api_timestamp("2023-11-14T22:13:20Z", now).ok().as_deref(), Some("1700000000.000000000"));
        assert_eq!(api_timestamp("2023-11-14T23:13:20.5+01:00", now).ok().as_deref(), Some("1700000000.500000000"));
        assert!(api_timestamp("yesterday", now).is_err());
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(19675), (2023, 11, 14));
    }

    #[test]
    fn go_time_strings() {
        let s = go_time_string(1_700_000_000);
        assert!(s.len() >= "2023-11-14 22:13:20 +0000".len(), "{s}");
        assert!(s.starts_with("2023-11-1"), "{s}");
    }
}
