"""Node owners changing things under the hooks, on Prosody 0.12 and ejabberd 23.01 as
Debian ships them (rate limits, stream management, TLS required): the node deleted and
created again, our subscription removed, a subscription pending approval (issue 20)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from pubsub_hook_magic.testing.ejabberd import EjabberdServer

from .conftest import PASSWORDS
from .support import NodeOwner
from .test_nodewatch import RECORD, SERVICE, Host, items_run, wait_until

_names = itertools.count(1)


@pytest.fixture(scope="module")
def owner(debian_server) -> Iterator[NodeOwner]:
    """admin@localhost, owner of the nodes it creates."""
    owner = NodeOwner("admin@localhost", PASSWORDS["admin"], debian_server.host, debian_server.port,
                      ca_file=debian_server.ca_path)
    yield owner
    owner.close()


@pytest.fixture
def fresh(owner) -> str:
    name = f"owned{next(_names)}"
    owner.create_node(name, notify_delete=True)
    return name


def test_a_deleted_node_comes_back_with_every_item_once(debian_server, owner, fresh, tmp_path):
    host = Host(debian_server, str(tmp_path / "store"), ca_file=debian_server.ca_path)
    try:
        hook = host.run(host.manager.create_hook(SERVICE, fresh, "python_code", RECORD, persistent=True))
        owner.publish(fresh, item_id="before")
        wait_until(lambda: items_run(host) == ["before"], what="the first item")
        owner.run(owner.client.plugin["xep_0060"].delete_node(SERVICE, fresh, timeout=15))
        wait_until(lambda: host.state(hook.id) == "node deleted", what="node deleted")
        owner.create_node(fresh, notify_delete=True)
        owner.publish(fresh, item_id="after-1")
        wait_until(lambda: items_run(host) == ["before", "after-1"], 30, "the new node's first item")
        wait_until(lambda: host.state(hook.id) == "active", what="active again")
        owner.publish(fresh, item_id="after-2")
        wait_until(lambda: items_run(host) == ["before", "after-1", "after-2"], what="the next live item")
        assert items_run(host) == ["before", "after-1", "after-2"]
    finally:
        host.close()


def test_a_subscription_removed_by_the_owner_shows_and_waits_for_the_users_word(debian_server, owner, fresh, tmp_path):
    host = Host(debian_server, str(tmp_path / "store"), ca_file=debian_server.ca_path)
    try:
        hook = host.run(host.manager.create_hook(SERVICE, fresh, "python_code", RECORD, persistent=True))
        owner.set_subscription(fresh, "alice@localhost", "none")
        if debian_server.kind == "prosody":
            # Prosody does not notify, and a short cut resumes the stream (XEP-0198):
            # the next login's check finds it.
            host.run(host.manager.disconnect())
            host.run(host.manager.connect("alice@localhost", PASSWORDS["alice"], host=debian_server.host,
                                          port=debian_server.port, ca_file=debian_server.ca_path))
        wait_until(lambda: host.state(hook.id) == "unsubscribed", 30, "unsubscribed")
        assert "alice@localhost" not in {j.split("/")[0] for j, s in owner.subscriptions(fresh).items() if s == "subscribed"}
        owner.publish(fresh, item_id="meanwhile")
        assert "subscribed again" in host.run(host.manager.resume(hook.id))[-1]
        wait_until(lambda: items_run(host) == ["meanwhile"], what="caught up after resume")
        owner.publish(fresh, item_id="live")
        wait_until(lambda: items_run(host) == ["meanwhile", "live"], what="live again")
        assert host.state(hook.id) == "active"
    finally:
        host.close()


@pytest.fixture(scope="module")
def ejabberd() -> Iterator[EjabberdServer]:
    """Prosody 0.12 has no ``authorize`` access model: pending subscriptions are ejabberd's."""
    with EjabberdServer(profile="debian") as srv:
        for user, password in PASSWORDS.items():
            srv.register(user, password)
        yield srv


def test_a_pending_subscription_shows_and_runs_once_approved(ejabberd, tmp_path):
    owner = NodeOwner("admin@localhost", PASSWORDS["admin"], ejabberd.host, ejabberd.port, ca_file=ejabberd.ca_path)
    host = Host(ejabberd, str(tmp_path / "store"), ca_file=ejabberd.ca_path)
    try:
        owner.create_node("guarded", access_model="authorize")
        hook = host.run(host.manager.create_hook(SERVICE, "guarded", "python_code", RECORD))
        assert any("approval" in note for note in hook.notes), hook.notes
        assert host.state(hook.id) == "pending"
        owner.approve("guarded", "alice@localhost")
        wait_until(lambda: host.state(hook.id) == "active", 30, "approved")
        owner.publish("guarded", item_id="approved")
        wait_until(lambda: items_run(host) == ["approved"], what="runs once approved")
    finally:
        host.close()
        owner.close()
