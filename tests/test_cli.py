"""``pubsub-hook``: the hooks of a notebook, run without Jupyter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import PASSWORDS, connect_line

pytestmark = pytest.mark.kernel


def cli_env(server, data_dir, user="alice"):
    env = dict(os.environ)
    env.update(
        PUBSUB_HOOK_DATA_DIR=str(data_dir),
        XMPP_JID=f"{user}@localhost",
        XMPP_HOST=server.host,
        XMPP_PORT=str(server.port),
        XMPP_PASSWORD=PASSWORDS[user],
    )
    return env


def cli(*args, env, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "pubsub_hook_magic.cli", *args, *(["--no-tls"] if args[0] in ("create", "delete", "run") else [])], env=env, capture_output=True, text=True, timeout=timeout
    )


def wait_until(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_notebook_hook_runs_under_pubsub_hook_run(kernel, server, publisher, node, data_dir, tmp_path):
    out = tmp_path / "ran.txt"
    hook = tmp_path / "service_hook.py"
    hook.write_text(f"def hook(host, client, item):\n    open({str(out)!r}, 'a').write(item['id'] + '\\n')\n")
    kernel.run(connect_line(server))
    kernel.run(f"%hook create -s pubsub.localhost -n {node} -t python_file -P {hook}")
    kernel.run(f"%hook create -s pubsub.localhost -n {node} -t python_code -P seen.append(item['id'])")
    kernel.close()
    env = cli_env(server, data_dir)
    listed = json.loads(cli("list", "-O", "json", env=env).stdout)
    assert sorted(h["type"] for h in listed) == ["python_code", "python_file"]

    proc = subprocess.Popen(
        [sys.executable, "-m", "pubsub_hook_magic.cli", "run", "--no-tls"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        time.sleep(2.0)
        publisher.publish(node, item_id="headless1")
        wait_until(lambda: out.exists() and "headless1" in out.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "uses seen, which nothing defines here" in output  # the notebook-only hook
    assert "item headless1: ok" in output and "stopped" in output


def test_create_list_delete_from_the_command_line(server, node, data_dir, tmp_path):
    env = cli_env(server, data_dir)
    hook = tmp_path / "h.py"
    hook.write_text("def hook(host, client, item):\n    pass\n")
    result = cli("create", "-s", "pubsub.localhost", "-n", node, "-t", "python_file", str(hook), env=env)
    assert result.returncode == 0 and "persistent" in result.stdout, result.stderr
    assert node in cli("list", env=env).stdout
    result = cli("create", "-s", "pubsub.localhost", "-n", node, "-t", "python_code", "print(undefined_name)", env=env)
    assert result.returncode == 2 and "undefined_name" in result.stderr
    result = cli("delete", "-s", "pubsub.localhost", "-n", node, env=env)
    assert result.stdout.strip() == "1 hook(s) have been deleted"
    assert cli("list", env=env).stdout.strip() == "No hook found."
    bad = cli("create", "-s", "pubsub.localhost", "-n", node, "-t", "python_file", str(tmp_path / "nope.py"), env=env)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_failed_and_retry_from_the_command_line(server, publisher, node, data_dir, tmp_path):
    env = cli_env(server, data_dir)
    hook = tmp_path / "down.py"
    hook.write_text("def hook(host, client, item):\n    raise ConnectionError('down for ' + item['id'])\n")
    created = cli("create", "-s", "pubsub.localhost", "-n", node, "-t", "python_file", "--retry", "1", "--retry-delay", "0.05", str(hook), env=env)
    assert created.returncode == 0, created.stderr
    hid = created.stdout.split()[2].rstrip(":")
    assert json.loads(cli("list", "-O", "json", env=env).stdout)[0]["retry"] == 1
    proc = subprocess.Popen(
        [sys.executable, "-m", "pubsub_hook_magic.cli", "run", "--no-tls"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    stored = data_dir / "failed-alice@localhost" / f"{hid}.jsonl"
    try:
        time.sleep(2.0)
        for item_id in ("f0", "f1"):
            publisher.publish(node, item_id=item_id)
        wait_until(lambda: stored.exists() and len(stored.read_text().splitlines()) == 2)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert "(attempt 2 of 2)" in output, output
    listed = cli("failed", hid, env=env).stdout.splitlines()
    assert [line.split()[:2] for line in listed[1:]] == [["f0", "2"], ["f1", "2"]]
    assert "2 failed item(s)" in cli("list", env=env).stdout
    letters = json.loads(cli("failed", hid, "-O", "json", env=env).stdout)
    assert letters[1]["error"] == "ConnectionError: down for f1"
    hook.write_text(f"def hook(host, client, item):\n    open({str(tmp_path / 'ok.txt')!r}, 'a').write(item['id'])\n")
    result = cli("retry", hid, "--item", "f0", "--no-tls", env=env)
    assert result.returncode == 0 and "1 failed item(s) of hook" in result.stdout and "ran again: 1 succeeded (removed)." in result.stdout, result
    assert (tmp_path / "ok.txt").read_text() == "f0"
    result = cli("retry", hid, "--discard", env=env)
    assert result.stdout.strip() == f"Discarded 1 failed item(s) of hook {hid}."
    assert "has no failed item" in cli("failed", hid, env=env).stdout
    bad = cli("failed", "nope", env=env)
    assert bad.returncode == 2 and "no persistent hook 'nope'" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("create", "-n", node, "--retry", "-3", "-t", "python_file", str(hook), env=env)
    assert bad.returncode == 2 and "--retry must be" in bad.stderr


@pytest.mark.parametrize("command", [("run",), ("delete", "-n", "news")])
def test_a_non_numeric_xmpp_port_is_one_line_and_exit_status_2(data_dir, command):
    env = dict(os.environ)
    env.update(
        PUBSUB_HOOK_DATA_DIR=str(data_dir),
        XMPP_JID="alice@localhost",
        XMPP_HOST="127.0.0.1",
        XMPP_PORT="abc",
        XMPP_PASSWORD="not-used",
    )
    result = cli(*command, env=env, timeout=30)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pubsub-hook: $XMPP_PORT is not a port number"), lines
    assert "not-used" not in result.stdout + result.stderr
