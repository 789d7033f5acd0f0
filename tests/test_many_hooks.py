"""Thousands of persistent hooks in one process (issue 25): no descriptor per hook.

2,000 persistent hooks, one per node of a private Prosody's PubSub service, under a soft
``RLIMIT_NOFILE`` of 1,024 (the common default): created, the session closed and opened
again (every hook installed from the store, its ownership taken), then one item
published to every node: every hook runs it once. In a subprocess (the limit is the
process's), with its own Prosody; out of the fast lane (``kernel``: a slow subprocess).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, resource, sys, tempfile
    from pubsub_hook_magic.loopthread import LoopThread
    from pubsub_hook_magic.manager import HookManager
    from pubsub_hook_magic.testing.server import TestServer

    N = int(sys.argv[1])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    SERVICE = "pubsub.localhost"
    nodes = [f"many-{i}" for i in range(N)]

    async def publish_all(m, prefix):
        gate = asyncio.Semaphore(100)
        async def one(node):
            async with gate:
                if prefix == "old":
                    await m.create_node(SERVICE, node)
                await m.publish(SERVICE, node, "<x xmlns='urn:many'/>", item_id=f"{prefix}-{node}")
        await asyncio.gather(*(one(n) for n in nodes))

    async def connect(m, srv):
        return await m.connect("admin@localhost/many", "pw", host=srv.host, port=srv.port, tls=False, timeout=60)

    async def until(condition, timeout=90):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    with TestServer(storage="memory") as srv, tempfile.TemporaryDirectory() as data:
        srv.register("admin", "pw")
        thread = LoopThread(name="many-hooks")
        m = HookManager({}, data_dir=data)
        out = {}

        async def first():
            await connect(m, srv)
            await publish_all(m, "old")  # (makes the nodes, each with an item)
            for node in nodes:
                await m.create_hook(SERVICE, node, "python_code", "pass", persistent=True)
            await m.disconnect()

        async def second():
            out["warnings"] = await connect(m, srv)
            out["installed"] = len(m.runners)
            out["caught_up"] = await until(lambda: all(h.state == "active" for h in m.snapshot().hooks))
            await publish_all(m, "new")
            out["ran"] = await until(lambda: all(r.count >= 1 for r in m.runners.ordered()))
            await asyncio.sleep(0.5)  # (a second run of any item would show now)
            out["counts"] = sorted({r.count for r in m.runners.ordered()})
            out["errors"] = sum(r.errors for r in m.runners.ordered())
            out["fds"] = len(os.listdir("/proc/self/fd"))
            out["journals"] = m.positions.open_journals()
            await m.disconnect()

        thread.run(first(), 600)
        thread.run(second(), 600)
        thread.stop()
        print(json.dumps(out))
    """
)


@pytest.mark.timeout(300)
def test_two_thousand_persistent_hooks_run_under_a_limit_of_1024_descriptors(tmp_path):
    if shutil.which("prosody") is None:
        pytest.fail("Prosody is not installed: run scripts/setup.sh")
    script = tmp_path / "many.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "JPY_"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(script), "2000"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=280
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["warnings"] == [] and out["installed"] == 2000, out
    assert out["caught_up"] and out["ran"], out
    assert out["counts"] == [1] and out["errors"] == 0, out  # every hook ran its item once
    assert out["fds"] < 1024 - 900, out  # descriptors do not follow the number of hooks
    assert out["journals"] <= 64, out
