//! `berthd`, the Berth daemon: serves the Docker Engine API over a Unix socket and owns all state under its data root.
//!
//! HTTP routes (in `routes/`) parse requests into typed calls on the managers (`containers`, `exec`, images in
//! `berth-store`); the managers never see HTTP. Containers are run by one `berth-shim` per container, so they outlive
//! this process.

#![recursion_limit = "256"]

mod archive;
mod boot;
mod build;
mod commit;
mod config_file;
mod containers;
mod daemon;
mod disk;
mod error;
mod events;
mod exec;
mod filters;
mod health;
mod hijack;
mod images;
mod init;
#[cfg(test)]
mod layering;
mod lock;
mod logs;
mod memory;
mod mounts;
mod names;
mod networks;
mod phases;
mod pods;
mod recover;
mod reload;
mod routes;
mod security;
mod server;
mod spec;
mod stats;
mod task;
mod ui;
mod userns;
mod views;
mod volumes;

use std::path::PathBuf;

use anyhow::{Context, Result};

/// The Berth daemon: a Docker-compatible container engine.
#[derive(Debug, clap::Parser)]
#[command(name = "berthd", version, about)]
struct Args {
    /// Where to serve the Engine API (repeatable): `unix:///path` or `tcp://IP:PORT` (TCP needs --tlsverify).
    #[arg(short = 'H', long, default_value = "unix:///run/berth/berth.sock")]
    host: Vec<String>,
    /// Use TLS on tcp:// hosts (implied by --tlsverify); without --tlsverify only with --insecure-tcp-for-tests
    #[arg(long)]
    tls: bool,
    /// Use TLS on tcp:// hosts and require client certificates signed by --tlscacert (mutual TLS)
    #[arg(long)]
    tlsverify: bool,
    /// CA that client certificates must be signed by (default: $DOCKER_CERT_PATH or ~/.docker, ca.pem)
    #[arg(long, value_name = "PEM")]
    tlscacert: Option<PathBuf>,
    /// The server's certificate (default: $DOCKER_CERT_PATH or ~/.docker, cert.pem)
    #[arg(long, value_name = "PEM")]
    tlscert: Option<PathBuf>,
    /// The server's private key (default: $DOCKER_CERT_PATH or ~/.docker, key.pem)
    #[arg(long, value_name = "PEM")]
    tlskey: Option<PathBuf>,
    /// Allow tcp:// hosts without --tlsverify: anyone who can reach the port then controls the host as root.
    /// For tests only.
    #[arg(long)]
    insecure_tcp_for_tests: bool,
    /// The group that owns the API socket (mode 0660; its members can do anything root can). Default: `berth`
    /// where that group exists, else none (root only).
    #[arg(short = 'G', long, value_name = "NAME")]
    group: Option<String>,
    /// Where images, containers and the database live (one berthd per data root and per exec root: another one
    /// refuses to start).
    #[arg(long, default_value = "/var/lib/berth")]
    data_root: PathBuf,
    /// Where runtime state lives (bundles, shim sockets); normally on a tmpfs.
    #[arg(long, default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Default runtime: `berth` (built in) or an OCI runtime binary such as `runc` or `crun`.
    #[arg(long, default_value = "berth")]
    runtime: String,
    /// Run an init (reaping zombies, forwarding signals) as PID 1 of containers that do not say (`--init` per
    /// container overrides; off by default, as Docker's)
    #[arg(long)]
    init: bool,
    /// The init binary for `--init` containers, mounted at /sbin/docker-init (default: Berth's own static
    /// `berth-init`, written to the exec root at start)
    #[arg(long, value_name = "PATH")]
    init_path: Option<PathBuf>,
    /// The berth-shim binary (default: `berth-shim` next to this binary, else in PATH).
    #[arg(long)]
    shim: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, default_value = "info")]
    log_level: tracing::Level,
    /// The Linux bridge of the default `bridge` network (default: `berth0`; another data root gets its own name).
    /// Created if missing; an existing bridge Berth did not create is used and never deleted; any other interface
    /// refuses the start.
    #[arg(short = 'b', long)]
    bridge: Option<String>,
    /// The default bridge's address and subnet, e.g. `10.99.0.1/24` (default: the first free Docker default pool).
    #[arg(long)]
    bip: Option<String>,
    /// Where networks get subnets when none is given, as `base=10.10.0.0/16,size=24` (repeatable; default:
    /// Docker's 172.17-31.0.0/16 and 192.168.0.0/16 in /20s).
    #[arg(long = "default-address-pool")]
    default_address_pool: Vec<String>,
    /// Firewall tool: `auto` (nftables where `nft` is installed, else iptables), `nft` or `iptables`.
    #[arg(long, default_value = "auto")]
    firewall: String,
    /// Name servers for containers that set none (repeatable; default: the host's).
    #[arg(long = "dns", value_name = "IP")]
    dns: Vec<std::net::Ipv4Addr>,
    /// Remove this data root's bridges, firewall rules, network namespaces and host mounts (volumes, builds) from
    /// the host, then exit (for uninstalling and tests; refused while a berthd runs on the root; its containers
    /// must not be running).
    #[arg(long)]
    remove_networking: bool,
    /// A registry (`host:port`) to reach over plain HTTP (repeatable); loopback registries always are
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registry: Vec<String>,
    /// Per-registry CA certificates: `<DIR>/<host[:port]>/*.crt` (Docker's layout), trusted besides the system's
    /// (pulls, pushes, logins, builds' `FROM` and `ADD <url>`)
    #[arg(long = "registry-certs-dir", value_name = "DIR", default_value = berth_registry::tls::DEFAULT_CERTS_DIR)]
    registry_certs_dir: PathBuf,
    /// Default log driver of containers: json-file, local or none.
    #[arg(long, default_value = "json-file")]
    log_driver: String,
    /// Default option of that driver (repeatable): max-size=10m, max-file=3, compress=true
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    log_opt: Vec<String>,
    /// Daemon configuration file with Docker's daemon.json keys (see the README); a missing default file is fine
    #[arg(long, value_name = "PATH", default_value = "/etc/berth/daemon.json")]
    config_file: PathBuf,
    /// Run containers in user namespaces: `default` (the user `berthremap`, created with a subordinate ID range if
    /// missing) or USER[:GROUP], whose first ranges in /etc/subuid and /etc/subgid map container IDs from 0
    /// (`run --userns host` opts out)
    #[arg(long = "userns-remap", value_name = "default|USER[:GROUP]")]
    userns_remap: Option<String>,
    /// Serve the web dashboard on IP:PORT (off by default), e.g. 127.0.0.1:9090; `berth ui` prints a login link.
    /// A loopback address only, unless --tlsverify (the dashboard is then behind the same mutual TLS as the API)
    #[arg(long, value_name = "IP:PORT")]
    ui: Option<String>,
}

