//! Kubernetes quantities (`64Mi`, `1G`, `500m`, `0.5`) to and from the Engine API's bytes and nano-CPUs.

/// Bytes of a memory quantity (`64Mi`, `1G`, `128974848`, `1e9`, `0.5Gi`).
pub fn bytes(q: &str) -> Option<i64> {
    let q = q.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Pi", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Ei", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("m", 1e-3),
    ];
    for (s, mult) in suffixes {
        if let Some(n) = q.strip_suffix(s) {
            let n: f64 = n.parse().ok()?;
            return (n >= 0.0).then(|| (n * mult).ceil() as i64);
        }
    }
    let n: f64 = q.parse().ok()?;
    (n >= 0.0).then(|| n.ceil() as i64)
}

/// Nano-CPUs of a CPU quantity (`500m`, `0.5`, `2`).
pub fn nano_cpus(q: &str) -> Option<i64> {
    let q = q.trim();
    let n: f64 = match q.strip_suffix('m') {
        Some(m) => m.parse::<f64>().ok()? / 1000.0,
        None => q.parse().ok()?,
    };
    (n > 0.0).then(|| (n * 1e9).round() as i64)
}

/// A memory quantity for bytes: the largest binary unit that divides it (`64Mi`), else the number.
pub fn memory(b: i64) -> String {
    for (s, m) in [("Gi", 1i64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if b >= m && b % m == 0 {
            return format!("{}{s}", b / m);
        }
    }
    b.to_string()
}

/// A CPU quantity for nano-CPUs, in millicores (`500m`; Kubernetes has no finer unit).
pub fn cpu(nano: i64) -> String {
    let milli = ((nano + 500_000) / 1_000_000).max(1);
    if milli % 1000 == 0 { (milli / 1000).to_string() } else { format!("{milli}m") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_both_ways() {
        assert_eq!(bytes("64Mi"), Some(64 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("128974848"), Some(128_974_848));
        assert_eq!(bytes("0.5Gi"), Some(1 << 29));
        assert_eq!(bytes("1e3"), Some(1000));
        assert_eq!(bytes("lots"), None);
        assert_eq!(nano_cpus("500m"), Some(500_000_000));
        assert_eq!(nano_cpus("1.5"), Some(1_500_000_000));
        assert_eq!(nano_cpus("0"), None);
        assert_eq!(memory(64 << 20), "64Mi");
        assert_eq!(memory(1000), "1000");
        assert_eq!(cpu(500_000_000), "500m");
        assert_eq!(cpu(2_000_000_000), "2");
        assert_eq!(cpu(1), "1m");
    }
}
