//! Docker's option syntaxes, parsed the way the docker CLI parses them: environment variables and env files,
//! labels, ulimits, restart policies, published ports, volumes and `--mount`, `--tmpfs`, `--sysctl`, filters.

use std::collections::HashMap;

use anyhow::{Context as _, Result, anyhow, bail};
use berth_api::models::{Mount, PortBinding, PortMap, ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum};
use serde_json::{Value, json};

/// `-e NAME=value` as given; `-e NAME` takes NAME's value from this process's environment (and stays `NAME`
/// when it has none, for the daemon to drop).
pub fn env_value(v: &str) -> String {
    if v.contains('=') {
        return v.to_string();
    }
    match std::env::var(v) {
        Ok(val) => format!("{v}={val}"),
        Err(_) => v.to_string(),
    }
}

/// Reads a docker key=value file. Blank lines and `#` comments are skipped; with `lookup`, a line with a name alone
/// takes that variable's value from the environment (and is dropped when it is unset).
fn read_kv_file(path: &str, lookup: bool) -> Result<Vec<String>> {
    let data = std::fs::read(path).with_context(|| format!("open {path}"))?;
    let text = String::from_utf8(data).map_err(|_| anyhow!("env file {path} contains invalid utf8 bytes"))?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = if i == 0 { raw.trim_start_matches('\u{feff}') } else { raw };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (var, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        let var = var.trim_start();
        if var.contains(char::is_whitespace) {
            bail!("variable '{var}' contains whitespaces");
        }
        if var.is_empty() {
            bail!("no variable name on line '{line}'");
        }
        match value {
            Some(v) => out.push(format!("{var}={v}")),
            None if lookup => {
                if let Ok(v) = std::env::var(var.trim()) {
                    out.push(format!("{}={v}", var.trim()));
                }
            }
            None => out.push(var.to_string()),
        }
    }
    Ok(out)
}

/// docker's `ReadKVEnvStrings`: the env files' variables first, then the `-e` flags (later ones win).
pub fn env_list(files: &[String], flags: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        out.extend(read_kv_file(f, true)?);
    }
    out.extend(flags.iter().map(|v| env_value(v)));
    Ok(out)
}

/// Labels from `--label-file`s and `-l` flags: `k=v`, or `k` for an empty value.
pub fn labels(files: &[String], flags: &[String]) -> Result<HashMap<String, String>> {
    let mut list = Vec::new();
    for f in files {
        list.extend(read_kv_file(f, false)?);
    }
    list.extend(flags.iter().cloned());
    Ok(list
        .into_iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l, String::new()),
        })
        .collect())
}

/// `--ulimit nofile=1024:2048` (`soft[:hard]`, hard = soft when omitted).
pub fn ulimit(s: &str) -> Result<ResourcesUlimits> {
    let (name, limits) = s.split_once('=').ok_or_else(|| anyhow!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = match limits.split_once(':') {
        Some((a, b)) => (a, b),
        None => (limits, limits),
    };
    let parse = |v: &str| v.parse::<i64>().map_err(|_| anyhow!("invalid ulimit argument: {s}"));
    let (soft, hard) = (parse(soft)?, parse(hard)?);
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(ResourcesUlimits { name: Some(name.to_string()), soft: Some(soft), hard: Some(hard) })
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn restart_policy(s: &str) -> Result<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    let name_enum = match name {
        "" | "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        other => bail!(
            "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ),
    };
    let maximum_retry_count = match count {
        None => None,
        Some(c) => {
            if name != "on-failure" {
                bail!("invalid restart policy: maximum retry count can only be used with 'on-failure'");
            }
            Some(
                c.parse::<i64>()
                    .map_err(|_| anyhow!("invalid restart policy format: maximum retry count must be an integer"))?,
            )
        }
    };
    Ok(RestartPolicy { name: Some(name_enum), maximum_retry_count })
}

/// A size flag (`-m 256m`, `--memory-reservation`, `--kernel-memory`) in bytes.
pub fn bytes(v: &Option<String>) -> Result<Option<i64>> {
    Ok(v.as_deref().map(crate::units::ram_in_bytes).transpose()?)
}

/// `--memory-swap`: a size, or `-1` for unlimited swap.
pub fn memory_swap(v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref() {
        Some("-1") => Ok(Some(-1)),
        _ => bytes(v),
    }
}

/// `--cpus 1.5` → nano CPUs.
pub fn nano_cpus(s: &str) -> Result<i64> {
    let v: f64 = s.parse().map_err(|_| anyhow!("failed to parse {s} as a rational number"))?;
    let n = v * 1e9;
    if !(0.0..=i64::MAX as f64).contains(&n) || n.fract() != 0.0 && (n - n.round()).abs() > 1e-6 {
        bail!("value is too precise");
    }
    Ok(n.round() as i64)
}

/// `--tmpfs /run:rw,size=64m` → (`/run`, `rw,size=64m`).
pub fn tmpfs(s: &str) -> Result<(String, String)> {
    let (dir, opts) = s.split_once(':').unwrap_or((s, ""));
    if !dir.starts_with('/') {
        bail!("invalid mount path for tmpfs: {dir}: mount path must be absolute");
    }
    Ok((dir.to_string(), opts.to_string()))
}

/// `--sysctl net.ipv4.ip_forward=1`.
pub fn sysctl(s: &str) -> Result<(String, String)> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| anyhow!("invalid argument \"{s}\" for \"--sysctl\" flag: sysctl '{s}' is not allowed"))
}

