"""Functions as hooks (``python_function``, issue 22): the source taken from a cell,
refusals, the signature check, the store record, defining it again from its source;
and against the private Prosody: a function hook fires, is listed by name, replays,
fails into a dead letter that a retry runs again, and a persistent one runs from its
source in a new session (waiting for notebook names as a ``python_code`` hook does)."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import linecache
import textwrap
from typing import Any

import pytest

from pubsub_hook_magic import commands
from pubsub_hook_magic.commands.parsing import CommandError
from pubsub_hook_magic.commands.registry import parse_command
from pubsub_hook_magic.formatting import hooks_json, hooks_text
from pubsub_hook_magic.hooks import (
    Hook,
    HookError,
    HookLoadError,
    HookType,
    define_function,
    function_source,
    load_hook,
    missing_names,
)
from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.store import HookStore
from pubsub_hook_magic.table.render import static_cells

from .conftest import PASSWORDS
from .test_payloads import wait_until

SERVICE = "pubsub.localhost"
_cells = itertools.count(1)


def run_cell(source: str, namespace: dict[str, Any]) -> None:
    """Run ``source`` as IPython runs a cell: compiled under a file name whose lines
    linecache holds (so ``inspect.getsource`` finds the functions it defines)."""
    source = textwrap.dedent(source)
    filename = f"<ipython-input-{next(_cells)}-test>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)


def notebook(**names: Any) -> dict[str, Any]:
    return {"__name__": "__main__", **names}


def function_hook(func: Any = None, **fields: Any) -> Hook:
    fields.setdefault("arg", getattr(func, "__name__", "f"))
    return Hook(service="s", node="n", type=HookType.PYTHON_FUNCTION, function=func, **fields)


# ---------------------------------------------------------------------- source


def test_the_source_of_a_cell_function_drops_its_decorators_and_is_dedented():
    ns = notebook(hook=lambda *a, **k: (lambda f: f))
    run_cell(
        '''
        def noted(f):
            return f

        @hook("news",
              service="pubsub.example.org")
        @noted
        def on_news(host, client, item):
            """Say it."""
            seen.append(item["id"])  # a comment stays
        ''',
        ns,
    )
    assert function_source(ns["on_news"], ns) == (
        'def on_news(host, client, item):\n    """Say it."""\n    seen.append(item["id"])  # a comment stays\n'
    )


def test_an_async_function_keeps_async_def():
    ns = notebook()
    run_cell("async def on_news(host, client, item):\n    await host.x()\n", ns)
    assert function_source(ns["on_news"], ns).startswith("async def on_news(host, client, item):")


def _closure():
    x = 1

    def inner(host, client, item):
        return x

    return inner


def _nested():
    def inner(host, client, item):
        pass

    return inner


class _Handler:
    def on_news(self, host, client, item):
        pass

    @staticmethod
    def static(host, client, item):
        pass


def _wrapped(host, client, item):
    pass


@pytest.mark.parametrize(
    ("func", "why"),
    [
        (_closure(), "inner is a closure (it uses x from its enclosing function)"),
        (_nested(), "inner is defined inside _nested()"),
        (lambda host, client, item: None, "<lambda> is a lambda, which has no name to define it again by"),
        (_Handler().on_news, "on_news is a bound method (of a _Handler object)"),
        (_Handler.static, "static is defined in class _Handler"),
        (print, "print is a builtin, which has no Python source"),
        (functools.partial(_wrapped), "partial is a partial object, not a function defined with def"),
        (functools.wraps(_wrapped)(lambda h, c, i: None), "_wrapped is wrapped by another decorator"),
    ],
)
def test_functions_that_cannot_be_defined_again_from_their_source_are_refused(func, why):
    with pytest.raises(HookError) as error:
        function_source(func)
    message = str(error.value)
    assert message.startswith(f"persistent=True stores the function's source: {why}")
    assert message.endswith("; define it with def at the top level of a cell, or make a python_file hook")
    assert "\n" not in message


def test_a_function_of_another_module_is_pointed_to_a_python_hook():
    with pytest.raises(HookError) as error:
        function_source(_wrapped, notebook())
    assert str(error.value) == (
        f"persistent=True stores the function's source: _wrapped is defined in module {__name__}, whose names "
        f"its source would not find; make it a python hook ({__name__}:_wrapped), or define it in a cell"
    )


def test_a_function_without_a_source_is_refused():
    ns = notebook()
    exec(compile("def on_news(host, client, item):\n    pass\n", "<nowhere>", "exec"), ns)
    with pytest.raises(HookError, match=r"on_news has no source Python can find \(.*\); define it with def"):
        function_source(ns["on_news"], ns)


# ---------------------------------------------------------------------- loading


def test_a_live_function_loads_as_itself_and_its_signature_is_checked():
    def on_news(host, client, item):
        pass

    assert load_hook(function_hook(on_news), {}) is on_news

    def one(x):
        pass

    with pytest.raises(HookLoadError) as error:
        load_hook(function_hook(one, arg="one"), {})
    assert str(error.value) == (
        "one has the signature (x), but is called as hook(host, client, item): give it those three parameters"
    )
    with pytest.raises(HookLoadError, match="on_news is int, not a function"):
        load_hook(function_hook(3, arg="on_news"), {})


def test_a_stored_function_is_defined_in_the_notebook_namespace_but_its_name_stays_local():
    ns = notebook(on_news="the user's own variable", total=0)
    source = "def on_news(host, client, item):\n    global total\n    total += item\n    return helper(item)\n"
    hook = function_hook(None, arg="on_news", source=source, id="abc123")
    func = load_hook(hook, ns)
    ns["helper"] = lambda i: i * 10
    assert func(None, None, 4) == 40
    assert ns["total"] == 4  # it writes notebook names as a function of a cell does
    assert ns["on_news"] == "the user's own variable"  # never overwritten
    assert func.__globals__ is ns and func.__name__ == "on_news"


def test_a_stored_function_whose_definition_needs_a_notebook_name_is_defined_at_its_first_call():
    ns = notebook()
    source = "def on_news(host, client, item, db: Database = DB):\n    return db\n"
    assert missing_names(source, ns) == ["DB", "Database"]
    func = define_function(source, ns)  # no NameError now: the hook waits for DB first
    ns.update(DB="the db", Database=object)
    assert func(None, None, None) == "the db"
    with pytest.raises(HookLoadError, match=r"^on_news has the signature \(db=DB\), but is called as hook"):
        define_function("def on_news(db=DB):\n    pass\n", {})


def test_a_stored_function_that_does_not_load_says_why():
    with pytest.raises(HookLoadError, match="has no stored source: create the hook again"):
        load_hook(function_hook(None, arg="on_news"), {})
    with pytest.raises(HookLoadError, match="stored source does not compile: line 1"):
        define_function("def on_news(host, client, item)\n", {})
    with pytest.raises(HookLoadError, match="is not one def"):
        define_function("x = 1\n", {})
    with pytest.raises(HookLoadError, match=r"defining on_news from its stored source raised ZeroDivisionError"):
        define_function("def on_news(host, client, item, x=1 / 0):\n    pass\n", {})


def test_an_async_function_hook_runs_through_the_runner_like_any_hook():
    from pubsub_hook_magic.runner import HookRunner
    from pubsub_hook_magic.dedupe import ItemRef

    ran = []

    async def on_news(host, client, item):
        await asyncio.sleep(0)
        ran.append(item["id"])
        if item["id"] == "bad":
            raise ValueError("no")

    async def main():
        hook = function_hook(on_news, id="h1")
        hook.func = load_hook(hook, {})
        runner = HookRunner(hook, lambda: ("host", "client"), time_limit=5)
        runner.start()
        for i in ("a", "bad"):
            runner.submit({"id": i}, ItemRef(i), None, 0.0)
        while runner.count < 2:
            await asyncio.sleep(0.01)
        await runner.stop()
        return runner

    runner = asyncio.run(main())
    assert ran == ["a", "bad"]
    assert [t.outcome for t in runner.triggers] == ["ok", "error"]
    assert runner.triggers[1].error == "ValueError: no"
    assert "in on_news" in runner.triggers[1].traceback and "pubsub_hook_magic" not in runner.triggers[1].traceback


# ---------------------------------------------------------------------- the record


def test_the_record_keeps_the_source_and_origin_and_says_the_format_it_needs(tmp_path):
    hook = function_hook(print, arg="on_news", source="def on_news(h, c, i):\n    pass\n", origin="cell:x1",
                         persistent=True, id="abc123")
    record = hook.to_record()
    assert record["source"] == hook.source and record["origin"] == "cell:x1" and record["format"] == 2
    assert "function" not in record
    back = Hook.from_record(json.loads(json.dumps(record)))
    assert (back.type, back.arg, back.source, back.origin, back.function) == (
        HookType.PYTHON_FUNCTION, "on_news", hook.source, "cell:x1", None
    )
    # older records (no source, no origin) read as before, and write no new keys
    old = Hook.from_record({"id": "o1", "service": "s", "node": "n", "type": "python_code", "arg": "pass"})
    assert old.source is None and old.origin is None and old.code == "pass"
    assert not {"source", "origin", "format"} & set(old.to_record())
    # this version's store runs a python_function record (format 2), not a newer one
    store = HookStore("alice@localhost", tmp_path)
    store.add_hook(record)
    store.add_hook(record | {"id": "future", "format": 3})
    assert [r["id"] for r in store.hooks()] == ["abc123"]
    assert [r["id"] for r in store.newer_hooks()] == ["future"]


def test_code_is_what_reads_notebook_names():
    assert function_hook(print, source="def f(h, c, i):\n    x\n").code == "def f(h, c, i):\n    x\n"
    assert function_hook(print).code is None
    assert Hook(service="s", node="n", type=HookType.PYTHON, arg="m").code is None


def test_the_listing_names_the_function():
    hook = function_hook(print, arg="on_news", id="abc123")
    from pubsub_hook_magic.summary import summarize

    summary = summarize(hook)
    assert (summary["type"], summary["arg"]) == ("python_function", "on_news")
    assert json.loads(hooks_json([summary]))[0]["arg"] == "on_news"
    assert "python_function  on_news()" in hooks_text([summary])
    cells = dict((cls, html) for html, cls in static_cells(summary))
    assert ">function<" in cells["phm-type"] and ">on_news()<" in cells["phm-arg"]
    evil = summarize(function_hook(print, arg="<b>x'</b>", id="abc124"))
    arg_cell = dict((cls, html) for html, cls in static_cells(evil))["phm-arg"]
    assert "<b>" not in arg_cell and "&lt;b&gt;x&#x27;&lt;/b&gt;()" in arg_cell


# ---------------------------------------------------------------------- against Prosody


class Session:
    """A HookManager of alice on a loop thread, as a kernel drives it."""

    def __init__(self, server: Any, data_dir: str, namespace: dict[str, Any]):
        self.thread = LoopThread(name="test-function-hooks")
        self.namespace = namespace
        self.manager = HookManager(namespace, data_dir=data_dir, time_limit=10)
        self.warnings = self.run(
            self.manager.connect("alice@localhost", PASSWORDS["alice"], host=server.host, port=server.port, tls=False)
        )

    def run(self, coro: Any) -> Any:
        return self.thread.run(coro, 30)

    def summary(self, hook_id: str) -> dict[str, Any]:
        return next(s for s in self.thread.call(self.manager.list_hooks) if s["id"] == hook_id)

    def close(self) -> None:
        if not self.thread.loop.is_running():
            return
        try:
            self.run(self.manager.disconnect())
        finally:
            self.thread.stop()


@pytest.fixture
def session(server, tmp_path):
    sessions: list[Session] = []

    def start(namespace: dict[str, Any] | None = None) -> Session:
        s = Session(server, str(tmp_path / "store"), namespace if namespace is not None else notebook())
        sessions.append(s)
        return s

    yield start
    for s in sessions:
        s.close()


@pytest.mark.timeout(90)
def test_a_function_hook_fires_is_listed_replays_and_its_dead_letters_are_retried(session, publisher, node):
    ran: list[str] = []
    broken = {"yes": True}

    def on_news(host, client, item):
        if item["id"].startswith("bad") and broken["yes"]:
            raise RuntimeError(f"cannot take {item['id']}")
        ran.append(item["id"])

    s = session()
    hook = s.run(s.manager.create_hook(SERVICE, node, "python_function", func=on_news, retry=1, retry_delay=0))
    assert (hook.type, hook.arg, hook.function, hook.persistent) == ("python_function", "on_news", on_news, False)
    assert hook.source is None  # a nested function: fine as a temporary hook, no source taken
    publisher.publish(node, item_id="i1")
    wait_until(lambda: ran == ["i1"], what="the function ran for the published item")

    summary = s.summary(hook.id)
    assert (summary["type"], summary["arg"], summary["state"]) == ("python_function", "on_news", "active")
    assert f"{hook.id}  pubsub.localhost" in hooks_text([summary]) and "on_news()" in hooks_text([summary])

    (replayed,) = s.run(s.manager.replay(hook.id))
    assert (replayed.kind, replayed.outcome, replayed.item_id) == ("replay", "ok", "i1") and ran == ["i1", "i1"]
    tested = s.run(s.manager.test(hook.id, "<entry xmlns='urn:test'/>", item_id="t1"))
    assert tested.outcome == "ok" and ran[-1] == "t1"

    publisher.publish(node, item_id="bad1")  # fails, is tried once more, then a dead letter
    wait_until(lambda: s.summary(hook.id)["failed"] == 1, what="the failed item in the dead letters")
    (letter,) = s.thread.call(s.manager.failed, hook.id)
    assert (letter["item_id"], letter["attempts"], letter["error"]) == ("bad1", 2, "RuntimeError: cannot take bad1")
    assert "in on_news" in letter["traceback"]

    broken["yes"] = False
    (retried,) = s.run(s.manager.retry_failed(hook.id))
    assert (retried.kind, retried.outcome) == ("retry", "ok") and ran[-1] == "bad1"
    assert s.thread.call(s.manager.failed, hook.id) == []
    assert s.run(s.manager.delete_hooks(SERVICE, node, "python_function", "on_news")) == 1


@pytest.mark.timeout(60)
def test_create_refuses_what_a_function_hook_cannot_be(session, node):
    s = session()
    with pytest.raises(HookError, match=r"^a python_function hook needs the function: pass func=\.\.\.$"):
        s.run(s.manager.create_hook(SERVICE, node, "python_function", "on_news"))
    with pytest.raises(HookError, match=r"^func= is for python_function hooks, not python_code"):
        s.run(s.manager.create_hook(SERVICE, node, "python_code", "pass", func=print))
    with pytest.raises(HookError, match=r"^one has the signature \(x\), but is called as hook"):
        s.run(s.manager.create_hook(SERVICE, node, "python_function", func=lambda x: x, arg="one"))
    with pytest.raises(HookError, match=r"^persistent=True stores the function's source: <lambda> is a lambda"):
        s.run(s.manager.create_hook(SERVICE, node, "python_function", func=lambda h, c, i: 0, persistent=True))
    with pytest.raises(HookError, match=r"^a node is needed"):
        s.run(s.manager.create_hook(SERVICE, "", "python_function", func=print))
    assert s.thread.call(s.manager.list_hooks) == []


@pytest.mark.timeout(90)
def test_an_async_function_hook_fires(session, publisher, node):
    ran: list[str] = []

    async def on_news(host, client, item):
        await asyncio.sleep(0)
        ran.append(item["id"])

    s = session()
    s.run(s.manager.create_hook(SERVICE, node, "python_function", func=on_news))
    publisher.publish(node, item_id="a1")
    wait_until(lambda: ran == ["a1"], what="the async function ran")


CELL = """
import functools

