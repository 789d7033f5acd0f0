"""``pubsub-hook run A B``: several accounts in one service process, and ``-p ACCOUNT``
for the other sub-commands; real processes against the private Prosody."""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import PASSWORDS, connect_line
from .test_cli import cli, cli_env

pytestmark = pytest.mark.kernel


def accounts_env(server, data_dir, **passwords: str) -> dict[str, str]:
    """The CLI's environment without a single account or password: each account's
    password in its own variable (``ALICE_PW=...``)."""
    env = cli_env(server, data_dir)
    for name in ("XMPP_JID", "XMPP_PASSWORD"):
        env.pop(name)
    env.update(passwords)
    return env


def recording_hook(tmp_path: Path, out: Path, name: str) -> Path:
    """A python_file hook appending "PID ACCOUNT ITEM ACCOUNTS" to ``out``, per item."""
    hook = tmp_path / f"{name}.py"
    hook.write_text(
        "import os\n"
        "def hook(host, client, item):\n"
        "    accounts = ','.join(sorted(host.accounts)) if host.accounts is not None else '-'\n"
        f"    with open({str(out)!r}, 'a') as f:\n"
        "        f.write(f\"{os.getpid()} {host.jid} {item['id']} {accounts}\\n\")\n"
    )
    return hook


def runs(out: Path) -> list[tuple[int, str, str, str]]:
    if not out.exists():
        return []
    return [(int(p), j, i, a) for p, j, i, a in (line.split() for line in out.read_text().splitlines() if line)]


def wait_until(predicate, timeout: float = 20, step: float = 0.05) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "condition not met in time"
        time.sleep(step)
    return time.monotonic() - start


class Service:
    """``pubsub-hook run ...`` in the background, its log read line by line."""

    def __init__(self, *args: str, env: dict[str, str]):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pubsub_hook_magic.cli", "run", "--no-tls", *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """The first log line containing ``text`` (waits for it)."""
        def found() -> bool:
            assert self.proc.poll() is None or any(text in line for line in self.lines), self.output
            return any(text in line for line in self.lines)
        wait_until(found, timeout)
        return next(line for line in self.lines if text in line)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self._reader.join(5)
        return code


def create(env, node: str, hook: Path, account: str) -> str:
    """``pubsub-hook create -p ACCOUNT``; the new hook's id."""
    created = cli("create", "-p", account, "-s", "pubsub.localhost", "-n", node, "-t", "python_file", str(hook), env=env)
    assert created.returncode == 0, created.stderr
    return created.stdout.split()[2].rstrip(":")


def new_node(publisher, name: str) -> str:
    node = f"{name}{time.monotonic_ns()}"
    publisher.create_node(node)
    return node


@pytest.fixture
def two_accounts(server, publisher, data_dir, tmp_path):
    """alice's hook on one node and bob's on another, made with ``create -p``; their
    ids, nodes, and the file both hooks write."""
    out = tmp_path / "ran.txt"
    alice_node, bob_node = new_node(publisher, "alice"), new_node(publisher, "bob")
    alice_id = create(cli_env(server, data_dir, "alice"), alice_node, recording_hook(tmp_path, out, "a"), "alice@localhost")
    bob_id = create(cli_env(server, data_dir, "bob"), bob_node, recording_hook(tmp_path, out, "b"), "bob@localhost")
    return {"out": out, "alice": (alice_id, alice_node), "bob": (bob_id, bob_node)}


@pytest.mark.timeout(120)
def test_list_failed_and_delete_take_the_account_with_p(server, data_dir, two_accounts):
    env = accounts_env(server, data_dir)
    alice_id, alice_node = two_accounts["alice"]
    bob_id, _bob_node = two_accounts["bob"]
    # Two accounts in the store: without -p, list says which to choose.
    bad = cli("list", env=env)
    assert bad.returncode == 2 and "alice@localhost, bob@localhost" in bad.stderr and "-p ACCOUNT" in bad.stderr
    for profile in ("bob", "bob@localhost", "BOB"):
        listed = json.loads(cli("list", "-p", profile, "-O", "json", env=env).stdout)
        assert [h["id"] for h in listed] == [bob_id], profile
    assert [h["id"] for h in json.loads(cli("list", "--profile", "alice", "-O", "json", env=env).stdout)] == [alice_id]
    assert "has no failed item" in cli("failed", "-p", "alice", alice_id, env=env).stdout
    wrong = cli("failed", "-p", "bob", alice_id, env=env)
    assert wrong.returncode == 2 and f"no persistent hook {alice_id!r} for bob@localhost" in wrong.stderr
    nobody = cli("list", "-p", "carol", env=env)
    assert nobody.returncode == 2 and "give the whole JID" in nobody.stderr and "Traceback" not in nobody.stderr
    clash = cli("list", "-p", "bob", "--jid", "alice@localhost", env=env)
    assert clash.returncode == 2 and "name two accounts" in clash.stderr
    deleted = cli("delete", "-p", "alice", "-s", "pubsub.localhost", "-n", alice_node,
                  env=env | {"XMPP_PASSWORD": PASSWORDS["alice"]})
    assert deleted.stdout.strip() == "1 hook(s) have been deleted", deleted.stderr
    assert cli("list", "-p", "alice", env=env).stdout.strip() == "No hook found."
    assert [h["id"] for h in json.loads(cli("list", "-p", "bob", "-O", "json", env=env).stdout)] == [bob_id]


