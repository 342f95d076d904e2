#!/usr/bin/python3
"""Drives Berth's dashboard in a real browser (Debian's chromium + chromium-driver, python3-selenium), for tests/ui.rs.

Usage: ui_browser.py LOGIN_URL SCREENSHOT_DIR -- BERTH_CLI_ARGS...
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

WAIT = 20


def main():
    login, shots = sys.argv[1], sys.argv[2]
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
    wait = WebDriverWait(driver, WAIT)

    def shot(name):
        driver.save_screenshot(os.path.join(shots, f"{name}.png"))

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
        shot("04-container")

        step("the events page shows the feed, live")
        driver.get(login.split("/login")[0] + "/events")
        wait.until(lambda d: "start" in d.find_element(By.ID, "events").text, "the start events")
        berth("create", "--name", "evt-probe", "busybox", "true")
        wait.until(lambda d: "evt-probe" in d.find_element(By.ID, "events").text, "the live create event")
        shot("05-events")

        for path, name, needle in [("/system", "06-system", "Disk usage"), ("/images", "07-images", "busybox"),
                                   ("/volumes", "08-volumes", "Volumes"), ("/networks", "09-networks", "bridge")]:
            step(f"page {path}")
            driver.get(login.split("/login")[0] + path)
            wait.until(lambda d: needle in d.find_element(By.TAG_NAME, "main").text, f"{needle} on {path}")
            shot(name)

        step("keyboard: every control is reachable and labelled")
        driver.get(login.split("/login")[0] + "/")
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