/// Published ports (`-p [ip:][hostPort:]containerPort[/proto]`, ranges too) and `--expose`: the exposed-port set
/// and the port bindings of the create request.
pub fn ports(publish: &[String], expose: &[String]) -> Result<(Vec<String>, PortMap)> {
    let mut exposed = Vec::new();
    let mut bindings: PortMap = HashMap::new();
    let range = |r: &str, what: &str| -> Result<(u32, u32)> {
        let bad = || anyhow!("invalid {what}: {r}");
        let (a, b) = r.split_once('-').unwrap_or((r, r));
        let (a, b): (u32, u32) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b || b > 65535 {
            return Err(bad());
        }
        Ok((a, b))
    };
    for p in publish {
        let (spec, proto) = p.rsplit_once('/').unwrap_or((p.as_str(), "tcp"));
        // [ip:][host:]container; an IPv6 address comes in brackets.
        let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
            let (ip, after) = r.split_once("]:").ok_or_else(|| anyhow!("invalid IP address: {spec}"))?;
            (ip.to_string(), after.to_string())
        } else {
            let parts: Vec<&str> = spec.split(':').collect();
            match parts.len() {
                1 | 2 => (String::new(), spec.to_string()),
                3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
                _ => bail!("invalid publish opts format (should be name=value but got '{p}')"),
            }
        };
        let (host, container) = match rest.split_once(':') {
            Some((h, c)) => (h.to_string(), c.to_string()),
            None => (String::new(), rest.clone()),
        };
        if container.is_empty() {
            bail!("no port specified: {p}<empty>");
        }
        let (c0, c1) = range(&container, "containerPort")?;
        let host_range = if host.is_empty() { None } else { Some(range(&host, "hostPort")?) };
        if let Some((h0, h1)) = host_range
            && h1 - h0 != c1 - c0
            && h0 != h1
        {
            bail!("invalid ranges specified for container and host Ports: {container} and {host}");
        }
        for (i, port) in (c0..=c1).enumerate() {
            let key = format!("{port}/{proto}");
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            let host_port = match host_range {
                None => String::new(),
                Some((h0, h1)) if h0 == h1 && c0 != c1 => h0.to_string(),
                Some((h0, _)) => (h0 + i as u32).to_string(),
            };
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding { host_ip: Some(ip.clone()), host_port: Some(host_port) });
        }
    }
    for e in expose {
        let (spec, proto) = e.rsplit_once('/').unwrap_or((e.as_str(), "tcp"));
        let (a, b) = range(spec, "range format for --expose")?;
        for port in a..=b {
            let key = format!("{port}/{proto}");
            if !exposed.contains(&key) {
                exposed.push(key);
            }
        }
    }
    Ok((exposed, bindings))
}

/// `-v` entries: binds (`src:dst[:opts]`) go to `HostConfig.Binds`, anonymous volumes (`/dst`) to
/// `Config.Volumes`.
pub fn volumes(vols: &[String]) -> Result<(Vec<String>, Vec<String>)> {
    let mut binds = Vec::new();
    let mut anonymous = Vec::new();
    for v in vols {
        if v.is_empty() {
            bail!("invalid empty volume spec");
        }
        let parts: Vec<&str> = v.split(':').collect();
        match parts.len() {
            1 => anonymous.push(v.clone()),
            2 | 3 => binds.push(v.clone()),
            _ => bail!("invalid volume specification: '{v}'"),
        }
    }
    Ok((binds, anonymous))
}