@pytest.mark.timeout(120)
def test_run_serves_two_accounts_each_on_its_own_items_exactly_once(server, publisher, data_dir, two_accounts):
    out = two_accounts["out"]
    alice_id, alice_node = two_accounts["alice"]
    bob_id, bob_node = two_accounts["bob"]
    env = accounts_env(server, data_dir, ALICE_PW=PASSWORDS["alice"], BOB_PW=PASSWORDS["bob"])
    service = Service("alice", "bob@localhost", "--password-env", "ALICE_PW", "--password-env", "BOB_PW", env=env)
    try:
        started = service.wait_for("connected as alice@localhost")
        assert f"running 1 persistent hook(s) ({alice_id})" in started
        assert f"running 1 persistent hook(s) ({bob_id})" in service.wait_for("connected as bob@localhost")
        for n in range(3):
            publisher.publish(alice_node, item_id=f"a{n}")
            publisher.publish(bob_node, item_id=f"b{n}")
        wait_until(lambda: len(runs(out)) >= 6)
        time.sleep(1.0)  # nothing more comes
    finally:
        code = service.stop()
    assert code == 0, service.output
    ran = runs(out)
    assert {(p, a) for p, _j, _i, a in ran} == {(service.proc.pid, "alice@localhost,bob@localhost")}
    by_account = collections.defaultdict(list)
    for _p, jid, item, _a in ran:
        by_account[jid].append(item)
    assert dict(by_account) == {"alice@localhost": ["a0", "a1", "a2"], "bob@localhost": ["b0", "b1", "b2"]}
    assert f"bob@localhost: hook {bob_id} ({bob_node}) item b2: ok" in service.output
    assert PASSWORDS["alice"] not in service.output and PASSWORDS["bob"] not in service.output


@pytest.mark.timeout(120)
def test_one_account_failing_leaves_the_others_running(server, publisher, data_dir, two_accounts):
    """bob's password is wrong, admin's server never answers (a port that accepts and
    says nothing): alice's hooks run at once, and the service goes on; none starting
    is exit 2."""
    out = two_accounts["out"]
    _alice_id, alice_node = two_accounts["alice"]
    env = accounts_env(server, data_dir, ALICE_PW=PASSWORDS["alice"], BOB_PW="not-bobs-password",
                       ADMIN_PW=PASSWORDS["admin"])
    silent = socket.create_server(("127.0.0.1", 0))  # the handshake completes, no XMPP
    dead = silent.getsockname()[1]
    service = Service(
        "alice", "bob", "admin@localhost", "--password-env", "ALICE_PW", "--password-env", "BOB_PW",
        "--password-env", "ADMIN_PW", "--host", server.host, "--port", str(server.port), "--port", str(server.port),
        "--port", str(dead), "--timeout", "6", env=env,
    )
    try:
        service.wait_for("connected as alice@localhost")
        publisher.publish(alice_node, item_id="a-first")
        wait_until(lambda: [i for _p, _j, i, _a in runs(out)] == ["a-first"], timeout=5)
        # alice ran while admin's server was still being tried.
        assert not any("admin@localhost: not running" in line for line in service.lines), service.output
        assert "bob@localhost: not running" in service.wait_for("bob@localhost: not running")
        service.wait_for("admin@localhost: not running", timeout=20)
        publisher.publish(alice_node, item_id="a-after")
        wait_until(lambda: [i for _p, _j, i, _a in runs(out)] == ["a-first", "a-after"])
        assert service.proc.poll() is None
    finally:
        code = service.stop()
        silent.close()
    assert code == 0, service.output
    assert "not-bobs-password" not in service.output
    assert "Traceback" not in service.output

    none = Service("alice", "bob", "--password-env", "BOB_PW", "--password-env", "BOB_PW", env=env)
    assert none.proc.wait(timeout=30) == 2
    none.stop()
    assert "none of the 2 accounts could start" in none.output, none.output
    assert "alice@localhost: not running" in none.output and "bob@localhost: not running" in none.output


