"""The engine (engine.Engine) on a real loop, without a session: installs and
removals keep the one index consistent, bulk changes, snapshots, subscriptions."""

from __future__ import annotations

import asyncio

import pytest

from pubsub_hook_magic import events
from pubsub_hook_magic.engine import Engine, EngineConfig
from pubsub_hook_magic.hooks import Hook, HookType
from pubsub_hook_magic.states import HookState, SessionState
from pubsub_hook_magic.subscriptions import Subscriptions

S = "pubsub.example"


class FakeSession:
    """Only what removal may touch: whether it is connected, and unsubscribe."""

    def __init__(self, connected: bool):
        self.connected = connected
        self.unsubscribed: list[tuple[str, str]] = []

    async def unsubscribe(self, service: str, node: str) -> None:
        self.unsubscribed.append((service, node))

    async def set_pep_interest(self, node: str, interested: bool) -> None:
        raise AssertionError("no PEP node in these tests")


def make_engine(session=None, **config) -> Engine:
    subscriptions = Subscriptions(lambda: session, lambda: None, lambda key: False)
    return Engine(
        EngineConfig(**config),
        namespace={},
        call_args=lambda: (None, None),
        session=lambda: session,
        store=lambda: None,
        subscriptions=subscriptions,
        describe=lambda: (SessionState.DISCONNECTED, None),
    )


def make_hook(hook_id: str, node: str = "n", code: str = "pass", **kwargs) -> Hook:
    hook = Hook(service=S, node=node, type=HookType.PYTHON_CODE, arg=code, id=hook_id, **kwargs)
    events.prepare(hook)
    return hook


def install(engine: Engine, hook: Hook):
    hook.func = engine.load(hook)
    return engine.install(hook)


def run(scenario, session=None, **config):
    async def main():
        engine = make_engine(session, **config)
        try:
            return await scenario(engine)
        finally:
            await engine.stop_runners()

    return asyncio.run(main())


def consistent(engine: Engine) -> None:
    """The by-id and by-node views of the index agree."""
    index = engine.index
    by_node: dict[tuple[str, str], list[str]] = {}
    for runner in index.ordered():
        by_node.setdefault(runner.hook.key, []).append(runner.hook.id)
    assert index.nodes() == set(by_node)
    for key, ids in by_node.items():
        assert sorted(r.hook.id for r in index.for_node(*key)) == sorted(ids)
    assert sorted(index) == sorted(r.hook.id for r in index.ordered()) == sorted(h.id for h in index.hooks())
    assert len(index) == len(index.ordered())


def test_install_and_uninstall_keep_both_indexes_consistent():
    async def scenario(engine: Engine):
        a, b, c = make_hook("a"), make_hook("b"), make_hook("c", node="m")
        runners = {h.id: install(engine, h) for h in (a, b, c)}
        consistent(engine)
        assert engine.index["a"] is runners["a"] and engine.runner("b") is runners["b"]
        assert {r.hook.id for r in engine.index.for_node(S, "n")} == {"a", "b"}
        assert engine.index.nodes() == {(S, "n"), (S, "m")}
        await engine.uninstall(a)
        consistent(engine)
        assert "a" not in engine.index and [r.hook.id for r in engine.index.for_node(S, "n")] == ["b"]
        await engine.uninstall(b)
        consistent(engine)
        assert engine.index.nodes() == {(S, "m")} and engine.index.for_node(S, "n") == ()
        await engine.uninstall(b)  # not installed any more: nothing happens
        consistent(engine)
        assert runners["a"]._worker is None, "an uninstalled runner is stopped"

    run(scenario)


def test_a_second_hook_with_the_same_id_is_refused_and_the_index_is_unchanged():
    async def scenario(engine: Engine):
        first = install(engine, make_hook("a"))
        with pytest.raises(ValueError):
            install(engine, make_hook("a", node="m"))
        consistent(engine)
        assert engine.index["a"] is first and engine.index.nodes() == {(S, "n")}

    run(scenario)


