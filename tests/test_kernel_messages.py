"""What the newcomer's second pass read (issue 24, items 4 and 7), in a real kernel
against the private Prosody: a missing node is said to be missing (publish, retract,
create), a refused retract says why, no hint advises what was just refused, a hook on
a PEP node that does not exist yet says so; a retry that fails again says so; a
connect says what catches up and what waits; a refused password says where it came
from; a traceback names the hook's code. The wording may change, the content cannot."""

from __future__ import annotations

import json
import time

import pytest

from .conftest import PASSWORDS, connect_line
from .test_kernel_errors import check_message

pytestmark = pytest.mark.kernel


def hooks_json(kernel) -> list[dict]:
    return json.loads(kernel.run("%hook list -O json").stdout)


def wait_failed(kernel, hook_id: str, count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while len(json.loads(kernel.run(f"%hook failed {hook_id} -O json").stdout)) < count:
        assert time.monotonic() < deadline, kernel.run(f"%hook failed {hook_id}").stdout
        time.sleep(0.1)


def test_a_publish_and_a_retract_on_a_missing_node_say_it_is_missing(connected):
    name = f"gone{time.monotonic_ns() % 10000}"
    # Prosody says "forbidden" here (it checks the right to publish first): not the answer.
    error = connected.usage_error(f"%hook publish -s pubsub.localhost -n {name} <x xmlns='urn:x'/>")
    check_message(error, f"node '{name}' does not exist on pubsub.localhost", "%hook node create")
    assert "publishers may publish" not in error, error
    error = connected.usage_error(f"%hook retract -s pubsub.localhost -n {name} one")
    check_message(error, f"node '{name}' does not exist on pubsub.localhost")
    assert "may retract" not in error, error


def test_a_refused_retract_says_why_and_a_missing_item_is_no_refusal(connected, publisher, node):
    publisher.publish(node, item_id="theirs")
    # admin@localhost owns the node: alice is neither its owner nor a publisher.
    refused = connected.usage_error(f"%hook retract -s pubsub.localhost -n {node} theirs")
    check_message(refused, "forbidden", "owner", "publishers", "alice@localhost is neither")
    # On her own PEP alice may retract: an id that never existed is said to be missing.
    pep = f"urn:example:mine{time.monotonic_ns()}"
    connected.run(f"%hook publish -n {pep} -i real <x xmlns='urn:x'/>")
    missing = connected.usage_error(f"%hook retract -n {pep} never-was")
    check_message(missing, "item-not-found", "no item 'never-was'", "never published")
    assert "owner" not in missing and "neither" not in missing, missing
    connected.run(f"%hook retract -n {pep} real")  # (it exists: retracted)


def test_a_hook_on_a_missing_node_advises_no_creation_the_service_refused(connected):
    name = f"new{time.monotonic_ns() % 10000}"
    error = connected.usage_error(f"%hook create -s pubsub.localhost -n {name} -t python_code pass")
    assert f"%hook node create -s pubsub.localhost -n {name}" in error, error
    refused = connected.usage_error(f"%hook node create -s pubsub.localhost -n {name}")
    assert "forbidden" in refused, refused
    # The service refused alice a node: the hint no longer advises it (no circle).
    error = connected.usage_error(f"%hook create -s pubsub.localhost -n {name} -t python_code pass")
    check_message(error, f"node '{name}' does not exist on pubsub.localhost", "admin", "your own PEP")
    assert "%hook node create" not in error, error
    error = connected.usage_error(f"%hook publish -s pubsub.localhost -n {name} <x xmlns='urn:x'/>")
    assert "does not exist" in error and "%hook node create" not in error, error


def test_a_hook_on_a_pep_node_that_does_not_exist_yet_says_so(connected):
    name = f"urn:example:later{time.monotonic_ns()}"
    out = connected.run(f"%hook create -n {name} -t python_code pass").stdout
    assert f"Note: your PEP has no node '{name}' yet" in out and "once something publishes" in out, out
    assert "-s SERVICE" in out, out  # (the forgotten -s)
    connected.run(f"%hook publish -n {name} -i one <x xmlns='urn:x'/>")
    out = connected.run(f"%hook create -n {name} -t python_code pass # another").stdout
    assert "has no node" not in out, out


def test_a_retry_that_fails_again_says_so(connected, publisher, node):
    out = connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code raise ValueError(item['id'])").stdout
    [hook_id] = [h["id"] for h in hooks_json(connected)]
    for n in range(3):
        publisher.publish(node, item_id=f"f{n}")
    wait_failed(connected, hook_id, 3)
    out = connected.run(f"%hook retry {hook_id}").stdout
    assert "0 of 3" not in out and "were removed" not in out, out
    last = out.strip().splitlines()[-1]
    assert "3 failed item(s)" in last and "0 succeeded" in last and "3 failed again" in last, out
    assert f"%hook failed {hook_id}" in last, out
    assert len(json.loads(connected.run(f"%hook failed {hook_id} -O json").stdout)) == 3  # kept


def test_a_traceback_names_the_hook_and_shows_its_code(connected, publisher, node):
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code raise ValueError('no ' + item['id'])")
    [hook_id] = [h["id"] for h in hooks_json(connected)]
    publisher.publish(node, item_id="tb")
    wait_failed(connected, hook_id, 1)
    [letter] = json.loads(connected.run(f"%hook failed {hook_id} -O json").stdout)
    traceback = letter["traceback"]
    assert f'File "<hook {hook_id}, python_code>", line 1' in traceback, traceback
    assert "raise ValueError('no ' + item['id'])" in traceback, traceback  # (linecache: the code's line)
    assert "#" not in traceback.split("python_code")[0], traceback


def test_connect_says_what_catches_up_and_what_waits(kernel_factory, server, publisher, node, tmp_path):
    path = tmp_path / "counting.py"
    path.write_text("def hook(host, client, item):\n    pass\n")
    first = kernel_factory()
    first.run(connect_line(server))
    first.run("seen = []")
    first.run(f"%hook create -s pubsub.localhost -n {node} -t python_code -P seen.append(item['id'])")
    first.run(f"%hook create -s pubsub.localhost -n {node} -t python_file -P {path}")
    code_id, file_id = (h["id"] for h in hooks_json(first))
    first.close()  # a kernel restart
    for n in range(3):
        publisher.publish(node, item_id=f"missed{n}")

    second = kernel_factory()
    out = second.run(connect_line(server)).stdout
    assert "2 persistent hook(s) installed" in out, out
    [caught] = [line for line in out.splitlines() if file_id in line and "caught up" in line.lower()
                or file_id in line and "catching up" in line.lower()]
    assert "published while the session was away" in caught, out
    [waits] = [line for line in out.splitlines() if code_id in line]
    assert "waits for seen" in waits and "once a cell defines it" in waits, out


def test_a_refused_password_says_where_it_came_from(kernel, server):
    # $XMPP_PASSWORD holds alice's password; bob's connect picks it up.
    kernel.run(f"%env XMPP_PASSWORD={PASSWORDS['alice']}")
    result = kernel.run(
        f"%hook connect bob@localhost --host {server.host} --port {server.port} --no-tls", allow_error=True
    )
    assert result.error is not None and result.error[0] == "UsageError", result
    msg = result.error[1]
    check_message(msg, "$XMPP_PASSWORD", "refused", "bob@localhost", "--password-env", "unset")
    assert PASSWORDS["alice"] not in msg + result.text