/// `--mount type=bind,source=/a,target=/b,readonly` → an API mount.
pub fn mount(s: &str) -> Result<Mount> {
    let mut m = serde_json::Map::new();
    let mut bind = serde_json::Map::new();
    let mut volume = serde_json::Map::new();
    let mut tmpfs = serde_json::Map::new();
    let mut typ = "volume".to_string();
    for field in s.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let truth = |v: &Option<String>| -> Result<bool> {
            match v.as_deref() {
                None | Some("1") | Some("true") => Ok(true),
                Some("0") | Some("false") => Ok(false),
                Some(o) => Err(anyhow!("invalid value for {k}: {o}")),
            }
        };
        let val = || v.clone().ok_or_else(|| anyhow!("invalid field '{field}' must be a key=value pair"));
        match k.as_str() {
            "type" => typ = val()?,
            "source" | "src" => {
                m.insert("Source".into(), json!(val()?));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(val()?));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), json!(truth(&v)?));
            }
            "consistency" => {
                m.insert("Consistency".into(), json!(val()?));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(val()?));
            }
            "bind-recursive" => match val()?.as_str() {
                "enabled" => {}
                "disabled" => {
                    bind.insert("NonRecursive".into(), json!(true));
                }
                "writable" => {
                    bind.insert("ReadOnlyNonRecursive".into(), json!(true));
                }
                "readonly" => {
                    bind.insert("ReadOnlyForceRecursive".into(), json!(true));
                }
                other => bail!("invalid value for bind-recursive: {other}"),
            },
            "volume-nocopy" => {
                volume.insert("NoCopy".into(), json!(truth(&v)?));
            }
            "volume-driver" => {
                volume.insert("DriverConfig".into(), json!({"Name": val()?}));
            }
            "tmpfs-size" => {
                tmpfs.insert("SizeBytes".into(), json!(crate::units::ram_in_bytes(&val()?)?));
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(&val()?, 8).map_err(|_| anyhow!("invalid value for tmpfs-mode"))?;
                tmpfs.insert("Mode".into(), json!(mode));
            }
            _ => bail!("unexpected key '{k}' in '{field}'"),
        }
    }
    m.insert("Type".into(), json!(typ));
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !volume.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(volume));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    if !m.contains_key("Target") {
        bail!("target is required");
    }
    serde_json::from_value(Value::Object(m)).map_err(|e| anyhow!("invalid mount config: {e}"))
}

/// `--filter key=value` flags → the API's `filters` JSON (`{"key":["value",...]}`), or `None` without filters.
pub fn filters(flags: &[String]) -> Result<Option<String>> {
    if flags.is_empty() {
        return Ok(None);
    }
    let mut map: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for f in flags {
        let (k, v) = f.split_once('=').ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))?;
        map.entry(k.trim().to_ascii_lowercase()).or_default().push(v.to_string());
    }
    Ok(Some(serde_json::to_string(&map)?))
}

/// Checks a filter flag the way docker's flag parser does (for clap's `value_parser`).
pub fn filter_flag(s: &str) -> std::result::Result<String, String> {
    if s.contains('=') { Ok(s.to_string()) } else { Err("bad format of filter (expected name=value)".into()) }
}

/// One `--network` value, as docker's `NetworkAttachmentOpts`: a name, or the long form
/// `name=N,alias=A,ip=X,ip6=Y,mac-address=M,link-local-ip=L,driver-opt=k=v,gw-priority=P`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkAttachment {
    pub target: String,
    pub aliases: Vec<String>,
    pub ipv4: String,
    pub ipv6: String,
    pub mac: String,
    pub link_local_ips: Vec<String>,
    pub links: Vec<String>,
    pub driver_opts: HashMap<String, String>,
    pub gw_priority: i64,
}

/// Splits one CSV record as Go's `encoding/csv` does for a flag value (quoted fields, `""` inside quotes).
fn csv_fields(s: &str) -> Result<Vec<String>> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if at_start => quoted = true,
            ',' if !quoted => {
                fields.push(std::mem::take(&mut cur));
                at_start = true;
                continue;
            }
            c => cur.push(c),
        }
        at_start = false;
    }
    if quoted {
        bail!("parse error on line 1, column {}: extraneous or missing \" in quoted-field", s.len() + 1);
    }
    fields.push(cur);
    Ok(fields)
}