def test_password_sources_of_several_accounts_are_one_line_errors(server, data_dir):
    env = accounts_env(server, data_dir, ALICE_PW=PASSWORDS["alice"])
    cases = [
        (("alice@localhost", "bob@localhost", "--password-env", "ALICE_PW"), "--password-env is given 1 time(s) for 2"),
        (("alice@localhost", "bob@localhost"), "give --password-env VAR once per account"),
        (("alice@localhost", "alice@localhost"), "is given twice"),
        (("alice@localhost", "bob@localhost", "--password-env", "ALICE_PW", "--password-env", "NOPE"), "NOPE is not set"),
        (("alice@localhost", "bob@localhost", "--password-env", "ALICE_PW", "--password-env", "ALICE_PW",
          "--port", "1", "--port", "2", "--port", "3"), "--port is given 3 times for 2"),
    ]
    # $XMPP_PASSWORD is one password: several accounts do not take it.
    env["XMPP_PASSWORD"] = PASSWORDS["alice"]
    for args, message in cases:
        result = subprocess.run([sys.executable, "-m", "pubsub_hook_magic.cli", "run", "--no-tls", *args],
                                env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], (args, result.stderr)
        assert PASSWORDS["alice"] not in result.stdout + result.stderr


@pytest.mark.timeout(180)
def test_a_kernel_and_the_service_hand_over_per_account_exactly_once(
    kernel_factory, server, publisher, data_dir, tmp_path, two_accounts
):
    """A kernel runs alice's hook; the service of alice and bob runs bob's at once and
    takes alice's over when the kernel lets go; when the service stops, the kernel
    (connected again) takes alice's back. Every item runs once, in the process that
    held the hook then."""
    out = two_accounts["out"]
    alice_id, alice_node = two_accounts["alice"]
    bob_id, bob_node = two_accounts["bob"]
    kernel = kernel_factory()
    assert "Connected as alice@localhost" in kernel.run(connect_line(server)).stdout
    kernel_pid = int(kernel.run("import os; print(os.getpid())").stdout)
    publisher.publish(alice_node, item_id="a-kernel")
    wait_until(lambda: [i for _p, _j, i, _a in runs(out)] == ["a-kernel"])

    env = accounts_env(server, data_dir, ALICE_PW=PASSWORDS["alice"], BOB_PW=PASSWORDS["bob"])
    service = Service("alice", "bob", "--password-env", "ALICE_PW", "--password-env", "BOB_PW", env=env)
    try:
        alice_line = service.wait_for("connected as alice@localhost")
        assert "running 0 persistent hook(s)" in alice_line, alice_line
        assert f"1 waits for the kernel (pid {kernel_pid}) to let go ({alice_id})" in alice_line, alice_line
        assert f"running 1 persistent hook(s) ({bob_id})" in service.wait_for("connected as bob@localhost")
        (listed,) = json.loads(kernel.run("%hook list -O json").stdout)
        assert listed["state"] == "active" and listed["owner"].startswith("kernel, pid")

        publisher.publish(alice_node, item_id="a-still-kernel")
        publisher.publish(bob_node, item_id="b-service")
        wait_until(lambda: len(runs(out)) >= 3)
        kernel.run("%hook disconnect")  # lets alice's hook go
        publisher.publish(alice_node, item_id="a-gap")  # while nobody may run it
        service.wait_for(f"hook {alice_id} now runs here")
        publisher.publish(alice_node, item_id="a-service")
        publisher.publish(bob_node, item_id="b-service-2")
        wait_until(lambda: len(runs(out)) >= 6)

        kernel.run(connect_line(server))
        (listed,) = json.loads(kernel.run("%hook list -O json").stdout)
        assert listed["state"] == "standby" and listed["owner"] == f"pubsub-hook run, pid {service.proc.pid}"
    finally:
        code = service.stop()
    assert code == 0, service.output
    publisher.publish(alice_node, item_id="a-kernel-again")
    wait_until(lambda: len(runs(out)) >= 7)
    time.sleep(1.5)  # nothing more comes

    ran = [(p, j, i) for p, j, i, _a in runs(out)]
    count = collections.Counter(i for _p, _j, i in ran)
    assert all(n == 1 for n in count.values()), count
    where = {i: p for p, _j, i in ran}
    service_pid = service.proc.pid
    assert where == {
        "a-kernel": kernel_pid, "a-still-kernel": kernel_pid, "b-service": service_pid, "a-gap": service_pid,
        "a-service": service_pid, "b-service-2": service_pid, "a-kernel-again": kernel_pid,
    }, ran
    assert {j for _p, j, i in ran if i.startswith("b-")} == {"bob@localhost"}
    assert {j for _p, j, i in ran if i.startswith("a-")} == {"alice@localhost"}
    assert os.getpid() not in where.values()
