"""``ei-sim report`` pages loaded in a real headless Chromium: no console errors, every figure
the page references present, decoded and laid out. Skipped where no Chromium is installed.

The pages are self-contained (figures embedded as ``data:`` URIs): nothing is written beside
them. One page per kind: simulate (a synthetic one, and one of 3,200 E cells whose rasters
are thinned), run (the golden tiny run as a run directory), grid (and an old grid store
without verdicts), coupling sweep.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ending in a NUL byte, read from file descriptor 3 and written to 4), so no websocket
client or browser download is needed.
"""

from __future__ import annotations

import fcntl
import html.parser
import json
import os
import select
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from ei_sim.analysis.report import write_report
from ei_sim.store.spikes import write_spike_lists

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((path for name in BROWSERS if (path := shutil.which(name))), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed")
# moves the pipe ends to descriptors 3 and 4, then becomes the browser
TRAMPOLINE = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)
IMAGES_JS = (
    "JSON.stringify(Array.from(document.images).map(i => {const r = i.getBoundingClientRect();"
    " return {src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth,"
    " height: i.naturalHeight, shown: r.width > 0 && r.height > 0};}))"
)


def _above_4(fd: int) -> int:
    """A duplicate of ``fd`` numbered 10 or more (the original is closed), so that moving
    the child's ends to 3 and 4 cannot overwrite one with the other."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Page:
    """Load one URL in headless Chromium; collect console errors and the page's images."""

    def __init__(self, url: str, profile_dir: str, timeout_s: float = 60.0):
        self.deadline = time.monotonic() + timeout_s
        self.events, self.buffer, self.next_id = [], b"", 0
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()
        to_r, from_w = (_above_4(fd) for fd in (to_r, from_w))  # free 3 and 4 for the child
        args = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--remote-debugging-pipe",
                f"--user-data-dir={profile_dir}", "about:blank"]  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TRAMPOLINE, str(to_r), str(from_w), *args],
            pass_fds=(to_r, from_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_r)
        os.close(from_w)
        try:
            self.images = self._load(url)
        finally:
            self._close()

    def _send(self, method: str, params=None, session=None) -> int:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_w, json.dumps(message).encode() + b"\0")
        return self.next_id

    def _messages(self):
        while time.monotonic() < self.deadline:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                yield json.loads(raw)
            if select.select([self.from_r], [], [], 0.5)[0]:
                chunk = os.read(self.from_r, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self.buffer += chunk
        raise TimeoutError("Chromium did not answer in time")

    def _call(self, method: str, params=None, session=None) -> dict:
        wanted = self._send(method, params, session)
        for message in self._messages():
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def _load(self, url: str) -> list[dict]:
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})
        session = session["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self._call(f"{domain}.enable", session=session)
        self._call("Page.navigate", {"url": url}, session=session)
        if not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            for message in self._messages():
                self.events.append(message)
                if message.get("method") == "Page.loadEventFired":
                    break
        result = self._call("Runtime.evaluate", {"expression": IMAGES_JS, "returnByValue": True},
                            session=session)  # fmt: skip
        return json.loads(result["result"]["value"])

    def _close(self) -> None:
        try:
            self._send("Browser.close")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self.to_w)
            os.close(self.from_r)

    @property
    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads, one text each."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                out.append(" ".join(str(a.get("value")) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                out.append(details.get("exception", {}).get("description", details["text"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                out.append(f"{params['entry']['text']} ({params['entry'].get('url')})")
        return out