/// The flags, with the configuration file's directives under them (each one becomes the flag it stands for; one
/// given both ways is refused, as dockerd refuses it).
fn resolve_args() -> Result<Args> {
    use clap::{CommandFactory, FromArgMatches, Parser, parser::ValueSource};
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = Args::command().get_matches_from(&argv);
    let args = Args::from_arg_matches(&matches)?;
    let explicit = matches.value_source("config_file") == Some(ValueSource::CommandLine);
    let file = args.config_file.display().to_string();
    let fail = |e: String| anyhow::anyhow!("unable to configure the daemon with file {file}: {e}");
    let directives = config_file::read(&args.config_file, explicit).map_err(|e| fail(e.to_string()))?;
    if directives.is_empty() {
        return Ok(args);
    }
    let conflicts: Vec<String> = directives
        .iter()
        .filter(|d| !d.id.is_empty() && matches.value_source(d.id) == Some(ValueSource::CommandLine))
        .map(|d| {
            let flag: Vec<String> =
                matches.get_raw(d.id).into_iter().flatten().map(|v| v.to_string_lossy().into_owned()).collect();
            let flag = if d.value.is_array() || d.value.is_object() {
                format!("[{}]", flag.join(" "))
            } else {
                flag.join(" ")
            };
            format!("{}: (from flag: {flag}, from file: {})", d.key, config_file::go_format(&d.value))
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(fail(format!(
            "the following directives are specified both as a flag and in the configuration file: {}",
            conflicts.join(", ")
        )));
    }
    let program = argv.first().cloned().unwrap_or_else(|| "berthd".into());
    // Each directive alone first, so that a bad value names its key.
    for d in &directives {
        if let Err(e) = Args::try_parse_from(std::iter::once(program.clone()).chain(d.args.iter().map(Into::into))) {
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
            return Err(fail(format!("{}: {first}", d.key)));
        }
    }
    let all = std::iter::once(program)
        .chain(directives.iter().flat_map(|d| d.args.iter().map(Into::into)))
        .chain(argv.iter().skip(1).cloned());
    Ok(Args::try_parse_from(all)?)
}

/// The default log driver and options, checked as a container's are.
fn log_config(args: &Args) -> Result<logs::LogConfig> {
    let mut opts = std::collections::HashMap::new();
    for o in &args.log_opt {
        let (k, v) = o.split_once('=').with_context(|| format!("--log-opt {o:?}: want key=value"))?;
        opts.insert(k.to_string(), v.to_string());
    }
    logs::LogConfig::new(&args.log_driver, opts).map_err(anyhow::Error::msg)
}

/// The networking configuration: names derived from the data root, so that several daemons never share a bridge or
/// a firewall table.
fn net_config(args: &Args) -> Result<networks::NetConfig> {
    let default_root = args.data_root == std::path::Path::new("/var/lib/berth");
    let tag = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        args.data_root.hash(&mut h);
        format!("{:08x}", h.finish() as u32)
    };
    let bridge = match &args.bridge {
        Some(b) => b.clone(),
        None if default_root => "berth0".into(),
        None => format!("bb{tag}"),
    };
    let bip = match &args.bip {
        Some(s) => {
            let (ip, prefix) = s.split_once('/').with_context(|| format!("--bip {s:?}: want address/prefix"))?;
            Some((
                ip.parse().with_context(|| format!("--bip {s:?}"))?,
                prefix.parse().with_context(|| format!("--bip {s:?}"))?,
            ))
        }
        None => None,
    };
    let mut pools = Vec::new();
    for p in &args.default_address_pool {
        pools
            .push(berth_network::ipam::AddressPool::parse(p).with_context(|| format!("--default-address-pool {p:?}"))?);
    }
    if pools.is_empty() {
        pools = berth_network::ipam::AddressPool::docker_defaults();
    }
    let table = if default_root { "berth".to_string() } else { format!("berth_{tag}") };
    let firewall = berth_network::firewall::Backend::parse(&args.firewall)
        .with_context(|| format!("--firewall {:?}: want auto, nft or iptables", args.firewall))?;
    let bridge_from_flag = args.bridge.is_some();
    Ok(networks::NetConfig { bridge, bridge_from_flag, bip, pools, table, dns: args.dns.clone(), firewall })
}

