//! What issue 16's loader changes mean for containers, end to end against a private daemon: a variable listed
//! without a value and unset removes the image's variable of that name (Compose v2 sends `KEY` without `=`), a `$`
//! that starts no variable reaches the shell as written, and a `provider:` service is refused by `up` before
//! anything is created.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use berth_integration::*;

/// `berth compose ARGS` without `GONE` in its environment.
fn compose_gone(d: &Berthd, dir: &std::path::Path, args: &[&str]) -> Output {
    compose_cmd(d, dir, args).env_remove("GONE").output().unwrap()
}

const ENV_FILE: &str = r#"services:
  a:
    build:
      context: .
      dockerfile_inline: |
        FROM busybox
        ENV GONE=image KEEP=image
    environment: [GONE, KEEP=own]
    command: sh -c 'echo $(echo sub) 5$ $1.'
"#;

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn an_unset_listed_variable_removes_the_images_and_dollars_reach_the_shell() {
    let d = daemon_with_busybox();
    let dir = compose_project(&d, "envp", ENV_FILE);
    let out = compose_gone(&d, &dir, &["run", "--rm", "-T", "a"]);
    assert!(out.status.success(), "{}{}\n{}", stdout(&out), stderr(&out), tail(&d.log(), 30));
    assert_eq!(stdout(&out).trim(), "sub 5$ .", "{}", stderr(&out));
    // `env` itself, not a shell (which would drop an entry without `=` on its own): no GONE at all.
    let out = compose_gone(&d, &dir, &["run", "--rm", "-T", "a", "env"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let vars: Vec<&str> = text.lines().filter(|l| l.starts_with("GONE") || l.starts_with("KEEP")).collect();
    assert_eq!(vars, ["KEEP=own"], "{text}");
    // The container's configuration keeps `GONE` without a value, as Docker's does for `-e GONE`.
    let out = compose_gone(&d, &dir, &["up", "-d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&compose_gone(&d, &dir, &["ps", "-a", "-q", "a"])).trim().to_string();
    let env = d.ok(&["inspect", "-f", "{{json .Config.Env}}", &id]);
    assert!(env.contains("\"GONE\"") && env.contains("\"KEEP=own\"") && !env.contains("GONE=image"), "{env}");
    let out = compose_gone(&d, &dir, &["down", "-t", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn a_provider_service_is_refused_before_anything_is_created() {
    let d = daemon_with_busybox();
    let text = "services:\n  web:\n    image: busybox\n    command: [sleep, \"300\"]\n    depends_on: [ai]\n  ai:\n    provider:\n      type: model\n      options: {model: ai/smollm2}\n";
    let dir = compose_project(&d, "prov", text);
    let out = compose_gone(&d, &dir, &["up", "-d"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("service \"ai\" uses provider \"model\": provider services are not supported"),
        "{}",
        stderr(&out)
    );
    // Nothing was created: no network, no container.
    assert!(!d.ok(&["network", "ls", "--format", "{{.Name}}"]).lines().any(|n| n == "prov_default"));
    assert_eq!(d.ok(&["ps", "-a", "-q"]).trim(), "");
    // `config` still shows it.
    let out = compose_gone(&d, &dir, &["config"]);
    assert!(stdout(&out).contains("provider:"), "{}", stderr(&out));
}
