"""The notebook way, in real kernels against a real Prosody: the synchronous API
(``pubsub_hook_magic.connect``), functions as hooks, and cells run again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from .conftest import PASSWORDS, connect_line

pytestmark = pytest.mark.kernel


def api_connect(server) -> str:
    return (
        "import pubsub_hook_magic as phm\n"
        f"xmpp = phm.connect('alice@localhost', password_env='ALICE_PW', host={server.host!r}, "
        f"port={server.port}, tls=False)\n"
    )


#: What the persistent hook wrote, read in the kernel (empty before its first run).
KEPT = "(lambda p: p.read_text().split() if p.exists() else [])(__import__('pathlib').Path('kept.log'))"


def hooks_json(kernel):
    return json.loads(kernel.run("%hook list -O json").stdout)


def test_a_decorated_function_fires_is_listed_by_name_replays_fails_and_retries(kernel, server, publisher, node):
    out = kernel.run(api_connect(server) + "print(xmpp)").stdout
    assert "Connected as alice@localhost" in out and "<pubsub_hook_magic.Session alice@localhost>" in out
    kernel.run("seen = []", cell_id="state")
    cell = (
        f"@xmpp.hook({node!r}, service='pubsub.localhost')\n"
        "def on_news(host, client, item):\n"
        "    if item['id'].startswith('bad'):\n"
        "        raise ValueError('cannot take ' + item['id'])\n"
        "    seen.append(item['id'])\n"
    )
    out = kernel.run(cell, cell_id="hook-cell").stdout
    assert "python_function" in out and node in out, out
    publisher.publish(node, item_id="a1")
    assert kernel.wait_for("seen", lambda v: v == ["a1"]) == ["a1"]
    [summary] = hooks_json(kernel)
    assert (summary["type"], summary["arg"], summary["triggers"]) == ("python_function", "on_news", 1)
    assert "on_news" in kernel.run("%hook list -O text").stdout
    # replay: the API, by the function itself
    kernel.run("triggers = xmpp.replay(on_news); print([t.outcome for t in triggers])")
    assert kernel.eval("seen") == ["a1", "a1"]
    # a failing item goes to the dead letters (retry=0: at once)
    publisher.publish(node, item_id="bad1")
    assert kernel.wait_for("[f['item_id'] for f in xmpp.failed(on_news)]", lambda v: v == ["bad1"]) == ["bad1"]
    # fixed by editing the cell and running it again: the same hook, the new code
    fixed = cell.replace("raise ValueError('cannot take ' + item['id'])", "pass")
    out = kernel.run(fixed, cell_id="hook-cell").stdout
    assert f"Replaced the code of hook {summary['id']}" in out, out
    out = kernel.run("print([t.outcome for t in xmpp.retry(on_news)])").stdout
    assert "ok" in out, out
    assert kernel.eval("seen") == ["a1", "a1", "bad1"]
    assert kernel.eval("xmpp.failed(on_news)") == []
    [after] = hooks_json(kernel)
    assert after["id"] == summary["id"] and after["triggers"] >= 3  # history kept


def test_running_a_hook_cell_again_keeps_or_replaces_never_adds(connected, publisher, node):
    connected.run("runs = []")
    cell = f"%%hook create -s pubsub.localhost -n {node}\nruns.append(('v1', item['id']))\n"
    first = connected.run(cell, cell_id="c1").stdout
    assert "Created hook" in first
    [hook] = hooks_json(connected)
    again = connected.run(cell, cell_id="c1").stdout
    assert f"Kept hook {hook['id']}" in again, again
    assert [h["id"] for h in hooks_json(connected)] == [hook["id"]]
    edited = connected.run(cell.replace("'v1'", "'v2'"), cell_id="c1").stdout
    assert f"Replaced the code of hook {hook['id']}" in edited, edited
    assert [h["id"] for h in hooks_json(connected)] == [hook["id"]]
    publisher.publish(node, item_id="x1")
    assert connected.wait_for("runs", lambda v: len(v) >= 1) == [("v2", "x1")]
    # the node changed in the cell: a new hook, the old one deleted at once
    other = publisher_node = f"{node}-b"
    publisher.create_node(publisher_node)
    moved = connected.run(cell.replace(f"-n {node}", f"-n {other}"), cell_id="c1").stdout
    assert f"Replaced hook {hook['id']} with hook" in moved, moved
    assert [h["node"] for h in hooks_json(connected)] == [other]
    # the create removed from the cell: its hook goes when the cell has run
    gone = connected.run("x = 1", cell_id="c1").stdout
    assert "Deleted hook" in gone and "the cell no longer makes it" in gone, gone
    assert hooks_json(connected) == []


def test_the_same_create_in_another_cell_is_refused_unless_again(connected, node):
    line = f"%hook create -s pubsub.localhost -n {node} -t python_code pass"
    connected.run(line, cell_id="one")
    [hook] = hooks_json(connected)
    result = connected.run(line, cell_id="two", allow_error=True)
    assert result.status == "error" and result.error[0] == "UsageError"
    assert f"hook {hook['id']} already does this" in result.error[1] and "--again" in result.error[1]
    assert len(hooks_json(connected)) == 1  # nothing lost, nothing added
    connected.run(line.replace("create ", "create --again "), cell_id="three")
    assert len(hooks_json(connected)) == 2


def test_a_failed_cell_deletes_none_of_its_hooks(connected, node):
    cell = f"%hook create -s pubsub.localhost -n {node} -t python_code pass\n"
    connected.run(cell, cell_id="c")
    [hook] = hooks_json(connected)
    result = connected.run("raise RuntimeError('before the create')\n" + cell, cell_id="c", allow_error=True)
    assert result.status == "error"
    assert [h["id"] for h in hooks_json(connected)] == [hook["id"]]


def test_api_errors_are_one_line_usage_errors_in_a_kernel(kernel, server, node):
    result = kernel.run("import pubsub_hook_magic as phm\nphm.session()", allow_error=True)
    assert result.status == "error"
    [line] = result.traceback  # one line, no traceback
    assert line.startswith("UsageError: not connected: call pubsub_hook_magic.connect("), line
    kernel.run(api_connect(server))
    result = kernel.run(f"xmpp.create({node!r}, 'pass', service='pubsub.localhost', type='nope')", allow_error=True)
    assert result.traceback == ["UsageError: unknown hook type 'nope': use one of python, python_file, "
                                "python_code, python_function"], result.traceback
    out = kernel.run(
        "from pubsub_hook_magic import HookError\ntry:\n    xmpp.delete()\nexcept HookError as e:\n    print('caught', e)"
    ).stdout
    assert out.startswith("caught give the hook (its id), node=... or every=True"), out


def test_a_persistent_function_hook_survives_a_kernel_restart_and_runs_missed_items_once(
    kernel_factory, server, publisher, node
):
    first = kernel_factory()
    first.run(api_connect(server))
    first.run(
        "import json, pathlib\n"
        f"@xmpp.hook({node!r}, service='pubsub.localhost', persistent=True)\n"
        "def keep(host, client, item):\n"
        "    with open('kept.log', 'a') as f:\n"
        "        f.write(item['id'] + '\\n')\n",
        cell_id="persist",
    )
    publisher.publish(node, item_id="p1")
    first.wait_for(KEPT, lambda v: v == ["p1"])
    first.close()
    publisher.publish(node, item_id="p2")  # while no kernel runs it
    second = kernel_factory()
    out = second.run(api_connect(server)).stdout
    assert "1 persistent hook(s) installed" in out, out
    assert second.wait_for(KEPT, lambda v: len(v) >= 2) == ["p1", "p2"]
    [summary] = hooks_json(second)
    assert (summary["type"], summary["arg"], summary["persistent"]) == ("python_function", "keep", True)
    # the cell run again in the new kernel (same cell id): the stored hook is kept
    out = second.run(
        "import json, pathlib\n"
        f"@xmpp.hook({node!r}, service='pubsub.localhost', persistent=True)\n"
        "def keep(host, client, item):\n"
        "    with open('kept.log', 'a') as f:\n"
        "        f.write(item['id'] + '\\n')\n",
        cell_id="persist",
    ).stdout
    assert f"Kept hook {summary['id']}" in out, out
    publisher.publish(node, item_id="p3")
    assert second.wait_for(KEPT, lambda v: len(v) >= 3) == ["p1", "p2", "p3"]


def test_the_sync_api_from_a_plain_script(server, tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, threading
            import pubsub_hook_magic as phm

            assert "IPython" not in sys.modules
            got = threading.Event()
            seen = []
            with phm.connect("alice@localhost", password_env="ALICE_PW", host={server.host!r},
                             port={server.port}, tls=False) as xmpp:
                assert phm.session().jid == "alice@localhost"

                @xmpp.hook("urn:test:script")  # on the account's own PEP
                async def on_item(host, client, item):
                    seen.append(item["id"])
                    got.set()

                try:
                    xmpp.create("urn:test:script", func=on_item)
                except phm.HookError as exc:
                    print("refused:", exc)
                xmpp.publish("urn:test:script", "<x xmlns='urn:t'/>", id="s1")
                assert got.wait(20)
                print("seen", seen, [h["arg"] for h in xmpp.list()])
                print("deleted", xmpp.delete(on_item))
            print("IPython" in sys.modules)
            """
        )
    )
    env = dict(os.environ, ALICE_PW=PASSWORDS["alice"], PUBSUB_HOOK_DATA_DIR=str(tmp_path / "data"))
    env.pop("XMPP_PASSWORD", None)
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    assert "refused: hook" in result.stdout and "already does this" in result.stdout
    assert "seen ['s1'] ['on_item']" in result.stdout
    assert "deleted 1" in result.stdout
    assert result.stdout.strip().endswith("False")


