//! Seccomp: Docker's default profile, resolved for a container's capabilities and for the host the way moby's
//! `profiles/seccomp` does it, and [`Filter`]s compiled with libseccomp.
//!
//! A filter is compiled in the parent, before the fork: libseccomp builds the BPF program, which is exported into
//! memory. The forked child then only hands that program to the kernel ([`Filter::load`]), which allocates nothing.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use libseccomp::error::SeccompError;
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use nix::sys::memfd::{MFdFlags, memfd_create};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

/// Docker's default seccomp profile (moby's `profiles/seccomp/default.json`, Apache-2.0), the source of
/// [`docker_default`].
const DEFAULT_PROFILE: &str = include_str!("seccomp-default.json");

/// The errno of `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` when the profile gives none.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// Errors of seccomp.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The built-in default profile does not parse (a build defect).
    #[error("seccomp: parse the default profile: {0}")]
    Profile(#[source] serde_json::Error),
    /// A user's profile is not a profile (moby's message).
    #[error("Decoding seccomp profile failed: {0}")]
    Decode(#[source] serde_json::Error),
    /// The host's kernel version could not be read, and the profile has rules that depend on it.
    /// (The cause is in the message, so not also a `source`: the shim prints error chains.)
    #[error("seccomp: read the kernel version: {0}")]
    KernelVersion(KernelVersionError),
    /// The profile asks for something Berth does not implement.
    #[error("seccomp: {0} is not supported")]
    Unsupported(String),
    /// The profile is invalid.
    #[error("seccomp: invalid profile: {0}")]
    Invalid(String),
    /// libseccomp refused an operation.
    #[error("seccomp: {what}: {source}")]
    Libseccomp { what: String, source: SeccompError },
    /// Exporting the compiled program failed.
    #[error("seccomp: export the bpf program: {0}")]
    Export(#[source] std::io::Error),
    /// The kernel refused the filter.
    #[error("seccomp: load the filter: {0}")]
    Load(#[source] nix::Error),
}

/// Why the running kernel's version is not known. Cloneable, since it is read once and kept.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KernelVersionError {
    /// `/proc/sys/kernel/osrelease` could not be read.
    #[error("read /proc/sys/kernel/osrelease: {0}")]
    Read(Arc<std::io::Error>),
    /// The release is not `major.minor…`.
    #[error("unrecognised kernel release {0:?}")]
    Unrecognised(String),
    /// A rule depends on the kernel version, which was not read (a defect: it is read when a rule needs it).
    #[error("unknown kernel version")]
    Unknown,
}

fn libseccomp_err(what: impl Into<String>) -> impl FnOnce(SeccompError) -> Error {
    let what = what.into();
    move |source| Error::Libseccomp { what, source }
}

// ---- Docker's default profile -------------------------------------------------------------------------------------

/// The on-disk shape of a Docker seccomp profile (moby's `types.Seccomp`): the default profile and the ones users
/// give with `--security-opt seccomp=<json>`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    default_action: Option<LinuxSeccompAction>,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    /// Architectures as given (exclusive with `archMap`).
    #[serde(default)]
    architectures: Vec<Arch>,
    #[serde(default)]
    arch_map: Vec<ArchMapEntry>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    syscalls: Vec<ProfileSyscall>,
}

/// An architecture and the sub-architectures a process of it may also use (x86_64 runs x86 and x32 code).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMapEntry {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

/// One rule group of a profile, with the conditions under which it applies.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileSyscall {
    /// The older single-name form (exclusive with `names`).
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Vec<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Conditions,
    #[serde(default)]
    excludes: Conditions,
}

/// `includes` / `excludes` of a rule group.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Conditions {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// The host as a profile sees it: the architecture's name in `includes.arches` (Go's names, as moby's `goToNative`
/// maps them: `amd64`, `arm64`, ...), its libseccomp name (`SCMP_ARCH_X86_64`), and the kernel's `major.minor`.
#[derive(Debug, Clone, Copy)]
struct Host {
    arch: &'static str,
    seccomp_arch: &'static str,
    kernel: Option<(u32, u32)>,
}

/// The architecture this binary runs on, named as moby names it; `None` for ones the profile does not know.
fn native_arch() -> Option<(&'static str, &'static str)> {
    Some(match std::env::consts::ARCH {
        "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
        "x86" => ("x86", "SCMP_ARCH_X86"),
        "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
        "arm" => ("arm", "SCMP_ARCH_ARM"),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", "SCMP_ARCH_PPC64LE"),
        "powerpc64" => ("ppc64", "SCMP_ARCH_PPC64"),
        "s390x" => ("s390x", "SCMP_ARCH_S390X"),
        "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
        "loongarch64" => ("loong64", "SCMP_ARCH_LOONGARCH64"),
        "mips64" if cfg!(target_endian = "little") => ("mipsel64", "SCMP_ARCH_MIPSEL64"),
        "mips64" => ("mips64", "SCMP_ARCH_MIPS64"),
        _ => return None,
    })
}

/// `major.minor` of a kernel release such as `6.8.0-45-generic` (moby compares only these two).
fn parse_kernel_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts.next()?.chars().take_while(char::is_ascii_digit).collect();
    Some((major, minor.parse().ok()?))
}

