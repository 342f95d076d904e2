//! `RUN --mount=type=cache,target=/root/.cache,…`: the CSV value parsed as BuildKit's `parseMount`.

use berth_api::units::ram_in_bytes;

use super::InstructionError::{self, Invalid};
use super::{MountKind, RunMount};

/// One CSV record, as Go's `encoding/csv` reads it (quoted fields with `""` for a quote).
fn csv_fields(value: &str) -> Result<Vec<String>, InstructionError> {
    if value.is_empty() {
        return Err(Invalid("failed to parse csv mounts: EOF".to_owned()));
    }
    let chars: Vec<char> = value.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(Invalid(
                            "failed to parse csv mounts: extraneous or missing \" in quoted-field".to_owned(),
                        ));
                    }
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
            if !matches!(chars.get(i), None | Some(',')) {
                return Err(Invalid("failed to parse csv mounts: extraneous or missing \" in quoted-field".to_owned()));
            }
        } else {
            while let Some(&c) = chars.get(i) {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err(Invalid("failed to parse csv mounts: bare \" in non-quoted-field".to_owned()));
                }
                field.push(c);
                i += 1;
            }
        }
        fields.push(field);
        if chars.get(i) == Some(&',') {
            i += 1;
        } else {
            return Ok(fields);
        }
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, InstructionError> {
    // Go's strconv.ParseBool.
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(Invalid(format!("invalid value for {key}: {value}"))),
    }
}

fn kind_name(kind: MountKind) -> &'static str {
    match kind {
        MountKind::Bind => "bind",
        MountKind::Cache => "cache",
        MountKind::Tmpfs => "tmpfs",
        MountKind::Secret => "secret",
        MountKind::Ssh => "ssh",
    }
}