def test_connect_line_and_api_share_one_session(kernel, server):
    kernel.run(connect_line(server))
    out = kernel.run("import pubsub_hook_magic as phm\nprint(phm.session().jid, phm.session() is not None)").stdout
    assert out.strip() == "alice@localhost True"
    out = kernel.run(api_connect(server) + "print(len(xmpp.list()))").stdout
    assert out.strip().endswith("0") and "Connected" not in out  # the same session, not a second login


@pytest.mark.timeout(180)
def test_a_cell_run_again_changes_the_code_the_service_runs(kernel_factory, server, publisher, data_dir, tmp_path):
    from .test_ownership import service_ready, start_service, stop, wait_until

    node = f"svc{os.getpid()}"
    publisher.create_node(node, max_items=50)
    out = tmp_path / "ran.log"
    cell = (
        f"%%hook create -s pubsub.localhost -n {node} --persistent\n"
        "import os\n"
        f"with open({str(out)!r}, 'a') as f:\n"
        "    f.write(f\"v1 {os.getpid()} {item['id']}\\n\")\n"
    )
    kernel = kernel_factory()
    kernel.run(connect_line(server))
    kernel.run(cell, cell_id="svc-cell")
    kernel.run("%hook disconnect")  # the service takes it
    service = start_service(server, data_dir)
    lines: list[str] = []
    try:
        service_ready(service, lines)
        kernel.run(connect_line(server))
        [listed] = json.loads(kernel.run("%hook list -O json").stdout)
        assert listed["state"] == "standby", listed
        edited = kernel.run(cell.replace("v1", "v2"), cell_id="svc-cell").stdout
        assert f"Replaced the code of hook {listed['id']}" in edited, edited
        while "its code was changed in another process" not in lines[-1]:  # the service's log says so
            line = service.stdout.readline()
            assert line, "pubsub-hook run stopped:\n" + "".join(lines)
            lines.append(line)
        publisher.publish(node, item_id="after-edit")

        def ran() -> list[str]:
            return out.read_text().split("\n") if out.exists() else []

        wait_until(lambda: any("after-edit" in line for line in ran()), timeout=30)
        [line] = [line for line in ran() if "after-edit" in line]
        assert line == f"v2 {service.pid} after-edit", ran()  # the service, the new code
    finally:
        log = stop(service)
    assert "its code was changed in another process" in "".join(lines) + log


