"""Completion hints (issue 24): short, unbreakable, distinct per hook."""

from __future__ import annotations

from pubsub_hook_magic.commands import complete_typed
from pubsub_hook_magic.commands.complete import HINT_WIDTH, hook_hints

NB = "\u00a0"  # a no-break space: a hint never wraps at a space


def hints(line, hooks=(), own_jid=None, accounts=()):
    return {c.text: c.type for c in complete_typed(line, list(hooks), own_jid, accounts)[1]}


def test_kinds_are_single_words():
    assert set(hints("%hook ").values()) == {"command"}
    assert set(hints("%hook node ").values()) == {"command"}
    assert set(hints("%hook create -").values()) == {"option"}
    assert set(hints("%hook create -t ").values()) == {"type"}
    assert set(hints("%hook list -O ").values()) == {"format"}
    assert set(hints("%hook node create --access-model ").values()) == {f"access{NB}model"}
    assert hints("%hook list -p ", accounts=["alice@localhost", "bob@localhost"]) == {
        "alice@localhost": f"default{NB}account",
        "bob@localhost": "account",
    }
    assert hints("%hook delete -s ", [("h1", "pubsub.localhost", "news", "python", "m")], "alice@localhost") == {
        "alice@localhost": f"your{NB}PEP",
        "pubsub.localhost": "service",
    }


def test_a_hook_id_hint_is_its_type_and_node():
    hooks = [
        ("a1", "pubsub.localhost", "news", "python_code", "print(item)"),
        ("a2", "pubsub.localhost", "blog", "python_file", "/home/alice/hooks/blog.py"),
        ("a3", "pubsub.localhost", "urn:xmpp:microblog:0", "python_code", "x"),
        ("a4", "pubsub.localhost", "alerts-eu", "python_function", "on_alert"),
    ]
    assert hints("%hook pause ", hooks) == {
        "a1": f"python_code{NB}·{NB}news",
        "a2": f"python_file{NB}·{NB}blog",
        "a3": f"code{NB}·{NB}urn:xm…blog:0",  # type shortened, the node's middle left out
        "a4": f"function{NB}·{NB}alerts\u2011eu",  # a no-break hyphen
    }


def test_hooks_that_would_share_a_hint_show_their_argument():
    hooks = [
        ("a1", "pubsub.localhost", "news", "python_code", "print(item)"),
        ("a2", "pubsub.localhost", "news", "python_code", "seen.append(item)"),
        ("a3", "pubsub.localhost", "news", "python_code", "print(item['id'])"),
        ("a4", "pubsub.localhost", "news", "python_file", "/tmp/news.py"),
    ]
    got = hook_hints(hooks)
    assert got[1] == "code · news · seen.…"
    assert got[3] == "python_file · news"
    assert got[0] != got[2] and got[0].startswith("code · news · …")  # from where they differ
    assert len(set(got)) == len(got)


def test_no_hint_is_long_or_breakable():
    hooks = [
        (f"h{i}", "pubsub.localhost", node, kind, f"arg {i}")
        for i, (node, kind) in enumerate(
            [("a-very-long-node-name-indeed", "python_function"), ("x", "python"), ("news", "python_code")]
        )
    ]
    lines = ["%hook ", "%hook create -", "%hook pause ", "%hook create -t ", "%hook node create --publish-model "]
    for line in lines:
        for text, hint in hints(line, hooks, "me@localhost", ["me@localhost"]).items():
            assert len(hint) <= HINT_WIDTH and " " not in hint and "-" not in hint, (line, text, hint)
