#!/usr/bin/python3
"""
The customer portal's delivery list with 10,000 deliveries, measured in the
browser (Debian's chromium, headless, through chromium-driver).

A daemon with a spool and one file endpoint of org "acme" takes N events
(10,000 by default) and delivers them all; a portal link for acme opens a
session (an org token: the org scope of the queries is part of the cost).
Then, inside the page, the clock (performance.now()) runs from following
the Deliveries link until the page has rendered its first page of 50
(newest first): the API call, the JSON, the DOM. Also measured: a page
deep in the list (keyset: `before` half way), and the first page filtered
by state and event type. Each figure is the median of --runs runs.
Goal: the first page in under 300 ms.

Prints figures; asserts nothing. `make bench` runs it as:
/usr/bin/python3 bench/bench_portal.py --build build
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchlib import ROOT, Switchyard, build_dir, free_port, make_events, push

TOKEN = "bench-portal-token-0123456789"

# Follows an in-page link and answers the milliseconds until the view rendered.
MEASURE = """
const done = arguments[arguments.length - 1];
const hash = arguments[0];
const body = document.body;
delete body.dataset.view;
const t0 = performance.now();
const obs = new MutationObserver(() => {
  if (body.dataset.view) { obs.disconnect(); done([performance.now() - t0, body.dataset.view,
    document.querySelectorAll('main tbody tr[data-delivery]').length]); }
});
obs.observe(body, {attributes: true, attributeFilter: ['data-view']});
location.hash = hash;
"""


def api(base, method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {TOKEN}",
                                          "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=30) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--deliveries", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    build = build_dir(args.build)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        print("bench_portal: python3-selenium missing (bash scripts/deps.sh test)")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="sy-bench-portal-"))
    admin_port = free_port()
    base = f"http://127.0.0.1:{admin_port}"
    sy = Switchyard(build, tmp / "sy", sinks={"files": {"plugin": "file",
                                                         "path": str(tmp / "out.jsonl"),
                                                         "fsync": "never"}},
                    endpoints={"acme-files": {"sink": "files", "org_id": "acme"}},
                    core={"spool": str(tmp / "spool.db"),
                          "admin": {"listen": f"127.0.0.1:{admin_port}", "token": TOKEN,
                                    "portal_dir": str(ROOT / "core" / "portal")}})
    sy.start()
    driver = None
    try:
        n = args.deliveries
        push(sy.addr, make_events(n, 400, "portal"))
        if sy.wait_deliveries(n, 300) < n:
            print(f"bench_portal: only {sy.deliveries()} of {n} delivered; log:\n{sy.log_tail()}")
            return 1
        # Every delivery is done in the spool too (the stats count at completion).
        deadline = time.monotonic() + 60
        while api(base, "GET", "/api/v1/endpoints/acme-files/stats")["pending"] and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        url = api(base, "POST", "/api/v1/portal-sessions", {"org_id": "acme"})["url"]
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,900", "--no-proxy-server"):
            opts.add_argument(a)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        driver.set_script_timeout(60)
        t0 = time.monotonic()
        driver.get(url)
        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script("return document.body.dataset.view") == "endpoints")
        open_ms = (time.monotonic() - t0) * 1000
        mid = n // 2
        cases = [("first page of deliveries", "#/deliveries"),
                 (f"a page half way (before={mid})", f"#/deliveries?before={mid}"),
                 ("first page, state=done and event_type", "#/deliveries?state=done&"
                  "event_type=job.completed")]
        print(f"bench_portal: {n} deliveries of org acme, pages of 50, median of {args.runs} runs")
        print(f"  link opened to the endpoints page (exchange + first render): {open_ms:.0f} ms")
        for label, h in cases:
            times = []
            for _ in range(args.runs):
                driver.execute_async_script(MEASURE, "#/events")
                ms, view, rows = driver.execute_async_script(MEASURE, h)
                if view != "deliveries" or rows != 50:
                    print(f"  {label}: rendered {view!r} with {rows} rows, not 50 deliveries")
                    return 1
                times.append(ms)
            med = statistics.median(times)
            goal = "  (goal < 300 ms)" if h == "#/deliveries" else ""
            print(f"  {label}: {med:.0f} ms (min {min(times):.0f}, max {max(times):.0f}){goal}")
    finally:
        if driver:
            driver.quit()
        sy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