def test_a_sync_call_inside_a_hook_says_to_await_instead(kernel, server, publisher, node):
    kernel.run(api_connect(server))
    kernel.run(f"%hook create -s pubsub.localhost -n {node} -t python_code xmpp.status()")
    publisher.publish(node, item_id="z")
    errors = kernel.wait_for(
        "[t['error'] for h in xmpp.list() for t in h['recent'] if t['outcome'] == 'error']", lambda v: len(v) == 1
    )
    assert "a hook runs on it: in a hook, await the async API instead" in errors[0], errors


def test_bulk_commands_delete_by_pattern_and_all_pause_several(connected, publisher):
    for name in ("bulk-a", "bulk-b", "other"):
        publisher.create_node(name)
        connected.run(f"%hook create -s pubsub.localhost -n {name} -t python_code pass")
    ids = {h["node"]: h["id"] for h in json.loads(connected.run("%hook list -O json").stdout)}
    out = connected.run(f"%hook pause {ids['bulk-a']} {ids['other']}").stdout
    assert out.strip() == f"Paused 2 hooks: {ids['bulk-a']}, {ids['other']}."
    states = {h["node"]: h["state"] for h in json.loads(connected.run("%hook list -O json").stdout)}
    assert states == {"bulk-a": "paused", "bulk-b": "active", "other": "paused"}, states
    assert "2 hook(s) have been deleted" in connected.run("%hook delete -s pubsub.localhost -n 'bulk-*'").stdout
    assert [h["node"] for h in json.loads(connected.run("%hook list -O json").stdout)] == ["other"]
    message = connected.usage_error("%hook delete --all -n other")
    assert "--all is every node" in message
    assert "1 hook(s) have been deleted" in connected.run("%hook delete --all").stdout
    assert json.loads(connected.run("%hook list -O json").stdout) == []
