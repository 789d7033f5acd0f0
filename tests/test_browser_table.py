"""The live hooks table in a real JupyterLab, in a real browser (headless Chromium).

JupyterLab runs headless on a free port with everything of its own (config, data,
runtime, IPython dir, notebooks) in a temp dir; Playwright drives Debian's
/usr/bin/chromium (``playwright install`` downloads browsers, which cannot work here).
The notebook loads the extension, connects as alice, creates two hooks and shows
``%hook list``; the test then publishes items and checks what a person would see:
counts rising, the triggers panel, pause, delete, and hostile item ids shown as text.
The recipe (flags, the kernel-ready wait) is the one in the project's stack facts.

Outside CI a machine without Chromium or Playwright skips this test; with CI=true it
fails instead (scripts/setup.sh installs both).
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from .conftest import PASSWORDS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
REPO = Path(__file__).resolve().parent.parent
EVIL = "<img src=x onerror=alert(1)>"
EVIL_PAYLOAD = (
    "<p xmlns='urn:x' title='&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;'>"
    "&lt;img src=x onerror=alert(1)&gt;</p>"
)
TIMEOUT_MS = 30_000


def _missing() -> list[str]:
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright (pip install -e '.[browser]')")
    return missing


MISSING = _missing()
WHY = "the browser test needs " + " and ".join(MISSING) + ": run scripts/setup.sh"
IN_CI = os.environ.get("CI") == "true"
# A machine without the browser skips (before the fixtures start anything); CI fails.
pytestmark = [pytest.mark.browser, pytest.mark.skipif(bool(MISSING) and not IN_CI, reason=WHY)]


def _require_browser() -> None:
    if MISSING:
        pytest.fail(WHY)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------- processes


def _children() -> dict[int, int]:
    """pid -> parent pid, for every process visible in /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
    return parents


