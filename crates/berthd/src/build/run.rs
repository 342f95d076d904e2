//! `RUN`: a container of the step's image, its output streamed, its writable layer kept as the step's layer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::Error;
use berth_api::models::{ContainerCreateBody, HostConfig};
use berth_build::{Form, Instruction};
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::containers::{self, AttachStreams, BuildImage, WaitCondition};
use crate::task::blocking;

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) async fn run_step(
    cx: &Arc<Ctx>,
    st: &mut State,
    raw: &Instruction,
    at: &str,
    key: String,
    cmd: &Form,
    mounts: &[berth_build::RunMount],
    network: Option<&str>,
    heredocs: &[berth_build::Heredoc],
    stage: usize,
) -> Result<(), Error> {
    let mut script_bind = None;
    let argv = match berth_build::run_line(cmd, heredocs) {
        berth_build::RunLine::Exec(v) => v,
        berth_build::RunLine::Shell(s) => st.form_argv(&Form::Shell(s)),
        berth_build::RunLine::Script { name, content } => {
            // A heredoc with a `#!` line runs as a program of its own, from a read-only file (as BuildKit does).
            let dir = cx.prep.ws.join("scripts").join(cx.seq.fetch_add(1, Ordering::SeqCst).to_string());
            std::fs::create_dir_all(&dir).map_err(|e| Error::Internal(format!("mkdir {}: {e}", dir.display())))?;
            // The delimiter names the file inside the container only: never a host path.
            if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
                return Err(bad(format!("{at}: invalid here-document name {name:?} for a script")));
            }
            let file = dir.join("script");
            std::fs::write(&file, &content).map_err(|e| Error::Internal(format!("write {}: {e}", file.display())))?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755));
            let target = format!("/dev/pipes/{name}");
            script_bind = Some(format!("{}:{target}:ro", file.display()));
            vec![target]
        }
    };
    // Build arguments in scope are in the step's environment (and so in its key); ENV wins over ARG.
    let env = env_pairs(st.config());
    let mut run_env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut arg_env = Vec::new();
    for (k, v) in &st.args {
        if !env.iter().any(|(e, _)| e == k) {
            arg_env.push(format!("{k}={v}"));
        }
    }
    for p in PROXY_ARGS {
        if let Some(Some(v)) = cx.opts.build_args.get(*p)
            && !st.args.iter().any(|(k, _)| k == p)
        {
            run_env.push(format!("{p}={v}"));
            if let Ok(mut u) = cx.used_args.lock() {
                u.insert(p.to_string());
            }
        }
    }
    run_env.extend(arg_env.iter().cloned());
    let network_mode = match network.or(cx.opts.network.as_deref()) {
        None | Some("") | Some("default") => "default".to_string(),
        Some(n @ ("none" | "host")) => n.to_string(),
        Some(n) => n.to_string(),
    };
    // Mounts: cache directories kept by the builder, binds of the context, tmpfs.
    let mut binds: Vec<String> = script_bind.into_iter().collect();
    let mut host_mounts = HostMounts(Vec::new());
    let mut tmpfs = HashMap::new();
    let mut targets = Vec::new();
    let mut mount_desc = Vec::new();
    for m in mounts {
        let target = if m.target.starts_with('/') {
            fs::clean_abs(&m.target)
        } else {
            let wd = st.config()["WorkingDir"].as_str().unwrap_or("/").to_string();
            fs::clean_abs(&format!("{wd}/{}", m.target))
        };
        targets.push(target.clone());
        match m.kind {
            berth_build::MountKind::Cache => {
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let dir = build_root(&cx.d).join("cache-mounts").join(&fs::key_of(&json!(["cache", id]))[..32]);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Error::Internal(format!("cache mount {}: {e}", dir.display())))?;
                if let Some(m) = cx.d.config.userns_remap {
                    // The remapped RUN's root passes through to the cache and owns a new one.
                    let cache_root = build_root(&cx.d).join("cache-mounts");
                    crate::userns::let_through(&build_root(&cx.d), m)?;
                    crate::userns::let_through(&cache_root, m)?;
                    crate::userns::own_root_dir(&dir, m)?;
                }
                binds.push(format!("{}:{target}{}", dir.display(), if m.readonly { ":ro" } else { "" }));
                mount_desc.push(json!(["cache", id, target, m.readonly]));
            }
            berth_build::MountKind::Bind => {
                let src = m.source.clone().unwrap_or_else(|| "/".into());
                if let Some(from) = m.from.as_deref().filter(|f| !f.is_empty()) {
                    // Another stage's or an image's root, mounted read-only on the host for the step's time.
                    let (layers, from_key) = match cx.prep.df.stage(from) {
                        Some(i) if i < stage => {
                            let b = stage_result(cx, i).await?;
                            (b.lower_dirs(&cx.d.store), json!(["stage", b.key]))
                        }
                        Some(_) => {
                            return Err(bad(format!(
                                "{at}: --mount from={from}: a stage cannot mount itself or a later stage"
                            )));
                        }
                        None => {
                            let image = image_by_name(cx, from, false)
                                .await
                                .map_err(|e| bad(format!("{at}: --mount from={from}: {e}")))?;
                            (image.lower_dirs(), json!(["image", image.id.as_str()]))
                        }
                    };
                    let mnt = cx.prep.ws.join("mounts").join(cx.seq.fetch_add(1, Ordering::SeqCst).to_string());
                    std::fs::create_dir_all(&mnt)
                        .map_err(|e| Error::Internal(format!("mkdir {}: {e}", mnt.display())))?;
                    crate::archive::primitives::mount_overlay(&layers, None, &mnt)?;
                    host_mounts.0.push(mnt.clone());
                    let host = berth_runtime::mounts::secure_join(&mnt, Path::new(&src))
                        .map_err(|e| Error::Internal(format!("resolve {src}: {e}")))?;
                    if std::fs::symlink_metadata(&host).is_err() {
                        return Err(bad(format!("{at}: mount source {src} is not in {from}")));
                    }
                    binds.push(format!("{}:{target}:ro", host.display()));
                    mount_desc.push(json!(["bind-from", from_key, src, target]));
                    continue;
                }
                let rel = fs::clean_in_root(&src)
                    .ok_or_else(|| bad(format!("{at}: mount source {src} is outside the build context")))?;
                let host = berth_runtime::mounts::secure_join(&cx.prep.ctx, Path::new(&rel))
                    .map_err(|e| Error::Internal(format!("resolve {src}: {e}")))?;
                if std::fs::symlink_metadata(&host).is_err() {
                    return Err(bad(format!("{at}: mount source {src} is not in the build context")));
                }
                // Read-only, also with `rw`: the context is shared by the build's steps.
                binds.push(format!("{}:{target}:ro", host.display()));
                let hashes = {
                    let ctx = cx.prep.ctx.clone();
                    let cxc = cx.clone();
                    let r = rel.clone();
                    blocking(move || fs::hash_context_sources(&ctx, &[r], &cxc.hashes)).await?
                };
                mount_desc.push(json!(["bind", rel, target, hashes]));
            }
            berth_build::MountKind::Tmpfs => {
                let opts = m.size.map(|s| format!("size={s}")).unwrap_or_default();
                tmpfs.insert(target.clone(), opts);
                mount_desc.push(json!(["tmpfs", target, m.size]));
            }
            berth_build::MountKind::Secret | berth_build::MountKind::Ssh => {
                return Err(bad(format!(
                    "{at}: RUN --mount=type=secret and type=ssh are not supported (they need BuildKit's session)"
                )));
            }
        }
    }
    let key = fs::key_of(&json!([key, argv, arg_env, network_mode, mount_desc]));
    let shown_args =
        if arg_env.is_empty() { String::new() } else { format!("|{} {} ", arg_env.len(), arg_env.join(" ")) };
    let created_by = match cmd {
        Form::Shell(_) => format!("RUN {shown_args}{} # buildkit", argv.join(" ").trim_end()),
        Form::Exec(v) => format!("RUN {shown_args}{} # buildkit", json_words(v)),
    };
    if from_cache(cx, st, &key, &created_by).await? {
        return Ok(());
    }
    // The step's image: the stage's config without what only a real container uses.
    let mut config = st.config().clone();
    if let Some(m) = config.as_object_mut() {
        for k in ["Entrypoint", "Cmd", "Volumes", "Healthcheck", "OnBuild", "ExposedPorts"] {
            m.remove(k);
        }
        m.insert("Env".into(), json!(run_env));
    }
    let mut img = st.img.clone();
    img["config"] = config;
    let image = BuildImage { id: format!("sha256:{}", st.key), config: img, lower_dirs: st.lower_dirs(&cx.d.store) };
    let body = ContainerCreateBody {
        image: Some(format!("sha256:{}", st.key)),
        cmd: Some(argv.clone()),
        entrypoint: Some(Vec::new()),
        host_config: Some(HostConfig {
            network_mode: Some(network_mode),
            extra_hosts: Some(cx.opts.extra_hosts.clone()).filter(|h| !h.is_empty()),
            binds: Some(binds),
            tmpfs: Some(tmpfs),
            ..Default::default()
        }),
        labels: Some(HashMap::from([(STEP_LABEL.to_string(), raw.line.to_string())])),
        ..Default::default()
    };
    let id = containers::create_with(&cx.d, None, body, Some(image)).await?;
    let result = run_container(cx, &id).await;
    let c = cx.d.container(&id);
    let upper = containers::container_dir(&cx.d, &id).join("upper");
    let committed = match result {
        Ok(0) => {
            let lower = st.lower_dirs(&cx.d.store);
            let (u, t) = (upper.clone(), targets.clone());
            let _ = blocking(move || {
                fs::remove_mount_stubs(&u, &lower, &t);
                Ok(())
            })
            .await;
            // A RUN container is remapped with the daemon (`--userns-remap`): its upper directory holds host IDs.
            finish_layer_step(cx, st, key, created_by, upper, cx.d.config.userns_remap).await
        }
        Ok(code) => {
            cx.out.failed_with(code);
            Err(bad(format!("{at}: The command '{}' returned a non-zero code: {code}", argv.join(" "))))
        }
        Err(e) => Err(e),
    };
    if let Ok(c) = c
        && let Err(e) = containers::remove(&cx.d, &c, true, true).await
    {
        tracing::warn!("remove build container {}: {e}", &id[..12]);
    }
    cx.out.stream(format!("Removing intermediate container {}\n", &id[..12]));
    committed
}

