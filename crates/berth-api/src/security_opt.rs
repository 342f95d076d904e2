//! `--security-opt` (and Compose's `security_opt`) as the docker CLI sends it to the Engine API.

use std::path::Path;

/// What a client sends for its security options: `seccomp=FILE` (relative to `base`) becomes `seccomp=<the file's
/// compact JSON>` (`unconfined` and `builtin` are names, not files); `systempaths=unconfined` is not sent but turns
/// into empty `MaskedPaths` and `ReadonlyPaths` (the `true` returned). An option without a value other than
/// `no-new-privileges` is refused, as the docker CLI refuses it; errors are the CLI's texts.
pub fn resolve(opts: &[String], base: &Path) -> Result<(Vec<String>, bool), String> {
    let mut out = Vec::new();
    let mut unconfined_paths = false;
    for opt in opts {
        if opt == "systempaths=unconfined" {
            unconfined_paths = true;
            continue;
        }
        let (key, value) = opt.split_once('=').or_else(|| opt.split_once(':')).unwrap_or((opt, ""));
        if value.is_empty() && key != "no-new-privileges" {
            return Err(format!("invalid --security-opt: {opt:?}"));
        }
        if key == "seccomp" && !matches!(value, "unconfined" | "builtin") {
            let text = std::fs::read(base.join(value))
                .map_err(|e| format!("opening seccomp profile ({value}) failed: {e}"))?;
            let json: serde_json::Value = serde_json::from_slice(&text)
                .map_err(|e| format!("compacting json for seccomp profile ({value}) failed: {e}"))?;
            out.push(format!("seccomp={json}"));
        } else {
            out.push(opt.clone());
        }
    }
    Ok((out, unconfined_paths))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_sent_compacted_and_systempaths_turns_into_empty_lists() {
        let dir = std::env::temp_dir().join(format!("berth-secopt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("p.json"), "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n").expect("write");
        let opts: Vec<String> = ["seccomp=p.json", "no-new-privileges", "systempaths=unconfined", "seccomp:unconfined"]
            .map(String::from)
            .into();
        let (out, unconfined) = resolve(&opts, &dir).expect("resolve");
        assert_eq!(out, ["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}", "no-new-privileges", "seccomp:unconfined"]);
        assert!(unconfined);
        assert_eq!(resolve(&["label".into()], &dir), Err("invalid --security-opt: \"label\"".into()));
        assert!(resolve(&["seccomp=missing.json".into()], &dir).is_err_and(|e| e.contains("opening seccomp profile")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
