"""The registry: exact node matching and Libervia's delete selection, without its bugs."""

from dataclasses import dataclass

from pubsub_hook_magic.hooks import Hook, HookType
from pubsub_hook_magic.registry import HookIndex as HookRegistry


@dataclass(frozen=True)
class Entry:
    """What the index holds (a runner, in the engine)."""

    hook: Hook


def hook(id, node="n", kind="python_code", arg="x", persistent=False, service="pubsub.localhost"):
    return Entry(Hook(service=service, node=node, type=HookType(kind), arg=arg, persistent=persistent, id=id))


def test_select_everything_on_a_node_removes_every_match():
    reg = HookRegistry()
    for h in (hook("a"), hook("b"), hook("c", arg="y"), hook("d", node="other")):
        reg.add(h)
    doomed = reg.select("pubsub.localhost", "n")
    assert {h.id for h in doomed} == {"a", "b", "c"}  # Libervia deleted one of two
    for h in doomed:
        reg.remove(h.id)
    assert list(reg) == ["d"]


def test_nodes_match_exactly_not_by_prefix():
    reg = HookRegistry()
    reg.add(hook("a", node="pfx"))
    reg.add(hook("b", node="pfx2"))
    assert [e.hook.id for e in reg.for_node("pubsub.localhost", "pfx2")] == ["b"]


def test_deleting_the_last_persistent_hook_keeps_temporary_ones_listening():
    reg = HookRegistry()
    reg.add(hook("p", persistent=True))
    reg.add(hook("t"))
    for h in reg.select("pubsub.localhost", "n", HookType.PYTHON_CODE, "x")[:1]:
        reg.remove(h.id)
    assert ("pubsub.localhost", "n") in reg.nodes()
    assert [e.hook.id for e in reg.for_node("pubsub.localhost", "n")] == ["t"]


def test_select_narrows_by_type_and_absolute_file_arg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reg = HookRegistry()
    reg.add(hook("f", kind="python_file", arg=str(tmp_path / "h.py")))
    reg.add(hook("c", kind="python_code", arg="h.py"))
    assert [h.id for h in reg.select("pubsub.localhost", "n", HookType.PYTHON_FILE, "h.py")] == ["f"]
    assert [h.id for h in reg.select("pubsub.localhost", "n", None, "h.py")] == ["f", "c"]
    assert reg.select("pubsub.localhost", "n", HookType.PYTHON, None) == []


def test_listing_puts_persistent_first():
    reg = HookRegistry()
    reg.add(hook("t1"))
    reg.add(hook("p1", persistent=True))
    assert list(reg) == ["p1", "t1"]
    assert [h.id for h in reg.hooks()] == ["p1", "t1"]