fn main() -> Result<()> {
    // Before any thread (see `memory`).
    berth_runtime::sys::limit_malloc_arenas(memory::MALLOC_ARENAS);
    // Descriptors inherited from whoever started us (a pipe of a service manager or a shell) must not reach the shims
    // and the containers through every spawn: close-on-exec from here on.
    berth_runtime::sys::close_from(3, berth_runtime::sys::CloseMode::CloseOnExec);
    let mut args = resolve_args()?;
    let log = log_config(&args)?;
    // Before anything is touched: a TCP endpoint without client authentication is refused here.
    let endpoints = endpoints(&args)?;
    let ui = ui_config(&args)?;
    // Real paths: mounts are recognised in /proc/self/mountinfo by path, which a symlink or a relative path in
    // --data-root/--exec-root would defeat.
    for dir in [&mut args.data_root, &mut args.exec_root] {
        std::fs::create_dir_all(&*dir).with_context(|| format!("create {}", dir.display()))?;
        *dir = dir.canonicalize().with_context(|| format!("resolve {}", dir.display()))?;
    }
    // One daemon per root, taken before anything else touches the roots (the socket, the store, the networking);
    // held until the process ends.
    let _locks = lock::lock_roots(&[("data root", &args.data_root), ("exec root", &args.exec_root)])?;
    // Not for other users to walk into: setuid programs and device nodes that containers write to their layers and
    // volumes live below it (Docker's CVE-2021-41091).
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&args.data_root, std::fs::Permissions::from_mode(0o710))
            .with_context(|| format!("chmod {}", args.data_root.display()))?;
        // Others may pass through (to the API socket, whose own mode and group decide) but not list it; what is
        // below is root's only (containers' bundles and sockets).
        std::fs::set_permissions(&args.exec_root, std::fs::Permissions::from_mode(0o711))
            .with_context(|| format!("chmod {}", args.exec_root.display()))?;
    }
    // The level behind a reload handle: `SIGHUP` changes it (`reload.rs`).
    let (level, level_handle) =
        tracing_subscriber::reload::Layer::new(tracing_subscriber::filter::LevelFilter::from_level(args.log_level));
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(level)
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .init();
    }
    let network = net_config(&args)?;
    if args.userns_remap.is_some() && args.runtime != "berth" {
        anyhow::bail!("--userns-remap needs the built-in runtime (--runtime berth), not {}", args.runtime);
    }
    let userns_remap = match &args.userns_remap {
        Some(v) => Some(userns::resolve(v).map_err(|e| anyhow::anyhow!("--userns-remap: {e}"))?),
        None => None,
    };
    match userns_remap {
        // The remapped root passes through the roots to its containers' files (rootfs, hosts, volumes).
        Some(m) => userns::let_through(&args.data_root, m)?,
        // And no longer once the remapping is off.
        None => std::os::unix::fs::chown(&args.data_root, None, Some(0))
            .with_context(|| format!("chgrp {}", args.data_root.display()))?,
    }
    let shim = match args.shim {
        Some(p) => p,
        None => default_shim()?,
    };
    if args.remove_networking {
        let store = berth_store::Store::open(&args.data_root)
            .with_context(|| format!("open the store in {}", args.data_root.display()))?;
        networks::remove_everything(&store, &network.table, network.firewall, &args.exec_root.join("netns"))?;
        volumes::remove_host_mounts(&store, &args.data_root)?;
        build::clean_leftovers(&args.data_root, &args.exec_root);
        return Ok(());
    }
    let init_path = match args.init_path {
        Some(p) => p.canonicalize().with_context(|| format!("--init-path {}", p.display()))?,
        None => init::install(&args.exec_root)?,
    };
    let group = socket_group(args.group.as_deref())?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start tokio")?;
    let served = rt.block_on(async move {
        // Listened for before the (possibly slow) start-up: a `systemctl reload` then must not end the daemon.
        let hup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("listen for SIGHUP")?;
        let daemon = boot::open(daemon::Config {
            data_root: args.data_root,
            exec_root: args.exec_root,
            runtime: args.runtime,
            shim,
            network,
            reloadable: reload::Reloadable { log_level: args.log_level, insecure_registries: args.insecure_registry },
            engine_id: String::new(),
            registry_certs_dir: args.registry_certs_dir,
            log,
            userns_remap,
            init_path,
            init: args.init,
        })
        .await?;
        // Started: what start-up alone needed goes once the API is quiet (see `memory`).
        memory::work_done();
        reload_on_sighup(&daemon, level_handle, hup);
        server::serve(daemon, &endpoints, group, ui).await
    });
    // SIGTERM: requests in flight end with the runtime; blocking work (an unpack, a store write) gets a moment to
    // finish, but never holds the exit up for long (containers are not ours to wait for: they keep running).
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    served
}

