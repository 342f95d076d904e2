//! Security options and the checks of a create request (issue 12, findings 2, 7 and 8): custom seccomp profiles
//! applied as Docker applies them, invalid security options, sysctls and resource values refused with Docker's
//! messages before anything is created, capabilities (`ALL`, unavailable ones), `systempaths=unconfined`, device
//! cgroup rules, and Docker's JSON body on a 413.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use berth_integration::*;
use serde_json::{Value, json};

/// The containers berthd knows (`ps -a`) and the container directories of its data root: what a refused create must
/// leave unchanged.
fn created(d: &Berthd) -> (usize, usize) {
    let (status, _, body) = api(d, "GET", "/containers/json?all=1", b"");
    assert_eq!(status, 200);
    let listed = serde_json::from_slice::<Value>(&body).unwrap().as_array().unwrap().len();
    let dirs = std::fs::read_dir(d.dir.join("data/containers")).map(|r| r.count()).unwrap_or(0);
    (listed, dirs)
}

/// POSTs a create with `host_config` and expects a 400 whose message contains `want`, and nothing created.
fn refused(d: &Berthd, host_config: Value, want: &str) {
    let before = created(d);
    let body = json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config});
    let (status, headers, reply) = api(d, "POST", "/containers/create", body.to_string().as_bytes());
    let text = String::from_utf8_lossy(&reply).into_owned();
    assert_eq!(status, 400, "{host_config}: {text}");
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("application/json")), "{headers:?}");
    let message = serde_json::from_slice::<Value>(&reply).unwrap()["message"].as_str().unwrap().to_string();
    assert!(message.contains(want), "{host_config}: {message:?} should contain {want:?}");
    assert_eq!(created(d), before, "{host_config}: a refused create left something behind");
}

/// Writes `profile` into the test's directory and returns its path.
fn profile_file(d: &Berthd, name: &str, profile: &Value) -> PathBuf {
    let path = d.dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(profile).unwrap()).unwrap();
    path
}

