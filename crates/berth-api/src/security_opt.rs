//! `--security-opt` (and Compose's `security_opt`) as the docker CLI sends it to the Engine API.

use std::path::Path;

/// A security option the docker CLI refuses, in its words.
#[derive(Debug, thiserror::Error)]
pub enum SecurityOptError {
    /// An option without a value (other than `no-new-privileges`), as given.
    #[error("invalid --security-opt: {0:?}")]
    Invalid(String),
    /// The seccomp profile could not be read.
    #[error("opening seccomp profile ({file}) failed: {source}")]
    Open {
        /// The file, as given.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The seccomp profile is not JSON.
    #[error("compacting json for seccomp profile ({file}) failed: {source}")]
    Compact {
        /// The file, as given.
        file: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// What a client sends for its security options: `seccomp=FILE` (relative to `base`) becomes `seccomp=<the file's
/// compact JSON>` (`unconfined` and `builtin` are names, not files); `systempaths=unconfined` is not sent but turns
/// into empty `MaskedPaths` and `ReadonlyPaths` (the `true` returned). An option without a value other than
/// `no-new-privileges` is refused, as the docker CLI refuses it; errors are the CLI's texts.
pub fn resolve(opts: &[String], base: &Path) -> Result<(Vec<String>, bool), SecurityOptError> {
    let mut out = Vec::new();
    let mut unconfined_paths = false;
    for opt in opts {
        if opt == "systempaths=unconfined" {
            unconfined_paths = true;
            continue;
        }
        let (key, value) = opt.split_once('=').or_else(|| opt.split_once(':')).unwrap_or((opt, ""));
        if value.is_empty() && key != "no-new-privileges" {
            return Err(SecurityOptError::Invalid(opt.clone()));
        }
        if key == "seccomp" && !matches!(value, "unconfined" | "builtin") {
            let file = || value.to_string();
            let text =
                std::fs::read(base.join(value)).map_err(|source| SecurityOptError::Open { file: file(), source })?;
            let json: serde_json::Value =
                serde_json::from_slice(&text).map_err(|source| SecurityOptError::Compact { file: file(), source })?;
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
        let err = |opt: &str| resolve(&[opt.to_string()], &dir).map_err(|e| e.to_string()).err();
        assert_eq!(err("label").as_deref(), Some("invalid --security-opt: \"label\""));
        assert_eq!(
            err("seccomp=missing.json").as_deref(),
            Some("opening seccomp profile (missing.json) failed: No such file or directory (os error 2)")
        );
        std::fs::write(dir.join("bad.json"), "{").expect("write");
        assert_eq!(
            err("seccomp=bad.json").as_deref(),
            Some(
                "compacting json for seccomp profile (bad.json) failed: EOF while parsing an object at line 1 column 1"
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