/// Mounts a step made on the host (`RUN --mount=type=bind,from=`), unmounted when the step ends.
pub(super) struct HostMounts(pub(super) Vec<PathBuf>);

impl Drop for HostMounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            if let Err(e) = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH) {
                tracing::warn!("unmount {}: {e}", m.display());
            }
        }
    }
}

/// Starts a step's container, streams its output, returns its exit code.
pub(super) async fn run_container(cx: &Arc<Ctx>, id: &str) -> Result<i64, Error> {
    let c = cx.d.container(id)?;
    cx.out.stream(format!(" ---> Running in {}\n", &id[..12]));
    // Attached before the start, so that no output is missed.
    let attach = containers::attach_at_start(&c, AttachStreams { stdin: false, stdout: true, stderr: true });
    containers::start(&cx.d, &c).await?;
    if let Ok(mut s) = attach.await {
        // Docker's multiplexed frames: 8-byte header (stream, 0, 0, 0, big-endian length), then the payload.
        let mut header = [0u8; 8];
        loop {
            if s.read_exact(&mut header).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            let mut buf = vec![0u8; len];
            if s.read_exact(&mut buf).await.is_err() {
                break;
            }
            let text = String::from_utf8_lossy(&buf);
            if header[0] == 2 { cx.out.stderr(&text) } else { cx.out.stream(text.into_owned()) }
        }
    }
    let (code, err) = containers::wait(&c, WaitCondition::NotRunning).await;
    if let Some(e) = err.filter(|_| code >= 125) {
        return Err(bad(format!("the step's container failed to run: {e}")));
    }
    Ok(code)
}
