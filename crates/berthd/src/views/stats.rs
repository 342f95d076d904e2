//! A stats [`Frame`] as Docker's `ContainerStatsResponse` (the bollard model of API 1.53), with the fields dockerd
//! always writes (zeros, Go's zero time, `null` block I/O lists) present as it writes them.

use std::collections::HashMap;

use berth_api::models::{
    ContainerBlkioStatEntry, ContainerBlkioStats, ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats,
    ContainerNetworkStats, ContainerPidsStats, ContainerStatsResponse, ContainerStorageStats, ContainerThrottlingData,
};
use berth_runtime::cgroups::BlkioEntry;
use serde_json::Value;

use crate::stats::{Frame, Sample};

/// The answer object for container `id` named `name` (without the leading `/`).
pub fn render(id: &str, name: &str, frame: &Frame) -> ContainerStatsResponse {
    let s = frame.sample.as_ref();
    let time = |s: Option<&Sample>| {
        Some(s.and_then(|s| s.read).map_or_else(|| berth_api::time::ZERO.to_string(), berth_api::time::rfc3339_nanos))
    };
    ContainerStatsResponse {
        id: Some(id.to_string()),
        name: Some(format!("/{name}")),
        os_type: None,
        read: time(s),
        preread: time(frame.pre.as_ref()),
        cpu_stats: Some(cpu(s)),
        precpu_stats: Some(cpu(frame.pre.as_ref())),
        memory_stats: Some(s.map(memory).unwrap_or_default()),
        networks: s.filter(|s| !s.networks.is_empty()).map(|s| {
            s.networks
                .iter()
                .map(|(name, n)| {
                    let v = ContainerNetworkStats {
                        rx_bytes: Some(n.rx_bytes),
                        rx_packets: Some(n.rx_packets),
                        rx_errors: Some(n.rx_errors),
                        rx_dropped: Some(n.rx_dropped),
                        tx_bytes: Some(n.tx_bytes),
                        tx_packets: Some(n.tx_packets),
                        tx_errors: Some(n.tx_errors),
                        tx_dropped: Some(n.tx_dropped),
                        endpoint_id: None,
                        instance_id: None,
                    };
                    (name.clone(), v)
                })
                .collect::<HashMap<_, _>>()
        }),
        pids_stats: Some(s.map_or_else(ContainerPidsStats::default, |s| ContainerPidsStats {
            current: Some(s.cgroup.pids.current).filter(|c| *c > 0),
            limit: s.cgroup.pids.limit.filter(|l| *l > 0),
        })),
        blkio_stats: Some(s.map_or_else(ContainerBlkioStats::default, |s| ContainerBlkioStats {
            io_service_bytes_recursive: entries(&s.cgroup.blkio.io_service_bytes_recursive),
            io_serviced_recursive: entries(&s.cgroup.blkio.io_serviced_recursive),
            ..Default::default()
        })),
        num_procs: Some(0),
        storage_stats: Some(ContainerStorageStats::default()),
    }
}

/// dockerd's `cpu_stats`: `cpu_usage` and `throttling_data` always (zeros when there is no sample), system usage and
/// online CPUs only when known.
fn cpu(s: Option<&Sample>) -> ContainerCpuStats {
    let c = s.map(|s| s.cgroup.cpu.clone()).unwrap_or_default();
    ContainerCpuStats {
        cpu_usage: Some(ContainerCpuUsage {
            total_usage: Some(c.total_usage),
            percpu_usage: Some(c.percpu_usage).filter(|p| !p.is_empty()),
            usage_in_kernelmode: Some(c.usage_in_kernelmode),
            usage_in_usermode: Some(c.usage_in_usermode),
        }),
        system_cpu_usage: s.map(|s| s.system_cpu_usage).filter(|v| *v > 0),
        online_cpus: s.map(|s| s.online_cpus).filter(|v| *v > 0),
        throttling_data: Some(ContainerThrottlingData {
            periods: Some(c.throttling.periods),
            throttled_periods: Some(c.throttling.throttled_periods),
            throttled_time: Some(c.throttling.throttled_time),
        }),
    }
}

/// dockerd's `memory_stats` (every field omitted when zero); an unlimited limit is the host's memory.
fn memory(s: &Sample) -> ContainerMemoryStats {
    let m = &s.cgroup.memory;
    let limit = if s.machine_memory > 0 && m.limit > s.machine_memory { s.machine_memory } else { m.limit };
    ContainerMemoryStats {
        usage: Some(m.usage).filter(|v| *v > 0),
        max_usage: m.max_usage.filter(|v| *v > 0),
        stats: Some(m.stats.iter().map(|(k, v)| (k.clone(), *v)).collect::<HashMap<_, _>>()).filter(|m| !m.is_empty()),
        failcnt: m.failcnt.filter(|v| *v > 0),
        limit: Some(limit).filter(|v| *v > 0),
        ..Default::default()
    }
}

