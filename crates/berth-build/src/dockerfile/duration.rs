//! Go's `time.ParseDuration` (HEALTHCHECK's `--interval=1m30s`) and docker/go-units' `RAMInBytes` (a tmpfs mount's
//! `size=64m`).

use std::time::Duration;

/// Parses a Go duration (`300ms`, `1.5h`, `2h45m`, `0`); negative durations are refused here (BuildKit refuses them
/// later as "less than 1ms" anyway). Errors are Go's texts.
pub(crate) fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let mut rest = s;
    let negative = rest.starts_with('-');
    rest = rest.strip_prefix(['-', '+']).unwrap_or(rest);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let nanos_per_unit: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        total += value * nanos_per_unit;
    }
    if total > u64::MAX as f64 {
        return Err(invalid());
    }
    if negative && total > 0.0 {
        return Err("duration cannot be negative".to_owned());
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// `64m`, `1g`, `512k`, `100` (bytes): binary multiples, case-insensitive, an optional `b`/`ib` suffix.
pub(crate) fn parse_ram_bytes(s: &str) -> Result<u64, String> {
    let invalid = || format!("invalid size: '{s}'");
    let lower = s.trim().to_lowercase();
    let number_len = lower.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(lower.len());
    let (number, unit) = lower.split_at(number_len);
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let multiplier: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(invalid()),
    };
    Ok((value * multiplier as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("2us"), Ok(Duration::from_micros(2)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), Err("time: missing unit in duration \"10\"".to_owned()));
        assert_eq!(parse_go_duration("1x"), Err("time: unknown unit \"x\" in duration \"1x\"".to_owned()));
        assert_eq!(parse_go_duration(""), Err("time: invalid duration \"\"".to_owned()));
        assert_eq!(parse_go_duration("abc"), Err("time: invalid duration \"abc\"".to_owned()));
        assert!(parse_go_duration("-1s").is_err());
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(parse_ram_bytes("100"), Ok(100));
        assert_eq!(parse_ram_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_ram_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_ram_bytes("512kb"), Ok(512 << 10));
        assert_eq!(parse_ram_bytes("2MiB"), Ok(2 << 20));
        assert!(parse_ram_bytes("lots").is_err());
    }
}
