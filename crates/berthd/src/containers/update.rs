//! `POST /containers/{id}/update` (`docker update`): resources and the restart policy, checked as Docker checks them,
//! stored in the record and, for a running (or paused) container, written to its cgroup at once.

use std::sync::Arc;

use berth_api::models::{ContainerUpdateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use serde_json::Value;

use crate::daemon::Daemon;
use crate::error::Error;
use crate::task::blocking;

use super::*;

/// Docker's smallest kernel memory limit.
const MIN_KERNEL_MEMORY: i64 = 4 << 20;

/// Updates a container; returns Docker's warnings.
pub async fn update(d: &Arc<Daemon>, c: &Arc<Container>, body: &Value) -> Result<Vec<String>, Error> {
    if let Some(n) = body.pointer("/RestartPolicy/Name").and_then(Value::as_str)
        && !["", "no", "always", "unless-stopped", "on-failure"].contains(&n)
    {
        return Err(Error::InvalidArgument(format!("invalid restart policy '{n}'")));
    }
    let req: ContainerUpdateBody =
        serde_json::from_value(body.clone()).map_err(|e| Error::InvalidArgument(format!("invalid JSON: {e}")))?;
    // Not in the v1.53 model (gone from the API), but sent by older clients (docker-py's `kernel_memory`).
    let kernel_memory = body.get("KernelMemory").and_then(Value::as_i64).unwrap_or(0);
    let mut want = requested(&req);
    let warnings = verify(&mut want, kernel_memory, berth_runtime::cgroups::support())?;

    let _guard = c.lifecycle.lock().await;
    let rec = c.record();
    if matches!(rec.state.status, Status::Removing | Status::Dead) {
        return Err(Error::Conflict(format!(
            "Cannot update container {}: container is marked for removal and cannot be \"update\"",
            rec.id
        )));
    }
    let merged = merge(&rec.host_config, &want)
        .map_err(|m| Error::Conflict(format!("Cannot update container {}: {m}", rec.id)))?;
    // A container that runs gets the new limits now; a stopped (or restarting) one at its next start.
    if matches!(rec.state.status, Status::Running | Status::Paused) {
        let resources: oci_spec::runtime::LinuxResources =
            serde_json::from_value(crate::spec::resources(&merged)).map_err(|e| Error::Internal(e.to_string()))?;
        let path = format!("berth/{}", rec.id);
        blocking(move || {
            berth_runtime::cgroups::Cgroup::update(&path, &resources)
                .map(|_| ())
                .map_err(|e| Error::Internal(e.to_string()))
        })
        .await
        .map_err(|e| Error::Internal(format!("Cannot update container {}: {e}", rec.id)))?;
    }
    let rec = c.update(|r| r.host_config = merged);
    persist(d, c, &rec).await?;
    c.publish(&d.events, "update", &[]);
    Ok(warnings)
}

/// The request's fields as a host configuration (what `security::check_update_resources` reads).
fn requested(req: &ContainerUpdateBody) -> HostConfig {
    HostConfig {
        memory: req.memory,
        memory_swap: req.memory_swap,
        memory_reservation: req.memory_reservation,
        nano_cpus: req.nano_cpus,
        cpu_shares: req.cpu_shares,
        cpu_period: req.cpu_period,
        cpu_quota: req.cpu_quota,
        cpu_realtime_period: req.cpu_realtime_period,
        cpu_realtime_runtime: req.cpu_realtime_runtime,
        cpuset_cpus: req.cpuset_cpus.clone(),
        cpuset_mems: req.cpuset_mems.clone(),
        pids_limit: req.pids_limit,
        blkio_weight: req.blkio_weight,
        restart_policy: req.restart_policy.clone(),
        ..Default::default()
    }
}

/// Docker's `verifyContainerSettings` for an update: errors (400) and warnings; what the host cannot limit is
/// discarded from `want` with a warning.
fn verify(
    want: &mut HostConfig,
    kernel_memory: i64,
    support: berth_runtime::cgroups::Support,
) -> Result<Vec<String>, Error> {
    let mut warnings = Vec::new();
    if let Some(p) = &want.restart_policy {
        check_restart_policy(p)?;
    }
    let memory = want.memory.unwrap_or(0);
    if memory > 0 && want.memory_swap.unwrap_or(0) != -1 && !support.swap {
        warnings.push(
            "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited \
             without swap."
                .to_string(),
        );
        want.memory_swap = Some(-1);
    }
    crate::security::check_update_resources(want)?;
    if kernel_memory > 0 {
        warnings.push("Specifying a kernel memory limit is deprecated and will be removed in a future release.".into());
        if kernel_memory < MIN_KERNEL_MEMORY {
            return Err(Error::InvalidArgument("Minimum kernel memory limit allowed is 4MB".into()));
        }
        // Kernels since 5.4 deprecate it and cgroup v2 has none: Berth never applies it.
        warnings.push(
            "Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation \
             discarded."
                .into(),
        );
    }
    if want.blkio_weight.unwrap_or(0) > 0 && !support.blkio_weight {
        warnings.push(
            "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".into(),
        );
        want.blkio_weight = None;
    }
    Ok(warnings)
}

/// Docker's restart policy check (`no`, `always`, `unless-stopped` without a count; `on-failure` with none negative).
pub(super) fn check_restart_policy(p: &RestartPolicy) -> Result<(), Error> {
    let max = p.maximum_retry_count.unwrap_or(0);
    let name = p.name.map(|n| n.to_string()).unwrap_or_default();
    match p.name {
        Some(RestartPolicyNameEnum::ON_FAILURE) if max < 0 => {
            Err(Error::InvalidArgument("maximum retry count cannot be negative".into()))
        }
        Some(RestartPolicyNameEnum::ON_FAILURE) | Some(RestartPolicyNameEnum::EMPTY) | None => Ok(()),
        Some(_) if max != 0 => {
            Err(Error::InvalidArgument(format!("maximum retry count cannot be used with restart policy '{name}'")))
        }
        Some(_) => Ok(()),
    }
}

/// Docker's `Container.UpdateContainer`: the new values over the current ones (zero or absent: unchanged), with its
/// conflicts (a message for a 409).
fn merge(current: &HostConfig, want: &HostConfig) -> Result<HostConfig, String> {
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    let cur = |v: Option<i64>| v.unwrap_or(0);
    let conflicts = [
        (
            set(want.nano_cpus).is_some_and(|n| n > 0) && cur(current.cpu_period) > 0,
            "Nano CPUs cannot be updated as CPU Period has already been set",
        ),
        (
            set(want.nano_cpus).is_some_and(|n| n > 0) && cur(current.cpu_quota) > 0,
            "Nano CPUs cannot be updated as CPU Quota has already been set",
        ),
        (
            set(want.cpu_period).is_some_and(|p| p > 0) && cur(current.nano_cpus) > 0,
            "CPU Period cannot be updated as NanoCPUs has already been set",
        ),
        (
            set(want.cpu_quota).is_some_and(|q| q > 0) && cur(current.nano_cpus) > 0,
            "CPU Quota cannot be updated as NanoCPUs has already been set",
        ),
    ];
    if let Some((_, m)) = conflicts.iter().find(|(c, _)| *c) {
        return Err(format!("Conflicting options: {m}"));
    }
    let mut h = current.clone();
    if let Some(w) = want.blkio_weight.filter(|w| *w != 0) {
        h.blkio_weight = Some(w);
    }
    for (dst, src) in [
        (&mut h.cpu_shares, want.cpu_shares),
        (&mut h.nano_cpus, want.nano_cpus),
        (&mut h.cpu_period, want.cpu_period),
        (&mut h.cpu_quota, want.cpu_quota),
        (&mut h.cpu_realtime_period, want.cpu_realtime_period),
        (&mut h.cpu_realtime_runtime, want.cpu_realtime_runtime),
        (&mut h.memory_reservation, want.memory_reservation),
    ] {
        if let Some(v) = set(src) {
            *dst = Some(v);
        }
    }
    if let Some(c) = want.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
        h.cpuset_cpus = Some(c);
    }
    if let Some(m) = want.cpuset_mems.clone().filter(|m| !m.is_empty()) {
        h.cpuset_mems = Some(m);
    }
    if let Some(m) = set(want.memory) {
        let swap = cur(current.memory_swap);
        if swap > 0 && m > swap && set(want.memory_swap).is_none() {
            return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at \
                        the same time"
                .into());
        }
        h.memory = Some(m);
    }
    if let Some(s) = set(want.memory_swap) {
        h.memory_swap = Some(s);
    }
    if want.pids_limit.is_some() {
        h.pids_limit = want.pids_limit;
    }
    if let Some(p) = want.restart_policy.clone().filter(|p| p.name.is_some_and(|n| n != RestartPolicyNameEnum::EMPTY)) {
        let none = p.name == Some(RestartPolicyNameEnum::NO);
        if current.auto_remove.unwrap_or(false) && !none {
            return Err("Restart policy cannot be updated because AutoRemove is enabled for the container".into());
        }
        h.restart_policy =
            Some(RestartPolicy { name: p.name, maximum_retry_count: Some(p.maximum_retry_count.unwrap_or(0)) });
    }
    Ok(h)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use berth_runtime::cgroups::Support;

    const ALL: Support = Support { swap: true, blkio_weight: true };

    #[test]
    fn merge_keeps_what_is_not_asked_and_refuses_dockers_conflicts() {
        let cur = HostConfig {
            memory: Some(256 << 20),
            memory_swap: Some(512 << 20),
            nano_cpus: Some(1_000_000_000),
            ..Default::default()
        };
        let h = merge(
            &cur,
            &HostConfig { memory: Some(300 << 20), cpu_shares: Some(512), pids_limit: Some(10), ..Default::default() },
        )
        .unwrap();
        assert_eq!(
            (h.memory, h.memory_swap, h.cpu_shares, h.pids_limit, h.nano_cpus),
            (Some(300 << 20), Some(512 << 20), Some(512), Some(10), Some(1_000_000_000))
        );
        let e = merge(&cur, &HostConfig { memory: Some(1 << 30), ..Default::default() }).unwrap_err();
        assert!(e.starts_with("Memory limit should be smaller than already set memoryswap limit"), "{e}");
        assert!(
            merge(&cur, &HostConfig { memory: Some(1 << 30), memory_swap: Some(-1), ..Default::default() }).is_ok()
        );
        let e = merge(&cur, &HostConfig { cpu_quota: Some(50_000), ..Default::default() }).unwrap_err();
        assert_eq!(e, "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set");
        let rm = HostConfig { auto_remove: Some(true), ..Default::default() };
        let always = RestartPolicy { name: Some(RestartPolicyNameEnum::ALWAYS), maximum_retry_count: None };
        let e = merge(&rm, &HostConfig { restart_policy: Some(always.clone()), ..Default::default() }).unwrap_err();
        assert!(e.contains("AutoRemove"), "{e}");
        let h =
            merge(&HostConfig::default(), &HostConfig { restart_policy: Some(always), ..Default::default() }).unwrap();
        assert_eq!(h.restart_policy.unwrap().maximum_retry_count, Some(0));
    }

    #[test]
    fn verify_gives_dockers_errors_and_warnings() {
        let mut w = HostConfig { memory: Some(64 << 20), memory_reservation: Some(128 << 20), ..Default::default() };
        let e = verify(&mut w, 0, ALL).unwrap_err().to_string();
        assert_eq!(e, "Minimum memory limit can not be less than memory reservation limit, see usage");
        let mut w = HostConfig { memory: Some(128 << 20), memory_swap: Some(64 << 20), ..Default::default() };
        let e = verify(&mut w, 0, ALL).unwrap_err().to_string();
        assert_eq!(e, "Minimum memoryswap limit should be larger than memory limit, see usage");
        // A swap limit alone is fine in an update.
        assert!(verify(&mut HostConfig { memory_swap: Some(64 << 20), ..Default::default() }, 0, ALL).is_ok());
        let warn = verify(&mut HostConfig::default(), 8 << 20, ALL).unwrap();
        assert_eq!(warn[0], "Specifying a kernel memory limit is deprecated and will be removed in a future release.");
        assert_eq!(
            verify(&mut HostConfig::default(), 1 << 20, ALL).unwrap_err().to_string(),
            "Minimum kernel memory limit allowed is 4MB"
        );
        let mut w = HostConfig { blkio_weight: Some(300), memory: Some(64 << 20), ..Default::default() };
        let warn = verify(&mut w, 0, Support { swap: false, blkio_weight: false }).unwrap();
        assert_eq!(warn.len(), 2, "{warn:?}");
        assert!(warn[1].ends_with("Weight discarded."));
        assert_eq!((w.blkio_weight, w.memory_swap), (None, Some(-1)));
        let bad = RestartPolicy { name: Some(RestartPolicyNameEnum::ALWAYS), maximum_retry_count: Some(3) };
        let e = verify(&mut HostConfig { restart_policy: Some(bad), ..Default::default() }, 0, ALL).unwrap_err();
        assert_eq!(e.to_string(), "maximum retry count cannot be used with restart policy 'always'");
    }
}
