"""The wheel holds every module of the package, subpackages included (an editable
install finds files that a wheel may leave out)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_the_wheel_holds_every_module(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("pubsub_hook_magic-*.whl")
    in_wheel = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    in_tree = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "pubsub_hook_magic").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert "pubsub_hook_magic/testing/server.py" in in_tree
    assert in_tree == in_wheel