def test_persistent_hooks_are_listed_first():
    async def scenario(engine: Engine):
        install(engine, make_hook("t1", created=1.0))
        install(engine, make_hook("p1", created=3.0, persistent=True))
        install(engine, make_hook("t0", created=0.5))
        assert list(engine.index) == ["p1", "t0", "t1"]
        assert [v.id for v in engine.snapshot().hooks] == ["p1", "t0", "t1"]

    run(scenario)


def test_uninstall_adds_the_hooks_figures_to_the_retired_totals():
    async def scenario(engine: Engine):
        hook = make_hook("a", code="raise ValueError('no')")
        runner = install(engine, hook)
        await runner.run_now(None, "test", "x")
        await engine.uninstall(hook)
        assert (engine.retired.triggers, engine.retired.errors) == (1, 1)

    run(scenario)


def test_every_install_and_uninstall_calls_on_installed():
    async def scenario(engine: Engine):
        calls = []
        engine.on_installed.append(lambda: calls.append(len(engine.index)))
        hook = make_hook("a")
        install(engine, hook)
        await engine.uninstall(hook)
        assert calls == [1, 0]

    run(scenario)


def test_bulk_calls_on_installed_once_at_the_end():
    async def scenario(engine: Engine):
        calls = []
        engine.on_installed.append(lambda: calls.append(len(engine.index)))
        with engine.bulk():
            for i in range(3):
                install(engine, make_hook(f"h{i}"))
            assert calls == [], "no claim in the middle of a bulk change"
            with engine.bulk():  # nested: still one at the outer end
                install(engine, make_hook("h3"))
            assert calls == []
        assert calls == [4]

    run(scenario)


def test_bulk_publishes_no_snapshot_in_the_middle():
    async def scenario(engine: Engine):
        published = []
        engine.add_change_listener(lambda: published.append(len(engine.snapshot().hooks)))
        with engine.bulk():
            install(engine, make_hook("a"))
            install(engine, make_hook("b"))
            assert published == [] and engine.snapshot().hooks == ()

    run(scenario)


def test_bulk_publishes_one_snapshot_at_the_end():
    async def scenario(engine: Engine):
        published = []
        engine.add_change_listener(lambda: published.append(len(engine.snapshot().hooks)))
        with engine.bulk():
            install(engine, make_hook("a"))
            install(engine, make_hook("b"))
        # Engine.bulk's docstring: "Many hooks installed at once: one snapshot and one
        # claim at the end." persistence.install awaits catch-up after its bulk, and only
        # then calls changed(): meanwhile the snapshot lists none of the stored hooks.
        assert [v.id for v in engine.snapshot().hooks] == ["a", "b"], (
            "Engine.bulk() must publish a snapshot at its end: the hooks installed in bulk "
            "are missing from it"
        )
        assert published == [2], "one change notification at the end of the bulk change"

    run(scenario)


def test_the_snapshot_follows_installs_and_states():
    async def scenario(engine: Engine):
        assert engine.snapshot().hooks == ()
        runner = install(engine, make_hook("a", persistent=True))
        view = engine.snapshot().hook("a")
        assert view is not None and view.state is HookState.ACTIVE and view.persistent
        assert (view.service, view.node, view.type) == (S, "n", "python_code")
        assert engine.snapshot().state is SessionState.DISCONNECTED
        runner.mode.stand_by("kernel, pid 7")
        assert engine.snapshot().hook("a").state is HookState.ACTIVE, "a snapshot is immutable"
        engine.changed()
        view = engine.snapshot().hook("a")
        assert view.state is HookState.STANDBY and view.owner == "kernel, pid 7"
        runner.mode.run_here()
        runner.mode.set_paused(True)
        engine.changed()
        assert engine.snapshot().hook("a").state is HookState.PAUSED
        await engine.uninstall(runner.hook)
        assert engine.snapshot().hooks == () and engine.snapshot().hook("a") is None

    run(scenario)


