//! The web dashboard (`berthd --ui`): its access rules over plain HTTP, and the pages in a real browser (Debian's
//! chromium and chromium-driver, driven by python3-selenium through `tests/ui_browser.py`).

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use berth_integration::*;

/// An answer: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.0 request to the dashboard on `port`, with `Host: 127.0.0.1:port` unless `extra` gives one.
fn http(port: u16, method: &str, path: &str, extra: &[(&str, &str)], body: &str) -> Answer {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.0\r\n");
    if !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer { status, headers, body: String::from_utf8_lossy(&out[split + 4..]).into_owned() }
}

/// `berth ui`'s login link, as a path (`/login?token=...`).
fn login_path(d: &Berthd) -> String {
    let out = d.ok(&["ui"]);
    let link = out.lines().last().unwrap().trim().to_string();
    assert!(link.contains("/login?token="), "{out}");
    link.split_once("://").unwrap().1.split_once('/').map(|(_, p)| format!("/{p}")).unwrap()
}

/// The CSRF token a page carries.
fn csrf_of(page: &str) -> String {
    let (_, rest) = page.split_once("name=\"csrf-token\" content=\"").expect("csrf meta");
    rest.split('"').next().unwrap().to_string()
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn access_needs_a_one_time_token_a_session_and_same_origin_csrf() {
    let port = free_port();
    // Through the configuration file's "ui" key, as an administrator would set it.
    let conf = std::env::temp_dir().join(format!("berth-ui-conf-{}-{port}.json", std::process::id()));
    std::fs::write(&conf, format!("{{\"ui\": \"127.0.0.1:{port}\"}}")).unwrap();
    // (The file stays until the daemon is gone: its clean-up reads it.)
    let d = Berthd::start_with(&["--config-file", conf.to_str().unwrap()]);
    d.busybox();
    let origin = format!("http://127.0.0.1:{port}");

    // No session: nothing but the login page and the static files.
    for path in ["/", "/fragments/containers", "/containers/x", "/events", "/system", "/sse/events", "/images"] {
        let a = http(port, "GET", path, &[], "");
        assert_eq!(a.status, 401, "{path}: {}", a.body);
    }
    assert_eq!(http(port, "GET", "/static/app.js", &[], "").status, 200);
    assert_eq!(http(port, "GET", "/login?token=00", &[], "").status, 403, "an unknown token");

    // A token works once.
    let login = login_path(&d);
    let a = http(port, "GET", &login, &[], "");
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location"), Some("/"));
    let set = a.header("set-cookie").expect("a session cookie").to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let replay = http(port, "GET", &login, &[], "");
    assert_eq!(replay.status, 403, "a replayed token: {}", replay.body);
    assert!(replay.header("set-cookie").is_none());

    // With the session: the pages, under a strict policy and no inline script.
    let page = http(port, "GET", "/", &[("Cookie", &cookie)], "");
    assert_eq!(page.status, 200, "{}", page.body);
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe") && !csp.contains("http"), "{csp}");
    assert_eq!(page.body.matches("<script").count(), page.body.matches("<script src=\"/static/").count());
    assert!(!page.body.contains(" style="), "no inline styles (the policy would block them)");
    let csrf = csrf_of(&page.body);
    // Another Host (DNS rebinding) is not answered, session or not.
    let a = http(port, "GET", "/", &[("Host", "evil.example:80"), ("Cookie", &cookie)], "");
    assert_eq!(a.status, 421, "{}", a.body);

    d.ok(&["run", "-d", "--name", "target", "busybox", "sleep", "1000"]);
    let running = || d.inspect("target", "{{.State.Status}}") == "running";
    let form = format!("csrf={csrf}&back=%2F");
    let ct = ("Content-Type", "application/x-www-form-urlencoded");
    // Refused: another origin (with a valid session and token), no origin, no token, a wrong token, no session.
    // (what, headers, form, the status wanted)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, String, u16);
    let cases: [Case; 5] = [
        ("cross-origin", vec![("Cookie", &cookie), ("Origin", "http://evil.example"), ct], form.clone(), 403),
        ("no origin", vec![("Cookie", &cookie), ct], form.clone(), 403),
        ("no CSRF token", vec![("Cookie", &cookie), ("Origin", &origin), ct], "back=%2F".into(), 403),
        (
            "a wrong CSRF token",
            vec![("Cookie", &cookie), ("Origin", &origin), ct],
            format!("csrf={}", "0".repeat(64)),
            403,
        ),
        ("no session", vec![("Origin", &origin), ct], form.clone(), 401),
    ];
    for (what, headers, body, want) in &cases {
        let a = http(port, "POST", "/containers/target/kill", headers, body);
        assert_eq!(a.status, *want, "{what}: {}", a.body);
        assert!(running(), "{what}: the container was killed");
    }
    // The terminal is behind the same checks: no shell for another origin or without the token.
    for (what, headers, body, want) in &cases {
        let a = http(port, "POST", "/containers/target/terminal", headers, body);
        assert_eq!(a.status, *want, "terminal, {what}: {}", a.body);
    }
    let (_, _, body) = api(&d, "GET", "/containers/target/json", b"");
    let inspect: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(inspect["ExecIDs"].as_array().is_none_or(|a| a.is_empty()), "an exec was made: {}", inspect["ExecIDs"]);
    let ok = [("Cookie", cookie.as_str()), ("Origin", origin.as_str()), ("X-CSRF-Token", csrf.as_str())];
    let a = http(port, "POST", "/containers/target/terminal", &ok, "");
    assert_eq!(a.status, 200, "{}", a.body);
    let exec: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    let exec = exec["Id"].as_str().unwrap().to_string();
    let input = format!("/terminals/{exec}/input");
    for (what, headers, _, want) in &cases {
        let a = http(port, "POST", &input, headers, "touch /tmp/typed\r");
        assert_eq!(a.status, *want, "input, {what}: {}", a.body);
    }
    assert_eq!(http(port, "GET", &format!("/sse/terminals/{exec}"), &[], "").status, 401);
    let (status, _, body) = api(&d, "GET", &format!("/exec/{exec}/json"), b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("\"Running\":true"), "{}", String::from_utf8_lossy(&body));
    // A page that never shows the terminal leaves no shell: hung up after 30 s (bounded wait 45 s).
    let ended = d.eventually(45, || {
        let (_, _, body) = api(&d, "GET", &format!("/exec/{exec}/json"), b"");
        String::from_utf8_lossy(&body).contains("\"Running\":false")
    });
    assert!(ended, "the unused terminal's shell is still running");
    assert!(d.berth(&["exec", "target", "test", "-e", "/tmp/typed"]).status.code() == Some(1), "refused input typed");

    // A container's health and restart count are in its row.
    let body = br#"{"Image": "busybox", "Cmd": ["sleep", "1000"], "Healthcheck": {"Test": ["CMD", "true"], "Interval": 200000000}}"#;
    let (status, _, out) = api(&d, "POST", "/containers/create?name=checked", body);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&out));
    d.ok(&["start", "checked"]);
    let healthy_row = || {
        let rows = http(port, "GET", "/fragments/containers", &[("Cookie", &cookie)], "").body;
        rows.split("<tr").any(|r| r.contains("data-name=\"checked\"") && r.contains("<td>healthy</td>"))
    };
    assert!(
        d.eventually(15, healthy_row),
        "no healthy row: {}",
        http(port, "GET", "/", &[("Cookie", &cookie)], "").body
    );

    // The log, to download: stdout and stderr lines, with timestamps.
    d.ok(&["run", "--name", "talker", "busybox", "sh", "-c", "echo out-line; echo err-line >&2"]);
    let log = http(port, "GET", "/containers/talker/logs.txt", &[("Cookie", &cookie)], "");
    assert_eq!(log.status, 200, "{}", log.body);
    assert!(log.header("content-disposition").is_some_and(|v| v.starts_with("attachment")));
    let lines: Vec<&str> = log.body.lines().collect();
    assert_eq!(lines.len(), 2, "{}", log.body);
    assert!(lines.iter().any(|l| l.ends_with(" out-line") && l.starts_with("20")), "{}", log.body);
    assert!(lines.iter().any(|l| l.ends_with(" [stderr] err-line")), "{}", log.body);
    assert_eq!(http(port, "GET", "/containers/talker/logs.txt", &[], "").status, 401);

    // A volume's users listed.
    d.ok(&["run", "-d", "--name", "mounter", "-v", "uivol:/data", "busybox", "sleep", "1000"]);
    let vols = http(port, "GET", "/volumes", &[("Cookie", &cookie)], "").body;
    let row = vols.split("<tr>").find(|r| r.contains("<td>uivol</td>")).unwrap_or_else(|| panic!("{vols}"));
    assert!(row.contains(">mounter</a>"), "{row}");

    // An image's tag removed from the images page; its users listed.
    d.ok(&["tag", "busybox", "doomed:1"]);
    let images = http(port, "GET", "/images", &[("Cookie", &cookie)], "");
    assert!(images.body.contains("doomed:1") && images.body.contains(">checked</a>"), "{}", images.body);
    let a = http(port, "POST", "/images/doomed:1/remove", &[("Cookie", &cookie), ("Origin", &origin), ct], &form);
    assert_eq!(a.status, 303, "{}", a.body);
    assert!(!d.ok(&["images"]).contains("doomed"), "the tag is still there");
    // An image in use is refused, as `docker rmi` without -f.
    let a = http(port, "POST", "/images/busybox/remove", &[("Cookie", &cookie), ("Origin", &origin), ct], &form);
    assert_eq!(a.status, 409, "{}", a.body);

    // The page's own request.
    let a = http(port, "POST", "/containers/target/kill", &[("Cookie", &cookie), ("Origin", &origin), ct], &form);
    assert_eq!(a.status, 303, "{}", a.body);
    assert!(d.eventually(10, || !running()), "the kill from the dashboard did not stop the container");
    // The header form of the token (for scripts) works too; an API error is shown with its status.
    let a = http(
        port,
        "POST",
        "/containers/nosuch/start",
        &[("Cookie", &cookie), ("Origin", &origin), ("X-CSRF-Token", &csrf)],
        "",
    );
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(a.body.contains("No such container: nosuch"), "{}", a.body);

    // Logging out ends the session on the server.
    let a = http(port, "POST", "/logout", &[("Cookie", &cookie), ("Origin", &origin), ct], &form);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(http(port, "GET", "/", &[("Cookie", &cookie)], "").status, 401);
    drop(d);
    let _ = std::fs::remove_file(&conf);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn off_by_default_loopback_only_tokens_on_the_unix_socket_only() {
    // Off: no route, and `berth ui` says how to turn it on.
    let port = free_port();
    let d = Berthd::start_with(&["--host", &format!("tcp://127.0.0.1:{port}"), "--insecure-tcp-for-tests"]);
    let out = d.berth(&["ui"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("dashboard is off"), "{}", stderr(&out));
    assert_eq!(api(&d, "POST", "/berth/ui/token", b"").0, 404);
    drop(d);

    // On: the token is given on the Unix socket, never over TCP (whoever holds a client certificate gets the API,
    // not a login to a browser session).
    let (api_port, ui_port) = (free_port(), free_port());
    let d = Berthd::start_with(&[
        "--host",
        &format!("tcp://127.0.0.1:{api_port}"),
        "--insecure-tcp-for-tests",
        "--ui",
        &format!("127.0.0.1:{ui_port}"),
    ]);
    let (status, _, body) = api(&d, "POST", "/v1.41/berth/ui/token", b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let tcp = http(api_port, "POST", "/berth/ui/token", &[], "");
    assert_eq!(tcp.status, 403, "{}", tcp.body);
    assert!(tcp.body.contains("Unix socket"), "{}", tcp.body);
    drop(d);

    // Not loopback without mutual TLS: refused before anything starts.
    let dir = std::env::temp_dir().join(format!("berth-ui-refuse-{}", std::process::id()));
    let (status, err) = berthd_refusing(
        [
            "--ui",
            "0.0.0.0:1",
            "--config-file",
            "/dev/null",
            "--host",
            &format!("unix://{}/s.sock", dir.display()),
            "--data-root",
            &format!("{}/data", dir.display()),
            "--exec-root",
            &format!("{}/run", dir.display()),
        ],
        10,
    );
    assert!(status.is_some_and(|s| !s.success()), "{err}");
    assert!(err.contains("refusing to serve the dashboard on 0.0.0.0:1 without --tlsverify"), "{err}");
    assert!(!dir.join("data").exists(), "the data root was touched");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Where contrib/deps.sh installs axe-core (npm, a pinned version, in a directory of Berth's tests).
const AXE_JS: &str = "/var/lib/berth-test-deps/axe/node_modules/axe-core/axe.min.js";

/// Whether the browser tools are here: chromium, chromedriver, and selenium for Debian's python3.
fn browser_tools() -> Result<(), String> {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        if !std::path::Path::new(tool).exists() {
            return Err(format!("{tool} is not installed (apt-get install chromium chromium-driver)"));
        }
    }
    let ok = Command::new("/usr/bin/python3").args(["-c", "import selenium"]).status().is_ok_and(|s| s.success());
    if !ok {
        return Err("python3-selenium is not installed".into());
    }
    Ok(())
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn the_dashboard_in_chromium() {
    if let Err(why) = browser_tools() {
        skip_missing_tool(&format!("{why}: the dashboard was not tested in a browser"));
        return;
    }
    // axe-core, the accessibility checker, run in the page on every page (contrib/deps.sh installs it with npm).
    let axe = std::env::var_os("BERTH_AXE_JS").map(std::path::PathBuf::from).unwrap_or_else(|| AXE_JS.into());
    let axe = if axe.is_file() {
        axe.display().to_string()
    } else {
        skip_missing_tool(&format!(
            "{} is missing (contrib/deps.sh installs axe-core with npm): the pages' accessibility was not checked",
            axe.display()
        ));
        String::new()
    };
    let port = free_port();
    let d = Berthd::start_with(&["--ui", &format!("127.0.0.1:{port}")]);
    d.busybox();
    // An image in a local registry, for the pull page, and not on the daemon.
    let registry = LocalRegistry::start(d.dir.join("ui-registry"));
    let pull_ref = format!("{}/ui/busybox:pulled", registry.addr);
    // (A layer of its own, 2 MB of random bytes, to download with progress; its busybox layer "Already exists".)
    d.ok(&["run", "--name", "layered", "busybox", "dd", "if=/dev/urandom", "of=/blob", "bs=1M", "count=2"]);
    d.ok(&["commit", "layered", &pull_ref]);
    d.ok(&["rm", "layered"]);
    d.ok(&["push", &pull_ref]);
    d.ok(&["rmi", &pull_ref]);
    // What the volumes, networks and compose pages show.
    d.ok(&["network", "create", "uinet"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "netted",
        "--network",
        "uinet",
        "--network-alias",
        "uialias",
        "-v",
        "uivol:/data",
        "busybox",
        "sleep",
        "1000",
    ]);
    for svc in ["web", "db"] {
        let loop_ = format!("while true; do echo {svc} says hello; sleep 0.5; done");
        d.ok(&[
            "run",
            "-d",
            "--name",
            &format!("demo-{svc}-1"),
            "--label",
            "com.docker.compose.project=demo",
            "--label",
            &format!("com.docker.compose.service={svc}"),
            "busybox",
            "sh",
            "-c",
            &loop_,
        ]);
    }
    let login = format!("http://127.0.0.1:{port}{}", login_path(&d));
    // Kept after the run (the daemon's directory is not), for a person to look at.
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    // Each of its waits is bounded (20 s); the whole run gets 5 minutes on a loaded machine (`timeout`, a last resort:
    // it would leave the browser to chromedriver's own exit).
    let run = Command::new("timeout")
        .args(["300", "/usr/bin/python3"])
        .arg(repo_root().join("tests/ui_browser.py"))
        .arg(&login)
        .arg(&shots)
        .arg(&pull_ref)
        .arg(&axe)
        .arg("--")
        .arg(bin("berth"))
        .arg("-H")
        .arg(d.host())
        .output()
        .unwrap();
    let (out, err) = (stdout(&run), stderr(&run));
    let status = run.status;
    eprintln!("screenshots: {}", shots.display());
    assert!(
        status.success() && out.contains("\nOK"),
        "the browser run failed ({status:?}; screenshots and failure.html in {}):\n{out}\n{err}\nberthd:\n{}",
        shots.display(),
        tail(&d.log(), 40)
    );
    for shot in [
        "01-containers-empty",
        "02-containers-live",
        "03-containers-stopped",
        "04-container",
        "05-terminal",
        "06-events",
        "07-system",
        "08-volumes",
        "09-networks",
        "10-compose",
        "11-compose-project",
        "12-images-pulled",
        "13-images",
        "14-image",
    ] {
        assert!(shots.join(format!("{shot}.png")).is_file(), "{shot}.png missing");
    }
    if !axe.is_empty() {
        assert!(out.contains("AXE checked "), "{out}");
    }
    drop(registry);
}

#[test]
#[cfg_attr(not(berth_root), ignore = "needs root")]
fn a_compose_project_known_by_its_labels_goes_down_from_the_dashboard() {
    let port = free_port();
    let d = Berthd::start_with(&["--ui", &format!("127.0.0.1:{port}")]);
    d.busybox();
    let origin = format!("http://127.0.0.1:{port}");
    // As docker-compose labels a project's objects.
    d.ok(&["network", "create", "--label", "com.docker.compose.project=shop", "shop_default"]);
    d.ok(&["network", "create", "--label", "com.docker.compose.project=other", "other_default"]);
    for (name, project, svc) in
        [("shop_web_1", "shop", "web"), ("shop_web_2", "shop", "web"), ("other_x_1", "other", "x")]
    {
        d.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            &format!("{project}_default"),
            "--label",
            &format!("com.docker.compose.project={project}"),
            "--label",
            &format!("com.docker.compose.service={svc}"),
            "--label",
            "com.docker.compose.project.working_dir=/srv/shop",
            "busybox",
            "sleep",
            "1000",
        ]);
    }
    let a = http(port, "GET", &login_path(&d), &[], "");
    let cookie = a.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let page = http(port, "GET", "/compose", &[("Cookie", &cookie)], "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("2/2 running") && page.body.contains("/srv/shop"), "{}", page.body);
    assert!(page.body.contains("<td>web</td><td>2/2</td>"), "{}", page.body);
    assert!(page.body.contains("docker-compose up -d"), "says what needs the compose file");
    let csrf = csrf_of(&page.body);
    let ct = ("Content-Type", "application/x-www-form-urlencoded");
    let form = format!("csrf={csrf}&back=%2Fcompose%2Fshop");
    let post = |action: &str| {
        http(port, "POST", &format!("/compose/shop/{action}"), &[("Cookie", &cookie), ("Origin", &origin), ct], &form)
    };
    let a = post("stop");
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location"), Some("/compose/shop"));
    for c in ["shop_web_1", "shop_web_2"] {
        assert_eq!(d.inspect(c, "{{.State.Status}}"), "exited", "{c}");
    }
    assert_eq!(d.inspect("other_x_1", "{{.State.Status}}"), "running", "another project was touched");
    assert_eq!(post("start").status, 303);
    assert_eq!(d.inspect("shop_web_2", "{{.State.Status}}"), "running");
    // Down: the project's containers and networks go; nothing else.
    let a = post("down");
    assert_eq!(a.status, 303, "{}", a.body);
    let ps = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!ps.contains("shop_") && ps.contains("other_x_1"), "{ps}");
    let nets = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.contains("shop_default") && nets.contains("other_default"), "{nets}");
    // Unknown actions and cross-origin posts change nothing.
    let a =
        http(port, "POST", "/compose/other/down", &[("Cookie", &cookie), ("Origin", "http://evil.example"), ct], &form);
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(d.inspect("other_x_1", "{{.State.Status}}"), "running");
}
