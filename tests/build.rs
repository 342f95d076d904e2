//! Sets the cfg `berth_root` when the tests are built by root. The integration tests that need root (namespaces,
//! mounts, cgroups, a daemon of their own) carry `#[cfg_attr(not(berth_root), ignore = "needs root")]`, so a build by
//! another user lists them as ignored, with the reason, instead of running them or passing them unrun.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(berth_root)");
    // Only this file and the building user matter. The user is no file: what changes with it (`sudo`, `su`,
    // a login) is in the environment.
    println!("cargo::rerun-if-changed=build.rs");
    for var in ["USER", "LOGNAME", "HOME", "SUDO_UID"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    match effective_uid() {
        Some(0) => println!("cargo::rustc-cfg=berth_root"),
        Some(_) => {}
        None => println!("cargo::warning=cannot read the building user's uid: the tests that need root are ignored"),
    }
}

/// The effective uid of this build script (the `Uid:` line of /proc/self/status: real, effective, saved, fs).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
