"""
Helpers for the customer portal's browser tests (test_portal*.py) and its
bench: a daemon serving the portal from the source tree (core/portal), links
made through POST /api/v1/portal-sessions, and Debian's chromium driven
headless through chromium-driver (python3-selenium), with a screenshot of
every page kept for review: in the test's tmp folder and copied to
build/portal-screenshots/.
"""

import shutil
from pathlib import Path

import pytest

from conftest import BUILD, ROOT, SANITIZED
from epapi_helpers import call, epapi_daemon, ok

PORTAL_DIR = ROOT / "core" / "portal"
SHOTS = BUILD / "portal-screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT = 30.0

# Chromium under ASan's LD settings is slow and the daemon's sanitizer build is
# what make check runs: the browser tests only run against the normal build.
skip_sanitized = pytest.mark.skipif(SANITIZED, reason="browser tests skip the sanitizer build")


def portal_daemon(ops_daemon, tmp_path, endpoints=None, admin=None, **kw):
    """An epapi daemon whose admin listener serves the portal from core/portal."""
    d = epapi_daemon(ops_daemon, tmp_path, endpoints=endpoints, start=False, **kw)
    d.extra_files["16-portal.json"] = {"core": {"admin": {"portal_dir": str(PORTAL_DIR),
                                                           **(admin or {})}}}
    d.start()
    return d


def link(d, org, ttl="1h"):
    """A one-time portal link for org."""
    return ok(call(d, "POST", "/api/v1/portal-sessions", {"org_id": org, "ttl": ttl}), 201)["url"]


class Browser:
    """One headless chromium: pages, waits, and screenshots named after the test."""

    def __init__(self, shots_dir, name):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
            pytest.fail("chromium or chromium-driver missing: run `bash scripts/deps.sh test`",
                        pytrace=False)
        opts = webdriver.ChromeOptions()
        opts.binary_location = str(CHROMIUM)
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,900", "--no-proxy-server", "--disable-extensions",
                  "--lang=en-US"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
        self.driver.set_script_timeout(WAIT)
        self.shots_dir = shots_dir
        self.name = name
        self.nshots = 0

    def open(self, url, view):
        """Loads url as a new document (never as a jump within the current one)."""
        self.driver.get("about:blank")
        self.driver.get(url)
        return self.wait_view(view)

    def go(self, hash_, view):
        """Follows an in-page link (#/...) and waits until the view has rendered."""
        self.driver.execute_script(
            "delete document.body.dataset.view;"
            "if (location.hash === arguments[0]) dispatchEvent(new HashChangeEvent('hashchange'));"
            "else location.hash = arguments[0];", hash_)
        return self.wait_view(view)

    def wait_view(self, view):
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.driver, WAIT).until(
            lambda dr: dr.execute_script("return document.body.dataset.view || ''") == view,
            message=f"view {view!r} never rendered; page: {self.driver.page_source[:1500]!r}")
        return self

    def until(self, fn, what):
        from selenium.webdriver.support.ui import WebDriverWait
        return WebDriverWait(self.driver, WAIT, poll_frequency=0.05).until(
            lambda dr: fn(), message=f"timed out waiting for {what}")

    def css(self, sel):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, sel)

    def all(self, sel):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, sel)

    def button(self, label):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.XPATH, f"//button[normalize-space()='{label}']")

    def text(self, sel="main"):
        try:
            return self.css(sel).text
        except Exception:  # noqa: BLE001 (no such element: nothing to show)
            return ""

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def shot(self, label):
        """Saves a screenshot of the page as <test>-NN-<label>.png, and a copy in build/."""
        self.nshots += 1
        name = f"{self.name}-{self.nshots:02d}-{label}.png"
        path = self.shots_dir / name
        self.driver.save_screenshot(str(path))
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SHOTS / name)
        return path

    def console_errors(self):
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def close(self):
        self.driver.quit()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """One chromium for a test file: starting it costs seconds on a busy machine."""
    b = Browser(tmp_path_factory.mktemp("portal"), "")
    yield b
    b.close()


@pytest.fixture
def browser(request, tmp_path, chromium):
    """The file's chromium on a blank page, its screenshots named after the test."""
    chromium.shots_dir = tmp_path
    chromium.name = request.node.name.replace("test_", "", 1)
    chromium.nshots = 0
    for old in SHOTS.glob(f"{chromium.name}-*.png"):  # an earlier run's, maybe numbered otherwise
        old.unlink()
    chromium.driver.get("about:blank")
    chromium.driver.get_log("browser")  # the last test's messages are not this one's
    yield chromium


__all__ = ["PORTAL_DIR", "portal_daemon", "link", "browser", "chromium", "skip_sanitized",
           "Browser"]