def hook(node):  # stands for the @xmpp.hook decorator
    return lambda f: f

@hook("news")
def on_news(host, client, item):
    ran.append((item["id"], tag))
"""


@pytest.mark.timeout(120)
def test_a_persistent_function_hook_runs_from_its_source_in_a_new_session(session, publisher, node):
    ns = notebook(ran=[], tag="live")
    run_cell(CELL, ns)
    s = session(ns)
    hook = s.run(s.manager.create_hook(SERVICE, node, "python_function", "on_news", func=ns["on_news"],
                                       persistent=True, origin="cell:c1"))
    assert hook.source == 'def on_news(host, client, item):\n    ran.append((item["id"], tag))\n'
    (record,) = s.manager.store.hooks()
    assert (record["type"], record["arg"], record["source"], record["origin"]) == (
        "python_function", "on_news", hook.source, "cell:c1"
    )
    publisher.publish(node, item_id="p1")
    wait_until(lambda: ns["ran"] == [("p1", "live")], what="the live function ran")
    s.close()

    publisher.publish(node, item_id="p2")  # while away: caught up once from the source
    # A kernel restart: a new namespace where the notebook has not run the cells yet,
    # and a variable of the function's name that must stay the user's.
    fresh = notebook(on_news="the user's own")
    s2 = session(fresh)
    assert s2.warnings == []
    summary = s2.summary(hook.id)
    assert (summary["state"], summary["waiting_for"], summary["arg"]) == ("waiting", ["ran", "tag"], "on_news")
    fresh.update(ran=[], tag="restored")  # a cell defines them
    s2.thread.call(s2.manager.notebook_changed)
    wait_until(lambda: fresh["ran"] == [("p2", "restored")], what="the missed item, from the stored source")
    publisher.publish(node, item_id="p3")
    wait_until(lambda: fresh["ran"] == [("p2", "restored"), ("p3", "restored")], what="a live item")
    assert fresh["on_news"] == "the user's own"
    runner_func = s2.thread.call(lambda: s2.manager.runners[hook.id].hook.func)
    assert runner_func is not ns["on_news"] and runner_func.__globals__ is fresh
    (replayed,) = s2.run(s2.manager.replay(hook.id))
    assert replayed.outcome == "ok" and fresh["ran"][-1] == ("p3", "restored")


@pytest.mark.timeout(90)
def test_a_persistent_function_hook_in_a_strict_process_refuses_missing_names(session, server, node, tmp_path):
    ns = notebook(ran=[], tag="t")
    run_cell(CELL, ns)
    s = session(ns)
    hook = s.run(s.manager.create_hook(SERVICE, node, "python_function", func=ns["on_news"], persistent=True))
    s.close()
    strict = HookManager({}, data_dir=str(tmp_path / "store"), strict_names=True)
    thread = LoopThread(name="test-function-hooks-strict")
    try:
        connect = strict.connect("alice@localhost", PASSWORDS["alice"], host=server.host, port=server.port, tls=False)
        warnings = thread.run(connect, 30)
        (warning,) = warnings
        assert warning.startswith(f"persistent hook {hook.id}: python_function") and "the code uses ran, tag" in warning
    finally:
        thread.run(strict.disconnect(), 30)
        thread.stop()


# ---------------------------------------------------------------------- %hook create


class Context:
    """What the create handler gets from the magic: the manager, the notebook."""

    timeout, time_limit, list_format = 30.0, 60.0, "text"

    def __init__(self, s: Session):
        self.manager = s.manager
        self.user_ns = s.namespace
        self._s = s

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        return self._s.run(coro)

    def call(self, fn: Any, *args: Any, timeout: float | None = None) -> Any:
        return self._s.thread.call(fn, *args)

    def apply_config(self) -> None:
        pass


@pytest.mark.timeout(90)
def test_hook_create_takes_a_function_of_the_notebook(session, publisher, node, capsys):
    ns = notebook(ran=[])
    run_cell("def on_news(host, client, item):\n    ran.append(item['id'])\n    missing_helper()\n", ns)
    s = session(ns)
    ctx = Context(s)
    commands.dispatch(ctx, parse_command(f"create -n {node} -s {SERVICE} -t python_function on_news"))
    out = capsys.readouterr().out
    assert "python_function on_news() on node" in out
    assert "Note: the code uses missing_helper, not defined in the notebook yet." in out
    (summary,) = s.thread.call(s.manager.list_hooks)
    assert (summary["type"], summary["arg"]) == ("python_function", "on_news")
    publisher.publish(node, item_id="m1")
    wait_until(lambda: ns["ran"] == ["m1"], what="the notebook's function ran")
    for missing in ("nothing_here", "ran"):  # undefined, or not callable
        with pytest.raises(CommandError) as error:
            commands.dispatch(ctx, parse_command(f"create -n {node} -t python_function {missing}"))
        assert str(error.value) == f"no function {missing} in the notebook: define it in a cell first"


def test_pubsub_hook_create_refuses_function_hooks(capsys):
    from pubsub_hook_magic import cli

    assert cli.main(["create", "-p", "alice@localhost", "-n", "news", "-t", "python_function", "on_news"]) == 2
    err = capsys.readouterr().err
    assert "python_function hooks are made from a notebook or a script" in err and "python_file" in err
