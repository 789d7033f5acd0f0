"""Hooks on more than publications: retractions, purges and deleted nodes, checked on
the real Prosody's notifications; and ``--where`` filters."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

from pubsub_hook_magic.hooks import HookError
from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager

from .conftest import PASSWORDS, connect_line
from .support import Publisher

SERVICE = "pubsub.localhost"


@pytest.fixture
def host(server):
    """A HookManager connected as alice, on a loop thread; ``host.ns`` is its namespace."""
    thread = LoopThread()
    manager = HookManager({"seen": []})
    thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], host=server.host, port=server.port, tls=False), 30)
    manager.thread = thread  # type: ignore[attr-defined]
    yield manager
    thread.run(manager.disconnect(), 30)
    thread.stop()


def run(host: HookManager, coro: Any) -> Any:
    return host.thread.run(coro, 30)  # type: ignore[attr-defined]


def retract(pub: Publisher, node: str, item_id: str) -> None:
    pub.run(pub.client.plugin["xep_0060"].retract(SERVICE, node, item_id, notify=True, timeout=15))


def purge(pub: Publisher, node: str) -> None:
    pub.run(pub.client.plugin["xep_0060"].purge(SERVICE, node, timeout=15))


def node_ids(pub: Publisher, node: str) -> set[str]:
    async def get() -> set[str]:
        iq = await pub.client.plugin["xep_0060"].get_items(SERVICE, node, timeout=15)
        return {i["id"] for i in iq["pubsub"]["items"].iterables if i.name == "item"}

    return pub.run(get())


def wait_until(predicate, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


RECORD = "seen.append((item.name, item['id'] if item.name in ('item', 'retract') else item['node']))"


def test_a_retract_hook_runs_once_per_retraction_with_its_id(host, publisher, node):
    run(host, host.create_hook(SERVICE, node, "python_code", RECORD, events="retract"))
    ids = [publisher.publish(node, item_id=f"r{n}") for n in range(3)]
    retract(publisher, node, ids[1])
    retract(publisher, node, ids[0])
    wait_until(lambda: len(host.namespace["seen"]) >= 2)
    time.sleep(0.5)
    assert host.namespace["seen"] == [("retract", "r1"), ("retract", "r0")]  # publications: not for it


def test_a_retraction_lets_the_same_item_fire_again(host, publisher, node):
    run(host, host.create_hook(SERVICE, node, "python_code", RECORD, events="publish,retract"))
    publisher.publish(node, item_id="again", payload='<n xmlns="urn:test">same</n>')
    retract(publisher, node, "again")
    publisher.publish(node, item_id="again", payload='<n xmlns="urn:test">same</n>')
    wait_until(lambda: len(host.namespace["seen"]) >= 3)
    assert host.namespace["seen"] == [("item", "again"), ("retract", "again"), ("item", "again")]


def test_purge_and_delete_hooks_run_once_each(host, publisher, node):
    run(host, host.create_hook(SERVICE, node, "python_code", RECORD, events="purge,delete"))
    publisher.publish(node, item_id="p1")
    purge(publisher, node)
    wait_until(lambda: host.namespace["seen"])
    publisher.delete_node(node)
    wait_until(lambda: len(host.namespace["seen"]) >= 2)
    time.sleep(0.5)
    assert host.namespace["seen"] == [("purge", node), ("delete", node)]


def test_a_where_hook_runs_for_the_matching_items_and_counts_the_rest(host, publisher, server):
    node = f"mixed{time.monotonic_ns()}"
    publisher.create_node(node, max_items=300)
    run(host, host.create_hook(SERVICE, node, "python_code", "seen.append(item['id'])", where=".[@kind='a']"))
    kinds = [random.Random(n).choice("ab") for n in range(200)]
    expected = [f"m{n}" for n, k in enumerate(kinds) if k == "a"]

    async def publish_all() -> None:
        from slixmpp.xmlstream import ET

        xep = publisher.client.plugin["xep_0060"]
        for n, k in enumerate(kinds):
            payload = ET.fromstring(f'<n xmlns="urn:test" kind="{k}">{n}</n>')
            await xep.publish(SERVICE, node, id=f"m{n}", payload=payload, timeout=15)

    publisher.run(publish_all(), 60)

    async def summary() -> dict:
        return host.list_hooks()[0]

    wait_until(lambda: run(host, summary())["filtered"] + len(host.namespace["seen"]) >= 200)
    listed = run(host, summary())
    assert host.namespace["seen"] == expected
    assert listed["filtered"] == 200 - len(expected) and listed["triggers"] == len(expected)
    assert listed["where"] == ".[@kind='a']"


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"events": "publish,unpublish"}, "unknown event 'unpublish'"),
        ({"where": "a:[["}, "is not an expression ElementTree understands"),
        ({"where": "q:author"}, "prefix 'q' not found"),
        ({"where": "x:a", "namespaces": ["x"]}, "is not PREFIX=URI"),
    ],
)
def test_bad_events_and_filters_are_refused_before_anything_is_made(host, node, kwargs, says):
    with pytest.raises(HookError, match=".*") as info:
        run(host, host.create_hook(SERVICE, node, "python_code", "pass", **kwargs))
    assert says in str(info.value)
    assert host.hooks() == []


def test_a_forged_retraction_from_another_jid_fires_nothing(host, publisher, node, server):
    run(host, host.create_hook(SERVICE, node, "python_code", RECORD, events="retract"))
    publisher.publish(node, item_id="real")
    bob = Publisher("bob@localhost/forger", PASSWORDS["bob"], server.host, server.port)
    try:
        bob.send_raw(
            "<message to='alice@localhost' type='headline'>"
            "<event xmlns='http://jabber.org/protocol/pubsub#event'>"
            f"<items node='{node}'><retract id='real'/></items></event></message>"
        )
        time.sleep(1.0)
    finally:
        bob.close()
    assert host.namespace["seen"] == []
    retract(publisher, node, "real")  # the real one still fires
    wait_until(lambda: host.namespace["seen"] == [("retract", "real")])


MIRROR = '''import json, os
PATH = {path!r}
def hook(host, client, item):
    data = json.load(open(PATH)) if os.path.exists(PATH) else {{}}
    if item.name == "item":
        data[item["id"]] = "".join(item.xml.itertext())
    elif item.name == "retract":
        data.pop(item["id"], None)
    else:  # purge, delete
        data = {{}}
    with open(PATH + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(PATH + ".tmp", PATH)
'''


@pytest.mark.timeout(180)
def test_a_persistent_mirror_stays_equal_to_the_node_across_a_kernel_restart(
    kernel_factory, server, publisher, tmp_path
):
    node = f"mirror{time.monotonic_ns()}"
    publisher.create_node(node, max_items=100)
    mirror = tmp_path / "mirror.json"
    hook = tmp_path / "mirror.py"
    hook.write_text(MIRROR.format(path=str(mirror)))

    def mirrored() -> set[str]:
        return set(json.loads(mirror.read_text())) if mirror.exists() else set()

    rng = random.Random(11)

    def churn(steps: int, prefix: str) -> None:
        for n in range(steps):
            present = sorted(node_ids(publisher, node))
            if present and rng.random() < 0.4:
                retract(publisher, node, rng.choice(present))
            else:
                publisher.publish(node, item_id=f"{prefix}{n}")

    kernel = kernel_factory()
    kernel.run(connect_line(server))
    created = kernel.run(f"%hook create -s {SERVICE} -n {node} -t python_file -e publish,retract -P {hook}").stdout
    assert "for publish,retract" in created
    churn(50, "a")
    wait_until(lambda: mirrored() == node_ids(publisher, node), timeout=20)
    kernel.close()  # a kernel restart: published and retracted meanwhile

    churn(20, "b")
    gone_while_away = sorted(node_ids(publisher, node))[:3]
    for item_id in gone_while_away:
        retract(publisher, node, item_id)
    assert mirrored() != node_ids(publisher, node)

    kernel = kernel_factory()
    kernel.run(connect_line(server))
    wait_until(lambda: mirrored() == node_ids(publisher, node), timeout=20)
    listed = json.loads(kernel.run("%hook list -O json").stdout)[0]
    assert listed["events"] == ["publish", "retract"] and listed["errors"] == 0


def test_create_says_when_the_node_will_not_send_an_event(server, publisher):
    """The node's owner can read its configuration: a retract hook on a node configured
    not to notify retractions is made, with a note that says so."""
    node = f"quiet{time.monotonic_ns()}"

    async def create() -> None:
        xep = publisher.client.plugin["xep_0004"]
        form = xep.make_form("submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config")
        form.add_field(var="pubsub#notify_retract", value="0")
        await publisher.client.plugin["xep_0060"].create_node(SERVICE, node, config=form)

    publisher.run(create())
    thread = LoopThread()
    owner = HookManager({})
    try:
        thread.run(owner.connect("admin@localhost/hooks", PASSWORDS["admin"], host=server.host, port=server.port, tls=False), 30)
        quiet = thread.run(owner.create_hook(SERVICE, node, "python_code", "pass", events="retract"), 30)
        assert quiet.notes == [
            f"node {node!r} is configured not to notify retracts (pubsub#notify_retract is off): "
            "this hook will not run for them unless its owner turns it on"
        ]
        plain = thread.run(owner.create_hook(SERVICE, node, "python_code", "pass"), 30)
        assert plain.notes == []
    finally:
        thread.run(owner.disconnect(), 30)
        thread.stop()