def test_a_broken_hook_is_installed_and_shown_broken():
    async def scenario(engine: Engine):
        hook = make_hook("a")
        hook.load_error = "it does not load"
        engine.install(hook)  # (func None)
        assert engine.snapshot().hook("a").state is HookState.BROKEN

    run(scenario)


def test_runners_of_an_engine_see_its_held_nodes():
    async def scenario(engine: Engine):
        runner = install(engine, make_hook("a"))
        engine.live.hold([(S, "n")])
        assert runner.held and runner.state is HookState.CATCHING_UP
        engine.live.release((S, "n"))
        assert not runner.held
        assert engine.snapshot().hook("a").state is HookState.ACTIVE, "release publishes a snapshot"

    run(scenario)


def test_an_unknown_hook_id_is_a_hook_error():
    from pubsub_hook_magic.hooks import HookError

    async def scenario(engine: Engine):
        with pytest.raises(HookError, match="no hook 'zz'"):
            engine.runner("zz")

    run(scenario)


@pytest.mark.parametrize("session", [None, FakeSession(connected=False)], ids=["no session", "disconnected"])
def test_removing_the_last_hook_of_a_node_when_not_connected_leaves_subscriptions(session):
    async def scenario(engine: Engine):
        engine.subscriptions.ours.add((S, "n"))
        calls = []
        original = engine.subscriptions.unlisten

        async def unlisten(service, node):
            calls.append((service, node))
            await original(service, node)

        engine.subscriptions.unlisten = unlisten  # (the instance's, for this test)
        hook = make_hook("a")
        install(engine, hook)
        await engine.remove(hook)
        assert calls == [] and engine.subscriptions.ours == {(S, "n")}
        assert "a" not in engine.index
        if session is not None:
            assert session.unsubscribed == []

    run(scenario, session=session)


def test_removing_the_last_hook_of_a_node_when_connected_unsubscribes_once():
    session = FakeSession(connected=True)

    async def scenario(engine: Engine):
        engine.subscriptions.ours.add((S, "n"))
        a, b = make_hook("a"), make_hook("b")
        install(engine, a)
        install(engine, b)
        engine.live.node_position[(S, "n")] = object()
        await engine.remove(a)
        assert session.unsubscribed == [], "another hook still uses the node"
        assert (S, "n") in engine.live.node_position
        await engine.remove(b)
        assert session.unsubscribed == [(S, "n")]
        assert engine.subscriptions.ours == set()
        assert (S, "n") not in engine.live.node_position, "the node is forgotten"

    run(scenario, session=session)


def test_a_node_subscribed_by_someone_else_is_not_unsubscribed():
    session = FakeSession(connected=True)

    async def scenario(engine: Engine):
        hook = make_hook("a")  # (the node is not in subscriptions.ours)
        install(engine, hook)
        await engine.remove(hook)
        assert session.unsubscribed == []

    run(scenario, session=session)


def test_strict_names_refuse_code_reading_undefined_names():
    from pubsub_hook_magic.hooks import HookLoadError

    async def scenario(engine: Engine):
        with pytest.raises(HookLoadError, match="undefined_thing"):
            engine.load(make_hook("a", code="print(undefined_thing)"))
        engine.namespace["defined"] = 1
        assert engine.load(make_hook("b", code="print(defined)")) is not None

    run(scenario, strict_names=True)


def test_install_wires_positions_and_restart_for_lossless_hooks():
    async def scenario(engine: Engine):
        lossless = install(engine, make_hook("p", persistent=True))
        temporary = install(engine, make_hook("t"))
        assert lossless.lossless and lossless.on_drained == engine.catchup.restart
        assert lossless.present is None, "no retractions followed: no present ids"
        assert temporary.on_drained is None and temporary.on_present_change is None
        tracker = install(engine, make_hook("r", persistent=True, events=("publish", "retract")))
        assert tracker.on_present_change == engine.positions.present_changed

    run(scenario)
