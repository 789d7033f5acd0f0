"""Accounts (several accounts in one process): which one a command is for, the default,
ids across accounts; ``-p`` on every sub-command; the renderings of several accounts."""

from __future__ import annotations

import pytest

from pubsub_hook_magic import commands, formatting
from pubsub_hook_magic.accounts import Accounts
from pubsub_hook_magic.commands import CommandError, parse_command
from pubsub_hook_magic.commands.parsing import parts
from pubsub_hook_magic.hooks import HookError


class Account:
    """Stands for a connected HookManager: what Accounts reads of one."""

    def __init__(self, jid: str, *hook_ids: str):
        self.jid = jid
        self.runners = dict.fromkeys(hook_ids)


def accounts_of(*managers: Account) -> Accounts:
    accounts = Accounts()
    for manager in managers:
        accounts.add(manager)  # type: ignore[arg-type]
    return accounts


ALICE, BOB, BOB_EXAMPLE = (
    Account("alice@localhost", "a1"),
    Account("bob@localhost", "b1", "b2"),
    Account("bob@example.org"),
)


def test_resolve_by_jid_local_part_or_default():
    accounts = accounts_of(ALICE, BOB)
    assert accounts.resolve() is ALICE  # the first connected
    assert accounts.resolve("bob@localhost") is BOB
    assert accounts.resolve("Bob@Localhost") is BOB
    assert accounts.resolve("bob") is BOB
    assert accounts.resolve(" alice ") is ALICE
    assert list(accounts) == ["alice@localhost", "bob@localhost"] and len(accounts) == 2


@pytest.mark.parametrize(
    "profile, message",
    [
        ("carol", "-p carol: no such account connected (connected: alice@localhost, bob@localhost, bob@example.org)"),
        ("bob", "-p bob: several accounts are bob (bob@localhost, bob@example.org): give the whole JID"),
    ],
)
def test_resolve_says_how_to_choose(profile, message):
    accounts = accounts_of(ALICE, BOB, BOB_EXAMPLE)
    with pytest.raises(HookError) as error:
        accounts.resolve(profile)
    assert str(error.value) == message
    assert accounts.resolve("bob@example.org") is BOB_EXAMPLE


def test_no_account_says_to_connect():
    accounts = Accounts()
    with pytest.raises(HookError, match=r"not connected to an XMPP server: connect first \(%hook connect JID\)"):
        accounts.resolve("alice")
    assert accounts.default is None and accounts.managers() == []
    assert accounts.choose() is None and accounts.choose(hook_id="a1") is None


def test_the_default_set_preferred_and_removed():
    accounts = accounts_of(ALICE, BOB)
    assert accounts.default == "alice@localhost" and accounts.managers() == [ALICE, BOB]
    accounts.set_default("bob")
    assert accounts.default == "bob@localhost" and accounts.managers() == [BOB, ALICE]
    accounts.prefer("alice")  # the latest word wins
    assert accounts.default == "alice@localhost" and accounts.preferred == "alice"
    accounts.prefer("carol@localhost")  # not connected: the first one meanwhile
    assert accounts.default == "alice@localhost"
    accounts.add(Account("carol@localhost"))  # type: ignore[arg-type]
    assert accounts.default == "carol@localhost" and accounts.managers()[0].jid == "carol@localhost"
    accounts.prefer("")
    accounts.set_default("bob@localhost")
    assert accounts.remove("bob@localhost") is BOB
    assert accounts.default == "alice@localhost"  # the default left: the first again
    assert accounts.remove("bob@localhost") is None


def test_hook_ids_find_their_account():
    accounts = accounts_of(ALICE, BOB)
    assert accounts.hook_id_taken("b2") and not accounts.hook_id_taken("zz")
    assert accounts.find_hook("b1") is BOB and accounts.find_hook("zz") is None
    assert accounts.choose(hook_id="b1") is BOB  # the hook's own account
    assert accounts.choose(hook_id="zz") is ALICE  # unknown: the default (whose error says so)
    assert accounts.choose("alice", hook_id="b1") is ALICE  # -p wins
    with pytest.raises(HookError, match="no such account"):
        accounts.choose("carol", hook_id="b1")


def test_listeners_hear_changes():
    accounts = accounts_of(ALICE)
    heard = []

    def listener():
        heard.append(accounts.default)

    accounts.add_change_listener(listener)
    accounts.add(BOB)  # type: ignore[arg-type]
    accounts.set_default("bob")
    accounts.remove("bob@localhost")
    accounts.remove_change_listener(listener)
    accounts.add(BOB)  # type: ignore[arg-type]
    assert heard == ["alice@localhost", "bob@localhost", "alice@localhost"]


