//! What the numbers of a stats object (`GET /containers/{id}/stats`) come to, as the docker CLI computes them: for
//! `berth stats` and the dashboard's charts.

use serde_json::Value;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// docker's `calculateCPUPercentUnix`: the container's CPU delta over the system's, times the online CPUs (or the
/// per-CPU entries when the daemon does not say), in percent.
pub fn cpu_percent(v: &Value) -> f64 {
    let cpu_delta = u(&v["cpu_stats"]["cpu_usage"]["total_usage"]) as f64
        - u(&v["precpu_stats"]["cpu_usage"]["total_usage"]) as f64;
    let system_delta = u(&v["cpu_stats"]["system_cpu_usage"]) as f64 - u(&v["precpu_stats"]["system_cpu_usage"]) as f64;
    let mut online = u(&v["cpu_stats"]["online_cpus"]) as f64;
    if online == 0.0 {
        online = v["cpu_stats"]["cpu_usage"]["percpu_usage"].as_array().map_or(0, Vec::len) as f64;
    }
    if system_delta > 0.0 && cpu_delta > 0.0 { cpu_delta / system_delta * online * 100.0 } else { 0.0 }
}

/// docker's `calculateMemUsageUnixNoCache`: usage minus `total_inactive_file` (cgroup v1) or `inactive_file` (v2).
pub fn memory_usage(mem: &Value) -> f64 {
    let usage = u(&mem["usage"]);
    if let Some(v) = mem["stats"]["total_inactive_file"].as_u64()
        && v < usage
    {
        return (usage - v) as f64;
    }
    let v = u(&mem["stats"]["inactive_file"]);
    if v < usage { (usage - v) as f64 } else { usage as f64 }
}