class _ImageSources(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src"))


def referenced_images(page_path: str) -> list[str]:
    """The ``src`` of every ``<img>`` in an HTML file, read as text (not by the browser)."""
    parser = _ImageSources()
    with open(page_path, encoding="utf-8") as fh:
        parser.feed(fh.read())
    return parser.sources


def check_page(page_path: str, profile_dir: str) -> list[str]:
    """Problems of an HTML page in the browser: errors, and every referenced figure that is
    missing on disk, not decoded or not laid out. Empty when the page is fine."""
    sources = referenced_images(page_path)
    page = Page("file://" + os.path.abspath(page_path), profile_dir)
    problems = list(page.errors)
    folder = os.path.dirname(os.path.abspath(page_path))
    if sorted(i["src"] for i in page.images) != sorted(sources):
        problems.append(f"images in the DOM {page.images} differ from the page's {sources}")
    for image in page.images:
        embedded = image["src"].startswith("data:image/png;base64,")
        if not embedded and not os.path.isfile(os.path.join(folder, image["src"])):
            problems.append(f"{image['src']} is missing")
        if not (image["complete"] and image["width"] > 0 and image["height"] > 0):
            problems.append(f"{image['src']} was not decoded")
        elif not image["shown"]:
            problems.append(f"{image['src']} has no size on the page")
    return problems


# ---------------------------------------------------------------- report inputs
def _simulate_file(path, dt_ms=0.1, t_ms=300.0, freq_Hz=25.0, n_e=60):
    rng = np.random.default_rng(0)
    n_steps, period = int(t_ms / dt_ms), int(1000 / freq_Hz / dt_ms)
    drive = (np.arange(n_steps) % period) < 20
    e = rng.random((n_steps, 2, n_e)) < 0.02 * drive[:, None, None]
    i = rng.random((n_steps, 2, n_e // 4)) < 0.05 * np.roll(drive, 10)[:, None, None]
    with h5py.File(path, "w") as fh:
        fh.attrs["model.config.dt_ms"] = dt_ms
        for name, raster in (("e", e), ("i", i)):
            write_spike_lists(fh.create_group(f"spikes/{name}"), raster, dt_ms)
            fh[f"population/{name}"] = raster.mean(axis=2).astype(np.float32)


def _grid_file(path, verdicts=True):
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as fh:
        fh.attrs["kind"] = "grid"
        for k in range(9):
            w_ei, w_ie = k % 3 * 0.5, k // 3 * 1.0
            active = w_ei > 0 and w_ie > 0
            fh.create_group(f"cells/c{k}").attrs.update(dict(
                w_ei=w_ei, w_ie=w_ie, seed=42, best_accuracy=rng.uniform(0.7, 0.9),
                final_accuracy=0.8, rate_e_Hz=rng.uniform(1, 8),
                rate_i_Hz=rng.uniform(5, 20) if active else 0.0,
                gamma_peak_Hz=40.0 if active else np.nan,
                **({"gamma_rhythmic": float(active)} if verdicts else {}),
            ))  # fmt: skip


def _sweep_file(path):
    scales = np.round(np.arange(0.1, 1.55, 0.05), 2)
    with h5py.File(path, "w") as fh:
        fh.attrs.update({"kind": "coupling_sweep", "coupling_target": "w_ei"})
        cliffs = np.array([0.8, 0.55, 0.4])
        rates = np.where(scales[None] > cliffs[:, None], 10 * (scales[None] - cliffs[:, None]), 0)
        fh["scales"], fh["coupling_scales"] = scales, np.array([0.5, 1.0, 2.0])
        fh["rate_i_Hz"], fh["rate_e_Hz"] = rates, 2 * rates
        fh["accuracy"] = np.full(rates.shape, 0.8)


# ---------------------------------------------------------------- tests
def test_checker_catches_a_broken_page(tmp_path):
    page = tmp_path / "broken.html"
    script = "<script>console.error('boom'); missingFunction();</script>"
    page.write_text(f"<!doctype html><html><body><img src='gone.png'>{script}</body></html>")
    problems = check_page(str(page), str(tmp_path / "profile"))
    text = "\n".join(problems)
    assert "boom" in text and "missingFunction" in text
    assert "gone.png is missing" in text and "ERR_FILE_NOT_FOUND" in text


def _run_dir(path):
    from golden_files import tiny_run_dir

    return tiny_run_dir(os.path.splitext(str(path))[0])


SOURCES = {
    "simulate": (_simulate_file, "simulate", 3),  # rasters, rates, spectrum
    "simulate_4000": (lambda p: _simulate_file(p, t_ms=200.0, n_e=3200), "simulate", 3),
    "run": (_run_dir, "run", 4),  # learning, rates and gamma, reference rasters, its spectrum
    "grid": (_grid_file, "grid", 7),  # basins, 4 heatmaps, scatter, paths over the epochs
    "grid_old": (lambda p: _grid_file(p, verdicts=False), "grid", 7),
    "coupling_sweep": (_sweep_file, "coupling_sweep", 1),
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_report_page_renders_in_chromium(tmp_path, name):
    make, kind, n_figures = SOURCES[name]
    source = tmp_path / f"{name}.h5"
    made = make(source)
    source = made if isinstance(made, str) else str(source)
    page = tmp_path / f"{name}.html"
    assert write_report(source, str(page)) == kind
    figures = referenced_images(str(page))
    assert len(figures) == n_figures
    assert all(src.startswith("data:image/png;base64,") for src in figures)  # self-contained
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".png")]
    text = page.read_text(encoding="utf-8")
    if kind in ("simulate", "run"):
        assert "Hz bins" in text and "How the gamma verdict is made" in text
    if name == "simulate_4000":
        assert "E: 400 of 3200 cells (one in 8)" in text  # thinned, and the page says so
    if name == "grid_old":
        assert "no verdict stored" in text
    assert check_page(str(page), str(tmp_path / "profile")) == []
