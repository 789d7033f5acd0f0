"""One owner per persistent hook: a kernel and ``pubsub-hook run`` on one account and
one store, as real processes against the private Prosody."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import connect_line
from .test_cli import cli_env

pytestmark = pytest.mark.kernel


def start_service(server, data_dir) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pubsub_hook_magic.cli", "run", "--no-tls"],
        env=cli_env(server, data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def logging_hook(tmp_path: Path, name: str = "hook.py") -> tuple[Path, Path]:
    """A python_file hook that appends "PID ITEM" to a file, flushed per item."""
    out = tmp_path / f"{name}.ran"
    hook = tmp_path / name
    hook.write_text(
        "import os\n"
        "def hook(host, client, item):\n"
        f"    with open({str(out)!r}, 'a') as f:\n"
        "        f.write(f\"{os.getpid()} {item['id']}\\n\")\n"
    )
    return hook, out


def runs(out: Path) -> list[tuple[int, str]]:
    if not out.exists():
        return []
    return [(int(p), i) for p, i in (line.split() for line in out.read_text().splitlines() if line)]


def wait_until(predicate, timeout: float = 20, step: float = 0.05) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "condition not met in time"
        time.sleep(step)
    return time.monotonic() - start


def hook_list(kernel) -> list[dict]:
    return json.loads(kernel.run("%hook list -O json").stdout)


def service_ready(proc: subprocess.Popen, lines: list[str]) -> None:
    """Read the service's log until it says it is connected."""
    while True:
        line = proc.stdout.readline()
        assert line, "pubsub-hook run stopped:\n" + "".join(lines)
        lines.append(line)
        if "connected as" in line:
            return


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out or ""


@pytest.mark.timeout(180)
def test_the_service_runs_it_and_a_kernel_takes_over_when_it_is_killed(
    kernel_factory, server, publisher, data_dir, tmp_path
):
    node = f"owned{time.monotonic_ns()}"
    publisher.create_node(node, max_items=500)  # keeps every item of the test
    hook, out = logging_hook(tmp_path)
    kernel = kernel_factory()
    kernel.run(connect_line(server))
    kernel.run(f"%hook create -s pubsub.localhost -n {node} -t python_file -P {hook}")
    kernel.run("%hook disconnect")  # lets go: the service takes it

    service = start_service(server, data_dir)
    lines: list[str] = []
    try:
        service_ready(service, lines)
        kernel.run(connect_line(server))
        (listed,) = hook_list(kernel)
        assert listed["state"] == "standby", listed
        assert listed["owner"] == f"pubsub-hook run, pid {service.pid}"

        ids = [f"i{n:03d}" for n in range(200)]
        for item_id in ids[:100]:
            publisher.publish(node, item_id=item_id)
        wait_until(lambda: len(runs(out)) >= 60)
        service.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        for item_id in ids[100:]:
            publisher.publish(node, item_id=item_id)
        wait_until(lambda: {i for _p, i in runs(out)} >= set(ids), timeout=30)
        took_over = time.monotonic() - killed
        assert took_over < 15  # (measured: the kernel takes over within about 1 s)
        time.sleep(1.5)  # nothing more comes
    finally:
        stop(service)

    ran = runs(out)
    count = collections.Counter(i for _p, i in ran)
    assert set(count) == set(ids)  # every item ran
    repeats = {i: n for i, n in count.items() if n > 1}
    assert len(repeats) <= 1 and all(n == 2 for n in repeats.values()), repeats  # the one in flight
    pids = [p for p, _i in ran]
    assert pids[0] == service.pid and pids[-1] != service.pid
    (listed,) = hook_list(kernel)
    assert listed["state"] == "active" and listed["owner"].startswith("kernel, pid")


@pytest.mark.timeout(120)
def test_a_hook_created_in_a_kernel_runs_in_the_service_and_stops_at_delete(
    kernel, server, publisher, node, data_dir, tmp_path
):
    hook, out = logging_hook(tmp_path)
    service = start_service(server, data_dir)
    lines: list[str] = []
    try:
        service_ready(service, lines)
        kernel.run(connect_line(server))
        created = kernel.run(f"%hook create -s pubsub.localhost -n {node} -t python_file -P {hook}").stdout
        made = time.monotonic()
        assert f"It runs in pubsub-hook run, pid {service.pid}; standby here." in created, created
        (listed,) = hook_list(kernel)
        assert listed["state"] == "standby"

        # Within 2 s of its creation, the service runs it.
        publisher.publish(node, item_id="first")
        wait_until(lambda: ("first" in {i for _p, i in runs(out)}), timeout=10, step=0.02)
        assert time.monotonic() - made < 2.5
        assert runs(out) == [(service.pid, "first")]

        kernel.run(f"%hook delete --id {listed['id']}")
        time.sleep(2.0)
        publisher.publish(node, item_id="after-delete")
        time.sleep(1.5)
        assert [i for _p, i in runs(out)] == ["first"]
    finally:
        output = stop(service)
    assert "was created in another process: installed here" in output
    assert "was deleted in another process: removed here" in output


