"""Several accounts in one kernel (Libervia's profiles): alice and bob on one Prosody,
each with its own session and hooks, on the one loop thread; ``-p`` picks one."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from .conftest import connect_line

pytestmark = pytest.mark.kernel

SERVICE = "pubsub.localhost"
_peps = itertools.count(1)


def hooks_json(kernel, line="%hook list -O json"):
    return json.loads(kernel.run(line).stdout)


def two_accounts(kernel, server):
    out = kernel.run(connect_line(server, "alice")).stdout
    assert "Connected as alice@localhost" in out, out
    out = kernel.run(connect_line(server, "bob")).stdout
    assert "Connected as bob@localhost" in out, out
    assert "commands without -p are for alice@localhost" in out, out
    kernel.run("seen = []")


def recording_hook(kernel, profile, node, service=None):
    """A hook of ``profile`` that records (its host's account, its client's, item id);
    returns its id."""
    where = f"-s {service} " if service else ""
    out = kernel.run(
        f"%hook create -p {profile} {where}-n {node} -t python_code "
        "seen.append((host.jid, client.boundjid.bare, item['id']))"
    ).stdout
    match = re.search(r"Created hook (\w+):", out)
    assert match is not None, out
    return match.group(1)


def ids_of(kernel):
    return {h["id"]: h for h in hooks_json(kernel)}


def test_each_account_runs_its_own_hooks(kernel, server, publisher):
    two_accounts(kernel, server)
    a_node, b_node, shared = (f"acc{next(_peps)}" for _ in range(3))
    for name in (a_node, b_node, shared):
        publisher.create_node(name)
    pep = f"urn:test:accounts:{next(_peps)}"
    recording_hook(kernel, "alice", a_node, SERVICE)  # local part
    recording_hook(kernel, "bob@localhost", b_node, SERVICE)  # bare JID
    recording_hook(kernel, "alice", shared, SERVICE)
    recording_hook(kernel, "bob", shared, SERVICE)
    recording_hook(kernel, "alice", pep)  # alice's own PEP
    recording_hook(kernel, "bob", pep)  # bob's own PEP (same node name, another service)
    hooks = hooks_json(kernel)
    assert len({h["id"] for h in hooks}) == 6  # ids unique across the accounts
    where = {(h["account"], h["service"], h["node"]) for h in hooks}
    assert where == {
        ("alice@localhost", SERVICE, a_node),
        ("bob@localhost", SERVICE, b_node),
        ("alice@localhost", SERVICE, shared),
        ("bob@localhost", SERVICE, shared),
        ("alice@localhost", "alice@localhost", pep),
        ("bob@localhost", "bob@localhost", pep),
    }

    publisher.publish(a_node, item_id="a1")
    publisher.publish(b_node, item_id="b1")
    publisher.publish(shared, item_id="s1")
    kernel.run(f"%hook publish -p alice -n {pep} -i pa1 <x xmlns='urn:x'/>")
    kernel.run(f"%hook publish -p bob -n {pep} -i pb1 <x xmlns='urn:x'/>")
    expected = {
        ("alice@localhost", "alice@localhost", "a1"),
        ("bob@localhost", "bob@localhost", "b1"),
        ("alice@localhost", "alice@localhost", "s1"),
        ("bob@localhost", "bob@localhost", "s1"),
        ("alice@localhost", "alice@localhost", "pa1"),
        ("bob@localhost", "bob@localhost", "pb1"),
    }
    seen = kernel.wait_for("seen", lambda v: len(v) >= len(expected))
    assert sorted(seen) == sorted(expected)  # each once, by its own account's host and client

    text = kernel.run("%hook list -O text").stdout
    assert text.splitlines()[0].split()[:2] == ["account", "id"], text
    narrowed = hooks_json(kernel, "%hook list -p bob -O json")
    assert {h["account"] for h in narrowed} == {"bob@localhost"} and len(narrowed) == 3
    assert "account" not in kernel.run("%hook list -p bob -O text").stdout.splitlines()[0]

    status = kernel.run("%hook status").stdout
    blocks = status.split("\n\n")
    assert len(blocks) == 2, status
    assert blocks[0].startswith("connected as alice@localhost") and "(default)" in blocks[0].splitlines()[0]
    assert blocks[1].startswith("connected as bob@localhost") and "(default)" not in blocks[1]
    assert kernel.run("%hook status -p bob").stdout.startswith("connected as bob@localhost")

    # A hook id finds its own account: no -p needed.
    [bob_shared] = [h["id"] for h in hooks if h["account"] == "bob@localhost" and h["node"] == shared]
    assert kernel.run(f"%hook pause {bob_shared}").stdout.strip() == f"Paused hook {bob_shared}."
    assert ids_of(kernel)[bob_shared]["state"] == "paused"
    publisher.publish(shared, item_id="s2")
    kernel.wait_for("[s for s in seen if s[2] == 's2']", lambda v: v == [("alice@localhost", "alice@localhost", "s2")])
    kernel.run(f"%hook resume {bob_shared}")
    assert ids_of(kernel)[bob_shared]["state"] != "paused"

    # Commands that cannot tell the account say how to choose.
    error = kernel.usage_error(f"%hook publish -p carol -n {pep} <x xmlns='urn:x'/>")
    assert "-p carol: no such account connected (connected: alice@localhost, bob@localhost)" in error
    # Connecting one that is connected still says so; --default makes it the default.
    error = kernel.usage_error(connect_line(server, "bob"))
    assert "already connected as bob@localhost" in error
    out = kernel.run(connect_line(server, "bob") + " --default").stdout
    assert "now the default account" in out, out
    status = kernel.run("%hook status").stdout
    assert status.startswith("connected as bob@localhost") and "(default)" in status.splitlines()[0]
    kernel.run(f"%hook publish -n {pep} -i pb2 <x xmlns='urn:x'/>")  # no -p: bob's PEP now
    kernel.wait_for("[s for s in seen if s[2] == 'pb2']", lambda v: v == [("bob@localhost", "bob@localhost", "pb2")])
    kernel.run("%config HookMagics.default_profile = 'alice'")
    assert kernel.run("%hook status").stdout.startswith("connected as alice@localhost")


def test_a_hook_publishes_as_another_account(kernel, server, publisher, node):
    two_accounts(kernel, server)
    pep = f"urn:test:relay:{next(_peps)}"
    recording_hook(kernel, "bob", pep)
    kernel.run(
        f"%%hook create -p alice -s {SERVICE} -n {node}\n"
        "bot = host.accounts['bob@localhost']\n"
        f"await bot.publish(None, {pep!r}, \"<relayed xmlns='urn:x'/>\", 'r-' + item['id'])\n"
        "seen.append((host.jid, sorted(host.accounts), item['id']))\n"
    )
    publisher.publish(node, item_id="i1")
    seen = kernel.wait_for("seen", lambda v: len(v) >= 2)
    assert sorted(seen, key=str) == sorted(
        [("alice@localhost", ["alice@localhost", "bob@localhost"], "i1"), ("bob@localhost", "bob@localhost", "r-i1")],
        key=str,
    )


def test_one_account_failing_or_leaving_leaves_the_others_running(kernel, server, publisher):
    two_accounts(kernel, server)
    a_node, b_node = f"acc{next(_peps)}", f"acc{next(_peps)}"
    for name in (a_node, b_node):
        publisher.create_node(name)
    alice_hook = recording_hook(kernel, "alice", a_node, SERVICE)
    recording_hook(kernel, "bob", b_node, SERVICE)

    kernel.run("import os; os.environ['WRONG_PW'] = 'not-the-password'")
    error = kernel.usage_error(
        f"%hook connect admin@localhost --host {server.host} --port {server.port} --password-env WRONG_PW --no-tls"
    )
    assert "admin@localhost" in error or "auth" in error.lower(), error
    publisher.publish(a_node, item_id="a1")
    publisher.publish(b_node, item_id="b1")
    kernel.wait_for("sorted(s[2] for s in seen)", lambda v: v == ["a1", "b1"])
    status = kernel.run("%hook status").stdout
    assert status.count("connected as ") == 2 and "admin" not in status, status

    # %reload_ext carries every account and its hooks.
    kernel.run("%reload_ext pubsub_hook_magic")
    assert {h["account"] for h in hooks_json(kernel)} == {"alice@localhost", "bob@localhost"}
    publisher.publish(a_node, item_id="a2")
    publisher.publish(b_node, item_id="b2")
    kernel.wait_for("sorted(s[2] for s in seen)", lambda v: v == ["a1", "a2", "b1", "b2"])

    out = kernel.run("%hook disconnect -p bob").stdout
    assert out.strip() == "Disconnected bob@localhost.", out
    hooks = hooks_json(kernel)
    assert [(h["account"], h["id"]) for h in hooks] == [("alice@localhost", alice_hook)]
    assert "account" not in kernel.run("%hook list -O text").stdout.splitlines()[0]  # one account again
    publisher.publish(a_node, item_id="a3")
    publisher.publish(b_node, item_id="b3")
    kernel.wait_for("sorted(s[2] for s in seen)", lambda v: "a3" in v)
    assert "b3" not in kernel.eval("[s[2] for s in seen]")
    assert "-p bob: no such account connected" in kernel.usage_error("%hook status -p bob")
    out = kernel.run("%hook disconnect --all").stdout
    assert out.strip() == "Disconnected alice@localhost.", out
    assert kernel.run("%hook status").stdout.strip() == "Not connected. Use %hook connect JID."
    # The idle manager serves the next account, as with one account.
    out = kernel.run(connect_line(server, "bob")).stdout
    assert "Connected as bob@localhost" in out and "Accounts:" not in out, out


def test_a_second_server_killed_under_one_account_leaves_the_others_running(kernel, server, publisher, node):
    """alice on the test Prosody, carol on a second one with another domain; that server
    is SIGKILLed and comes back: carol's hooks run what was published, each item once,
    and alice's never pause."""
    import time

    from pubsub_hook_magic.testing.server import TestServer

    from .conftest import PASSWORDS
    from .support import Publisher

    with TestServer(domain="example.org", storage="file") as far:
        far.register("admin", PASSWORDS["admin"])
        far.register("carol", PASSWORDS["bob"])
        far_pub = Publisher("admin@example.org/pub", PASSWORDS["admin"], far.host, far.port)
        far_pub.create_node("far-news", service=far.pubsub)
        kernel.run(f"import os; os.environ['CAROL_PW'] = {PASSWORDS['bob']!r}; seen = []")
        kernel.run(connect_line(server, "alice"))
        out = kernel.run(
            f"%hook connect carol@example.org --host {far.host} --port {far.port} --password-env CAROL_PW --no-tls"
        ).stdout
        assert "Connected as carol@example.org" in out, out
        recording_hook(kernel, "alice", node, SERVICE)
        recording_hook(kernel, "carol", "far-news", far.pubsub)
        far_pub.publish("far-news", item_id="far-0", service=far.pubsub)
        kernel.wait_for("seen", lambda v: ("carol@example.org", "carol@example.org", "far-0") in v)
        far_pub.close()

        far.kill()  # SIGKILL: carol's session is lost, and retries
        publisher.publish(node, item_id="near-1")
        kernel.wait_for("seen", lambda v: ("alice@localhost", "alice@localhost", "near-1") in v, 10)
        # alice's hook ran while carol's server was still down: it never waits for it
        carol = json.loads(kernel.run("%hook list -p carol -O json").stdout)
        assert not far.running and carol and carol[0]["account"] == "carol@example.org"
        assert "carol@example.org" in kernel.run("%hook status -p carol").stdout
        far.restart()
        far_pub = Publisher("admin@example.org/pub2", PASSWORDS["admin"], far.host, far.port)
        try:
            for n in (1, 2, 3):
                far_pub.publish("far-news", item_id=f"far-{n}", service=far.pubsub)
            wanted = {f"far-{n}" for n in range(4)}
            kernel.wait_for(
                "seen", lambda v: wanted <= {i for jid, _c, i in v if jid == "carol@example.org"}, 60
            )
            time.sleep(0.5)
            carol = [i for jid, _c, i in kernel.eval("seen") if jid == "carol@example.org"]
            assert sorted(carol) == sorted(wanted), carol  # each once
            status = kernel.run("%hook status").stdout
            assert "carol@example.org" in status and "alice@localhost" in status, status
        finally:
            far_pub.close()
            kernel.run("%hook disconnect --all")
