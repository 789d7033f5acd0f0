"""The docs' Python API example is a real file, run here against the test server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_docs_show_the_tested_example():
    """docs/guide/python-api.md shows examples/headless.py whole, by literalinclude (no
    :lines: or :start-after: picking a part), so what the page shows is what runs here."""
    page = (ROOT / "docs" / "guide" / "python-api.md").read_text()
    [(path, options)] = re.findall(r"```\{literalinclude\} (\S+)\n((?::[\w-]+:.*\n)*)```", page)
    assert (ROOT / "docs" / "guide" / path).resolve() == ROOT / "examples" / "headless.py"
    assert options.strip() == ":language: python", options
    # the README points there (it is the front page, the example lives in the docs)
    assert "](docs/guide/python-api.md)" in (ROOT / "README.md").read_text()


def test_headless_example_runs(server, tmp_path):
    server.register("example", "example-pw")
    env = dict(
        os.environ,
        XMPP_JID="example@localhost",
        XMPP_PASSWORD="example-pw",
        XMPP_HOST=server.host,
        XMPP_PORT=str(server.port),
        XMPP_NO_TLS="1",
        PUBSUB_HOOK_DATA_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "headless.py")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "seen: ['n1']" in result.stdout
    assert "[('python_code', 1)]" in result.stdout
    assert "1 hook(s) deleted" in result.stdout