@pytest.mark.timeout(120)
def test_a_code_hook_waits_for_the_notebook_names_after_a_restart(
    kernel_factory, server, publisher, node
):
    kernel = kernel_factory()
    kernel.run(connect_line(server))
    kernel.run("seen = []")
    created = kernel.run(
        f"%hook create -s pubsub.localhost -n {node} -t python_code -P seen.append(item['id'])"
    ).stdout
    assert "After a kernel restart it waits for seen until a cell defines it" in created
    publisher.publish(node, item_id="before")
    kernel.wait_for("seen", lambda v: v == ["before"])
    kernel.close()  # a kernel restart

    missed = [publisher.publish(node, item_id=f"missed{n}") for n in range(3)]
    kernel = kernel_factory()
    kernel.run(connect_line(server))
    (listed,) = hook_list(kernel)
    assert listed["state"] == "waiting" and listed["waiting_for"] == ["seen"], listed
    publisher.publish(node, item_id="live")
    time.sleep(1.0)
    (listed,) = hook_list(kernel)
    assert listed["errors"] == 0 and listed["triggers"] == 0  # nothing ran into a NameError

    kernel.run("seen = []")
    kernel.wait_for("seen", lambda v: len(v) >= 4)
    time.sleep(0.5)
    assert kernel.eval("seen") == [*missed, "live"]
    (listed,) = hook_list(kernel)
    assert listed["state"] == "active" and listed["errors"] == 0





@pytest.mark.timeout(60)
def test_another_machine_running_the_accounts_hooks_is_reported(server, tmp_path):
    """Two stores stand for two machines: the OS locks cannot help, so each says so."""
    from pubsub_hook_magic.loopthread import LoopThread
    from pubsub_hook_magic.manager import HookManager

    from .conftest import PASSWORDS

    thread = LoopThread()
    laptop = HookManager({}, data_dir=str(tmp_path / "laptop"))
    server_side = HookManager({}, data_dir=str(tmp_path / "server"), role="pubsub-hook run")
    same_machine = HookManager({}, data_dir=str(tmp_path / "laptop"))
    kwargs = dict(host=server.host, port=server.port, tls=False)
    try:
        for manager in (laptop, same_machine, server_side):
            thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], **kwargs), 30)

        async def warnings(manager):
            return manager.status()["warnings"]

        wait_until(lambda: thread.run(warnings(laptop), 5) and thread.run(warnings(server_side), 5), timeout=10)
        time.sleep(0.5)
        (seen_by_laptop,) = thread.run(warnings(laptop), 5)
        assert seen_by_laptop == f"{server_side.client.boundjid.full} also runs persistent hooks: items may run twice"
        assert len(thread.run(warnings(server_side), 5)) == 2  # both processes of the "laptop"
        # The laptop's two processes share OS locks: neither warns about the other.
        assert thread.run(warnings(same_machine), 5) == [seen_by_laptop]
    finally:
        for manager in (laptop, same_machine, server_side):
            thread.run(manager.disconnect(), 30)
        thread.stop()


@pytest.mark.timeout(120)
def test_retry_in_a_kernel_runs_in_the_service_that_runs_the_hook(
    kernel, server, publisher, node, data_dir, tmp_path
):
    out = tmp_path / "fixed.ran"
    hook = tmp_path / "failing.py"
    hook.write_text("def hook(host, client, item):\n    raise RuntimeError('downstream is down')\n")
    service = start_service(server, data_dir)
    lines: list[str] = []
    try:
        service_ready(service, lines)
        kernel.run(connect_line(server))
        kernel.run(f"%hook create -s pubsub.localhost -n {node} -t python_file -P {hook}")
        (listed,) = hook_list(kernel)
        for n in range(3):
            publisher.publish(node, item_id=f"f{n}")
        wait_until(lambda: len(json.loads(kernel.run(f"%hook failed {listed['id']} -O json").stdout)) == 3)

        hook.write_text(
            "import os\n"
            "def hook(host, client, item):\n"
            f"    open({str(out)!r}, 'a').write(f\"{{os.getpid()}} {{item['id']}}\\n\")\n"
        )
        answer = kernel.run(f"%hook retry {listed['id']}").stdout
        assert f"runs in pubsub-hook run, pid {service.pid}: asked it to retry" in answer, answer
        wait_until(lambda: len(runs(out)) == 3, timeout=10)
        assert runs(out) == [(service.pid, f"f{n}") for n in range(3)]
        wait_until(lambda: json.loads(kernel.run(f"%hook failed {listed['id']} -O json").stdout) == [])
    finally:
        stop(service)