/// The running kernel's `major.minor`, read once.
fn host_kernel() -> Result<(u32, u32), Error> {
    static KERNEL: OnceLock<Result<(u32, u32), KernelVersionError>> = OnceLock::new();
    KERNEL
        .get_or_init(|| {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_err(|e| KernelVersionError::Read(Arc::new(e)))?;
            parse_kernel_release(&release).ok_or_else(|| KernelVersionError::Unrecognised(release.trim().to_string()))
        })
        .clone()
        .map_err(Error::KernelVersion)
}

/// `CAP_SYS_ADMIN` for `sys_admin`, `SYS_ADMIN` or `CAP_SYS_ADMIN`.
fn normalize_cap(cap: &str) -> String {
    let cap = cap.to_ascii_uppercase();
    if cap.starts_with("CAP_") { cap } else { format!("CAP_{cap}") }
}

fn parse_arch(name: &str) -> Result<Arch, Error> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| Error::Invalid(format!("unknown architecture {name:?}")))
}

/// Whether kernel `have` is at least `min` (`"4.8"`).
fn kernel_at_least(have: Option<(u32, u32)>, min: &str) -> Result<bool, Error> {
    let want = parse_kernel_release(min).ok_or_else(|| Error::Invalid(format!("invalid minKernel {min:?}")))?;
    let have = have.ok_or(Error::KernelVersion(KernelVersionError::Unknown))?;
    Ok(have >= want)
}

/// Whether a rule group applies, as moby's `setupSeccomp` decides: every excluded item must be absent and every
/// included one present (capabilities are those of the container's bounding set).
fn applies(rule: &ProfileSyscall, caps: &[String], host: &Host) -> Result<bool, Error> {
    let (inc, exc) = (&rule.includes, &rule.excludes);
    if exc.arches.iter().any(|a| a == host.arch) {
        return Ok(false);
    }
    if exc.caps.iter().any(|c| caps.contains(&normalize_cap(c))) {
        return Ok(false);
    }
    if let Some(min) = &exc.min_kernel
        && kernel_at_least(host.kernel, min)?
    {
        return Ok(false);
    }
    if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == host.arch) {
        return Ok(false);
    }
    if !inc.caps.iter().all(|c| caps.contains(&normalize_cap(c))) {
        return Ok(false);
    }
    if let Some(min) = &inc.min_kernel
        && !kernel_at_least(host.kernel, min)?
    {
        return Ok(false);
    }
    Ok(true)
}

/// Resolves `profile` for a container with capabilities `caps` on `host`, as moby's `setupSeccomp` does (with its
/// refusals of contradictory profiles).
fn resolve(profile: &Profile, caps: &[String], host: &Host) -> Result<LinuxSeccomp, Error> {
    let caps: Vec<String> = caps.iter().map(|c| normalize_cap(c)).collect();
    if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
        return Err(Error::Invalid(
            "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or \
             'archMap'"
                .into(),
        ));
    }
    if profile.listener_path.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(Error::Unsupported("a seccomp listener (listenerPath, SCMP_ACT_NOTIFY)".into()));
    }
    let default_action = profile
        .default_action
        .ok_or_else(|| Error::Invalid("the profile lists syscalls but has no defaultAction".into()))?;
    let mut architectures = profile.architectures.clone();
    if let Some(entry) = profile.arch_map.iter().find(|e| e.architecture == host.seccomp_arch) {
        architectures.push(parse_arch(&entry.architecture)?);
        for sub in entry.sub_architectures.iter().flatten() {
            architectures.push(parse_arch(sub)?);
        }
    }
    let mut syscalls = Vec::new();
    for rule in &profile.syscalls {
        if !applies(rule, &caps, host)? {
            continue;
        }
        let names = match (&rule.name, rule.names.is_empty()) {
            (Some(_), false) => {
                return Err(Error::Invalid(
                    "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'".into(),
                ));
            }
            (Some(name), true) => vec![name.clone()],
            (None, _) => rule.names.clone(),
        };
        let mut call = LinuxSyscall::default();
        call.set_names(names).set_action(rule.action).set_errno_ret(rule.errno_ret);
        call.set_args(rule.args.clone().filter(|a| !a.is_empty()));
        syscalls.push(call);
    }
    let mut seccomp = LinuxSeccomp::default();
    seccomp
        .set_default_action(default_action)
        .set_default_errno_ret(profile.default_errno_ret)
        .set_architectures((!architectures.is_empty()).then_some(architectures))
        .set_flags(profile.flags.clone().filter(|f| !f.is_empty()))
        .set_syscalls(Some(syscalls));
    Ok(seccomp)
}

/// The host this process runs on, with its kernel version when `profile` has rules that depend on it.
fn this_host(profile: &Profile) -> Result<Host, Error> {
    let (arch, seccomp_arch) = native_arch().unwrap_or(("", ""));
    let needs_kernel =
        profile.syscalls.iter().any(|s| s.includes.min_kernel.is_some() || s.excludes.min_kernel.is_some());
    let kernel = if needs_kernel { Some(host_kernel()?) } else { None };
    Ok(Host { arch, seccomp_arch, kernel })
}