/// Reloads the configuration on every `SIGHUP` (`reload.rs`): the flags and the file resolved again, as at start-up.
fn reload_on_sighup<S>(
    daemon: &std::sync::Arc<daemon::Daemon>,
    level: tracing_subscriber::reload::Handle<tracing_subscriber::filter::LevelFilter, S>,
    mut hup: tokio::signal::unix::Signal,
) where
    S: Send + Sync + 'static,
{
    let d = daemon.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match resolve_args() {
                Ok(a) => {
                    let set = |l: tracing::Level| {
                        if let Err(e) = level.reload(tracing_subscriber::filter::LevelFilter::from_level(l)) {
                            tracing::warn!("reload: set the log level: {e}");
                        }
                    };
                    let new = reload::Reloadable { log_level: a.log_level, insecure_registries: a.insecure_registry };
                    reload::apply(&d, new, &set);
                }
                Err(e) => tracing::error!("reload: the configuration is unchanged: {e:#}"),
            }
        }
    });
}

/// Where the TLS files are by default: `$DOCKER_CERT_PATH`, else `~/.docker` (dockerd's defaults).
fn default_cert_dir() -> PathBuf {
    match std::env::var_os("DOCKER_CERT_PATH").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".docker"),
    }
}

/// The `-H` endpoints. A `tcp://` one needs `--tlsverify` (TLS with client certificates of `--tlscacert`): the API
/// is root on this host, so it is never served to whoever can reach a port unless `--insecure-tcp-for-tests` says
/// so, and then with a loud warning.
fn endpoints(args: &Args) -> Result<Vec<server::Endpoint>> {
    let mut out = Vec::new();
    let mut tcp = Vec::new();
    for h in &args.host {
        if let Some(p) = h.strip_prefix("unix://") {
            anyhow::ensure!(!p.is_empty(), "--host {h:?}: want unix:///path");
            out.push(server::Endpoint::Unix(PathBuf::from(p)));
        } else if let Some(rest) = h.strip_prefix("tcp://") {
            let rest = rest.trim_end_matches('/');
            let default_port = if args.tlsverify || args.tls { 2376 } else { 2375 };
            let with_port = if rest.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
                rest.to_string()
            } else {
                format!("{rest}:{default_port}")
            };
            let with_port = if with_port.starts_with(':') { format!("0.0.0.0{with_port}") } else { with_port };
            use std::net::ToSocketAddrs;
            let addr = with_port
                .to_socket_addrs()
                .with_context(|| format!("--host {h:?}: want tcp://IP:PORT"))?
                .next()
                .with_context(|| format!("--host {h:?}: no address"))?;
            tcp.push((h.clone(), addr));
        } else {
            anyhow::bail!("unsupported --host {h:?}: want unix:///path or tcp://IP:PORT");
        }
    }
    if tcp.is_empty() {
        return Ok(out);
    }
    if !args.tlsverify && !args.insecure_tcp_for_tests {
        anyhow::bail!(
            "refusing to serve the Engine API on {} without --tlsverify: whoever can reach that port could run \
             privileged containers, i.e. would be root on this host. Give --tlsverify --tlscacert CA.pem --tlscert \
             CERT.pem --tlskey KEY.pem (clients then need a certificate signed by that CA)",
            tcp.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let tls = if args.tlsverify || args.tls {
        let dir = default_cert_dir();
        let file = |f: &Option<PathBuf>, name: &str| f.clone().unwrap_or_else(|| dir.join(name));
        let ca = args.tlsverify.then(|| file(&args.tlscacert, "ca.pem"));
        let config = berth_registry::tls::server(
            &file(&args.tlscert, "cert.pem"),
            &file(&args.tlskey, "key.pem"),
            ca.as_deref(),
        )
        .context("TLS for the tcp:// hosts")?;
        Some(config)
    } else {
        None
    };
    if !args.tlsverify {
        let what = if tls.is_some() { "TLS WITHOUT client certificates" } else { "PLAIN HTTP" };
        for (h, _) in &tcp {
            eprintln!(
                "WARNING: --insecure-tcp-for-tests: serving the Engine API on {h} over {what}.\n\
                 WARNING: ANYONE WHO CAN REACH THIS PORT IS ROOT ON THIS HOST. Never use this outside tests; \
                 use --tlsverify."
            );
        }
    }
    for (_, addr) in tcp {
        out.push(server::Endpoint::Tcp { addr, tls: tls.clone(), client_auth: args.tlsverify });
    }
    Ok(out)
}

/// The dashboard's address (`--ui`): loopback, plain HTTP (the login token and the session guard it); any other
/// address only with `--tlsverify`, behind the same mutual TLS as the API, for the same reason the API is.
fn ui_config(args: &Args) -> Result<Option<ui::Config>> {
    let Some(spec) = &args.ui else { return Ok(None) };
    let addr: std::net::SocketAddr =
        spec.parse().with_context(|| format!("--ui {spec:?}: want IP:PORT, e.g. 127.0.0.1:9090"))?;
    if addr.ip().is_loopback() {
        return Ok(Some(ui::Config { addr, tls: None }));
    }
    if !args.tlsverify {
        anyhow::bail!(
            "refusing to serve the dashboard on {addr} without --tlsverify: it can do what the API can (root on this \
             host). Use a loopback address (e.g. 127.0.0.1:{port}, through an SSH tunnel from elsewhere), or give \
             --tlsverify --tlscacert CA.pem --tlscert CERT.pem --tlskey KEY.pem (browsers then need a client \
             certificate signed by that CA)",
            port = addr.port()
        );
    }
    let dir = default_cert_dir();
    let file = |f: &Option<PathBuf>, name: &str| f.clone().unwrap_or_else(|| dir.join(name));
    let tls = berth_registry::tls::server(
        &file(&args.tlscert, "cert.pem"),
        &file(&args.tlskey, "key.pem"),
        Some(&file(&args.tlscacert, "ca.pem")),
    )
    .context("TLS for the dashboard (--ui)")?;
    Ok(Some(ui::Config { addr, tls: Some(tls) }))
}

/// The API socket's group: `--group NAME` (which must exist), else `berth` where it exists, else none.
fn socket_group(name: Option<&str>) -> Result<Option<nix::unistd::Gid>> {
    let wanted = name.unwrap_or("berth");
    match nix::unistd::Group::from_name(wanted).with_context(|| format!("look up group {wanted:?}"))? {
        Some(g) => Ok(Some(g.gid)),
        None if name.is_some() => anyhow::bail!("--group {wanted:?}: no such group"),
        None => Ok(None),
    }
}

/// `berth-shim` beside our own executable, else from `PATH`.
fn default_shim() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locate berthd")?;
    let beside = exe.with_file_name("berth-shim");
    if beside.is_file() {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("berth-shim")).find(|p| p.is_file()))
        .context("berth-shim not found beside berthd nor in PATH (use --shim)")
}