/// The `Seccomp:` and `NoNewPrivs:` lines and the capability sets of the container's first process.
fn status_line(d: &Berthd, args: &[&str], key: &str) -> String {
    let mut full = vec!["run", "--rm"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["busybox", "grep", key, "/proc/self/status"]);
    d.ok(&full).trim().to_string()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn custom_seccomp_profiles_are_applied() {
    let d = daemon_with_busybox();
    // Default profile: mkdir works, the filter is on.
    d.ok(&["run", "--rm", "busybox", "mkdir", "/tmp/x"]);
    assert_eq!(status_line(&d, &[], "Seccomp:"), "Seccomp:\t2");

    // A profile that allows everything but mkdir.
    let deny_mkdir = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    });
    let file = profile_file(&d, "deny-mkdir.json", &deny_mkdir);
    let opt = format!("seccomp={}", file.display());
    let out = d.berth(&["run", "--rm", "--security-opt", &opt, "busybox", "mkdir", "/tmp/x"]);
    assert!(!out.status.success(), "mkdir succeeded under a profile that forbids it");
    assert!(stderr(&out).contains("Operation not permitted"), "{}", stderr(&out));
    // Other calls still work under it.
    assert_eq!(d.ok(&["run", "--rm", "--security-opt", &opt, "busybox", "echo", "ok"]).trim(), "ok");

    // errnoRet is honoured (ENOSPC = 28: "No space left on device").
    let errno = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}]
    });
    let opt_errno = format!("seccomp={}", profile_file(&d, "errno.json", &errno).display());
    let out = d.berth(&["run", "--rm", "--security-opt", &opt_errno, "busybox", "mkdir", "/tmp/x"]);
    assert!(stderr(&out).contains("No space left on device"), "{}", stderr(&out));

    // includes.caps: the rule applies only to containers with CAP_SYS_ADMIN.
    let only_admin = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]
    });
    let opt_admin = format!("seccomp={}", profile_file(&d, "admin.json", &only_admin).display());
    d.ok(&["run", "--rm", "--security-opt", &opt_admin, "busybox", "mkdir", "/tmp/x"]);
    let out =
        d.berth(&["run", "--rm", "--cap-add", "SYS_ADMIN", "--security-opt", &opt_admin, "busybox", "mkdir", "/tmp/x"]);
    assert!(stderr(&out).contains("Operation not permitted"), "{}", stderr(&out));

    // defaultAction with a syscall allow-list: everything else fails with defaultErrnoRet.
    let mut allow: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("crates/berth-runtime/src/seccomp-default.json")).unwrap(),
    )
    .unwrap();
    for rule in allow["syscalls"].as_array_mut().unwrap() {
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| n != "mkdir" && n != "mkdirat");
        }
    }
    let opt_default = format!("seccomp={}", profile_file(&d, "default-no-mkdir.json", &allow).display());
    let out = d.berth(&["run", "--rm", "--security-opt", &opt_default, "busybox", "mkdir", "/tmp/x"]);
    assert!(stderr(&out).contains("Operation not permitted"), "{}", stderr(&out));
    d.ok(&["run", "--rm", "--security-opt", &opt_default, "busybox", "touch", "/tmp/x"]);

    // The docker CLI's names: unconfined (no filter), builtin (the default one); moby takes `{}` as no filter.
    assert_eq!(status_line(&d, &["--security-opt", "seccomp=unconfined"], "Seccomp:"), "Seccomp:\t0");
    assert_eq!(status_line(&d, &["--security-opt", "seccomp=builtin"], "Seccomp:"), "Seccomp:\t2");
    let empty = format!("seccomp={}", profile_file(&d, "empty.json", &json!({})).display());
    assert_eq!(status_line(&d, &["--security-opt", &empty], "Seccomp:"), "Seccomp:\t0");
    assert_eq!(status_line(&d, &["--security-opt", "no-new-privileges=true"], "NoNewPrivs:"), "NoNewPrivs:\t1");
    assert_eq!(status_line(&d, &["--security-opt", "no-new-privileges=false"], "NoNewPrivs:"), "NoNewPrivs:\t0");

    // The berth CLI reads the file as the docker CLI does.
    let out = d.berth(&["run", "--rm", "--security-opt", "seccomp=/etc/passwd", "busybox", "true"]);
    assert!(stderr(&out).contains("compacting json for seccomp profile (/etc/passwd) failed"), "{}", stderr(&out));

    // The real docker CLI sends the profile's JSON; berthd applies it the same way (without a docker CLI,
    // `docker_cli()` has said so).
    if let Some(out) = d.docker(&["run", "--rm", "--security-opt", &opt, "busybox", "mkdir", "/tmp/x"]) {
        assert!(!out.status.success(), "mkdir succeeded through the docker CLI");
        assert!(stderr(&out).contains("Operation not permitted"), "{}", stderr(&out));
        let out = d
            .docker(&[
                "run",
                "--rm",
                "--security-opt",
                "systempaths=unconfined",
                "busybox",
                "cat",
                "/proc/self/mountinfo",
            ])
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stdout(&out).contains(" /proc/keys "), "{}", stdout(&out));
    }
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn invalid_security_options_are_refused_at_create() {
    let d = daemon_with_busybox();
    let sec = |v: &str| json!({"SecurityOpt": [v]});
    // What a client that does not read the file sends, and what the docker CLI sends for a non-JSON file.
    refused(&d, sec("seccomp=/etc/passwd"), "Decoding seccomp profile failed");
    refused(&d, sec("seccomp=root:x:0:0"), "Decoding seccomp profile failed");
    refused(&d, sec("bogus=1"), "invalid --security-opt 2: \"bogus=1\"");
    refused(&d, sec("bogus"), "invalid --security-opt 1: \"bogus\"");
    refused(&d, sec("no-new-privileges=maybe"), "invalid --security-opt 2");
    // The docker CLI handles systempaths=unconfined itself: the daemon refuses it as moby does.
    refused(&d, sec("systempaths=unconfined"), "invalid --security-opt 2");
    let profiles = [
        (json!({"defaultAction": "SCMP_ACT_NOPE"}), "Decoding seccomp profile failed"),
        (json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}), "listenerPath"),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                   "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []}]}),
            "use either 'architectures' or 'archMap'",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "mkdir", "names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}]}),
            "use either 'name' or 'names'",
        ),
        (json!({"syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}), "no defaultAction"),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "SCMP_ACT_NOTIFY",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                   "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "argument index 9 is out of range",
        ),
    ];
    for (profile, want) in profiles {
        refused(&d, sec(&format!("seccomp={profile}")), want);
    }
    // Security modules this host does not run (or that Berth cannot apply) are refused plainly; the values that ask
    // for nothing are fine.
    refused(&d, sec("apparmor=docker-default"), "apparmor=docker-default");
    refused(&d, sec("label=type:svirt_lxc_net_t"), "label=type:svirt_lxc_net_t");
    for ok in ["apparmor=unconfined", "label=disable", "seccomp=unconfined", "no-new-privileges"] {
        d.ok(&["run", "--rm", "--security-opt", ok, "busybox", "true"]);
    }
    refused(&d, json!({"CapAdd": ["NOPE"]}), "unknown capability: \"CAP_NOPE\"");
    refused(&d, json!({"CapDrop": ["NOPE"]}), "unknown capability: \"CAP_NOPE\"");
    refused(&d, json!({"DeviceCgroupRules": ["c 1:3"]}), "invalid device cgroup format 'c 1:3'");
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn sysctls_apply_inside_only_and_host_ones_are_refused() {
    let d = daemon_with_busybox();
    let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want = if host_before.trim() == "1" { "0" } else { "1" };
    let set = format!("net.ipv4.ip_forward={want}");
    let out = d.ok(&["run", "--rm", "--sysctl", &set, "busybox", "cat", "/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(out.trim(), want);
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(), host_before, "the host's changed");
    // IPC-namespaced keys, set in the container's own IPC namespace.
    let host_shm = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let out = d.ok(&[
        "run",
        "--rm",
        "--sysctl",
        "kernel.shmmni=1234",
        "--sysctl",
        "fs.mqueue.msg_max=20",
        "busybox",
        "cat",
        "/proc/sys/kernel/shmmni",
        "/proc/sys/fs/mqueue/msg_max",
    ]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["1234", "20"]);
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(), host_shm);
    // /proc/sys stays read-only for the container's processes.
    let out =
        d.berth(&["run", "--rm", "--sysctl", &set, "busybox", "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
    assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));

    let sysctl = |k: &str| json!({ k: "1" });
    refused(
        &d,
        json!({"Sysctls": sysctl("kernel.core_pattern")}),
        r#"sysctl "kernel.core_pattern" is not in a separate kernel namespace"#,
    );
    refused(
        &d,
        json!({"Sysctls": sysctl("vm.swappiness")}),
        r#"sysctl "vm.swappiness" is not in a separate kernel namespace"#,
    );
    refused(
        &d,
        json!({"NetworkMode": "host", "Sysctls": sysctl("net.ipv4.ip_forward")}),
        r#"sysctl "net.ipv4.ip_forward" is not allowed in the hosts network namespace"#,
    );
    refused(
        &d,
        json!({"IpcMode": "host", "Sysctls": sysctl("kernel.shmmax")}),
        r#"sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace"#,
    );
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn bad_create_values_are_refused_with_dockers_messages() {
    let d = daemon_with_busybox();
    let mb = 1i64 << 20;
    let cases = [
        (json!({"Memory": -1}), "Minimum memory limit allowed is 6MB".to_string()),
        (json!({"Memory": 1}), "Minimum memory limit allowed is 6MB".into()),
        (
            json!({"Memory": 64 * mb, "MemorySwap": 32 * mb}),
            "Minimum memoryswap limit should be larger than memory limit".into(),
        ),
        (json!({"MemorySwap": 32 * mb}), "You should always set the Memory limit when using Memoryswap limit".into()),
        (json!({"MemorySwappiness": 500}), "Invalid value: 500, valid memory swappiness range is 0-100".into()),
        (json!({"MemorySwappiness": -2}), "Invalid value: -2, valid memory swappiness range is 0-100".into()),
        (json!({"MemoryReservation": 1}), "Minimum memory reservation allowed is 6MB".into()),
        (json!({"NanoCpus": -1}), "Range of CPUs is from 0.01 to".into()),
        (json!({"NanoCpus": 100_000_000_000_000i64}), "Range of CPUs is from 0.01 to".into()),
        (json!({"NanoCpus": 1_000_000_000, "CpuPeriod": 100000}), "Nano CPUs and CPU Period cannot both be set".into()),
        (json!({"CpuShares": -1}), "shares: invalid argument".into()),
        (json!({"CpuPeriod": 10}), "CPU cfs period can not be less than 1ms".into()),
        (json!({"CpuQuota": 10}), "CPU cfs quota can not be less than 1ms".into()),
        (json!({"CpusetCpus": "0-99999"}), "Requested CPUs are not available - requested 0-99999".into()),
        (json!({"CpusetCpus": "0-x"}), "Invalid value 0-x for cpuset cpus".into()),
        (json!({"CpusetMems": "4096"}), "Requested memory nodes are not available".into()),
        (json!({"BlkioWeight": 5}), "Range of blkio weight is from 10 to 1000".into()),
        (json!({"ShmSize": -1}), "SHM size can not be less than 0".into()),
        (json!({"OomScoreAdj": 1001}), "Invalid value 1001, range for oom score adj is [-1000, 1000]".into()),
        (json!({"OomScoreAdj": -1001}), "Invalid value -1001, range for oom score adj is [-1000, 1000]".into()),
        (
            json!({"Ulimits": [{"Name": "nofile", "Soft": 2048, "Hard": 1024}]}),
            "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024".into(),
        ),
        (json!({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}), "invalid ulimit type: bogus".into()),
        (json!({"PortBindings": {"80/tcp": [{"HostPort": "70000"}]}}), "invalid port specification: \"70000\"".into()),
        (json!({"PortBindings": {"80/tcp": [{"HostPort": "8x"}]}}), "invalid port specification: \"8x\"".into()),
        (json!({"PortBindings": {"99999/tcp": [{"HostPort": "80"}]}}), "invalid port".into()),
        (json!({"Binds": [format!("{}:/data", "v".repeat(300))]}), "volume name is too long (300 characters".into()),
        (json!({"LogConfig": {"Type": "bogus", "Config": {}}}), "no log driver named 'bogus' is registered".into()),
        (
            json!({"LogConfig": {"Type": "json-file", "Config": {"max-sise": "1m"}}}),
            "unknown log opt 'max-sise' for json-file log driver".into(),
        ),
    ];
    for (host_config, want) in cases {
        refused(&d, host_config, &want);
    }
    assert!(
        std::fs::read_dir(d.dir.join("data/volumes")).map_or(true, |r| r.flatten().all(|e| e.file_name().len() < 300)),
        "the long volume name left a directory"
    );
    // What stays accepted: -1 swappiness (unset), -1 swap (unlimited), the smallest memory limit.
    for ok in [
        json!({"MemorySwappiness": -1}),
        json!({"Memory": 6 * mb, "MemorySwap": -1}),
        json!({"CpusetCpus": "0", "OomScoreAdj": -1000}),
    ] {
        let body = json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": ok});
        let (status, _, reply) = api(&d, "POST", "/containers/create", body.to_string().as_bytes());
        assert_eq!(status, 201, "{ok}: {}", String::from_utf8_lossy(&reply));
    }
    // The CLI's own check of a soft limit above the hard one (the flag parser) does not reach the daemon either.
    let out = d.berth(&["create", "--ulimit", "nofile=2048:1024", "busybox"]);
    assert!(!out.status.success());
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn oversized_bodies_get_dockers_json_error() {
    let d = daemon_with_busybox();
    let before = created(&d);
    let big = format!(r#"{{"Image":"busybox","Labels":{{"x":"{}"}}}}"#, "a".repeat(3 << 20));
    // berthd answers before it has read the whole body and closes: write from a thread that may fail.
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    let head = format!(
        "POST /containers/create HTTP/1.0\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        big.len()
    );
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = w.write_all(head.as_bytes()).and_then(|()| w.write_all(big.as_bytes()));
        let _ = w.shutdown(std::net::Shutdown::Write);
    });
    // berthd closes with part of the body unread, which the kernel reports to this end as ECONNRESET once the
    // response (queued before the close) has been read: the bytes read before that error are the reply.
    let mut out = Vec::new();
    if let Err(e) = std::io::Read::read_to_end(&mut s, &mut out) {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    writer.join().unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 413") || head.starts_with("HTTP/1.1 413"), "{text}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let v: Value = serde_json::from_str(body).unwrap();
    assert!(v["message"].as_str().is_some_and(|m| m.contains("length limit")), "{v}");
    assert_eq!(created(&d), before);
    // A malformed query answers in JSON too.
    let (status, _, body) = api(&d, "GET", "/containers/json?all=1&limit=x", b"");
    if status >= 400 {
        assert!(serde_json::from_slice::<Value>(&body).is_ok(), "{}", String::from_utf8_lossy(&body));
    }
}

/// The capabilities this process holds (berthd runs with the same), as `/proc/self/status` shows them.
fn own_effective() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap();
    u64::from_str_radix(line.trim(), 16).unwrap()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn capabilities_all_and_unavailable_ones() {
    let d = daemon_with_busybox();
    const SYS_RESOURCE: u64 = 1 << 24;
    const NET_RAW: u64 = 1 << 13;
    // Capabilities up to CAP_CHECKPOINT_RESTORE (40), the last one Berth knows.
    let known = (1u64 << 41) - 1;
    let host = own_effective() & known;
    let cap_eff = |args: &[&str]| {
        let line = status_line(&d, args, "CapEff:");
        u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).unwrap()
    };
    assert_eq!(cap_eff(&["--cap-add", "ALL"]), host, "--cap-add ALL gives every capability berthd has");
    assert_eq!(cap_eff(&["--privileged"]), host);
    assert_eq!(cap_eff(&["--cap-drop", "ALL", "--cap-add", "NET_RAW"]), NET_RAW, "drop ALL keeps only the added");
    assert_eq!(cap_eff(&["--cap-add", "ALL", "--cap-drop", "NET_RAW"]), host & !NET_RAW);
    // `exec --privileged` gets the same set.
    let id = d.ok(&["run", "-d", "busybox", "sleep", "30"]).trim().to_string();
    let line = d.ok(&["exec", "--privileged", &id, "grep", "CapEff:", "/proc/self/status"]);
    assert_eq!(u64::from_str_radix(line.trim().trim_start_matches("CapEff:").trim(), 16).unwrap(), host);
    d.ok(&["rm", "-f", &id]);
    if host & SYS_RESOURCE != 0 {
        assert_ne!(cap_eff(&["--cap-add", "SYS_RESOURCE"]) & SYS_RESOURCE, 0);
        // With CAP_SYS_RESOURCE, raising a hard limit above the container's works.
        d.ok(&[
            "run",
            "--rm",
            "--cap-add",
            "SYS_RESOURCE",
            "--ulimit",
            "nofile=1024:1024",
            "busybox",
            "sh",
            "-c",
            "ulimit -n 4096",
        ]);
    } else {
        // This host (its bounding set) has no CAP_SYS_RESOURCE: no process it starts can get it. Docker's answer,
        // at create, instead of a capset failure at start.
        eprintln!("note: CAP_SYS_RESOURCE is not in this host's bounding set; checking the refusal");
        refused(
            &d,
            json!({"CapAdd": ["SYS_RESOURCE"]}),
            "capability not supported by your kernel or not available in the current environment: \"CAP_SYS_RESOURCE\"",
        );
    }
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn systempaths_unconfined_and_device_cgroup_rules() {
    let d = daemon_with_busybox();
    let mounts = |args: &[&str]| {
        let mut full = vec!["run", "--rm"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["busybox", "cat", "/proc/self/mountinfo"]);
        d.ok(&full)
    };
    let on = |m: &str, path: &str| m.lines().any(|l| l.split(' ').nth(4) == Some(path));
    // Docker's masked and read-only paths; the ones this kernel has are covered by default (e.g. no /proc/kcore
    // here), none of them with systempaths=unconfined.
    let paths = [
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/interrupts",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ];
    let default = mounts(&[]);
    let covered: Vec<&str> = paths.iter().copied().filter(|p| on(&default, p)).collect();
    for p in ["/proc/keys", "/proc/sys", "/proc/timer_list"] {
        assert!(covered.contains(&p), "{p} should be masked or read-only by default:\n{default}");
    }
    let unconfined = mounts(&["--security-opt", "systempaths=unconfined"]);
    for p in paths {
        assert!(!on(&unconfined, p), "{p} still covered with systempaths=unconfined:\n{unconfined}");
    }
    let out = d.ok(&["run", "--rm", "--security-opt", "systempaths=unconfined", "busybox", "cat", "/proc/keys"]);
    assert!(!out.is_empty() || std::fs::read_to_string("/proc/keys").is_ok_and(|k| k.is_empty()));

    // --device-cgroup-rule: enforced by the v1 devices controller (on v2 Berth does not enforce device rules).
    let v1 = std::path::Path::new("/sys/fs/cgroup/devices/devices.list").exists();
    let id = d.ok(&["run", "-d", "--device-cgroup-rule", "c 10:229 rwm", "busybox", "sleep", "30"]).trim().to_string();
    if v1 {
        let list = std::fs::read_to_string(format!("/sys/fs/cgroup/devices/berth/{id}/devices.list")).unwrap();
        assert!(list.lines().any(|l| l == "c 10:229 rwm"), "{list}");
        // The rule lets the container create and open the node (default rules would refuse it).
        d.ok(&["exec", &id, "mknod", "/tmp/fuse", "c", "10", "229"]);
        let out = d.berth(&["run", "--rm", "busybox", "sh", "-c", "mknod /tmp/f c 10 229 && cat /tmp/f"]);
        assert!(stderr(&out).contains("Operation not permitted"), "{}", stderr(&out));
    } else {
        skip("device rules are checked on cgroup v1 only (no v1 devices controller here)");
    }
    d.ok(&["rm", "-f", &id]);
}