/// Docker's default profile for a container whose bounding set is `caps` (`CAP_SYS_ADMIN` style names), resolved
/// like moby does for this host: the host's architecture and its sub-architectures, and only the rule groups whose
/// `includes` / `excludes` (capabilities, architectures, minimum kernel) match.
pub fn docker_default(caps: &[String]) -> Result<LinuxSeccomp, Error> {
    let profile: Profile = serde_json::from_str(DEFAULT_PROFILE).map_err(Error::Profile)?;
    resolve(&profile, caps, &this_host(&profile)?)
}

/// A user's profile (the JSON of `--security-opt seccomp=<json>`, Docker's format) resolved for a container whose
/// bounding set is `caps`, as [`docker_default`] resolves the default one. `None` for a profile with neither a
/// default action nor syscalls (`{}`), which moby takes as "no filter". Checked by compiling it, so that an invalid
/// profile is refused when the container is created rather than when it starts.
pub fn custom(json: &str, caps: &[String]) -> Result<Option<LinuxSeccomp>, Error> {
    let profile: Profile = serde_json::from_str(json).map_err(Error::Decode)?;
    if profile.default_action.is_none() && profile.syscalls.is_empty() {
        return Ok(None);
    }
    let seccomp = resolve(&profile, caps, &this_host(&profile)?)?;
    Filter::compile(&seccomp)?;
    Ok(Some(seccomp))
}

// ---- Compiled filters ---------------------------------------------------------------------------------------------

/// A seccomp filter compiled to a BPF program, ready to be loaded into the calling process.
pub struct Filter {
    /// The program, one `struct sock_filter` per instruction (properly aligned for the kernel).
    program: Vec<libc::sock_filter>,
    /// Its length, checked at compile time to fit the kernel's limit.
    len: u16,
    /// `SECCOMP_FILTER_FLAG_*` bits for seccomp(2); 0 loads through prctl(2).
    flags: libc::c_ulong,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter").field("instructions", &self.len).field("flags", &self.flags).finish()
    }
}

/// The libseccomp action for an OCI one; `errno` is the rule's `errnoRet` (EPERM when absent).
fn scmp_action(action: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, Error> {
    let errno = errno.unwrap_or(DEFAULT_ERRNO);
    let errno16 =
        u16::try_from(errno).map_err(|_| Error::Invalid(format!("errno {errno} of {action} is out of range")))?;
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(errno16)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno16),
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        // SCMP_ACT_KILL is the historical name of SCMP_ACT_KILL_THREAD.
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Error::Unsupported("SCMP_ACT_NOTIFY (seccomp user notification)".into()));
        }
    })
}

fn scmp_arch(arch: Arch) -> Result<ScmpArch, Error> {
    let name = serde_json::to_value(arch).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    name.parse().map_err(|_| Error::Unsupported(format!("architecture {name}")))
}

fn scmp_condition(arg: &LinuxSeccompArg) -> Result<ScmpArgCompare, Error> {
    let index = u32::try_from(arg.index())
        .ok()
        .filter(|i| *i < 6)
        .ok_or_else(|| Error::Invalid(format!("syscall argument index {} is out of range", arg.index())))?;
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
        // As in runc: `value` is the mask, `valueTwo` the value the masked argument must equal.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            (ScmpCompareOp::MaskedEqual(arg.value()), arg.value_two().unwrap_or(0))
        }
    };
    Ok(ScmpArgCompare::new(index, op, datum))
}

fn filter_flag(flag: LinuxSeccompFilterFlag) -> Result<libc::c_ulong, Error> {
    Ok(match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
            return Err(Error::Unsupported(
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (seccomp user notification)".into(),
            ));
        }
    })
}

/// Writes the context's BPF program into a memfd and reads it back.
fn export_bpf(ctx: &ScmpFilterContext) -> Result<Vec<u8>, Error> {
    let fd = memfd_create("berth-seccomp", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| Error::Export(std::io::Error::from_raw_os_error(e as i32)))?;
    ctx.export_bpf(&fd).map_err(libseccomp_err("export the bpf program"))?;
    let mut file = File::from(fd);
    file.seek(SeekFrom::Start(0)).map_err(Error::Export)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(Error::Export)?;
    Ok(bytes)
}

