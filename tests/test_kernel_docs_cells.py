"""The "From a cell" guide's examples (docs/guide/notebook.md), run as cells of a real
kernel against the private Prosody (with the test server's address in place of
example.org)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import PASSWORDS
from .support import NodeOwner

pytestmark = pytest.mark.kernel

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guide" / "notebook.md"


def guide_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)


def test_the_guides_examples_run_in_a_kernel(kernel, server):
    node = "readme-news"
    owner = NodeOwner("admin@localhost", PASSWORDS["admin"], server.host, server.port, tls=False)
    try:
        owner.create_node(node, publish_model="open")  # alice may publish to it
    finally:
        owner.close()
    blocks = guide_blocks()
    assert len(blocks) == 2, blocks
    for number, block in enumerate(blocks):
        kernel.run(local(block, server, node), cell_id=f"readme-{number}")
    assert kernel.wait_for("headlines", lambda v: v == ["first"]) == ["first"]
    [hook] = json.loads(kernel.run("%hook list -O json").stdout)
    assert (hook["type"], hook["arg"], hook["retry"]) == ("python_function", "on_news", 2)
    # the first cell run again: the same hook, kept
    out = kernel.run(local(blocks[0], server, node), cell_id="readme-0").stdout
    assert f"Kept hook {hook['id']}" in out, out
    assert len(json.loads(kernel.run("%hook list -O json").stdout)) == 1


def local(block: str, server, node: str) -> str:
    """The README's cell, against the private server."""
    return (
        block.replace("alice@example.org", "alice@localhost")
        .replace('password_env="ALICE_PW")', f'password_env="ALICE_PW", host={server.host!r}, port={server.port}, tls=False)')
        .replace("pubsub.example.org", "pubsub.localhost")
        .replace('"news"', repr(node))
    )
