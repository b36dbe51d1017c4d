"""Each family's report in a real browser: headless Chromium (Debian's `chromium` package) loads
it offline. The page must log nothing on the console (its Content-Security-Policy turns any
request into a console error), start no network request (Chromium's own net log), and show every
figure, non-blank, at its size (measured in the page, then cut from a screenshot).

The setup installs Chromium with apt-get when it is missing; where it cannot, these tests skip
and say why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from archlab.report.html import CONTENT_SECURITY_POLICY, Document

from .test_report import EXPECTED

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--force-device-scale-factor=1"]
# Measures every figure once the page has loaded, into a <pre id="layout"> that --dump-dom prints.
LAYOUT_SCRIPT = """<script>
window.addEventListener("load", () => {
  const figures = [...document.querySelectorAll("img.figure")].map(img => {
    const r = img.getBoundingClientRect();
    return {name: img.dataset.figure, x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height,
            attributes: [img.width, img.height], natural: [img.naturalWidth, img.naturalHeight],
            complete: img.complete};
  });
  const pre = document.createElement("pre");
  pre.id = "layout";
  pre.textContent = JSON.stringify({height: document.documentElement.scrollHeight, figures});
  document.body.appendChild(pre);
});
</script>"""


def _install_chromium() -> str:
    """Why Chromium could not be installed (empty when it was)."""
    if shutil.which("apt-get") is None:
        return "there is no apt-get to install it with"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "installing it needs root (`apt-get install -y chromium`)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:  # the package lists may be missing or stale
        subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=env, timeout=900)
        done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    lines = (done.stderr or done.stdout).strip().splitlines()
    return "" if done.returncode == 0 else f"`apt-get install -y chromium` failed: {lines[-1] if lines else '?'}"


@pytest.fixture(scope="session")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = _install_chromium()
        found = shutil.which("chromium")
        if found is None:
            pytest.skip(f"headless Chromium is not installed and {reason or 'its install put no chromium on PATH'}")
    return found


class Browser:
    def __init__(self, executable: str, root: Path):
        self.executable, self.root = executable, root
        self.count = 0

    def run(self, page: Path, *extra: str) -> subprocess.CompletedProcess:
        self.count += 1
        profile = self.root / f"profile-{self.count}"
        return subprocess.run([self.executable, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=120)

    def load(self, page: Path) -> tuple[list[str], list[str]]:
        """The console messages the page logged, and the network requests it started."""
        net = self.root / f"net-{self.count + 1}.json"
        done = self.run(page, "--enable-logging=stderr", "--v=0", f"--log-net-log={net}", "--dump-dom")
        assert done.returncode == 0, done.stderr[-2000:]
        console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
        return console, page_requests(json.loads(net.read_text()))

    def layout(self, page: Path) -> dict:
        """Where each figure is drawn in the page (CSS pixels; the device scale is 1)."""
        measured = page.with_name(page.stem + "-measured.html")
        scripts = CONTENT_SECURITY_POLICY + "; script-src 'unsafe-inline'"  # this copy only: it runs LAYOUT_SCRIPT
        text = page.read_text().replace(CONTENT_SECURITY_POLICY, scripts)
        measured.write_text(text.replace("</body>", LAYOUT_SCRIPT + "</body>"))
        done = self.run(measured, "--window-size=1280,1000", "--dump-dom")
        found = re.search(r'<pre id="layout">(.*?)</pre>', done.stdout, re.S)
        assert found, done.stderr[-2000:]
        layout = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
        width = max([1280] + [int(f["x"] + f["width"]) + 24 for f in layout["figures"]])
        shot = page.with_suffix(".png")
        done = self.run(measured, f"--window-size={width},{layout['height']}", f"--screenshot={shot}")
        assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
        layout["screenshot"] = shot
        return layout


def page_requests(netlog: dict) -> list[str]:
    """URLs the page (a file: top frame) asked the network for: the net log's request jobs isolated
    under a file: origin, leaving out the browser's own background requests."""
    types = {v: k for k, v in netlog["constants"]["logEventTypes"].items()}
    urls = []
    for event in netlog["events"]:
        params = event.get("params") or {}
        from_page = "file://" in str(params.get("network_isolation_key"))
        if types.get(event["type"]) == "URL_REQUEST_START_JOB" and from_page:
            if not str(params.get("url", "")).startswith(("file:", "data:")):
                urls.append(params["url"])
    return urls


def blank(region: np.ndarray) -> bool:
    """A region of one colour, or one that is almost all white (a figure that drew nothing)."""
    gray = region[..., :3].astype(np.float64).mean(-1)
    return gray.std() < 2.0 or (gray < 250).mean() < 0.01


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory) -> Browser:
    return Browser(chromium, tmp_path_factory.mktemp("chromium"))


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_report_in_chromium(family_reports, browser, family):
    page, result = family_reports[family]
    figures = result.details["figures"]
    console, requests = browser.load(page)
    assert console == [] and requests == []
    layout = browser.layout(page)
    assert [f["name"] for f in layout["figures"]] == [f["name"] for f in figures]
    assert {f["name"] for f in figures} >= EXPECTED[family]
    shot = np.asarray(Image.open(layout["screenshot"]).convert("RGB"))
    for drawn, expected in zip(layout["figures"], figures):
        size = [expected["width"], expected["height"]]
        assert drawn["complete"] and drawn["natural"] == size == drawn["attributes"], drawn
        assert [drawn["width"], drawn["height"]] == size, drawn  # shown at its own size, not scaled
        x, y = int(round(drawn["x"])), int(round(drawn["y"]))
        region = shot[y:y + size[1], x:x + size[0]]
        assert region.shape[:2] == (size[1], size[0]), f"{drawn['name']} lies outside the screenshot"
        assert not blank(region), f"{drawn['name']} is blank in the screenshot"


def test_the_checks_see_a_request_a_console_error_and_a_blank_figure(browser, tmp_path):
    """The checks above can fail: an external image is refused (console), a page without the policy
    requests it (net log), and a white figure is blank."""
    doc = Document("bad")
    s = doc.section("s")
    s.fragment('<img src="http://127.0.0.1:9/x.png">')
    s.figure(Figure(figsize=(2, 1)), "white")
    page = doc.write(tmp_path / "bad.html")
    console, requests = browser.load(page)
    assert any("Content Security Policy" in line and "127.0.0.1:9" in line for line in console)
    open_page = tmp_path / "open.html"
    open_page.write_text(page.read_text().replace("Content-Security-Policy", "X-None"))
    assert browser.load(open_page)[1] == ["http://127.0.0.1:9/x.png"]
    layout = browser.layout(page)
    (white,) = layout["figures"]
    shot = np.asarray(Image.open(layout["screenshot"]).convert("RGB"))
    x, y = int(round(white["x"])), int(round(white["y"]))
    assert blank(shot[y:y + white["height"], x:x + white["width"]])