/// Turns exported bytes into instructions: `struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }` in native byte
/// order, 8 bytes each.
fn to_program(bytes: &[u8]) -> Result<Vec<libc::sock_filter>, Error> {
    const INSN: usize = std::mem::size_of::<libc::sock_filter>();
    if bytes.is_empty() || !bytes.len().is_multiple_of(INSN) {
        return Err(Error::Invalid(format!("libseccomp exported {} bytes, not a bpf program", bytes.len())));
    }
    Ok(bytes
        .chunks_exact(INSN)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

impl Filter {
    /// Compiles `seccomp` with libseccomp: default action, architectures, one rule per syscall name and argument
    /// conditions. Syscalls unknown to this libseccomp are skipped (as runc does: the kernel cannot have them either),
    /// and so are rules whose action is the default one. `SCMP_ACT_NOTIFY` and listener sockets are refused.
    /// Runs in the parent, before the fork.
    pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter, Error> {
        if seccomp.listener_path().is_some() {
            return Err(Error::Unsupported("a seccomp listener (listenerPath)".into()));
        }
        let default = scmp_action(seccomp.default_action(), seccomp.default_errno_ret())?;
        let mut ctx = ScmpFilterContext::new(default).map_err(libseccomp_err("create the filter"))?;
        for arch in seccomp.architectures().iter().flatten() {
            ctx.add_arch(scmp_arch(*arch)?).map_err(libseccomp_err(format!("add architecture {arch}")))?;
        }
        let mut flags = 0;
        for flag in seccomp.flags().iter().flatten() {
            flags |= filter_flag(*flag)?;
        }
        for call in seccomp.syscalls().iter().flatten() {
            let action = scmp_action(call.action(), call.errno_ret())?;
            if action == default {
                // libseccomp refuses rules that repeat the default action; they would change nothing anyway.
                continue;
            }
            let args = call.args().as_deref().unwrap_or_default();
            let conditions = args.iter().map(scmp_condition).collect::<Result<Vec<_>, _>>()?;
            // libseccomp ANDs the conditions of one rule, but cannot compare one argument twice in a rule: then each
            // condition becomes a rule of its own (ORed), as runc does.
            let mut indices: Vec<usize> = args.iter().map(|a| a.index()).collect();
            indices.sort_unstable();
            let repeated = indices.windows(2).any(|w| w[0] == w[1]);
            for name in call.names() {
                let Ok(syscall) = ScmpSyscall::from_name(name) else {
                    tracing::debug!("seccomp: syscall {name:?} unknown to libseccomp, rule skipped");
                    continue;
                };
                let err = |source| Error::Libseccomp { what: format!("add a rule for {name}"), source };
                if conditions.is_empty() {
                    ctx.add_rule(action, syscall).map_err(err)?;
                } else if repeated {
                    for c in &conditions {
                        ctx.add_rule_conditional(action, syscall, std::slice::from_ref(c)).map_err(err)?;
                    }
                } else {
                    ctx.add_rule_conditional(action, syscall, &conditions).map_err(err)?;
                }
            }
        }
        // The program is loaded by `load`, not by libseccomp, so libseccomp's no_new_privs attribute plays no part:
        // the caller decides about no_new_privs.
        let program = to_program(&export_bpf(&ctx)?)?;
        let len =
            u16::try_from(program.len()).ok().filter(|n| i32::from(*n) <= libc::BPF_MAXINSNS).ok_or_else(|| {
                Error::Invalid(format!(
                    "the filter has {} instructions, the kernel takes {} at most",
                    program.len(),
                    libc::BPF_MAXINSNS
                ))
            })?;
        Ok(Filter { program, len, flags })
    }

    /// Like [`Filter::compile`], through a cache of compiled programs in `dir` (compiling Docker's default profile
    /// takes libseccomp 15-20 ms, most of a container's start). An entry holds the profile's exact JSON next to its
    /// program and is used only when the JSON is identical, so a hash collision cannot pick the wrong filter. A
    /// cache that cannot be read or written only costs the compile.
    pub fn compile_cached(seccomp: &LinuxSeccomp, dir: &Path) -> Result<Filter, Error> {
        let Ok(key) = serde_json::to_vec(seccomp) else { return Filter::compile(seccomp) };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        let path = dir.join(format!("{:016x}.bpf", h.finish()));
        if let Some(f) = std::fs::read(&path).ok().and_then(|bytes| Filter::decode(&key, &bytes)) {
            return Ok(f);
        }
        let f = Filter::compile(seccomp)?;
        let tmp = dir.join(format!(".{:016x}.{}", h.finish(), std::process::id()));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, f.encode(&key)))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!("seccomp: cannot cache the filter in {}: {e}", dir.display());
        }
        Ok(f)
    }

    /// A cache entry: key length (u64 LE), key, flags (u64 LE), then the program's instructions.
    fn encode(&self, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + key.len() + self.program.len() * 8);
        out.extend((key.len() as u64).to_le_bytes());
        out.extend(key);
        out.extend(self.flags.to_le_bytes());
        for i in &self.program {
            out.extend(i.code.to_ne_bytes());
            out.extend([i.jt, i.jf]);
            out.extend(i.k.to_ne_bytes());
        }
        out
    }

    /// Reads a cache entry written by [`Filter::encode`] for exactly `key`.
    fn decode(key: &[u8], bytes: &[u8]) -> Option<Filter> {
        let word = |b: &[u8]| b.try_into().ok().map(u64::from_le_bytes);
        let key_len = usize::try_from(word(bytes.get(..8)?)?).ok()?;
        let rest = &bytes[8..];
        if rest.get(..key_len)? != key {
            return None;
        }
        let rest = &rest[key_len..];
        let flags = libc::c_ulong::try_from(word(rest.get(..8)?)?).ok()?;
        let program = to_program(&rest[8..]).ok()?;
        let len = u16::try_from(program.len()).ok().filter(|n| i32::from(*n) <= libc::BPF_MAXINSNS)?;
        Some(Filter { program, len, flags })
    }

    /// Loads the filter into the calling thread (and, with `SECCOMP_FILTER_FLAG_TSYNC`, its siblings). Allocates
    /// nothing: safe between fork and exec. Needs no_new_privs or CAP_SYS_ADMIN.
    pub fn load(&self) -> Result<(), Error> {
        let prog = libc::sock_fprog { len: self.len, filter: self.program.as_ptr().cast_mut() };
        let loaded =
            if self.flags == 0 { prctl_set_seccomp(&prog) } else { seccomp_set_mode_filter(&prog, self.flags) };
        loaded.map_err(Error::Load)
    }
}

