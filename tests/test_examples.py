"""The README's Python API example is a real file, run here against the test server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_shows_the_tested_example():
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / "examples" / "headless.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert example in blocks


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
