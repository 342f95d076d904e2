//! Docker's units, parsed in one place for the CLI, the compose planner, the builder, the store and berthd:
//! go-units `RAMInBytes` and `FromHumanSize` sizes and Go's `time.ParseDuration` durations.

use std::time::Duration;

/// A size or a duration that does not parse; the message is go-units' or Go's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(pub String);

/// go-units `RAMInBytes`: `512m`, `1g`, `1.5GB`, `64 MiB`, `100` (bytes); binary multipliers.
pub fn ram_in_bytes(s: &str) -> Result<i64, UnitError> {
    parse_size(s, 1024.0)
}

/// go-units `FromHumanSize`: the same forms with decimal multipliers (`1k` = 1000, `10m` = 10,000,000), as the
/// json-file log driver's `max-size` takes them.
pub fn from_human_size(s: &str) -> Result<i64, UnitError> {
    parse_size(s, 1000.0)
}

fn parse_size(s: &str, base: f64) -> Result<i64, UnitError> {
    let bad = || UnitError(format!("invalid size: '{s}'"));
    let t = s.trim();
    let num_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => base,
        "m" => base.powi(2),
        "g" => base.powi(3),
        "t" => base.powi(4),
        "p" => base.powi(5),
        _ => return Err(bad()),
    };
    Ok((value * mult) as i64)
}

/// Go's `time.ParseDuration` in nanoseconds, signed and exact: `300ms`, `1.5h`, `2h45m`, `-1s`, `.5us`; `0` alone.
/// Errors are Go's texts.
pub fn go_duration_nanos(orig: &str) -> Result<i64, UnitError> {
    let bad = || UnitError(format!("time: invalid duration {orig:?}"));
    let (neg, mut s) = match orig.as_bytes().first() {
        Some(b'-') => (true, &orig[1..]),
        Some(b'+') => (false, &orig[1..]),
        _ => (false, orig),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..n];
            s = &rest[n..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_len = s.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(s.len());
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let mult: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(UnitError(format!("time: missing unit in duration {orig:?}"))),
            u => return Err(UnitError(format!("time: unknown unit {u:?} in duration {orig:?}"))),
        };
        let int: i128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| bad())? };
        total += int * mult;
        if !frac_part.is_empty() {
            let digits = frac_part.len().min(18);
            let frac: i128 = frac_part[..digits].parse().map_err(|_| bad())?;
            total += frac * mult / 10i128.pow(digits as u32);
        }
        if total > i128::from(i64::MAX) {
            return Err(bad());
        }
    }
    let total = i64::try_from(total).map_err(|_| bad())?;
    Ok(if neg { -total } else { total })
}

/// A Go duration that may not be negative (timeouts, intervals, `--since 1h`): [`go_duration_nanos`] as a
/// [`Duration`].
pub fn go_duration(s: &str) -> Result<Duration, UnitError> {
    let nanos = go_duration_nanos(s)?;
    let nanos = u64::try_from(nanos).map_err(|_| UnitError(format!("negative duration {s:?}")))?;
    Ok(Duration::from_nanos(nanos))
}

// go-units' sizes as the docker CLI prints them (the CLI and the dashboard share them).

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Go's `%.<prec>g`: shortest of `%e`/`%f` with `prec` significant digits, trailing zeros removed.
pub fn format_g(x: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let e = format!("{:.*e}", prec - 1, x);
    let (mantissa, exp) = e.split_once('e').unwrap_or((e.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let m = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{x:.decimals$}"))
    }
}

fn strip_zeros(s: &str) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s.to_string() }
}

fn custom_size(size: f64, prec: usize, base: f64, units: &[&str]) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", format_g(size, prec), units[i])
}

/// go-units `HumanSizeWithPrecision(size, 3)`: decimal units, 3 significant digits (`4.26MB`, `1.2kB`, `0B`).
pub fn human_size(size: f64) -> String {
    custom_size(size, 3, 1000.0, &DECIMAL)
}

/// go-units `HumanSize`: decimal units, 4 significant digits.
pub fn human_size4(size: f64) -> String {
    custom_size(size, 4, 1000.0, &DECIMAL)
}

/// go-units `BytesSize`: binary units, 4 significant digits (`7.672GiB`).
pub fn bytes_size(size: f64) -> String {
    custom_size(size, 4, 1024.0, &BINARY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: std::fmt::Debug>(r: Result<T, UnitError>) -> String {
        r.expect_err("an error").0
    }

    #[test]
    fn decimal_and_binary_sizes() {
        assert_eq!(from_human_size("1k"), Ok(1000));
        assert_eq!(from_human_size("10m"), Ok(10_000_000));
        assert_eq!(from_human_size("1g"), Ok(1_000_000_000));
        assert_eq!(from_human_size("1MiB"), Ok(1_000_000));
        assert_eq!(from_human_size("123"), Ok(123));
        assert_eq!(err(from_human_size("abc")), "invalid size: 'abc'");
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(ram_in_bytes("1m"), Ok(1 << 20));
        assert_eq!(ram_in_bytes("512m"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("64m"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1G"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1GB"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("512kb"), Ok(512 << 10));
        assert_eq!(ram_in_bytes("2MiB"), Ok(2 << 20));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("100"), Ok(100));
        assert_eq!(ram_in_bytes("64 MiB"), Ok(64 << 20));
        assert!(ram_in_bytes("12x").is_err());
        assert!(ram_in_bytes("").is_err());
        assert!(ram_in_bytes(".5m").is_err());
        assert!(ram_in_bytes("-1m").is_err());
        assert_eq!(err(ram_in_bytes("bad")), "invalid size: 'bad'");
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(go_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(go_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(go_duration("2us"), Ok(Duration::from_micros(2)));
        assert_eq!(go_duration("2µs"), Ok(Duration::from_micros(2)));
        assert_eq!(go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(go_duration("+5s"), Ok(Duration::from_secs(5)));
        assert_eq!(err(go_duration("10")), "time: missing unit in duration \"10\"");
        assert_eq!(err(go_duration("1x")), "time: unknown unit \"x\" in duration \"1x\"");
        assert_eq!(err(go_duration("")), "time: invalid duration \"\"");
        assert_eq!(err(go_duration("abc")), "time: invalid duration \"abc\"");
        assert_eq!(err(go_duration(".s")), "time: invalid duration \".s\"");
        assert_eq!(err(go_duration("-1s")), "negative duration \"-1s\"");
    }

    #[test]
    fn go_durations_in_nanoseconds_are_exact_and_signed() {
        assert_eq!(go_duration_nanos("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(go_duration_nanos("1.5s"), Ok(1_500_000_000));
        assert_eq!(go_duration_nanos("100ms"), Ok(100_000_000));
        assert_eq!(go_duration_nanos(".5us"), Ok(500));
        assert_eq!(go_duration_nanos("0.1s"), Ok(100_000_000));
        assert_eq!(go_duration_nanos("-1.5h"), Ok(-5_400_000_000_000));
        assert_eq!(go_duration_nanos("-0"), Ok(0));
        assert_eq!(go_duration_nanos("2562047h"), Ok(2_562_047 * 3_600_000_000_000));
        assert_eq!(err(go_duration_nanos("2562048h")), "time: invalid duration \"2562048h\"");
        assert!(go_duration_nanos("10").is_err());
        assert!(go_duration_nanos("1x").is_err());
    }
}