/// The kernel's `AUDIT_ARCH_*` of this build, as a filter sees it in `seccomp_data.arch`.
fn audit_arch() -> Option<u32> {
    match std::env::consts::ARCH {
        "x86_64" => Some(0xC000_003E),
        "aarch64" => Some(0xC000_00B7),
        _ => None,
    }
}

impl Filter {
    /// Runs the program on a system call as the kernel would (classic BPF over `struct seccomp_data`: number,
    /// architecture, instruction pointer 0, `args`) and returns its action (`SECCOMP_RET_*` with its data), or `None`
    /// for an architecture or instruction this does not know, or a program that does not end properly.
    fn verdict(&self, arch: u32, nr: i64, args: &[u64; 6]) -> Option<u32> {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&i32::try_from(nr).ok()?.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut a, mut x, mut mem, mut pc) = (0u32, 0u32, [0u32; 16], 0usize);
        loop {
            let ins = self.program.get(pc)?;
            let k = ins.k;
            pc += 1;
            match ins.code {
                0x20 => {
                    // BPF_LD | BPF_W | BPF_ABS
                    let off = usize::try_from(k).ok().filter(|o| o % 4 == 0 && *o + 4 <= data.len())?;
                    a = u32::from_ne_bytes(data[off..off + 4].try_into().ok()?);
                }
                0x00 => a = k,                                       // BPF_LD | BPF_IMM
                0x01 => x = k,                                       // BPF_LDX | BPF_IMM
                0x60 => a = *mem.get(usize::try_from(k).ok()?)?,     // BPF_LD | BPF_MEM
                0x61 => x = *mem.get(usize::try_from(k).ok()?)?,     // BPF_LDX | BPF_MEM
                0x02 => *mem.get_mut(usize::try_from(k).ok()?)? = a, // BPF_ST
                0x03 => *mem.get_mut(usize::try_from(k).ok()?)? = x, // BPF_STX
                0x07 => x = a,                                       // BPF_MISC | BPF_TAX
                0x87 => a = x,                                       // BPF_MISC | BPF_TXA
                0x06 => return Some(k),                              // BPF_RET | BPF_K
                0x16 => return Some(a),                              // BPF_RET | BPF_A
                code if code & 0x07 == 0x04 => {
                    // BPF_ALU, with K or X
                    let v = if code & 0x08 != 0 { x } else { k };
                    a = match code & 0xf0 {
                        0x00 => a.wrapping_add(v),
                        0x10 => a.wrapping_sub(v),
                        0x20 => a.wrapping_mul(v),
                        0x30 => a.checked_div(v)?,
                        0x40 => a | v,
                        0x50 => a & v,
                        0x60 => a.checked_shl(v).unwrap_or(0),
                        0x70 => a.checked_shr(v).unwrap_or(0),
                        0x80 => a.wrapping_neg(),
                        0x90 => a.checked_rem(v)?,
                        0xa0 => a ^ v,
                        _ => return None,
                    };
                }
                code if code & 0x07 == 0x05 => {
                    // BPF_JMP
                    let v = if code & 0x08 != 0 { x } else { k };
                    let taken = match code & 0xf0 {
                        0x00 => {
                            pc = pc.checked_add(usize::try_from(k).ok()?)?;
                            continue;
                        }
                        0x10 => a == v,
                        0x20 => a > v,
                        0x30 => a >= v,
                        0x40 => a & v != 0,
                        _ => return None,
                    };
                    pc += usize::from(if taken { ins.jt } else { ins.jf });
                }
                _ => return None,
            }
        }
    }

    /// Whether the filter lets every one of `calls` (system call number and arguments) through unchanged
    /// (`SECCOMP_RET_ALLOW`) on this machine's architecture. False when it cannot tell.
    pub fn allows_all(&self, calls: &[(i64, [u64; 6])]) -> bool {
        const SECCOMP_RET_ACTION_FULL: u32 = 0xffff_0000;
        const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
        let Some(arch) = audit_arch() else { return false };
        calls.iter().all(|(nr, args)| {
            self.verdict(arch, *nr, args).is_some_and(|v| v & SECCOMP_RET_ACTION_FULL == SECCOMP_RET_ALLOW)
        })
    }
}