/// Parses a `--network` value the way docker's `NetworkOpt.Set` does (the long form when the value has a
/// `word=word` in it; keys and values are lower-cased, as docker does).
pub fn network_attachment(value: &str) -> Result<NetworkAttachment> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = value.as_bytes();
    let long = (1..b.len().saturating_sub(1)).any(|i| b[i] == b'=' && word(b[i - 1]) && word(b[i + 1]));
    if !long {
        return Ok(NetworkAttachment { target: value.to_string(), ..Default::default() });
    }
    let mut n = NetworkAttachment::default();
    for field in csv_fields(value)? {
        let lower = field.to_lowercase();
        let (key, val) = match lower.split_once('=') {
            Some((k, v)) if !k.is_empty() => (k.trim(), v.trim().to_string()),
            _ => bail!("invalid field {field}"),
        };
        match key {
            "name" => n.target = val,
            "alias" => n.aliases.push(val),
            "ip" => n.ipv4 = val,
            "ip6" => n.ipv6 = val,
            "mac-address" => n.mac = val,
            "link-local-ip" => n.link_local_ips.push(val),
            "driver-opt" => match val.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    n.driver_opts.insert(k.trim().to_string(), v.trim().to_string());
                }
                _ => bail!("invalid key value pair format in driver options"),
            },
            "gw-priority" => {
                n.gw_priority = val
                    .parse()
                    .map_err(|_| anyhow!("invalid gw-priority: strconv.Atoi: parsing {val:?}: invalid syntax"))?;
            }
            other => bail!("invalid field key {other}"),
        }
    }
    if n.target.is_empty() {
        bail!("network name/id is not specified");
    }
    Ok(n)
}

/// Whether a network mode names a user-defined network (not `default`, `bridge`, `host`, `none`, `container:…`).
pub fn is_user_defined_network(mode: &str) -> bool {
    !matches!(mode, "default" | "bridge" | "host" | "none") && !mode.starts_with("container:")
}

/// Go's `net.ParseMAC` for the forms people write: 6, 8 or 20 octets as `xx:xx:…` / `xx-xx-…`, or `xxxx.xxxx.…`.
pub fn valid_mac(s: &str) -> bool {
    let hex = |g: &str, n: usize| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit());
    for sep in [':', '-'] {
        let groups: Vec<&str> = s.split(sep).collect();
        if matches!(groups.len(), 6 | 8 | 20) && groups.iter().all(|g| hex(g, 2)) {
            return true;
        }
    }
    let groups: Vec<&str> = s.split('.').collect();
    matches!(groups.len(), 3 | 4 | 10) && groups.iter().all(|g| hex(g, 4))
}

/// docker's `ValidateLabel` (for clap's `value_parser`): a name before any `=`, without whitespace.
pub fn label_flag(s: &str) -> std::result::Result<String, String> {
    let key = s.split_once('=').map_or(s, |(k, _)| k);
    if key.is_empty() {
        return Err(format!("invalid label '{s}': empty name"));
    }
    if key.contains(char::is_whitespace) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(s.to_string())
}