/// Parses one `--mount` value.
pub(crate) fn parse_mount(value: &str) -> Result<RunMount, InstructionError> {
    let mut m = RunMount {
        kind: MountKind::Bind,
        target: String::new(),
        source: None,
        from: None,
        readonly: false,
        id: None,
        sharing: "shared".to_owned(),
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
    };
    let mut ro_auto = true;
    let mut sharing_set = false;
    for field in csv_fields(value)? {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v.to_owned())),
            None => (field.to_lowercase(), None),
        };
        let secretish = matches!(m.kind, MountKind::Secret | MountKind::Ssh);
        let Some(val) = val else {
            match key.as_str() {
                "readonly" | "ro" => {
                    m.readonly = true;
                    ro_auto = false;
                    continue;
                }
                "readwrite" | "rw" => {
                    m.readonly = false;
                    ro_auto = false;
                    continue;
                }
                "required" if secretish => {
                    m.required = true;
                    continue;
                }
                "required" => {
                    return Err(Invalid(format!("unexpected key '{key}' for mount type '{}'", kind_name(m.kind))));
                }
                _ => return Err(Invalid(format!("invalid field '{field}' must be a key=value pair"))),
            }
        };
        match key.as_str() {
            "type" => {
                m.kind = match val.to_lowercase().as_str() {
                    "bind" => MountKind::Bind,
                    "cache" => MountKind::Cache,
                    "tmpfs" => MountKind::Tmpfs,
                    "secret" => MountKind::Secret,
                    "ssh" => MountKind::Ssh,
                    _ => return Err(Invalid(format!("unsupported mount type {val:?}"))),
                }
            }
            "from" => m.from = Some(val),
            "source" | "src" => m.source = Some(val),
            "target" | "dst" | "destination" => m.target = val,
            "readonly" | "ro" => {
                m.readonly = parse_bool(&key, &val)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.readonly = !parse_bool(&key, &val)?;
                ro_auto = false;
            }
            "required" if secretish => m.required = parse_bool(&key, &val)?,
            "required" => {
                return Err(Invalid(format!("unexpected key '{key}' for mount type '{}'", kind_name(m.kind))));
            }
            "id" => m.id = Some(val),
            "sharing" => {
                let lower = val.to_lowercase();
                if !matches!(lower.as_str(), "shared" | "private" | "locked") {
                    return Err(Invalid(format!("unsupported sharing value {val:?}")));
                }
                m.sharing = lower;
                sharing_set = true;
            }
            "mode" => {
                m.mode =
                    Some(u32::from_str_radix(&val, 8).map_err(|_| Invalid(format!("invalid value {val} for mode")))?)
            }
            "uid" => m.uid = Some(val.parse().map_err(|_| Invalid(format!("invalid value {val} for uid")))?),
            "gid" => m.gid = Some(val.parse().map_err(|_| Invalid(format!("invalid value {val} for gid")))?),
            "size" if m.kind == MountKind::Tmpfs => m.size = Some(ram_in_bytes(&val)?),
            _ => return Err(Invalid(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    let file_info_allowed = matches!(m.kind, MountKind::Secret | MountKind::Ssh | MountKind::Cache);
    for (name, set) in [("mode", m.mode.is_some()), ("uid", m.uid.is_some()), ("gid", m.gid.is_some())] {
        if set && !file_info_allowed {
            return Err(Invalid(format!("{name} not allowed for {:?} type mounts", kind_name(m.kind))));
        }
    }
    if ro_auto {
        m.readonly = !matches!(m.kind, MountKind::Cache | MountKind::Tmpfs);
    }
    if sharing_set && m.kind != MountKind::Cache {
        return Err(Invalid(format!("invalid cache sharing set for {} mount", kind_name(m.kind))));
    }
    if m.kind == MountKind::Secret {
        if m.from.is_some() {
            return Err(Invalid("secret mount should not have a from".to_owned()));
        }
        if m.source.is_none() && m.target.is_empty() && m.id.is_none() {
            return Err(Invalid("invalid secret mount. one of source, target required".to_owned()));
        }
        if m.source.is_some() && m.id.is_some() {
            return Err(Invalid("both source and id can't be set".to_owned()));
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str) -> RunMount {
        parse_mount(v).expect("valid mount")
    }

    fn err(v: &str) -> String {
        parse_mount(v).expect_err("invalid mount").to_string()
    }

    #[test]
    fn defaults() {
        let m = ok("target=/src");
        assert_eq!(m.kind, MountKind::Bind);
        assert_eq!(m.target, "/src");
        assert!(m.readonly, "bind mounts are read-only by default");
        assert_eq!(m.sharing, "shared");
        let c = ok("type=cache,target=/root/.cache");
        assert_eq!(c.kind, MountKind::Cache);
        assert!(!c.readonly);
        assert!(!ok("type=tmpfs,dst=/tmp").readonly);
        assert!(ok("type=secret,id=tok").readonly);
    }

    #[test]
    fn every_key() {
        let m =
            ok("type=cache,id=go,destination=/go,sharing=LOCKED,mode=0755,uid=1000,gid=1001,from=builder,src=/x,rw");
        assert_eq!(m.id.as_deref(), Some("go"));
        assert_eq!(m.target, "/go");
        assert_eq!(m.sharing, "locked");
        assert_eq!(m.mode, Some(0o755));
        assert_eq!((m.uid, m.gid), (Some(1000), Some(1001)));
        assert_eq!(m.from.as_deref(), Some("builder"));
        assert_eq!(m.source.as_deref(), Some("/x"));
        assert!(!m.readonly);
        assert!(ok("target=/a,ro=false").readonly.eq(&false));
        assert!(ok("type=cache,target=/a,readonly").readonly);
        assert!(ok("type=cache,target=/a,readwrite=false").readonly);
        assert!(ok("type=secret,id=a,required").required);
        assert!(ok("type=ssh,required=true").required);
        assert_eq!(ok("type=tmpfs,target=/t,size=64m").size, Some(64 << 20));
        assert_eq!(ok("\"target=/a,b\"").target, "/a,b");
        assert_eq!(ok("Type=Cache,Target=/c").kind, MountKind::Cache);
    }

    #[test]
    fn errors() {
        assert_eq!(err("type=nfs,target=/a"), "unsupported mount type \"nfs\"");
        assert_eq!(err("target=/a,foo=bar"), "unexpected key 'foo' in 'foo=bar'");
        assert_eq!(err("target=/a,bogus"), "invalid field 'bogus' must be a key=value pair");
        assert_eq!(err("target=/a,required"), "unexpected key 'required' for mount type 'bind'");
        assert_eq!(err("target=/a,mode=0644"), "mode not allowed for \"bind\" type mounts");
        assert_eq!(err("type=cache,target=/a,mode=9"), "invalid value 9 for mode");
        assert_eq!(err("type=cache,target=/a,uid=x"), "invalid value x for uid");
        assert_eq!(err("target=/a,sharing=private"), "invalid cache sharing set for bind mount");
        assert_eq!(err("type=cache,target=/a,sharing=odd"), "unsupported sharing value \"odd\"");
        assert_eq!(err("type=secret"), "invalid secret mount. one of source, target required");
        assert_eq!(err("type=secret,id=a,source=b"), "both source and id can't be set");
        assert_eq!(err("type=secret,id=a,from=x"), "secret mount should not have a from");
        assert_eq!(err("target=/a,ro=maybe"), "invalid value for ro: maybe");
        assert_eq!(err("target=a\"b"), "failed to parse csv mounts: bare \" in non-quoted-field");
        assert_eq!(err("target=/a,size=1g"), "unexpected key 'size' in 'size=1g'");
    }
}