/// `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog)`.
fn prctl_set_seccomp(prog: &libc::sock_fprog) -> Result<(), nix::Error> {
    let mode = libc::c_ulong::from(libc::SECCOMP_MODE_FILTER);
    // SAFETY: the kernel reads `prog` (a live `sock_fprog`) and the `len` instructions it points at, which live in
    // the `Filter`'s vector borrowed for the duration of the call; it copies them and keeps no pointer.
    let ret = unsafe { libc::prctl(libc::PR_SET_SECCOMP, mode, prog as *const libc::sock_fprog, 0, 0) };
    if ret == -1 { Err(nix::Error::last()) } else { Ok(()) }
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`, for filters with flags.
fn seccomp_set_mode_filter(prog: &libc::sock_fprog, flags: libc::c_ulong) -> Result<(), nix::Error> {
    let op = libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER);
    // SAFETY: as in `prctl_set_seccomp`: the kernel copies the program `prog` describes, which outlives the call.
    let ret = unsafe { libc::syscall(libc::SYS_seccomp, op, flags, prog as *const libc::sock_fprog) };
    if ret == -1 { Err(nix::Error::last()) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Docker's default capabilities.
    fn default_caps() -> Vec<String> {
        crate::process::DEFAULT_CAPS.iter().map(|c| c.to_string()).collect()
    }

    fn rules_for<'a>(s: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        s.syscalls().iter().flatten().filter(|c| c.names().iter().any(|n| n == name)).collect()
    }

    fn allowed_unconditionally(s: &LinuxSeccomp, name: &str) -> bool {
        rules_for(s, name).iter().any(|c| c.action() == LinuxSeccompAction::ScmpActAllow && c.args().is_none())
    }

    fn x86_64_host() -> Host {
        Host { arch: "amd64", seccomp_arch: "SCMP_ARCH_X86_64", kernel: Some((6, 8)) }
    }

    fn profile() -> Profile {
        serde_json::from_str(DEFAULT_PROFILE).expect("default profile parses")
    }

    #[test]
    fn default_profile_parses_with_every_arch() {
        let p = profile();
        for e in &p.arch_map {
            parse_arch(&e.architecture).expect("arch");
            for s in e.sub_architectures.iter().flatten() {
                parse_arch(s).expect("sub-arch");
            }
        }
        assert_eq!(p.default_action, Some(LinuxSeccompAction::ScmpActErrno));
    }

    #[test]
    fn default_caps_profile() {
        let s = resolve(&profile(), &default_caps(), &x86_64_host()).expect("resolve");
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        for name in ["read", "write", "execve", "exit_group", "arch_prctl", "modify_ldt", "chroot"] {
            assert!(allowed_unconditionally(&s, name), "{name} should be allowed");
        }
        for name in ["mount", "umount2", "setns", "unshare", "bpf", "reboot", "riscv_flush_icache"] {
            assert!(rules_for(&s, name).is_empty(), "{name} should not be in the profile");
        }
        // ptrace is allowed from kernel 4.8 on.
        assert!(allowed_unconditionally(&s, "ptrace"));
        // clone only without namespace flags; clone3 fails with ENOSYS so that libc falls back to clone.
        let clone = rules_for(&s, "clone");
        assert_eq!(clone.len(), 1);
        let arg = clone[0].args().as_ref().expect("clone args")[0];
        assert_eq!((arg.index(), arg.value(), arg.op()), (0, 2114060288, LinuxSeccompOperator::ScmpCmpMaskedEq));
        let clone3 = rules_for(&s, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!((clone3[0].action(), clone3[0].errno_ret()), (LinuxSeccompAction::ScmpActErrno, Some(38)));
        // The personality values Docker allows.
        assert_eq!(rules_for(&s, "personality").len(), 5);
    }

    #[test]
    fn sys_admin_profile() {
        let mut caps = default_caps();
        caps.push("CAP_SYS_ADMIN".into());
        let s = resolve(&profile(), &caps, &x86_64_host()).expect("resolve");
        for name in ["mount", "umount2", "setns", "unshare", "clone", "clone3", "sethostname"] {
            assert!(allowed_unconditionally(&s, name), "{name} should be allowed");
        }
        // The conditional clone and the clone3 ENOSYS rule are for containers without CAP_SYS_ADMIN only.
        assert!(rules_for(&s, "clone").iter().all(|c| c.args().is_none()));
        assert!(rules_for(&s, "clone3").iter().all(|c| c.action() == LinuxSeccompAction::ScmpActAllow));
        // Capability names without the prefix work too.
        let s = resolve(&profile(), &["sys_admin".to_string()], &x86_64_host()).expect("resolve");
        assert!(allowed_unconditionally(&s, "mount"));
    }

    #[test]
    fn arch_and_kernel_conditions() {
        let arm = Host { arch: "arm64", seccomp_arch: "SCMP_ARCH_AARCH64", kernel: Some((4, 4)) };
        let s = resolve(&profile(), &default_caps(), &arm).expect("resolve");
        assert_eq!(s.architectures().as_deref(), Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..]));
        assert!(rules_for(&s, "arch_prctl").is_empty());
        assert!(allowed_unconditionally(&s, "set_tls"));
        // Kernel 4.4 is older than ptrace's minKernel 4.8.
        assert!(rules_for(&s, "ptrace").is_empty());
        assert_eq!(parse_kernel_release("6.18.44-fc-v1045"), Some((6, 18)));
        assert_eq!(parse_kernel_release("3.12-1-amd64"), Some((3, 12)));
        assert_eq!(parse_kernel_release("garbage"), None);
    }

    #[test]
    fn custom_profiles() {
        let caps = default_caps();
        // moby: neither a default action nor syscalls means no filter.
        assert!(custom("{}", &caps).expect("empty").is_none());
        let p = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":28},
                        {"names":["mount"],"action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_SYS_ADMIN"]}}]}"#;
        let s = custom(p, &caps).expect("profile").expect("a filter");
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(rules_for(&s, "mkdir")[0].errno_ret(), Some(28));
        assert_eq!(rules_for(&s, "mount").len(), 1);
        let mut admin = caps.clone();
        admin.push("CAP_SYS_ADMIN".into());
        assert!(rules_for(&custom(p, &admin).expect("p").expect("f"), "mount").is_empty());
        // The whole default profile is a valid custom one, resolving to the same filter.
        assert_eq!(custom(DEFAULT_PROFILE, &caps).expect("default").expect("f"), docker_default(&caps).expect("d"));
        for (bad, want) in [
            ("/etc/passwd", "Decoding seccomp profile failed"),
            (r#"{"defaultAction":"SCMP_ACT_NOPE"}"#, "Decoding seccomp profile failed"),
            (r#"{"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#, "no defaultAction"),
            (r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x"}"#, "listenerPath"),
        ] {
            let e = custom(bad, &caps).expect_err(bad).to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn docker_default_serializes_like_oci() {
        let s = docker_default(&default_caps()).expect("docker_default");
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        let back: LinuxSeccomp = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, s);
    }

    #[test]
    fn filters_are_evaluated_like_the_kernel() {
        let s = docker_default(&default_caps()).expect("docker_default");
        let f = Filter::compile(&s).expect("compile");
        let none = [0u64; 6];
        let calls = [(libc::SYS_setuid, [1000, 0, 0, 0, 0, 0]), (libc::SYS_capset, none), (libc::SYS_execve, none)];
        assert!(f.allows_all(&calls));
        // Refused by Docker's profile without CAP_SYS_ADMIN.
        assert!(!f.allows_all(&[(libc::SYS_mount, none)]));
        assert!(!f.allows_all(&[(libc::SYS_keyctl, none)]));
        // Argument rules: personality(0) is allowed, personality(0x4242) not.
        assert!(f.allows_all(&[(libc::SYS_personality, none)]));
        assert!(!f.allows_all(&[(libc::SYS_personality, [0x4242, 0, 0, 0, 0, 0])]));
        // A profile that refuses setuid.
        let mut deny = LinuxSeccomp::default();
        deny.set_default_action(LinuxSeccompAction::ScmpActAllow);
        let mut call = LinuxSyscall::default();
        call.set_names(vec!["setuid".into()]).set_action(LinuxSeccompAction::ScmpActErrno);
        deny.set_syscalls(Some(vec![call]));
        let f = Filter::compile(&deny).expect("compile");
        assert!(f.allows_all(&[(libc::SYS_capset, none)]));
        assert!(!f.allows_all(&calls));
    }

    #[test]
    fn compile_default_profile() {
        let s = docker_default(&default_caps()).expect("docker_default");
        let f = Filter::compile(&s).expect("compile");
        assert!(f.len > 0);
        assert_eq!(f.flags, 0);
        let mut caps = default_caps();
        caps.push("CAP_SYS_ADMIN".into());
        Filter::compile(&docker_default(&caps).expect("docker_default")).expect("compile");
    }

    #[test]
    fn exported_bpf_is_sock_filters() {
        let mut ctx = ScmpFilterContext::new(ScmpAction::Allow).expect("ctx");
        ctx.add_rule(ScmpAction::Errno(1), ScmpSyscall::from_name("getppid").expect("getppid")).expect("rule");
        let bytes = export_bpf(&ctx).expect("export");
        assert!(!bytes.is_empty());
        assert_eq!(bytes.len() % 8, 0);
        let program = to_program(&bytes).expect("program");
        assert_eq!(program.len(), bytes.len() / 8);
        // The last instruction is a return (BPF_RET | BPF_K = 0x06).
        assert_eq!(program[program.len() - 1].code, 0x06);
        assert!(to_program(&bytes[..7]).is_err());
    }

    #[test]
    fn actions_and_refusals() {
        assert_eq!(scmp_action(LinuxSeccompAction::ScmpActErrno, None).expect("errno"), ScmpAction::Errno(1));
        assert_eq!(scmp_action(LinuxSeccompAction::ScmpActErrno, Some(38)).expect("errno"), ScmpAction::Errno(38));
        assert_eq!(scmp_action(LinuxSeccompAction::ScmpActTrace, Some(7)).expect("trace"), ScmpAction::Trace(7));
        assert_eq!(scmp_action(LinuxSeccompAction::ScmpActKill, None).expect("kill"), ScmpAction::KillThread);
        assert_eq!(scmp_action(LinuxSeccompAction::ScmpActKillProcess, None).expect("kill"), ScmpAction::KillProcess);
        assert_eq!(scmp_action(LinuxSeccompAction::ScmpActLog, None).expect("log"), ScmpAction::Log);
        assert!(matches!(scmp_action(LinuxSeccompAction::ScmpActNotify, None), Err(Error::Unsupported(_))));
        assert!(scmp_action(LinuxSeccompAction::ScmpActErrno, Some(70000)).is_err());

        let mut s = LinuxSeccomp::default();
        s.set_default_action(LinuxSeccompAction::ScmpActAllow);
        let mut call = LinuxSyscall::default();
        call.set_names(vec!["getppid".into()]).set_action(LinuxSeccompAction::ScmpActNotify);
        s.set_syscalls(Some(vec![call]));
        let err = Filter::compile(&s).expect_err("notify is refused");
        assert_eq!(err.to_string(), "seccomp: SCMP_ACT_NOTIFY (seccomp user notification) is not supported");
    }

    #[test]
    fn unknown_syscalls_are_skipped_and_flags_kept() {
        let mut s = LinuxSeccomp::default();
        s.set_default_action(LinuxSeccompAction::ScmpActAllow)
            .set_flags(Some(vec![LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow]));
        let mut call = LinuxSyscall::default();
        call.set_names(vec!["no_such_syscall_at_all".into(), "getppid".into()])
            .set_action(LinuxSeccompAction::ScmpActErrno);
        s.set_syscalls(Some(vec![call]));
        let f = Filter::compile(&s).expect("compile");
        assert_eq!(f.flags, libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW);
    }

    /// Runs `probe` in a forked child after loading `filter` (with no_new_privs, so without privileges) and returns
    /// the child's exit code: `probe`'s result, or 100 when the filter could not be loaded.
    fn in_filtered_child(filter: &Filter, probe: fn() -> i32) -> i32 {
        // SAFETY: the child only makes system calls (prctl, the probe's) and leaves with _exit, all
        // async-signal-safe, so the other threads of the test harness do not matter.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                // SAFETY: prctl with integer arguments.
                let nnp = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) };
                let code = if nnp != 0 || filter.load().is_err() { 100 } else { probe() };
                // SAFETY: _exit ends the forked child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None).expect("waitpid") {
                nix::sys::wait::WaitStatus::Exited(_, code) => code,
                other => panic!("child ended with {other:?}"),
            },
        }
    }

    /// The errno of a failed raw syscall result, 0 on success.
    fn errno_of(ret: libc::c_long) -> i32 {
        if ret == -1 { nix::Error::last() as i32 } else { 0 }
    }

    #[test]
    fn default_profile_in_forked_child() {
        let filter = Filter::compile(&docker_default(&default_caps()).expect("profile")).expect("compile");
        // Allowed: getpid. Denied with EPERM: unshare (CAP_SYS_ADMIN only). ENOSYS: clone3, so that libc falls back.
        let code = in_filtered_child(&filter, || {
            // SAFETY: raw syscalls with integer arguments; unshare(0) changes nothing, clone3 with a null argument
            // fails before doing anything, even without the filter.
            let (getpid, unshare, clone3) = unsafe {
                (
                    errno_of(libc::syscall(libc::SYS_getpid)),
                    errno_of(libc::syscall(libc::SYS_unshare, 0)),
                    errno_of(libc::syscall(libc::SYS_clone3, 0usize, 0usize)),
                )
            };
            match (getpid, unshare, clone3) {
                (0, libc::EPERM, libc::ENOSYS) => 0,
                (0, _, _) => 2,
                _ => 1,
            }
        });
        assert_eq!(code, 0);
    }

    /// Loads a filter that makes getppid fail with errno 42 in a forked child; the test process itself stays
    /// unfiltered.
    #[test]
    fn load_in_forked_child() {
        let mut s = LinuxSeccomp::default();
        s.set_default_action(LinuxSeccompAction::ScmpActAllow);
        let mut call = LinuxSyscall::default();
        call.set_names(vec!["getppid".into()]).set_action(LinuxSeccompAction::ScmpActErrno).set_errno_ret(Some(42));
        s.set_syscalls(Some(vec![call]));
        let filter = Filter::compile(&s).expect("compile");
        let code = in_filtered_child(&filter, || {
            // SAFETY: getppid takes no arguments.
            let ret = unsafe { libc::syscall(libc::SYS_getppid) };
            if errno_of(ret) == 42 { 0 } else { 1 }
        });
        assert_eq!(code, 0);
        // The parent is unaffected.
        assert!(nix::unistd::getppid().as_raw() > 0);
    }

    #[test]
    fn cached_filters_match_compiled_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let profile = docker_default(&default_caps()).expect("profile");
        let fresh = Filter::compile(&profile).expect("compile");
        let first = Filter::compile_cached(&profile, dir.path()).expect("first");
        let cached = Filter::compile_cached(&profile, dir.path()).expect("cached");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
        for f in [&first, &cached] {
            assert_eq!(f.encode(b"k"), fresh.encode(b"k"));
        }
        // Another profile gets its own entry; a damaged entry is compiled again.
        let mut caps = default_caps();
        caps.push("CAP_SYS_ADMIN".into());
        let other = docker_default(&caps).expect("profile");
        Filter::compile_cached(&other, dir.path()).expect("other");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 2);
        for e in std::fs::read_dir(dir.path()).expect("dir").flatten() {
            std::fs::write(e.path(), b"garbage").expect("damage");
        }
        let again = Filter::compile_cached(&profile, dir.path()).expect("again");
        assert_eq!(again.encode(b"k"), fresh.encode(b"k"));
    }
}