fn entries(list: &[BlkioEntry]) -> Option<Vec<ContainerBlkioStatEntry>> {
    (!list.is_empty()).then(|| {
        list.iter()
            .map(|e| ContainerBlkioStatEntry {
                major: Some(e.major),
                minor: Some(e.minor),
                op: Some(e.op.clone()),
                value: Some(e.value),
            })
            .collect()
    })
}

/// The JSON dockerd writes: the model, plus the block I/O lists it writes as `null` when empty.
pub fn to_json(r: &ContainerStatsResponse) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Some(b) = v.get_mut("blkio_stats").and_then(Value::as_object_mut) {
        for key in [
            "io_service_bytes_recursive",
            "io_serviced_recursive",
            "io_queue_recursive",
            "io_service_time_recursive",
            "io_wait_time_recursive",
            "io_merged_recursive",
            "io_time_recursive",
            "sectors_recursive",
        ] {
            b.entry(key).or_insert(Value::Null);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, UNIX_EPOCH};

    use berth_runtime::cgroups::{CpuStats, MemoryStats, NetStats, PidsStats, Stats, Throttling};
    use serde_json::json;

    use super::*;

    fn sample(total: u64, system: u64) -> Sample {
        let mut mem = BTreeMap::new();
        mem.insert("inactive_file".to_string(), 4096);
        Sample {
            read: Some(UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789)),
            cgroup: Stats {
                cpu: CpuStats {
                    total_usage: total,
                    percpu_usage: vec![],
                    usage_in_kernelmode: 10,
                    usage_in_usermode: 20,
                    throttling: Throttling { periods: 1, throttled_periods: 0, throttled_time: 0 },
                },
                memory: MemoryStats { usage: 1 << 20, max_usage: None, limit: u64::MAX, failcnt: None, stats: mem },
                pids: PidsStats { current: 2, limit: None },
                ..Default::default()
            },
            system_cpu_usage: system,
            online_cpus: 2,
            machine_memory: 8 << 30,
            networks: [("eth0".to_string(), NetStats { rx_bytes: 100, tx_bytes: 50, ..Default::default() })]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn running_shape() {
        let frame = Frame { sample: Some(sample(2000, 9000)), pre: Some(sample(1000, 5000)) };
        let v = to_json(&render("abc", "web", &frame));
        assert_eq!(v["id"], "abc");
        assert_eq!(v["name"], "/web");
        assert_eq!(v["read"], "2023-11-14T22:13:20.123456789Z");
        assert_eq!(v["preread"], "2023-11-14T22:13:20.123456789Z");
        assert_eq!(v["num_procs"], 0);
        assert_eq!(v["storage_stats"], json!({}));
        assert_eq!(
            v["cpu_stats"],
            json!({
                "cpu_usage": {"total_usage": 2000, "usage_in_kernelmode": 10, "usage_in_usermode": 20},
                "system_cpu_usage": 9000,
                "online_cpus": 2,
                "throttling_data": {"periods": 1, "throttled_periods": 0, "throttled_time": 0}
            })
        );
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 1000);
        assert_eq!(v["precpu_stats"]["system_cpu_usage"], 5000);
        // Unlimited memory shows the host's memory, as dockerd.
        assert_eq!(v["memory_stats"], json!({"usage": 1048576, "limit": 8u64 << 30, "stats": {"inactive_file": 4096}}));
        assert_eq!(v["pids_stats"], json!({"current": 2}));
        assert_eq!(v["blkio_stats"]["io_service_bytes_recursive"], Value::Null);
        assert!(v["blkio_stats"].as_object().is_some_and(|b| b.len() == 8));
        assert_eq!(
            v["networks"]["eth0"],
            json!({"rx_bytes": 100, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
                   "tx_bytes": 50, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0})
        );
    }

    #[test]
    fn first_frame_and_stopped_are_docker_zeros() {
        let first = to_json(&render("abc", "web", &Frame { sample: Some(sample(1, 1)), pre: None }));
        assert_eq!(first["preread"], berth_api::time::ZERO);
        assert_eq!(
            first["precpu_stats"],
            json!({
                "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
            })
        );
        let stopped = to_json(&render("abc", "web", &Frame::default()));
        assert_eq!(stopped["read"], berth_api::time::ZERO);
        assert_eq!(stopped["memory_stats"], json!({}));
        assert_eq!(stopped["pids_stats"], json!({}));
        assert_eq!(stopped["cpu_stats"], first["precpu_stats"]);
        assert!(stopped.get("networks").is_none());
        assert_eq!(stopped["name"], "/web");
    }

    #[test]
    fn memory_limit_kept_when_set() {
        let mut s = sample(1, 1);
        s.cgroup.memory.limit = 64 << 20;
        s.cgroup.memory.max_usage = Some(2 << 20);
        s.cgroup.pids.limit = Some(10);
        let v = to_json(&render("a", "b", &Frame { sample: Some(s), pre: None }));
        assert_eq!(v["memory_stats"]["limit"], 64u64 << 20);
        assert_eq!(v["memory_stats"]["max_usage"], 2u64 << 20);
        assert_eq!(v["pids_stats"], json!({"current": 2, "limit": 10}));
    }
}