def test_a_manager_joins_once_connected():
    with pytest.raises(ValueError, match="once connected"):
        Accounts().add(Account(None))  # type: ignore[arg-type]


# ---------------------------------------------------------------------- -p everywhere


def leaf_parsers():
    for name, sub in parts(commands.parser()).subparsers.items():
        nested = parts(sub).subparsers
        if nested:
            yield from ((f"{name} {child}", p) for child, p in nested.items())
        else:
            yield name, sub


def test_every_sub_command_takes_a_profile():
    for name, sub in leaf_parsers():
        options = parts(sub).options
        assert options.get("-p") is options.get("--profile") is not None, name
        assert "ACCOUNT" in sub.format_help(), name


@pytest.mark.parametrize(
    "line, profile",
    [
        ("list -p bob", "bob"),
        ("status --profile bob@localhost", "bob@localhost"),
        ("pause ab12 -p bob", "bob"),
        ("create -p bob -n news -t python_code print(item['id'])", "bob"),
        ("create -n news -t python_file hook.py -p bob", "bob"),
        ("publish -p bob -n news <x xmlns='urn:x'/>", "bob"),
        ("test ab12 -p bob <x xmlns='urn:x'/>", "bob"),
        ("node create -p bob -n news", "bob"),
        ("disconnect -p bob", "bob"),
        ("connect bob@localhost --default", None),
        ("list", None),
    ],
)
def test_profile_is_parsed(line, profile):
    assert parse_command(line).profile == profile


def test_python_code_after_the_profile_stays_verbatim():
    args = parse_command("create -p bob -n news -t python_code print('-p', item['id'])")
    assert (args.profile, args.arg) == ("bob", "print('-p', item['id'])")


def test_profile_completes_the_accounts():
    accounts = ["alice@localhost", "bob@localhost"]
    fragment, candidates = commands.complete_typed("%hook list -p ", [], "alice@localhost", accounts)
    assert fragment == "" and [(c.text, c.type) for c in candidates] == [
        ("alice@localhost", "default\u00a0account"),
        ("bob@localhost", "account"),
    ]
    assert commands.complete("%hook pause -p b", [], None, accounts) == ["bob@localhost"]
    assert "--profile" in commands.complete("%hook status --", [])


def test_disconnect_refuses_a_profile_and_all():
    class Context:
        manager = None

    with pytest.raises(CommandError, match="give -p ACCOUNT or --all, not both"):
        commands.dispatch(Context(), parse_command("disconnect -p bob --all"))  # type: ignore[arg-type]


# ---------------------------------------------------------------------- renderings


def summary(hook_id, account):
    return {
        "id": hook_id, "account": account, "service": "pubsub.localhost", "node": "news", "type": "python_code",
        "arg": "pass", "persistent": False, "state": "active", "triggers": 0, "errors": 0, "last_trigger": None,
    }


def test_hooks_text_shows_the_account_only_when_asked():
    rows = [summary("a1", "alice@localhost"), summary("b1", "bob@localhost")]
    plain = formatting.hooks_text(rows)
    assert plain.splitlines()[0].startswith("id ") and "alice@localhost" not in plain
    several = formatting.hooks_text(rows, accounts=True).splitlines()
    assert several[0].split()[:3] == ["account", "id", "service"]
    assert several[1].split()[:2] == ["alice@localhost", "a1"] and several[2].split()[:2] == ["bob@localhost", "b1"]


def test_status_of_several_accounts_marks_the_default():
    def status(jid):
        return {
            "state": "connected", "jid": jid, "server": "127.0.0.1:5222", "tls": True, "connected_since": None,
            "hooks": 1, "persistent": 0, "nodes": 1, "events_received": 0, "triggers": 0, "errors": 0,
            "store": None,
        }

    text = formatting.accounts_status_text([status("bob@localhost"), status("alice@localhost")], "bob@localhost")
    first, second = text.split("\n\n")
    assert first.splitlines()[0] == "connected as bob@localhost via 127.0.0.1:5222 (default)"
    assert second.splitlines()[0] == "connected as alice@localhost via 127.0.0.1:5222"
    assert first.splitlines()[1:] == formatting.status_text(status("bob@localhost")).splitlines()[1:]