def _descendants(root: int) -> set[int]:
    parents = _children()
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _start_time(pid: int) -> str | None:
    """The process's start time (tells a pid reused later apart), None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def _pss_kib(pids: set[int]) -> dict[str, int]:
    """Proportional set size (shared pages counted once), KiB, per program name."""
    sizes: dict[str, int] = {}
    for pid in pids:
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    sizes[name] = sizes.get(name, 0) + int(line.split()[1])
                    break
        except OSError:
            pass
    return sizes


# ---------------------------------------------------------------------- JupyterLab


class Lab:
    """A headless JupyterLab server of its own, in a temp dir."""

    def __init__(self, base: Path, env_extra: dict[str, str]):
        self.base = base
        self.root = base / "notebooks"
        self.root.mkdir(parents=True)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        config = base / "jupyter-config"
        # No news, no update check: nothing asks for the network or puts up a toast.
        settings = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        (config / "labconfig").mkdir()
        (config / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "PYTEST_", "JUPYTER", "XMPP_"))}
        env.update(
            JUPYTER_CONFIG_DIR=str(config),
            JUPYTER_DATA_DIR=str(base / "jupyter-data"),
            JUPYTER_RUNTIME_DIR=str(base / "jupyter-runtime"),
            IPYTHONDIR=str(base / "ipython"),
            JUPYTER_PLATFORM_DIRS="1",
            PYDEVD_DISABLE_FILE_VALIDATION="1",
        )
        env.update(env_extra)
        self.before = _descendants(os.getpid())  # Prosody and the like: not ours
        self.log = open(base / "jupyterlab.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "jupyterlab",
                "--no-browser", "--allow-root",
                "--ip=127.0.0.1", f"--port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root}",
                "--LabApp.expose_app_in_browser=True",
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--LabApp.extension_manager=readonly",
            ],
            env=env,
            cwd=str(self.root),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.shut_down = False  # by POST /api/shutdown
        try:
            self._wait_ready(30)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, method: str, path: str, timeout: float = 5) -> Any:
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                self.api("GET", "/api/status", timeout=2)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise AssertionError(f"JupyterLab not ready in {timeout} s:\n{self.logs()}")

    def logs(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.base / "jupyterlab.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """POST /api/shutdown (which shuts the kernels down too), then wait for the exit."""
        if self.proc.poll() is None:
            try:
                self.api("POST", "/api/shutdown", timeout=10)
            except (OSError, urllib.error.URLError):
                pass
            try:
                self.proc.wait(20)
                self.shut_down = True
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        self.log.close()


def _notebook(cells: list[str]) -> dict[str, Any]:
    return {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"cell{i}", "metadata": {}, "outputs": [], "source": src}
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


# ---------------------------------------------------------------------- page helpers

KERNEL_READY = """() => {
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""

# Each row of the table, read from the page, keyed by the class of its buttons' box
# (phm-row-<id>): the id cell, the stats cells (state, triggers, errors, last) with their
# hover texts, the failed button, the pause button's hover text. The cells of a row are
# siblings in the grid; while rows come and go (each widget is removed on its own), a row
# not yet whole is left out.
ROWS = """() => {
    const table = document.querySelector('.phm-table');
    if (!table) return null;
    const rows = [];
    for (const box of table.querySelectorAll('.phm-grid > [class*="phm-row-"]')) {
        const id = Array.from(box.classList).find(c => c.startsWith('phm-row-')).slice(8);
        const failed = box.previousElementSibling;
        const stats = failed && failed.previousElementSibling;
        let label = stats;
        for (let i = 0; i < 5 && label; i++) label = label.previousElementSibling;
        if (!stats || !stats.classList.contains('phm-stats') || !label || !label.classList.contains('phm-id')) continue;
        const pause = box.querySelector('.phm-pause');
        const cells = Array.from(stats.querySelectorAll('.phm-stats-row > .phm-c'));
        rows.push({
            id,
            label: label.textContent.trim(),
            stats: cells.map(c => c.textContent.trim()),
            titles: cells.map(c => c.getAttribute('title')),
            failed: failed.textContent.trim(),
            pause: pause ? (pause.getAttribute('title') || '').split(' ')[0] : null,
        });
    }
    return rows;
}"""


# What a person sees of the table's geometry (after scrolling the notebook to it):
# horizontal scrolling anywhere between the table and the notebook panel, buttons cut or
# outside the visible output area, cells that do not start where their column's header
# does (each cell and header carries its column's class: phm-KEY / phm-h-KEY; the stats
# cell spans four columns: its inner cells are compared), cells of one line that overlap,
# headers cut or wrapped, live cells (state … last) cut, and the cut cells (ellipsis)
# with their hover texts.
LAYOUT = """() => {
    const table = document.querySelector('.phm-table');
    const grid = table.querySelector('.phm-grid');
    if (document.activeElement) document.activeElement.blur();
    const scrolls = [];
    for (let el = table; el && !el.classList.contains('jp-NotebookPanel'); el = el.parentElement) {
        if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible')
            scrolls.push([el.className, el.scrollWidth, el.clientWidth]);
    }
    for (const el of table.querySelectorAll('*')) {
        const o = getComputedStyle(el).overflowX;
        if ((o === 'auto' || o === 'scroll') && el.scrollWidth > el.clientWidth + 1)
            scrolls.push([el.className, el.scrollWidth, el.clientWidth]);
    }
    const outer = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
    if (outer && outer.scrollWidth > outer.clientWidth + 1) scrolls.push(['notebook', outer.scrollWidth, outer.clientWidth]);
    const area = table.closest('.jp-OutputArea-output').getBoundingClientRect();
    const buttons = Array.from(table.querySelectorAll('button')).filter(b => b.offsetParent !== null);
    const hidden = buttons.filter(b => {
        const r = b.getBoundingClientRect();
        return r.width < 20 || r.left < area.left - 0.5 || r.right > area.right + 0.5 || b.scrollWidth > b.clientWidth + 1;
    }).map(b => [b.className, b.getBoundingClientRect().left, b.getBoundingClientRect().right]);
    const key = el => { const c = Array.from(el.classList).find(c => /^phm-h-/.test(c)); return c && c.slice(6); };
    const heads = {};
    for (const h of grid.querySelectorAll('.phm-head-cell')) heads[key(h)] = h;
    const headCut = [], headWrapped = [];
    for (const [k, h] of Object.entries(heads)) {
        const c = h.querySelector('.phm-c');
        if (!c || !c.textContent) continue;
        if (c.scrollWidth > c.clientWidth + 1) headCut.push([k, c.textContent, c.scrollWidth, c.clientWidth]);
        if (c.getBoundingClientRect().height > parseFloat(getComputedStyle(c).lineHeight || '18') * 1.5 + 2)
            headWrapped.push([k, c.textContent, c.getBoundingClientRect().height]);
    }
    const KEYS = ['id', 'node', 'type', 'arg', 'lifetime'], STATS = ['state', 'triggers', 'errors', 'last'];
    const misaligned = [], overlaps = [], statsCut = [];
    let lines = 0;
    for (const box of grid.querySelectorAll('[class*="phm-row-"]')) {
        const cells = [];
        let el = box;
        for (let i = 0; i < 8 && el; i++, el = el.previousElementSibling) cells.unshift(el);
        const placed = [];
        cells.forEach((c, i) => {
            if (c.classList.contains('phm-stats')) {
                c.querySelectorAll('.phm-stats-row > .phm-c').forEach((s, j) => {
                    placed.push([STATS[j], s.getBoundingClientRect()]);
                    if (s.scrollWidth > s.clientWidth + 1) statsCut.push([box.className, STATS[j], s.textContent]);
                });
            } else placed.push([i < 5 ? KEYS[i] : (i === 6 ? 'failed' : 'actions'), c.getBoundingClientRect()]);
        });
        const tops = [];
        placed.forEach(([k, r], i) => {
            tops.push(r.top + r.height / 2);
            const h = heads[k] && heads[k].getBoundingClientRect();
            if (!h || Math.abs(r.left - h.left) > 1.5) misaligned.push([box.className, k, r.left, h && h.left]);
            const prev = i && placed[i - 1][1];
            if (prev && Math.abs((prev.top + prev.height / 2) - (r.top + r.height / 2)) < 10 && prev.right > r.left + 1)
                overlaps.push([box.className, k, prev.right, r.left]);
        });
        tops.sort((a, b) => a - b);
        lines = Math.max(lines, 1 + tops.filter((t, i) => i && t - tops[i - 1] > 10).length);
    }
    const cut = Array.from(table.querySelectorAll('.phm-grid .phm-c, .phm-header .phm-c, .phm-message .phm-c'))
        .filter(c => c.scrollWidth > c.clientWidth + 1)
        .map(c => [c.textContent, c.getAttribute('title'), getComputedStyle(c).textOverflow]);
    return {scrolls, hidden, misaligned, overlaps, headCut, headWrapped, statsCut, cut, lines,
            buttons: buttons.length, width: table.getBoundingClientRect().width,
            area: area.width, grid: [grid.scrollWidth, grid.clientWidth]};
}"""


def assert_fits(layout: dict[str, Any]) -> None:
    """Every button whole inside the output area, nothing scrolls, every column under
    its header, no header cut or wrapped, no live cell cut, every cut cell with an
    ellipsis and a hover text."""
    for key in ("scrolls", "hidden", "misaligned", "overlaps", "headCut", "headWrapped", "statsCut"):
        assert layout[key] == [], (key, layout)
    assert all(c[2] == "ellipsis" and c[1] for c in layout["cut"]), layout["cut"]


# The contrast of every coloured text of the table against what is behind it (WCAG 2).
CONTRAST = """() => {
    // "rgb(r, g, b)" (0-255) or, from color-mix(), "color(srgb r g b)" (0-1)
    const rgb = s => {
        const v = (s.match(/[\\d.]+/g) || []).map(Number);
        return s.startsWith('color(') ? v.map((x, i) => i < 3 ? x * 255 : x) : v;
    };
    function lum(c) {
        const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    }
    function background(el) {
        for (; el; el = el.parentElement) {
            const c = rgb(getComputedStyle(el).backgroundColor);
            if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) return c;
        }
        return [255, 255, 255];
    }
    const out = [];
    for (const el of document.querySelectorAll('.phm-table .phm-ok, .phm-table .phm-info, .phm-table .phm-warn, .phm-table .phm-err')) {
        if (!el.textContent.trim()) continue;
        const fg = rgb(getComputedStyle(el).color), bg = background(el);
        const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
        out.push([el.className, el.textContent.trim().slice(0, 20), Math.round((a + 0.05) / (b + 0.05) * 100) / 100,
                  getComputedStyle(el).color, 'rgb(' + bg.slice(0, 3).join(', ') + ')']);
    }
    return out;
}"""

STDERR_OUTPUTS = """() => Array.from(document.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).map(e => e.innerText)"""


class Page:
    def __init__(self, page: Any):
        self.page = page

    def rows(self) -> dict[str, dict[str, Any]]:
        return {row["id"]: row for row in (self.page.evaluate(ROWS) or [])}

    def wait_rows(self, predicate: Any, what: str, timeout: float = 15) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        rows: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            rows = self.rows()
            if rows and predicate(rows):
                return rows
            self.page.wait_for_timeout(100)
        raise AssertionError(f"the table never showed {what}; last seen: {rows}")

    def run_cell(self, source: str, timeout_ms: int = TIMEOUT_MS) -> str:
        """Append a code cell, run it from the page, return the text it printed."""
        index = self.page.evaluate(
            """(source) => {
                const nb = window.jupyterapp.shell.currentWidget.content;
                const n = nb.model.sharedModel.cells.length;
                nb.model.sharedModel.insertCell(n, {cell_type: 'code', source});
                nb.activeCellIndex = n;
                nb.deselectAll();
                return n;
            }""",
            source,
        )
        self.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-cell')")
        handle = self.page.wait_for_function(
            """(n) => {
                const cell = window.jupyterapp.shell.currentWidget.content.widgets[n];
                if (!cell || cell.model.executionCount === null) return false;
                const out = cell.node.querySelector('.jp-OutputArea');
                return out ? [out.innerText] : false;
            }""",
            arg=index,
            timeout=timeout_ms,
        )
        return handle.json_value()[0]

    def show_table(self) -> None:
        """Scroll the notebook so that the (first) table is in view."""
        self.page.evaluate("() => document.querySelector('.phm-table').scrollIntoView({block: 'start'})")
        self.page.wait_for_timeout(200)

    def stderr(self) -> list[str]:
        return self.page.evaluate(STDERR_OUTPUTS)


def _at_width(page: Any, width: int, collapse: bool) -> None:
    """A window ``width`` px wide; the file browser closed when ``collapse`` (a person
    on a small screen closes it), else open. Waits until the table has its new width."""
    before = page.evaluate("() => document.querySelector('.phm-table').getBoundingClientRect().width")
    changed = page.viewport_size["width"] != width or page.evaluate("() => window.jupyterapp.shell.leftCollapsed") != collapse
    page.set_viewport_size({"width": width, "height": 800})
    collapsed = page.evaluate("() => window.jupyterapp.shell.leftCollapsed")
    if collapse and not collapsed:
        page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    elif not collapse and collapsed:
        page.evaluate("() => window.jupyterapp.shell.activateById('filebrowser')")
    page.wait_for_function(
        """([before, changed]) => {
            const w = document.querySelector('.phm-table').getBoundingClientRect().width;
            if (window._phmWidth !== w) { window._phmWidth = w; window._phmSince = performance.now(); }
            return (w !== before || !changed) && performance.now() - window._phmSince > 250;
        }""",
        arg=[before, changed],
        polling=50,
    )


def _screenshot(page: Any, path: Path) -> None:
    """The table and the prompt beside it, as a person sees them."""
    box = page.locator(".phm-table").first.bounding_box()
    page.screenshot(
        path=str(path),
        clip={"x": box["x"] - 8, "y": box["y"] - 8, "width": box["width"] + 16, "height": box["height"] + 16},
    )


# ---------------------------------------------------------------------- the test


@pytest.fixture
def lab(tmp_path: Path, server: Any, node: str) -> Iterator[Lab]:
    _require_browser()
    lab = Lab(
        tmp_path,
        {
            "PUBSUB_HOOK_DATA_DIR": str(tmp_path / "store"),
            "XMPP_JID": "alice@localhost",
            "XMPP_HOST": "127.0.0.1",
            "XMPP_PORT": str(server.port),
            "XMPP_PASSWORD": PASSWORDS["alice"],
        },
    )
    try:
        yield lab
    finally:
        lab.stop()


def test_hooks_table_live_in_jupyterlab(lab: Lab, publisher: Any, node: str) -> None:
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    before = lab.before
    create = f"%hook create -s pubsub.localhost -n {node} -t python_code"
    long_code = (
        "if item['id'] == 'bad': raise ValueError('bad item ' + item['id'])"
        "  # a long argument: cut in its cell, whole on hover"
    )
    (lab.root / "table.ipynb").write_text(
        json.dumps(
            _notebook(
                [
                    "%load_ext pubsub_hook_magic",
                    "%hook connect --no-tls",
                    # What makes a hook other than "every publication once" shows as tags.
                    f"{create} -e publish,retract --where . --retry 2 pass",
                    f"{create} {long_code}",
                    "%hook list",
                ]
            )
        )
    )
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    docs = REPO / "docs"
    dialogs: list[str] = []
    ours: dict[int, str | None] = {}  # pid -> start time, of every process this test started

    def track() -> None:
        for process in _descendants(os.getpid()) - before:
            ours.setdefault(process, _start_time(process))

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            track()
            try:
                # A laptop screen, with the file browser open as JupyterLab opens it.
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(TIMEOUT_MS)
                page.on("dialog", lambda d: (dialogs.append(f"{d.type}: {d.message}"), d.dismiss()))
                page.goto(f"{lab.url}/lab/tree/table.ipynb?token={lab.token}")
                page.wait_for_function(KERNEL_READY, timeout=TIMEOUT_MS, polling=100)
                page.evaluate("() => window.jupyterapp.shell.activateById('filebrowser')")
                page.wait_for_selector(".jp-FileBrowser", state="visible")
                assert page.evaluate("() => !window.jupyterapp.shell.leftCollapsed")
                page.evaluate("() => window.jupyterapp.commands.execute('runmenu:run-all')")
                page.wait_for_selector(".phm-table", state="visible")
                p = Page(page)
                rows = p.wait_rows(lambda r: len(r) == 2, "two hooks")
                # Which row is which: the hook that raises is the one created last.
                hooks = json.loads(p.run_cell("%hook list -O json"))
                by_arg = {h["arg"]: h["id"] for h in hooks}
                quiet, raiser = by_arg["pass"], by_arg[long_code]
                assert set(rows) == {quiet, raiser}, (rows, hooks)
                assert all(r["label"] == i for i, r in rows.items()), rows
                assert all(r["stats"][:3] == ["active", "0", "0"] for r in rows.values()), rows
                assert all(r["failed"] == "0" and r["pause"] == "pause" for r in rows.values()), rows
                track()

                # Items published from outside: the counts rise in the page.
                for item_id in ("a", "bad", "b"):
                    publisher.publish(node, item_id=item_id)
                rows = p.wait_rows(
                    lambda r: r[quiet]["stats"][1] == "3" and r[raiser]["stats"][1:3] == ["3", "1"],
                    "3 triggers each and 1 error",
                )
                assert rows[quiet]["stats"][2] == "0" and "ago" in rows[quiet]["stats"][3], rows
                page.wait_for_function("() => document.querySelector('.phm-header').innerText.includes('1 error(s)')")
                header = page.inner_text(".phm-header")
                assert "connected" in header and "6 trigger(s)" in header and "1 error(s)" in header, header
                # The failing run's warning is in the header (and %hook log), not in a cell.
                page.wait_for_function("() => document.querySelector('.phm-header').innerText.includes('failed on item bad')")

                # What a person sees at 1280x800 with the file browser open: no horizontal
                # scrolling, every button whole, every column under its header, long
                # cells cut with an ellipsis and whole on hover.
                p.show_table()
                layout = page.evaluate(LAYOUT)
                print(f"\ntable {layout['width']:.0f} px wide in an output area of {layout['area']:.0f} px")
                (artifacts / "hooks-table-layout.json").write_text(json.dumps(layout, indent=1))
                page.screenshot(path=str(artifacts / "hooks-table-page.png"))
                assert_fits(layout)
                assert layout["lines"] == 1, layout  # one line per hook
                cut_args = [c for c in layout["cut"] if c[1] == long_code]
                assert cut_args and cut_args[0][0] != long_code, layout["cut"]  # cut…
                page.locator(".phm-arg .phm-c", has_text="if item").hover()
                assert page.locator(".phm-arg .phm-c", has_text="if item").get_attribute("title") == long_code  # …whole on hover
                # The quiet hook's tags: its events, --where with its count, --retry.
                tags = page.eval_on_selector_all(
                    ".phm-grid > .phm-arg .phm-tag", "els => els.map(e => [e.textContent, e.title])"
                )
                assert ["+retract", "where 0", "retry 2"] == [t[0] for t in tags], tags
                assert "--where .: runs on the publications it matches; 0 filtered out" in tags[1][1], tags
                assert "runs again up to 2 time(s)" in tags[2][1], tags
                # The publisher is what the server said (the test Prosody says it).
                page.click(f".phm-row-{quiet} .phm-details")
                page.locator(".phm-trigger-row").first.wait_for(state="visible")
                publishers = page.locator(".phm-trigger-row .phm-tr > .phm-c:nth-child(3)").all_inner_texts()
                assert publishers and all(t.strip() == "admin@localhost" for t in publishers), publishers
                page.click(f".phm-row-{quiet} .phm-details")
                page.locator(".phm-details-panel").wait_for(state="hidden")
                contrast = page.evaluate(CONTRAST)
                assert contrast and all(c[2] >= 4.5 for c in contrast), contrast
                _screenshot(page, docs / "hooks-table.png")
                # Narrower windows: two lines per hook, every control reachable.
                for width, collapse in ((1192, False), (1000, False), (800, True)):
                    _at_width(page, width, collapse)
                    p.show_table()
                    narrow = page.evaluate(LAYOUT)
                    print(f"at {width} px: table {narrow['width']:.0f} px in an output area of {narrow['area']:.0f} px, "
                          f"{narrow['lines']} line(s) per hook")
                    assert_fits(narrow)
                    assert narrow["lines"] == 2 and narrow["area"] >= 480, narrow
                    if width != 1192:
                        _screenshot(page, docs / f"hooks-table-{width}.png")
                _at_width(page, 1280, False)

                # Pause one hook: its state says paused and its button resumes.
                last_before = p.rows()[quiet]["titles"][3]
                page.click(f".phm-row-{quiet} .phm-pause")
                rows = p.wait_rows(
                    lambda r: r[quiet]["stats"][0] == "paused" and r[quiet]["pause"] == "resume",
                    "the paused hook",
                )
                assert rows[raiser]["stats"][0] == "active" and rows[raiser]["pause"] == "pause", rows
                assert_fits(page.evaluate(LAYOUT))

                # The triggers of the other hook: the failed item and its traceback.
                page.click(f".phm-row-{raiser} .phm-details")
                panel = page.locator(".phm-details-panel")
                panel.wait_for(state="visible")
                page.wait_for_function(
                    "() => document.querySelector('.phm-trigger-detail').innerText.includes('ValueError')"
                )
                assert raiser in panel.inner_text()
                items = ".phm-trigger-row .phm-tr > .phm-c:nth-child(2)"
                assert [c.strip() for c in page.locator(items).all_inner_texts()] == ["b", "bad", "a"]
                # The error is picked first, and its row highlighted.
                assert page.locator(".phm-trigger-row.phm-picked .phm-tr > .phm-c:nth-child(2)").inner_text() == "bad"
                detail = page.inner_text(".phm-trigger-detail")
                assert "bad" in detail and "Traceback" in detail and "ValueError: bad item bad" in detail, detail

                # A hostile item id and payload reach the page as text, never as markup.
                publisher.publish(node, item_id=EVIL, payload=EVIL_PAYLOAD)
                rows = p.wait_rows(
                    lambda r: r[raiser]["stats"][1] == "4" and "1 skipped" in r[quiet]["titles"][1],
                    "the hostile item counted (and skipped by the paused hook)",
                )
                # The paused hook's "last" is still its last run, not the item it skipped.
                assert rows[quiet]["titles"][3] == last_before, (rows[quiet], last_before)
                page.wait_for_function(
                    "(evil) => document.querySelector('.phm-details-panel').innerText.includes(evil)", arg=EVIL
                )
                assert EVIL in page.locator(items).first.inner_text()
                assert "<img src=x onerror=alert(1)>" in page.inner_text(".phm-details-panel")
                page.locator(".phm-trigger-row .phm-row-pick").first.click()  # a click on the newest row: the hostile item
                page.wait_for_function(
                    "() => document.querySelector('.phm-trigger-row').classList.contains('phm-picked')"
                )
                assert page.locator(".phm-trigger-row.phm-picked").count() == 1
                page.wait_for_function(
                    "(evil) => document.querySelector('.phm-trigger-detail').innerText.includes(evil)", arg=EVIL
                )
                detail = page.inner_text(".phm-trigger-detail")
                assert "&lt;img src=x onerror=alert(1)&gt;" in detail, detail  # the payload, as XML text
                assert page.locator(".phm-table img").count() == 0
                assert page.locator('img[src="x"]').count() == 0
                assert page.locator(".phm-table script").count() == 0
                page.wait_for_timeout(300)  # an onerror handler would have fired by now
                assert dialogs == [], dialogs
                assert_fits(page.evaluate(LAYOUT))  # the open panel fits too
                _screenshot(page, artifacts / "hooks-table-hostile.png")
                _at_width(page, 800, True)
                p.show_table()
                assert_fits(page.evaluate(LAYOUT))  # …at 800 px too
                _screenshot(page, artifacts / "hooks-table-hostile-800.png")
                _at_width(page, 1280, False)
                page.click(f".phm-row-{raiser} .phm-details")  # closes the panel
                page.locator(".phm-details-panel").wait_for(state="hidden")

                # Replay the node's last items (read back from the node), then a reconnection:
                # nothing of the extension's or slixmpp's lands in a cell.
                out = p.run_cell(f"%hook replay {raiser} --last 3")
                assert out.count("replay of item") == 3, out
                p.show_table()  # (a cell out of view is not rendered: its innerText is empty)
                page.evaluate(
                    """() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.requestExecute({code:
                       "_m = get_ipython()._pubsub_hook_magics\\n"
                       + "_m.loop_thread.call_soon(lambda: _m.manager.session.client.transport.abort())"})"""
                )
                page.wait_for_function("() => document.querySelector('.phm-header').innerText.includes('reconnecting')")
                page.wait_for_function("() => document.querySelector('.phm-header').innerText.includes('connected as')")
                publisher.publish(node, item_id="after-reconnect")
                p.wait_rows(lambda r: r[raiser]["stats"][1] == "8", "the item published after the reconnection")
                log = p.run_cell("%hook log")
                assert f"hook {raiser} failed on item bad" in log, log
                assert p.stderr() == [], p.stderr()

                # An idle table shows a trigger at once: from the trigger recorded in the
                # kernel to the row changed in the page (printed, not asserted).
                page.wait_for_timeout(1500)
                page.evaluate(
                    """(id) => {
                        const box = document.querySelector('.phm-row-' + id);
                        const stats = box.previousElementSibling.previousElementSibling;
                        window._phmSeen = null;
                        new MutationObserver(() => {
                            const n = stats.querySelector('.phm-stats-row > .phm-c:nth-child(2)');
                            if (window._phmSeen === null && n && n.textContent.trim().startsWith('9'))
                                window._phmSeen = performance.timeOrigin + performance.now();
                        }).observe(stats, {subtree: true, childList: true, characterData: true});
                    }""",
                    raiser,
                )
                publisher.publish(node, item_id="idle")
                seen = page.wait_for_function("() => window._phmSeen").json_value()
                [summary] = [h for h in json.loads(p.run_cell("%hook list -O json")) if h["id"] == raiser]
                run = summary["recent"][-1]
                recorded = (run["started"] + run["duration"]) * 1000
                print(f"idle table: trigger recorded -> row updated in the page: {seen - recorded:.0f} ms")

                # The dark theme reads as well; both pictures are the README's.
                page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
                page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
                page.wait_for_timeout(500)
                p.show_table()
                contrast = page.evaluate(CONTRAST)
                assert contrast and all(c[2] >= 4.5 for c in contrast), contrast
                _screenshot(page, docs / "hooks-table-dark.png")
                for width, collapse in ((1000, False), (800, True)):
                    _at_width(page, width, collapse)
                    p.show_table()
                    assert_fits(page.evaluate(LAYOUT))
                    contrast = page.evaluate(CONTRAST)
                    assert contrast and all(c[2] >= 4.5 for c in contrast), contrast
                    _screenshot(page, docs / f"hooks-table-dark-{width}.png")
                _at_width(page, 1280, False)
                page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
                page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")

                # Delete a row: it leaves the page, and the kernel has no such hook any more.
                page.click(f".phm-row-{quiet} .phm-delete")
                rows = p.wait_rows(lambda r: quiet not in r, "the deleted row gone")
                assert list(rows) == [raiser], rows
                page.wait_for_selector(f".phm-row-{quiet}", state="detached")
                page.wait_for_function(
                    "(id) => !Array.from(document.querySelectorAll('.phm-id')).some(e => e.textContent.trim() === id)",
                    arg=quiet,
                )
                assert page.locator(".phm-table").first.locator(".phm-stats").count() == 1
                hooks = json.loads(p.run_cell("%hook list -O json"))
                assert [h["id"] for h in hooks] == [raiser], hooks
                assert hooks[0]["triggers"] == 9 and hooks[0]["errors"] == 2, hooks
                assert dialogs == [], dialogs
                assert p.stderr() == [], p.stderr()

                # The node's owner deletes the node: the row says so, and why on hover.
                publisher.delete_node(node)
                rows = p.wait_rows(lambda r: r[raiser]["stats"][0] == "node deleted", "the node deleted, shown")
                assert "node deleted: deleted by its owner" in rows[raiser]["titles"][0], rows[raiser]
                p.show_table()
                _screenshot(page, artifacts / "hooks-table-node-deleted.png")
                _at_width(page, 1000, False)
                p.show_table()
                assert_fits(page.evaluate(LAYOUT))
                _screenshot(page, artifacts / "hooks-table-node-deleted-1000.png")
                _at_width(page, 1280, False)

                # A restarted kernel: the old table says plainly that its kernel is gone.
                page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
                page.wait_for_function(KERNEL_READY, timeout=TIMEOUT_MS, polling=100)
                page.wait_for_function(
                    "() => getComputedStyle(document.querySelector('.phm-table'), '::after').content.includes('kernel')"
                )
                p.show_table()
                assert page.locator(".phm-table .phm-grid").first.is_hidden()
                _screenshot(page, artifacts / "hooks-table-kernel-gone.png")

                track()
                sizes = _pss_kib(set(ours))
                pss = sum(sizes.values())
                print(
                    f"\nbrowser test: {len(ours)} processes, PSS {pss / 1024:.0f} MiB "
                    f"({', '.join(f'{k} {v / 1024:.0f}' for k, v in sorted(sizes.items()))}), "
                    f"{time.monotonic() - started:.1f} s to here; pytest itself "
                    f"{sum(_pss_kib({os.getpid()}).values()) / 1024:.0f} MiB"
                )
                assert pss < 1024 * 1024, f"JupyterLab, kernel and browser use {pss / 1024:.0f} MiB"
            finally:
                track()
                browser.close()
    finally:
        track()
        lab.stop()
        # Nothing this test started may outlive it: server, kernel, browser, driver.
        deadline = time.monotonic() + 10
        left = {}
        while time.monotonic() < deadline:
            left = {pid: st for pid, st in ours.items() if st is not None and _start_time(pid) == st}
            if not left:
                break
            time.sleep(0.1)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    assert lab.shut_down and lab.proc.returncode == 0, (lab.proc.returncode, lab.logs())
    assert not left, f"processes left running: {left}"


def test_a_table_of_two_accounts_in_jupyterlab(lab: Lab, publisher: Any, node: str) -> None:
    """One table for two accounts (alice and bob, each a HookManager of one Accounts):
    a group row above each account's hooks, each account's state in the header; it fits
    the output area at 1280 and 1000 px as the one-account table does."""
    from playwright.sync_api import sync_playwright

    setup = (
        "import os\n"
        "from pubsub_hook_magic.accounts import Accounts\n"
        "from pubsub_hook_magic.loopthread import LoopThread\n"
        "from pubsub_hook_magic.manager import HookManager\n"
        "from pubsub_hook_magic.table import TableHub\n"
        "thread, accounts = LoopThread(), Accounts()\n"
        f"for user, password in (('alice', {PASSWORDS['alice']!r}), ('bob', {PASSWORDS['bob']!r})):\n"
        "    m = HookManager({}, data_dir=os.path.join(os.environ['PUBSUB_HOOK_DATA_DIR'], user))\n"
        "    thread.run(m.connect(f'{user}@localhost', password, host='127.0.0.1',\n"
        "                         port=int(os.environ['XMPP_PORT']), tls=False), 30)\n"
        "    thread.call(accounts.add, m)\n"
        f"    thread.run(m.create_hook('pubsub.localhost', {node!r}, 'python_code', 'pass'), 30)\n"
        f"thread.run(m.create_hook('pubsub.localhost', {node!r}, 'python_code', 'x = item[\"id\"]  # bob again'), 30)\n"
        "hub = TableHub(accounts, thread)\n"
        "hub.new_table().box"
    )
    (lab.root / "two.ipynb").write_text(json.dumps(_notebook([setup])))
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{lab.url}/lab/tree/two.ipynb?token={lab.token}")
            page.wait_for_function(KERNEL_READY, timeout=TIMEOUT_MS, polling=100)
            page.evaluate("() => window.jupyterapp.shell.activateById('filebrowser')")
            page.wait_for_selector(".jp-FileBrowser", state="visible")
            page.evaluate("() => window.jupyterapp.commands.execute('runmenu:run-all')")
            page.wait_for_selector(".phm-table", state="visible")
            p = Page(page)
            p.wait_rows(lambda r: len(r) == 3, "three hooks")
            publisher.publish(node, item_id="one")
            p.wait_rows(lambda r: all(row["stats"][1] == "1" for row in r.values()), "a trigger each")
            header = page.inner_text(".phm-header")
            assert "connected as alice@localhost · connected as bob@localhost — 3 hook(s), 3 trigger(s)" in header
            groups = page.eval_on_selector_all(".phm-group", "els => els.map(e => e.innerText.trim())")
            assert groups == ["alice@localhost connected 1 hook(s)", "bob@localhost connected 2 hook(s)"], groups
            p.show_table()
            for width, name in ((1280, "hooks-table-two-accounts.png"), (1000, "hooks-table-two-accounts-1000.png")):
                _at_width(page, width, False)
                layout = page.evaluate(LAYOUT)
                _screenshot(page, artifacts / name)
                assert_fits(layout)
        finally:
            browser.close()


def test_a_table_of_300_hooks_pages_and_filters_in_jupyterlab(lab: Lab, publisher: Any, node: str) -> None:
    """305 hooks (installed at once on the kernel's session loop, in one bulk): the
    first page shows at once, the page never holds more than ``table_page_size`` rows
    in the DOM, the pager turns pages and the filter box narrows by argument and node;
    it fits at 1280, 1000 and 800 px, light and dark."""
    from playwright.sync_api import sync_playwright

    other = f"{node}-b"
    publisher.create_node(other)
    install = (
        "_m = get_ipython()._pubsub_hook_magics\n"
        "async def _install():\n"
        "    with _m.manager.engine.bulk():\n"
        "        for i in range(300):\n"
        f"            await _m.manager.create_hook('pubsub.localhost', {node!r}, 'python_code', f'room_{{i:03d}} = {{i}}')\n"
        "        for i in range(5):\n"
        f"            await _m.manager.create_hook('pubsub.localhost', {other!r}, 'python_code', f'other_{{i}} = 1')\n"
        "_m.loop_thread.run(_install(), 120)"
    )
    (lab.root / "paged.ipynb").write_text(json.dumps(_notebook([
        "%load_ext pubsub_hook_magic",
        "%hook connect --no-tls",
        install,
        "%config HookMagics.table_page_size = 10",
        "%hook list",
    ])))
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    docs = REPO / "docs"

    def pager(page: Any) -> tuple[str, str]:
        return page.inner_text(".phm-count").strip(), page.inner_text(".phm-page").strip()

    def dom_rows(page: Any) -> int:
        return page.locator(".phm-grid > [class*='phm-row-']").count()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{lab.url}/lab/tree/paged.ipynb?token={lab.token}")
            page.wait_for_function(KERNEL_READY, timeout=TIMEOUT_MS, polling=100)
            page.evaluate("() => window.jupyterapp.shell.activateById('filebrowser')")
            page.wait_for_selector(".jp-FileBrowser", state="visible")
            page.evaluate("() => window.jupyterapp.commands.execute('runmenu:run-all')")
            page.wait_for_selector(".phm-table", state="visible")
            started = time.monotonic()
            p = Page(page)
            first = p.wait_rows(lambda r: len(r) == 10, "the first page of 10 rows")
            print(f"\n305 hooks: first page shown {time.monotonic() - started:.2f} s after the table appeared")
            assert all(r["stats"][0] == "active" for r in first.values()), first
            assert dom_rows(page) == 10 and page.locator(".phm-stats").count() == 10
            assert pager(page) == ("showing 1\u201310 of 305", "page 1 of 31"), pager(page)
            page.wait_for_function("() => document.querySelector('.phm-header').innerText.includes('305 hook(s)')")

            # The next page: other hooks in the same rows, never more rows in the DOM.
            page.click(".phm-next")
            second = p.wait_rows(lambda r: len(r) == 10 and not set(r) & set(first), "the second page")
            assert pager(page) == ("showing 11\u201320 of 305", "page 2 of 31"), pager(page)
            assert dom_rows(page) == 10
            page.click(".phm-prev")
            p.wait_rows(lambda r: set(r) == set(first), "the first page again")

            # The filter box: by the argument, then by node (a prefix).
            page.fill(".phm-filter input", "room_12")
            rows = p.wait_rows(lambda r: len(r) == 10, "the hooks of room_120…room_129")
            page.wait_for_function("() => document.querySelector('.phm-count').innerText.includes('filtered from 305')")
            assert pager(page) == ("showing 1\u201310 of 10 (filtered from 305)", "page 1 of 1"), pager(page)
            args = page.eval_on_selector_all(".phm-grid > .phm-arg", "els => els.map(e => e.innerText.trim())")
            assert sorted(args) == [f"room_12{i} = 12{i}" for i in range(10)], args
            page.fill(".phm-filter input", f"node:{other}")
            rows = p.wait_rows(lambda r: len(r) == 5, "the other node's 5 hooks")
            assert dom_rows(page) == 5
            page.fill(".phm-filter input", "nothing-matches-this")
            page.wait_for_function("() => document.querySelector('.phm-message').innerText.includes('No hook matches')")
            assert dom_rows(page) == 0
            page.fill(".phm-filter input", "")
            p.wait_rows(lambda r: set(r) == set(first), "every hook again, the first page")
            assert second  # (seen)

            # What a person sees, light and dark, at 1280 and 1000 px.
            p.show_table()
            assert_fits(page.evaluate(LAYOUT))
            _screenshot(page, docs / "hooks-table-paged.png")
            for width, collapse in ((1000, False), (800, True)):
                _at_width(page, width, collapse)
                p.show_table()
                assert_fits(page.evaluate(LAYOUT))
                _screenshot(page, artifacts / f"hooks-table-paged-{width}.png")
            page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
            page.wait_for_timeout(500)
            for width, collapse in ((800, True), (1000, False), (1280, False)):
                _at_width(page, width, collapse)
                p.show_table()
                assert_fits(page.evaluate(LAYOUT))
                contrast = page.evaluate(CONTRAST)
                assert contrast and all(c[2] >= 4.5 for c in contrast), contrast
                _screenshot(page, (docs if width == 1280 else artifacts) / f"hooks-table-paged-dark-{width}.png")
            assert p.stderr() == [], p.stderr()
        finally:
            browser.close()
