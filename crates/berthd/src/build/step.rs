//! One Dockerfile instruction of a stage: expanded, keyed, and applied (config changes here; `RUN` in `run.rs`,
//! `COPY`/`ADD` in `copy.rs`).

use std::sync::Arc;

use crate::error::Error;
use berth_build::shell::Lex;
use berth_build::{Command, Form, Instruction};
use serde_json::{Value, json};

use crate::task::blocking;

use super::*;

pub(super) async fn step(cx: &Arc<Ctx>, st: &mut State, raw: &Instruction, stage: usize) -> Result<(), Error> {
    let lex = Lex::new(cx.prep.df.escape);
    let at = where_(cx, raw.line);
    let inst = {
        let vars = st.vars();
        raw.expand(&lex, &vars).map_err(|e| bad(format!("{at}: {e}")))?
    };
    let desc = format!("{:?}", inst.command);
    let key = fs::key_of(&json!([st.key, desc]));
    match &inst.command {
        Command::Env(pairs) => {
            let cfg = config_mut(&mut st.img);
            for (k, v) in pairs {
                set_env(cfg, k, v);
            }
            let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            meta_step(cx, st, key, format!("ENV {}", shown.join(" "))).await
        }
        Command::Arg(decls) => {
            let mut shown = Vec::new();
            for a in decls {
                let given = cx.opts.build_args.get(&a.name).cloned().flatten();
                if given.is_some()
                    && let Ok(mut u) = cx.used_args.lock()
                {
                    u.insert(a.name.clone());
                }
                let value = given
                    .or_else(|| a.default.clone())
                    .or_else(|| cx.meta.iter().rev().find(|(k, _)| *k == a.name).map(|(_, v)| v.clone()));
                st.args.retain(|(k, _)| *k != a.name);
                match value {
                    Some(v) => {
                        shown.push(format!("{}={v}", a.name));
                        st.args.push((a.name.clone(), v));
                    }
                    None => shown.push(a.name.clone()),
                }
            }
            // The values are part of every later step's key (through this one).
            let key = fs::key_of(&json!([st.key, desc, st.args]));
            meta_step(cx, st, key, format!("ARG {}", shown.join(" "))).await
        }
        Command::Label(pairs) => {
            let cfg = config_mut(&mut st.img);
            let mut labels = cfg.get("Labels").and_then(Value::as_object).cloned().unwrap_or_default();
            for (k, v) in pairs {
                labels.insert(k.clone(), json!(v));
            }
            cfg.insert("Labels".into(), Value::Object(labels));
            let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            meta_step(cx, st, key, format!("LABEL {}", shown.join(" "))).await
        }
        Command::Expose(ports) => {
            let cfg = config_mut(&mut st.img);
            let mut exposed = cfg.get("ExposedPorts").and_then(Value::as_object).cloned().unwrap_or_default();
            let mut shown = Vec::new();
            for p in ports {
                for one in expand_ports(p).map_err(|e| bad(format!("{at}: {e}")))? {
                    shown.push(one.clone());
                    exposed.insert(one, json!({}));
                }
            }
            cfg.insert("ExposedPorts".into(), Value::Object(exposed));
            meta_step(cx, st, key, format!("EXPOSE {}", shown.join(" "))).await
        }
        Command::User(u) => {
            config_mut(&mut st.img).insert("User".into(), json!(u));
            meta_step(cx, st, key, format!("USER {u}")).await
        }
        Command::Volume(vols) => {
            let cfg = config_mut(&mut st.img);
            let mut v = cfg.get("Volumes").and_then(Value::as_object).cloned().unwrap_or_default();
            for p in vols {
                if p.is_empty() {
                    return Err(bad(format!("{at}: VOLUME specified can not be an empty string")));
                }
                v.insert(p.clone(), json!({}));
            }
            cfg.insert("Volumes".into(), Value::Object(v));
            meta_step(cx, st, key, format!("VOLUME [{}]", vols.join(" "))).await
        }
        Command::StopSignal(s) => {
            crate::containers::parse_signal(s).map_err(|_| bad(format!("{at}: Invalid signal: {s}")))?;
            config_mut(&mut st.img).insert("StopSignal".into(), json!(s));
            meta_step(cx, st, key, format!("STOPSIGNAL {s}")).await
        }
        Command::Shell(sh) => {
            config_mut(&mut st.img).insert("Shell".into(), json!(sh));
            meta_step(cx, st, key, format!("SHELL {}", json_words(sh))).await
        }
        Command::Cmd(f) => {
            let argv = st.form_argv(f);
            config_mut(&mut st.img).insert("Cmd".into(), json!(argv));
            st.cmd_set = true;
            meta_step(cx, st, key, format!("CMD {}", json_words(&argv))).await
        }
        Command::Entrypoint(f) => {
            let argv = st.form_argv(f);
            let cfg = config_mut(&mut st.img);
            cfg.insert("Entrypoint".into(), json!(argv));
            if !st.cmd_set {
                // An ENTRYPOINT resets the CMD the base image set (Docker's rule).
                cfg.insert("Cmd".into(), Value::Null);
            }
            meta_step(cx, st, key, format!("ENTRYPOINT {}", json_words(&argv))).await
        }
        Command::Healthcheck(h) => {
            let v = match h {
                berth_build::Healthcheck::None => json!({"Test": ["NONE"]}),
                berth_build::Healthcheck::Check { test, interval, timeout, start_period, start_interval, retries } => {
                    let test = match test {
                        Form::Exec(v) => {
                            let mut t = vec!["CMD".to_string()];
                            t.extend(v.iter().cloned());
                            t
                        }
                        Form::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                    };
                    let mut v = json!({"Test": test});
                    for (k, d) in [
                        ("Interval", interval),
                        ("Timeout", timeout),
                        ("StartPeriod", start_period),
                        ("StartInterval", start_interval),
                    ] {
                        if let Some(d) = d {
                            v[k] = json!(go_duration(*d));
                        }
                    }
                    if let Some(r) = retries {
                        v["Retries"] = json!(r);
                    }
                    v
                }
            };
            config_mut(&mut st.img).insert("Healthcheck".into(), v.clone());
            meta_step(cx, st, key, format!("HEALTHCHECK {v}")).await
        }
        Command::Onbuild(_) => {
            let text = raw.original.split_once(char::is_whitespace).map(|x| x.1).unwrap_or("").trim().to_string();
            let cfg = config_mut(&mut st.img);
            let mut list = cfg.get("OnBuild").and_then(Value::as_array).cloned().unwrap_or_default();
            list.push(json!(text));
            cfg.insert("OnBuild".into(), Value::Array(list));
            meta_step(cx, st, key, format!("ONBUILD {text}")).await
        }
        Command::Maintainer(m) => {
            st.img["author"] = json!(m);
            meta_step(cx, st, key, format!("MAINTAINER {m}")).await
        }
        Command::Workdir(w) => {
            let cur = st.config()["WorkingDir"].as_str().unwrap_or("").to_string();
            let path = if w.starts_with('/') { fs::clean_abs(w) } else { fs::clean_abs(&format!("{cur}/{w}")) };
            config_mut(&mut st.img).insert("WorkingDir".into(), json!(path));
            let created_by = format!("WORKDIR {path}");
            if from_cache(cx, st, &key, &created_by).await? {
                return Ok(());
            }
            let dirs = step_dir(cx)?;
            let lower = st.lower_dirs(&cx.d.store);
            let user = st.config()["User"].as_str().map(str::to_string);
            let p2 = path.clone();
            let dirs2 = fs::StepDirs {
                upper: dirs.upper.clone(),
                work: dirs.work.clone(),
                mnt: dirs.mnt.clone(),
                src: dirs.src.clone(),
            };
            blocking(move || fs::ensure_dir(lower, &dirs2, p2, user)).await?;
            finish_layer_step(cx, st, key, created_by, dirs.upper, None).await
        }
        Command::Run { cmd, mounts, network, security, heredocs } => {
            if security.as_deref().is_some_and(|s| s != "sandbox") {
                return Err(bad(format!(
                    "{at}: RUN --security={} is not supported",
                    security.as_deref().unwrap_or("")
                )));
            }
            run_step(cx, st, raw, &at, key, cmd, mounts, network.as_deref(), heredocs, stage).await
        }
        Command::Copy(args) => copy_step(cx, st, raw, &at, key, args, false, stage).await,
        Command::Add(args) => copy_step(cx, st, raw, &at, key, args, true, stage).await,
    }
}

/// `EXPOSE 80`, `80/udp`, `8000-8002` → `80/tcp`, ...
pub(super) fn expand_ports(p: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let parse = |s: &str| s.parse::<u16>().map_err(|_| format!("invalid containerPort: {p}"));
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(ports)?, parse(ports)?),
    };
    if hi < lo {
        return Err(format!("invalid port range: {p}"));
    }
    Ok((lo..=hi).map(|n| format!("{n}/{proto}")).collect())
}
