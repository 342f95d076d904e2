//! Docker's units that the CLI, the compose planner and berthd parse: go-units `RAMInBytes` and `FromHumanSize`
//! sizes and Go durations.

use std::time::Duration;

/// go-units `RAMInBytes`: `512m`, `1g`, `1.5GB`, `100` (bytes); binary multipliers.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    parse_size(s, 1024.0)
}

/// go-units `FromHumanSize`: the same forms with decimal multipliers (`1k` = 1000, `10m` = 10,000,000), as the
/// json-file log driver's `max-size` takes them.
pub fn from_human_size(s: &str) -> Result<i64, String> {
    parse_size(s, 1000.0)
}

fn parse_size(s: &str, base: f64) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
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

/// Go's `time.ParseDuration`: `300ms`, `1.5h`, `2h45m`, `10s`; `0` alone.
pub fn go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("time: invalid duration {s:?}");
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.starts_with('-') {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if n == 0 {
            return Err(bad());
        }
        let v: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..u];
        rest = &rest[u..];
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        total += v * scale;
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_binary_sizes() {
        assert_eq!(from_human_size("1k"), Ok(1000));
        assert_eq!(from_human_size("10m"), Ok(10_000_000));
        assert_eq!(from_human_size("1g"), Ok(1_000_000_000));
        assert_eq!(from_human_size("1MiB"), Ok(1_000_000));
        assert_eq!(from_human_size("123"), Ok(123));
        assert_eq!(from_human_size("abc"), Err("invalid size: 'abc'".into()));
        assert_eq!(ram_in_bytes("1m"), Ok(1 << 20));
    }
}
