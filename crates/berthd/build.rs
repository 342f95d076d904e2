//! Builds `berth-init` (`init/berth-init.rs`), the init of `--init` containers, as a static executable that berthd
//! embeds. It is compiled here with `rustc` alone rather than as a workspace binary because it must be linked
//! statically (`+crt-static`: it runs inside images with any libc or none) and abort on panic, and cargo has no
//! per-binary `RUSTFLAGS`; `berth-shim`, linked dynamically against glibc and libseccomp, could not serve.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "init/berth-init.rs";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("berth-init");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let status = Command::new(rustc)
        .args(["--edition", "2024", "--crate-type", "bin", "--crate-name", "berth_init", "--target", &target])
        .args(["-C", "opt-level=s", "-C", "panic=abort", "-C", "target-feature=+crt-static", "-C", "strip=symbols"])
        .arg("-o")
        .arg(&out)
        .arg(src)
        .status()
        .expect("run rustc for berth-init");
    assert!(status.success(), "building {src} failed (a static glibc, libc6-dev's libc.a, is needed)");
}