/// docker's `ValidateLink` (for clap's `value_parser`): `container[:alias]`.
pub fn link_flag(s: &str) -> std::result::Result<String, String> {
    if s.is_empty() {
        return Err("empty string specified for links".into());
    }
    if s.split(':').count() > 2 {
        return Err(format!("bad format for links: {s}"));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_files() {
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("BERTH_TEST_ENV_X", "from-env") };
        assert_eq!(env_value("A=1"), "A=1");
        assert_eq!(env_value("BERTH_TEST_ENV_X"), "BERTH_TEST_ENV_X=from-env");
        assert_eq!(env_value("BERTH_TEST_UNSET_Y"), "BERTH_TEST_UNSET_Y");
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("env.list");
        std::fs::write(&f, "# comment\nFROM_FILE=yes\n\n  B=from-file \nBERTH_TEST_ENV_X\nBERTH_TEST_UNSET_Y\n")
            .expect("write");
        let path = f.display().to_string();
        let list = env_list(std::slice::from_ref(&path), &["B=2".into()]).expect("env");
        assert_eq!(list, vec!["FROM_FILE=yes", "B=from-file ", "BERTH_TEST_ENV_X=from-env", "B=2"]);
        std::fs::write(&f, "BAD KEY=1\n").expect("write");
        assert!(env_list(std::slice::from_ref(&path), &[]).is_err());
        let l = labels(&[], &["tier=web".into(), "flag".into()]).expect("labels");
        assert_eq!(l["tier"], "web");
        assert_eq!(l["flag"], "");
    }

    #[test]
    fn limits_and_policies() {
        let u = ulimit("nofile=1024:2048").expect("ulimit");
        assert_eq!((u.soft, u.hard), (Some(1024), Some(2048)));
        assert_eq!(ulimit("nproc=10").expect("ulimit").hard, Some(10));
        assert!(ulimit("nofile").is_err());
        assert_eq!(restart_policy("on-failure:3").expect("policy").maximum_retry_count, Some(3));
        assert_eq!(restart_policy("always").expect("policy").name, Some(RestartPolicyNameEnum::ALWAYS));
        assert!(restart_policy("sometimes").is_err());
        assert!(restart_policy("always:3").is_err());
        assert_eq!(nano_cpus("1.5").expect("cpus"), 1_500_000_000);
        assert!(nano_cpus("x").is_err());
        assert_eq!(tmpfs("/run:size=64m").expect("tmpfs"), ("/run".into(), "size=64m".into()));
        assert!(tmpfs("run").is_err());
    }

    #[test]
    fn published_ports() {
        let (exposed, b) =
            ports(&["8080:80".into(), "127.0.0.1:53:53/udp".into(), "9000".into()], &["7000-7001".into()])
                .expect("ports");
        assert_eq!(exposed, vec!["80/tcp", "53/udp", "9000/tcp", "7000/tcp", "7001/tcp"]);
        let pb = b["80/tcp"].as_ref().expect("binding");
        assert_eq!(pb[0].host_port.as_deref(), Some("8080"));
        assert_eq!(b["53/udp"].as_ref().expect("binding")[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert!(ports(&["x:y".into()], &[]).is_err());
    }

    #[test]
    fn network_values() {
        assert_eq!(network_attachment("foo").expect("short").target, "foo");
        assert_eq!(network_attachment("container:web").expect("short").target, "container:web");
        let n = network_attachment("name=Foo,alias=A,alias=b,ip=1.2.3.4,driver-opt=K=v,gw-priority=5").expect("long");
        assert_eq!(n.target, "foo");
        assert_eq!(n.aliases, vec!["a", "b"]);
        assert_eq!(n.ipv4, "1.2.3.4");
        assert_eq!(n.driver_opts["k"], "v");
        assert_eq!(n.gw_priority, 5);
        let quoted = network_attachment("\"name=x\",\"alias=y\"").expect("quoted");
        assert_eq!((quoted.target.as_str(), quoted.aliases.len()), ("x", 1));
        let e = |v: &str| network_attachment(v).expect_err(v).to_string();
        assert_eq!(e("name=foo,bogus=1"), "invalid field key bogus");
        assert_eq!(e("alias=x"), "network name/id is not specified");
        assert_eq!(e("name=foo,x"), "invalid field x");
        assert_eq!(e("name=foo,driver-opt=x"), "invalid key value pair format in driver options");
        assert!(is_user_defined_network("foo") && !is_user_defined_network("container:x"));
        assert!(!is_user_defined_network("default") && !is_user_defined_network("bridge"));
        assert!(valid_mac("92:d0:c6:0a:29:33") && valid_mac("92-D0-C6-0A-29-33") && valid_mac("92d0.c60a.2933"));
        assert!(!valid_mac("zz") && !valid_mac("92:d0:c6:0a:29"));
    }

    #[test]
    fn mounts_and_filters() {
        let m = mount("type=bind,source=/a,target=/b,readonly").expect("mount");
        assert_eq!(m.target.as_deref(), Some("/b"));
        assert_eq!(m.read_only, Some(true));
        assert!(mount("type=bind,source=/a").is_err());
        let m = mount("type=bind,src=/a,dst=/b,bind-recursive=disabled").expect("mount");
        assert_eq!(m.bind_options.and_then(|b| b.non_recursive), Some(true));
        assert!(mount("type=bind,src=/a,dst=/b,bind-recursive=sideways").is_err());
        let (binds, anon) = volumes(&["/a:/b:ro".into(), "/data".into()]).expect("volumes");
        assert_eq!(binds, vec!["/a:/b:ro"]);
        assert_eq!(anon, vec!["/data"]);
        assert_eq!(
            filters(&["status=exited".into(), "status=created".into(), "label=a=b".into()])
                .expect("filters")
                .as_deref(),
            Some(r#"{"label":["a=b"],"status":["exited","created"]}"#)
        );
        assert!(filters(&["bad".into()]).is_err());
        assert_eq!(label_flag("a=1").as_deref(), Ok("a=1"));
        assert_eq!(label_flag("flag").as_deref(), Ok("flag"));
        assert_eq!(label_flag("=x"), Err("invalid label '=x': empty name".to_string()));
        assert_eq!(label_flag("a b=1"), Err("label 'a b' contains whitespaces".to_string()));
        assert!(link_flag("db:alias").is_ok() && link_flag("db").is_ok());
        assert_eq!(link_flag("a:b:c"), Err("bad format for links: a:b:c".to_string()));
    }
}
