"""Bad input to %hook, in a real kernel against a real Prosody.

Every mistake must give a short UsageError (one line, no traceback) that says what to
do, and must lose nothing: the hooks created before it are still listed, still fire
when the publisher publishes, and the persistent ones are still in the store file.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import time
from pathlib import Path

import argparse

import pytest

from pubsub_hook_magic.commands import build_parser

from .conftest import PASSWORDS, connect_line
from .support import stored_hooks

pytestmark = pytest.mark.kernel

SERVICE = "pubsub.localhost"
SUBCOMMANDS = {
    name
    for action in build_parser()._actions  # noqa: SLF001 - the sub-commands %hook really has
    if isinstance(action, argparse._SubParsersAction)  # noqa: SLF001
    for name in action.choices
}
_items = itertools.count(1)


# ---------------------------------------------------------------------- helpers


def hooks_json(kernel) -> list[dict]:
    return json.loads(kernel.run("%hook list -O json").stdout)


def create(kernel, options: str, code: str) -> str:
    """Create a python_code hook; return its id."""
    out = kernel.run(f"%hook create {options} -t python_code {code}").stdout
    match = re.search(r"Created hook (\w+):", out)
    assert match, out
    return match.group(1)


def make_hooks(kernel, node: str, persistent: bool = True) -> dict[str, str]:
    """A temporary hook (and a persistent one) on ``node``; each appends the ids it
    sees to ``fired[name]`` in the kernel. Returns {name: hook id}."""
    kernel.run("fired = {}")
    hooks = {
        "temp": create(kernel, f"-s {SERVICE} -n {node}", "fired.setdefault('temp', []).append(item['id'])")
    }
    if persistent:
        hooks["pers"] = create(
            kernel, f"-P -s {SERVICE} -n {node}", "fired.setdefault('pers', []).append(item['id'])"
        )
    return hooks


def store_files(data_dir: Path) -> dict[str, bytes]:
    """Every file of the store directory, by name, with its bytes."""
    if not data_dir.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(data_dir.iterdir()) if p.is_file()}


def stored_ids(data_dir: Path) -> set[str]:
    return {h["id"] for records in stored_hooks(data_dir).values() for h in records}


def check_message(msg: str, *words: str) -> None:
    """Short, one line, holds the meaningful words, and any %hook command it advises exists."""
    text = msg.strip()
    assert text, "empty error message"
    assert "\n" not in text, f"not one line: {msg!r}"
    assert len(text) <= 300, f"too long ({len(text)} chars): {msg!r}"
    for word in words:
        assert word.lower() in text.lower(), f"{word!r} not in: {msg!r}"
    for cmd in re.findall(r"%%?hook\s+([a-z_]+)", text):
        assert cmd in SUBCOMMANDS, f"the message advises `%hook {cmd}`, which does not exist: {msg!r}"


def assert_intact(kernel, publisher, node: str, data_dir: Path, hooks: dict[str, str]) -> None:
    """The hooks are listed (active), each fires once for a new item, and the
    persistent one is in the store."""
    listed = {h["id"]: h for h in hooks_json(kernel)}
    deadline = time.monotonic() + 15  # (a persistent hook just made may still be catching up)
    while not all(h["state"] == "active" for h in listed.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
        listed = {h["id"]: h for h in hooks_json(kernel)}
    assert set(listed) == set(hooks.values()), listed
    assert all(h["state"] == "active" for h in listed.values()), {i: h["state"] for i, h in listed.items()}
    if "pers" in hooks:
        assert listed[hooks["pers"]]["persistent"] is True
        assert hooks["pers"] in stored_ids(data_dir)
    if "temp" in hooks:
        assert listed[hooks["temp"]]["persistent"] is False
        assert hooks["temp"] not in stored_ids(data_dir)
    item_id = f"check{next(_items)}"
    publisher.publish(node, item_id=item_id)
    for name in hooks:
        kernel.wait_for(f"fired.get({name!r}, [])", lambda seen: item_id in seen)
    time.sleep(0.2)
    for name in hooks:
        assert kernel.eval(f"fired.get({name!r}, []).count({item_id!r})") == 1


def bad(kernel, code: str, data_dir: Path) -> str:
    """Run a bad cell: a UsageError, and not a byte of the store changed."""
    before = store_files(data_dir)
    msg = kernel.usage_error(code)
    assert store_files(data_dir) == before, "the failed command changed the store"
    return msg


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------- bad commands


def test_unknown_sub_command(connected, publisher, node, data_dir):
    hooks = make_hooks(connected, node)
    msg = bad(connected, "%hook frobnicate -n x", data_dir)
    check_message(msg, "unknown sub-command", "frobnicate", "connect", "create", "%hook -h")
    assert_intact(connected, publisher, node, data_dir, hooks)


def test_unknown_hook_type(connected, publisher, node, data_dir):
    hooks = make_hooks(connected, node)
    msg = bad(connected, f"%hook create -P -s {SERVICE} -n {node} -t ruby hook.rb", data_dir)
    check_message(msg, "ruby", "python", "python_file", "python_code")
    assert_intact(connected, publisher, node, data_dir, hooks)


def test_missing_node(connected, publisher, node, data_dir):
    hooks = make_hooks(connected, node)
    for cell in (
        f"%hook create -P -s {SERVICE} -t python_code pass",
        f"%hook create -P -s {SERVICE} mymodule",
        f"%%hook create -P -s {SERVICE}\npass\n",
    ):
        check_message(bad(connected, cell, data_dir), "-n", "required")
    msg = bad(connected, f"%hook delete -s {SERVICE} -t python_code", data_dir)
    check_message(msg, "node", "-n NODE")
    assert_intact(connected, publisher, node, data_dir, hooks)


def test_missing_file(connected, publisher, node, data_dir, tmp_path):
    hooks = make_hooks(connected, node)
    path = tmp_path / "nowhere" / "hook.py"
    msg = bad(connected, f"%hook create -P -s {SERVICE} -n {node} -t python_file {path}", data_dir)
    check_message(msg, str(path), "does not exist", "python file")
    msg = bad(connected, f"%hook create -P -s {SERVICE} -n {node} -t python_file", data_dir)
    check_message(msg, "python_file", "needs a file path")
    assert_intact(connected, publisher, node, data_dir, hooks)


def test_file_without_hook(connected, publisher, node, data_dir, tmp_path):
    hooks = make_hooks(connected, node)
    path = tmp_path / "nohook.py"
    path.write_text("def other(host, client, item):\n    pass\n")
    msg = bad(connected, f"%hook create -P -s {SERVICE} -n {node} -t python_file {path}", data_dir)
    check_message(msg, str(path), "no `hook`", "def hook(host, client, item)")
    assert_intact(connected, publisher, node, data_dir, hooks)


@pytest.mark.parametrize("kind", ["python_file", "python"])
def test_hook_not_callable(connected, publisher, node, data_dir, tmp_path, kind):
    hooks = make_hooks(connected, node)
    path = tmp_path / "notcallable.py"
    path.write_text("hook = 42\n")
    connected.run(f"import sys; sys.path.insert(0, {str(tmp_path)!r})")
    arg = str(path) if kind == "python_file" else "notcallable"
    msg = bad(connected, f"%hook create -P -s {SERVICE} -n {node} -t {kind} {arg}", data_dir)
    check_message(msg, "int", "not a function", "def hook(host, client, item)")
    assert_intact(connected, publisher, node, data_dir, hooks)


@pytest.mark.parametrize(
    "module, words",
    [
        ("raisesonimport", ("importing 'raisesonimport' raised", "RuntimeError", "boom at import", "fix the module")),
        ("nosuchmodule_xyz", ("cannot import", "nosuchmodule_xyz", "sys.path")),
    ],
    ids=["raises", "missing"],
)
def test_module_that_fails_to_import(connected, publisher, node, data_dir, tmp_path, module, words):
    hooks = make_hooks(connected, node)
    (tmp_path / "raisesonimport.py").write_text(
        "def hook(host, client, item):\n    pass\n\nraise RuntimeError('boom at import')\n"
    )
    connected.run(f"import sys; sys.path.insert(0, {str(tmp_path)!r})")
    msg = bad(connected, f"%hook create -P -s {SERVICE} -n {node} -t python {module}", data_dir)
    check_message(msg, *words)
    assert_intact(connected, publisher, node, data_dir, hooks)
    assert connected.eval("'raisesonimport' in sys.modules") is False


@pytest.mark.parametrize("form", ["line", "cell", "file"])
def test_code_with_a_syntax_error(connected, publisher, node, data_dir, tmp_path, form):
    hooks = make_hooks(connected, node)
    if form == "line":
        cell, line_no = f"%hook create -P -s {SERVICE} -n {node} -t python_code x = (", 1
    elif form == "cell":
        cell, line_no = f"%%hook create -P -s {SERVICE} -n {node}\nx = 1\nif x\n    x += 1\n", 2
    else:
        path = tmp_path / "broken.py"
        path.write_text("def hook(host, client, item):\n    return (\n")
        cell, line_no = f"%hook create -P -s {SERVICE} -n {node} -t python_file {path}", 2
    msg = bad(connected, cell, data_dir)
    check_message(msg, "SyntaxError", f"line {line_no}")
    assert_intact(connected, publisher, node, data_dir, hooks)


def test_node_that_does_not_exist(connected, publisher, node, data_dir):
    hooks = make_hooks(connected, node)
    missing = f"{node}-missing"
    msg = bad(connected, f"%hook create -P -s {SERVICE} -n {missing} -t python_code pass", data_dir)
    check_message(msg, missing, "does not exist", SERVICE)
    assert_intact(connected, publisher, node, data_dir, hooks)


# ---------------------------------------------------------------------- the session


def test_create_before_connect_stores_nothing(kernel, node, data_dir):
    msg = bad(kernel, f"%hook create -P -s {SERVICE} -n {node} -t python_code pass", data_dir)
    check_message(msg, "not connected", "%hook connect")
    assert store_files(data_dir) == {}
    assert hooks_json(kernel) == []


def test_create_after_disconnect_keeps_the_stored_hook(kernel, server, publisher, node, data_dir):
    kernel.run(connect_line(server))
    hooks = make_hooks(kernel, node)
    kernel.run("%hook disconnect")
    msg = bad(kernel, f"%hook create -P -s {SERVICE} -n {node} -t python_code pass", data_dir)
    check_message(msg, "not connected", "%hook connect")
    assert stored_ids(data_dir) == {hooks["pers"]}
    out = kernel.run(connect_line(server)).stdout
    assert "1 persistent hook(s) installed" in out, out
    assert_intact(kernel, publisher, node, data_dir, {"pers": hooks["pers"]})


def test_connect_twice(connected, server, publisher, node, data_dir):
    # (Another account, bob, is added beside alice: see test_kernel_accounts.)
    hooks = make_hooks(connected, node)
    msg = bad(connected, connect_line(server, "alice"), data_dir)
    check_message(msg, "already connected", "alice@localhost", "%hook disconnect")
    assert "connected as alice@localhost" in connected.run("%hook status").stdout
    assert_intact(connected, publisher, node, data_dir, hooks)


def _reconnect_after_failure(kernel, server, publisher, node, data_dir, hooks):
    """The failed connect left no half-open session: the right one works, and
    installs the stored hook again."""
    assert "Not connected" in kernel.run("%hook status").stdout
    assert stored_ids(data_dir) == {hooks["pers"]}
    out = kernel.run(connect_line(server)).stdout
    assert "Connected as alice@localhost; 1 persistent hook(s) installed." in out, out
    assert_intact(kernel, publisher, node, data_dir, {"pers": hooks["pers"]})


def test_wrong_password(kernel, server, publisher, node, data_dir):
    kernel.run(connect_line(server))
    hooks = make_hooks(kernel, node)
    kernel.run("%hook disconnect")
    wrong = "not-alices-password-42"
    kernel.run(f"%env WRONG_PW={wrong}")
    start = time.monotonic()
    result = kernel.run(
        f"%hook connect alice@localhost --host {server.host} --port {server.port} "
        "--password-env WRONG_PW --no-tls",
        allow_error=True,
    )
    elapsed = time.monotonic() - start
    assert result.error is not None and result.error[0] == "UsageError", result
    assert "Traceback" not in result.text, result.text
    msg = result.error[1]
    # It says where the password came from, and what to do.
    check_message(msg, "password from --password-env WRONG_PW", "refused", "alice@localhost", "check $WRONG_PW")
    assert wrong not in msg + result.text
    assert elapsed < 10, f"a wrong password took {elapsed:.1f} s to report"
    _reconnect_after_failure(kernel, server, publisher, node, data_dir, hooks)


def test_unreachable_host_fails_quickly(kernel, server, publisher, node, data_dir):
    kernel.run(connect_line(server))
    hooks = make_hooks(kernel, node)
    kernel.run("%hook disconnect")
    port = free_port()
    start = time.monotonic()
    msg = bad(
        kernel,
        f"%hook connect alice@localhost --host 127.0.0.1 --port {port} --password-env ALICE_PW --no-tls",
        data_dir,
    )
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"an unreachable host took {elapsed:.1f} s to report: {msg}"
    check_message(msg, "cannot reach", f"127.0.0.1:{port}", "--host")
    _reconnect_after_failure(kernel, server, publisher, node, data_dir, hooks)


def test_password_never_appears(kernel, server, publisher, node, data_dir):
    password = PASSWORDS["alice"]
    outputs = [kernel.run(connect_line(server))]
    hooks = make_hooks(kernel, node)
    for cell in ("%hook status", "%hook list", "%hook list -O json", "%hook list -O text"):
        outputs.append(kernel.run(cell))
    for result in outputs:
        assert password not in result.text and password not in repr(result.data), result.text
    assert "connected as alice@localhost" in outputs[1].stdout
    for content in store_files(data_dir).values():
        assert password.encode() not in content
    assert_intact(kernel, publisher, node, data_dir, hooks)


# ---------------------------------------------------------------------- not an error


def test_delete_matching_nothing_is_not_an_error(connected, publisher, node, data_dir):
    hooks = make_hooks(connected, node)
    before = store_files(data_dir)
    for selection in (
        f"-s {SERVICE} -n {node}-other",  # another node
        f"-s {SERVICE} -n {node} -t python_file",  # another type
        f"-s {SERVICE} -n {node} -t python_code -a nomatch",  # another argument
        "--id 0badid",  # no such hook
    ):
        result = connected.run(f"%hook delete {selection}", allow_error=True)
        assert result.status == "ok" and result.error is None, (selection, result)
        assert result.stdout.strip() == "0 hook(s) have been deleted", (selection, result.text)
        assert store_files(data_dir) == before, selection
    assert_intact(connected, publisher, node, data_dir, hooks)


# ---------------------------------------------------------------------- nothing stored


def test_failed_creates_leave_no_store_file(connected, node, data_dir, tmp_path):
    """Failed persistent creates in a session with no hook yet: no file appears."""
    (tmp_path / "nohook2.py").write_text("x = 1\n")
    lines = [
        f"%hook create -P -s {SERVICE} -n {node}-missing -t python_code pass",
        f"%hook create -P -s {SERVICE} -n {node} -t python_code x = (",
        f"%hook create -P -s {SERVICE} -n {node} -t python_file {tmp_path}/nohook2.py",
        f"%hook create -P -s {SERVICE} -n {node} -t python nosuchmodule_xyz",
        f"%hook create -P -s {SERVICE} -n {node} -t ruby x",
    ]
    for line in lines:
        connected.usage_error(line)
        assert store_files(data_dir) == {}, line
    assert hooks_json(connected) == []
