//! `COPY`/`ADD` (and `WORKDIR`'s directory): sources from the context, a stage or an image, written into the
//! step's root in a private namespace (see `fs`).

use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use berth_build::Instruction;
use serde_json::json;

use crate::task::blocking;

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) async fn copy_step(
    cx: &Arc<Ctx>,
    st: &mut State,
    raw: &Instruction,
    at: &str,
    key: String,
    args: &berth_build::CopyArgs,
    add: bool,
    stage: usize,
) -> Result<(), Error> {
    let what = if add { "ADD" } else { "COPY" };
    if !args.exclude.is_empty() {
        return Err(bad(format!("{at}: {what} --exclude is not supported yet")));
    }
    if args.parents {
        return Err(bad(format!("{at}: {what} --parents is not supported yet")));
    }
    let wd = st.config()["WorkingDir"].as_str().unwrap_or("").to_string();
    let dest = if args.dest.starts_with('/') {
        args.dest.clone()
    } else {
        let keep_slash = args.dest.ends_with('/') || args.dest == "." || args.dest.ends_with("/.");
        let mut d = fs::clean_abs(&format!("{wd}/{}", args.dest));
        if keep_slash && !d.ends_with('/') {
            d.push('/');
        }
        d
    };
    let chmod = match args.chmod.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(u32::from_str_radix(c, 8).map_err(|_| bad(format!("{at}: invalid chmod parameter: {c}")))?),
        None => None,
    };
    let heredoc_names: Vec<&str> = args.heredocs.iter().map(|h| h.name.as_str()).collect();
    let mut sources = Vec::new();
    let mut urls = Vec::new();
    for s in &args.sources {
        if heredoc_names.contains(&s.trim_start_matches("<<").trim_start_matches('-')) || s.starts_with("<<") {
            continue;
        }
        if add && (s.starts_with("http://") || s.starts_with("https://")) {
            urls.push(s.clone());
            continue;
        }
        if args.from.is_none() && add && (s.starts_with("git@") || s.ends_with(".git")) {
            return Err(bad(format!("{at}: ADD of a git repository ({s}) is not supported")));
        }
        sources.push(s.clone());
    }
    // Where the sources come from, and what that contributes to the key.
    let (root, from_key, from_context) = match args.from.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => match cx.prep.df.stage(f) {
            Some(i) if i < stage => {
                let b = stage_result(cx, i).await?;
                (fs::SourceRoot::Layers(b.lower_dirs(&cx.d.store)), json!(["stage", b.key]), false)
            }
            Some(_) => {
                return Err(bad(format!("{at}: {what} --from={f}: a stage cannot copy from itself or a later stage")));
            }
            None => {
                let image =
                    image_by_name(cx, f, false).await.map_err(|e| bad(format!("{at}: {what} --from={f}: {e}")))?;
                (fs::SourceRoot::Layers(image.lower_dirs()), json!(["image", image.id.as_str()]), false)
            }
        },
        None => {
            for s in &sources {
                if fs::clean_in_root(s).is_none() {
                    return Err(bad(format!("{at}: {what} failed: forbidden path outside the build context: {s} ()")));
                }
            }
            let ctx = cx.prep.ctx.clone();
            let srcs = sources.clone();
            let cxc = cx.clone();
            let hashes = blocking(move || fs::hash_context_sources(&ctx, &srcs, &cxc.hashes)).await?;
            (fs::SourceRoot::Dir(cx.prep.ctx.clone()), json!(["context", hashes]), true)
        }
    };
    let dirs = step_dir(cx)?;
    // Here-documents and downloads become files of the step's directory.
    let mut files = Vec::new();
    let mut file_keys = Vec::new();
    for (n, h) in args.heredocs.iter().enumerate() {
        let content = {
            let vars = st.vars();
            h.expanded_content(&vars).map_err(|e| bad(format!("{at}: {e}")))?
        };
        let p = dirs.src.parent().unwrap_or(Path::new("/")).join(format!("heredoc-{n}"));
        std::fs::write(&p, &content).map_err(|e| Error::Internal(format!("write {}: {e}", p.display())))?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644));
        file_keys.push(json!([h.name, content]));
        files.push((p, h.name.clone()));
    }
    if let Some(sum) = args.checksum.as_deref().filter(|c| !c.is_empty()) {
        if urls.len() != 1 || !sources.is_empty() {
            return Err(bad(format!("{at}: checksum can't be specified for multiple sources or non-HTTP(S) sources")));
        }
        if !sum.starts_with("sha256:") {
            return Err(bad(format!("{at}: unsupported checksum {sum}: only sha256: is supported")));
        }
    }
    for (n, u) in urls.iter().enumerate() {
        let dest_dir = dirs.src.parent().unwrap_or(Path::new("/")).join(format!("url-{n}"));
        // berth-registry's client: TLS verified as for registries, redirects followed, connect and body timeouts,
        // the body streamed to the file.
        let got = berth_registry::client::download(u, Some(&cx.d.config.registry_certs_dir), &dest_dir)
            .await
            .map_err(|e| bad(format!("{at}: ADD {u}: {e}")))?;
        let (path, name, digest) = (got.path, got.name, got.sha256);
        if let Some(sum) = args.checksum.as_deref().filter(|c| !c.is_empty())
            && sum.strip_prefix("sha256:") != Some(digest.as_str())
        {
            return Err(bad(format!("{at}: ADD {u}: digest mismatch: expected {sum}, got sha256:{digest}")));
        }
        file_keys.push(json!([u, digest]));
        files.push((path, name));
    }
    let key = fs::key_of(&json!([key, from_key, file_keys, dest]));
    let shown = raw.original.split_once(char::is_whitespace).map(|x| x.1).unwrap_or("").trim().to_string();
    let created_by = format!("{what} {shown} # buildkit");
    if from_cache(cx, st, &key, &created_by).await? {
        return Ok(());
    }
    let job = fs::CopyJob {
        root,
        sources: sources.iter().map(|s| fs::clean_abs(s)).collect(),
        files,
        dest,
        chown: args.chown.clone(),
        chmod,
        unpack_archives: add && args.unpack != Some(false),
        what,
        from_context,
    };
    let lower = st.lower_dirs(&cx.d.store);
    let upper = dirs.upper.clone();
    let at2 = at.to_string();
    blocking(move || fs::copy(lower, &dirs, job).map_err(|e| bad(format!("{at2}: {e}")))).await?;
    finish_layer_step(cx, st, key, created_by, upper, None).await
}
