#!/usr/bin/python3
"""Drives Berth's dashboard in a real browser (Debian's chromium + chromium-driver, python3-selenium), for tests/ui.rs.

Usage: ui_browser.py LOGIN_URL SCREENSHOT_DIR PULL_REF AXE_JS -- BERTH_CLI_ARGS...
PULL_REF is an image in a local registry for the pull page (not on the daemon yet); AXE_JS the path of axe-core's
axe.min.js (empty: the accessibility check is skipped, which the Rust side reports).
The dashboard's daemon is the test's own; the berth CLI (BERTH_CLI_ARGS, e.g. `/path/berth -H unix:///sock`) is how
containers are started and checked, as a person at a terminal would. Each step prints `STEP <name>`; a failure ends
with a traceback and exit status 1. Every wait has a bound (WAIT seconds) and says what it waited for.
"""

import os
import subprocess
import shutil
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from selenium.webdriver.support.expected_conditions import staleness_of

WAIT = 20


def main():
    login, shots, pull_ref, axe_js = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    base = login.split("/login")[0]
    axe_source = open(axe_js).read() if axe_js else None
    axe_reports = []
    cli = sys.argv[sys.argv.index("--") + 1:]
    os.makedirs(shots, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="berth-ui-chromium-")

    def berth(*args):
        out = subprocess.run(cli + list(args), capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"berth {' '.join(args)}: {out.stderr}")
        return out.stdout.strip()

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
              f"--user-data-dir={profile}"]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_script_timeout(60)
    wait = WebDriverWait(driver, WAIT)

    def shot(name):
        driver.save_screenshot(os.path.join(shots, f"{name}.png"))

    def axe(name):
        """axe-core on the page as it is now: WCAG 2.x A and AA rules; every violation fails the run."""
        if axe_source is None:
            return
        driver.execute_script(axe_source)
        result = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
              .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                       nodes: v.nodes.slice(0, 5).map(n => n.html)}))))
              .catch(e => done([{id: 'axe-error', help: String(e), nodes: []}]));""")
        axe_reports.append((name, result))
        print(f"AXE {name}: {len(result)} violation(s)", flush=True)
        for v in result:
            print(f"  {v['id']} ({v['impact']}): {v['help']}: {v['nodes']}", flush=True)

    def step(name):
        print(f"STEP {name}", flush=True)

    def row(name):
        for r in driver.find_elements(By.CSS_SELECTOR, "#containers tbody tr"):
            if r.get_attribute("data-name") == name:
                return r
        return None

    def state(name):
        # The rows are replaced whenever an event comes: a row found may be gone a moment later.
        try:
            r = row(name)
            return r.get_attribute("data-state") if r is not None else None
        except StaleElementReferenceException:
            return None

    try:
        step("login")
        driver.get(login)
        wait.until(lambda d: d.find_elements(By.ID, "containers"))
        assert driver.current_url == login.split("/login")[0] + "/", driver.current_url
        assert "token" not in driver.current_url, "the token is left in the address bar"
        shot("01-containers-empty")

        step("a container started from the CLI appears without a reload")
        # A mark on this page's window: gone if the page were loaded again.
        driver.execute_script("window.__berthMark = 42;")
        berth("run", "-d", "--name", "web-ui-test", "-e", "SECRET=hunter2", "busybox", "sh", "-c",
              "i=0; while true; do echo line$i; echo oops$i >&2; i=$((i+1)); sleep 0.2; done")
        wait.until(lambda d: state("web-ui-test") == "running",
                   "the container started from the CLI to appear, running")
        assert driver.execute_script("return window.__berthMark;") == 42, "the page was reloaded"
        shot("02-containers-live")

        step("the running container's sparklines fill from the one stats stream")
        wait.until(lambda d: int(d.find_element(By.CSS_SELECTOR, "#containers tbody").get_attribute("data-samples")
                                 or 0) >= 3, "three samples on the containers page")
        # (Read in one script: the rows may be replaced between two WebDriver calls.)
        def spark(name):
            return driver.execute_script("""
                const r = [...document.querySelectorAll('#containers tbody tr')].find(r => r.dataset.name === arguments[0]);
                const p = r && r.querySelector('svg.cpu polyline');
                const now = r && r.querySelector('.cpu-now');
                return [p ? p.getAttribute('points') : '', now ? now.textContent : ''];""", name)
        wait.until(lambda d: spark("web-ui-test")[0].count(",") >= 2, "a CPU sparkline of two points or more")
        assert "%" in spark("web-ui-test")[1], spark("web-ui-test")
        shot("02-containers-sparklines")
        axe("containers")

        step("search filters the list")
        berth("create", "--name", "other-one", "busybox", "true")
        wait.until(lambda d: state("other-one") is not None, "the created container to appear")
        driver.find_element(By.ID, "filter").send_keys("web-ui")
        assert row("other-one").get_attribute("hidden") is not None, "other-one should be hidden by the search"
        assert row("web-ui-test").get_attribute("hidden") is None
        driver.find_element(By.ID, "filter").clear()
        driver.find_element(By.ID, "filter").send_keys(" ")  # clear() fires no input event

        step("stop it from the page; the CLI agrees")
        row("web-ui-test").find_element(By.CSS_SELECTOR, "button.act-stop").click()
        wait.until(lambda d: state("web-ui-test") == "exited",
                   "the row to show the container exited")
        cli_state = berth("inspect", "-f", "{{.State.Status}}", "web-ui-test")
        assert cli_state == "exited", f"the CLI says {cli_state}"
        shot("03-containers-stopped")

        step("start it again from the page, then follow its logs on its page")
        row("web-ui-test").find_element(By.CSS_SELECTOR, "button.act-start").click()
        wait.until(lambda d: state("web-ui-test") == "running",
                   "the row to show the container running again")
        assert berth("inspect", "-f", "{{.State.Status}}", "web-ui-test") == "running"
        row("web-ui-test").find_element(By.LINK_TEXT, "web-ui-test").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#logs .stdout"), "log lines")
        first = len(driver.find_elements(By.CSS_SELECTOR, "#logs .stdout"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#logs .stdout")) >= first + 5,
                   "new log lines to arrive while following")
        assert driver.find_elements(By.CSS_SELECTOR, "#logs .stderr"), "stderr lines shown apart"
        text = driver.find_element(By.ID, "logs").text
        assert "line0" in text and "oops0" in text, text[:300]
        # The resource charts move: samples arrive and the CPU line changes.
        wait.until(lambda d: int(d.find_element(By.ID, "resources").get_attribute("data-samples")) >= 2, "stats samples")
        before = driver.find_element(By.CSS_SELECTOR, "#cpu-chart polyline").get_attribute("points")
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#cpu-chart polyline").get_attribute("points") != before,
                   "the CPU chart to move")
        assert "%" in driver.find_element(By.ID, "cpu-now").text
        # Processes and the inspect tree are on the page.
        body = driver.find_element(By.TAG_NAME, "main").text
        for part in ["Processes", "Inspect", "Mounts", "Networks", "Environment"]:
            assert part in body, f"{part}: {body[:500]}"
        # The environment's values are hidden until asked for.
        assert "SECRET" in body and "hunter2" not in driver.page_source.split("<h2>Inspect")[1], \
            "an environment value in the inspect tree"
        assert "hunter2" not in body, "an environment value shows unasked"
        driver.find_element(By.XPATH, "//ul[@class='env']//summary[text()='SECRET']").click()
        wait.until(lambda d: "hunter2" in d.find_element(By.CSS_SELECTOR, "ul.env").text, "SECRET's value")
        axe("container")
        shot("04-container")

        step("the terminal: type `echo hi`, read `hi`, resize, exit")
        driver.find_element(By.ID, "term-open").click()
        term = driver.find_element(By.ID, "term")
        wait.until(lambda d: term.get_attribute("data-state") == "open", "the terminal to open")
        wait.until(lambda d: "#" in term.text, "the shell's prompt")
        wait.until(lambda d: term.get_attribute("data-size"), "the terminal's size sent")
        term.send_keys("echo hi\n")
        wait.until(lambda d: "hi" in [l.strip() for l in term.text.splitlines()],
                   "a line `hi` (the answer, not the echoed command)")
        term.send_keys("stty size\n")
        rows, cols = term.get_attribute("data-size").split("x")
        wait.until(lambda d: f"{rows} {cols}" in term.text, f"stty to report the page's size {rows} {cols}")
        shot("05-terminal")  # (also the README's picture, docs/dashboard.png)
        term.send_keys("exit 3\n")
        wait.until(lambda d: term.get_attribute("data-state") == "exited", "the shell's exit")
        assert "code 3" in driver.find_element(By.ID, "term-status").text, \
            driver.find_element(By.ID, "term-status").text

        step("the events page shows the feed, live")
        driver.get(base + "/events")
        wait.until(lambda d: "start" in d.find_element(By.ID, "events").text, "the start events")
        berth("create", "--name", "evt-probe", "busybox", "true")
        wait.until(lambda d: "evt-probe" in d.find_element(By.ID, "events").text, "the live create event")
        axe("events")
        shot("06-events")

        for path, name, needle in [("/system", "07-system", "Disk usage"), ("/volumes", "08-volumes", "uivol"),
                                   ("/networks", "09-networks", "uinet"), ("/compose", "10-compose", "demo")]:
            step(f"page {path}")
            driver.get(base + path)
            wait.until(lambda d: needle in d.find_element(By.TAG_NAME, "main").text, f"{needle} on {path}")
            axe(path)
            shot(name)

        step("the networks' picture: the container on its network, with its address and alias")
        driver.get(base + "/networks")
        svg = driver.find_element(By.CSS_SELECTOR, "svg.netmap")
        assert "uinet" in svg.text and "(uialias" in svg.text and "netted" in svg.text, svg.text

        step("a compose project: its page, combined logs, stop from the page; the CLI agrees")
        driver.get(base + "/compose/demo")
        wait.until(lambda d: "demo-web-1 | " in d.find_element(By.ID, "logs").text and
                   "demo-db-1 | " in d.find_element(By.ID, "logs").text, "both services' lines in the logs")
        axe("/compose/demo")
        shot("11-compose-project")
        before = driver.find_element(By.TAG_NAME, "main")
        driver.find_element(By.CSS_SELECTOR, "button.act-stop").click()
        # The form posts, and the answer brings the project's page again.
        wait.until(staleness_of(before), "the page to be left")
        wait.until(lambda d: len(d.find_elements(By.XPATH, "//td[text()='0/1']")) == 2, "both services stopped")
        for c in ["demo-web-1", "demo-db-1"]:
            st = berth("inspect", "-f", "{{.State.Status}}", c)
            assert st == "exited", f"{c}: {st}"

        step("pull from a local registry, with progress")
        driver.get(base + "/images")
        driver.find_element(By.ID, "pull-ref").send_keys(pull_ref)
        driver.find_element(By.ID, "pull-go").click()
        wait.until(lambda d: d.find_element(By.ID, "pull-progress").get_attribute("data-state") in ("done", "failed"),
                   "the pull to end")
        progress = driver.find_element(By.ID, "pull-progress")
        assert progress.get_attribute("data-state") == "done", driver.find_element(By.ID, "pull-status").text
        statuses = [li.get_attribute("data-status") for li in progress.find_elements(By.TAG_NAME, "li")]
        assert "Pull complete" in statuses and all(s in ("Pull complete", "Already exists") for s in statuses), \
            statuses
        assert driver.execute_script("""return [...document.querySelectorAll('#pull-progress progress')]
            .some(p => p.max > 1 && p.value === p.max);"""), "no layer's progress bar went to its size"
        assert "Status: Downloaded newer image" in driver.find_element(By.ID, "pull-status").text, \
            driver.find_element(By.ID, "pull-status").text
        shot("12-images-pulled")
        assert pull_ref in berth("images", "--format", "{{.Repository}}:{{.Tag}}")
        driver.get(base + "/images")
        wait.until(lambda d: pull_ref in d.find_element(By.TAG_NAME, "main").text, "the pulled image listed")
        axe("/images")
        shot("13-images")

        step("an image's page: history lines, layers, users")
        driver.find_element(By.XPATH, "//tr[td[contains(., 'busybox:latest')]]//a[code]").click()
        wait.until(lambda d: d.find_elements(By.XPATH, "//h2[text()='History']"), "the image's page")
        main = driver.find_element(By.TAG_NAME, "main").text
        assert "Layers" in main and "sha256:" in main and "web-ui-test" in main, main[:800]
        axe("image")
        shot("14-image")

        step("keyboard: every control is reachable and labelled")
        driver.get(base + "/")
        wait.until(lambda d: d.find_elements(By.ID, "containers"))
        unlabelled = driver.execute_script("""
            const bad = [];
            for (const el of document.querySelectorAll('input, select, button')) {
              if (el.type === 'hidden') continue;
              const label = el.labels && el.labels.length ? el.labels[0].textContent : '';
              if (!(label.trim() || el.getAttribute('aria-label') || el.textContent.trim())) bad.push(el.outerHTML);
            }
            return bad;""")
        assert not unlabelled, unlabelled

        step("no errors in the browser console (CSP violations would show there)")
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert not errors, errors
        bad = [(name, v["id"]) for name, result in axe_reports for v in result]
        assert not bad, f"axe-core violations: {bad}"
        print(f"AXE checked {len(axe_reports)} pages" if axe_source else "AXE skipped", flush=True)
        print("OK", flush=True)
    except Exception:
        shot("failure")
        with open(os.path.join(shots, "failure.html"), "w") as f:
            f.write(driver.page_source)
        raise
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
