"""One doorway between threads (issue 11), under load.

The kernel's thread (here the test's main thread, in a fresh InteractiveShell) lists
the hooks, completes ``%hook`` lines, shows tables and clicks their buttons in a tight
loop, while another thread creates, pauses and deletes hooks on the session's loop and
a publisher feeds their nodes. Nothing may raise on any thread, the loop must log no
error, and the kernel's thread must never touch the loop's runners: the manager's
``runners`` dict is swapped for one that records every access from another thread, and
the loop runs in asyncio's debug mode, where a loop method called from another thread
(``call_later`` instead of ``call_soon_threadsafe``) raises.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
import threading
import time
import traceback
from types import SimpleNamespace
from typing import Any

from IPython.core.interactiveshell import InteractiveShell

from .conftest import PASSWORDS
from .test_magics_shell import shell  # noqa: F401 - a fresh InteractiveShell, extension loaded

DURATION = 6.0  # seconds of churn
NODES = 4
MOST_HOOKS = 12  # the churning thread keeps between a few and this many hooks


class LoopOnlyDict(dict):
    """A dict that records who reads or changes it from a thread other than ``owner``."""

    def __init__(self, data: dict, owner: threading.Thread):
        super().__init__(data)
        self.owner = owner
        self.strangers: list[str] = []

    def _check(self) -> None:
        if threading.current_thread() is not self.owner:
            stack = "".join(traceback.format_stack(limit=6)[:-2])
            self.strangers.append(f"{threading.current_thread().name}:\n{stack}")


def _guarded(name: str) -> Any:
    plain = getattr(dict, name)

    def method(self: LoopOnlyDict, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return plain(self, *args, **kwargs)

    method.__name__ = name
    return method


for _name in (
    "__getitem__", "__setitem__", "__delitem__", "__contains__", "__iter__", "__len__",
    "get", "pop", "values", "items", "keys", "setdefault", "clear", "update",
):
    setattr(LoopOnlyDict, _name, _guarded(_name))


def quiet(shell: InteractiveShell, line: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        shell.run_line_magic("hook", line)
    return out.getvalue()


def test_kernel_thread_reads_while_the_loop_changes_hooks(shell, server, publisher, caplog, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("PUBSUB_HOOK_DATA_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("ALICE_PW", PASSWORDS["alice"])
    nodes = [f"threads{i}-{time.monotonic_ns()}" for i in range(NODES)]
    for node in nodes:
        publisher.create_node(node)
    magics = shell._pubsub_hook_magics
    manager, loop_thread = magics.manager, magics.loop_thread
    quiet(
        shell,
        f"connect alice@localhost --host {server.host} --port {server.port} "
        "--password-env ALICE_PW --no-tls",
    )
    # %hook list shows the widget table, as in a notebook (widgets need no front end to
    # be built; only displaying them does).
    monkeypatch.setattr(shell, "kernel", object(), raising=False)  # a front end: tables are shown
    monkeypatch.setattr(magics, "table_refresh", 0.05)

    loop_errors: list[dict[str, Any]] = []
    guard: dict[str, LoopOnlyDict] = {}

    async def arm() -> None:
        loop = loop_thread.loop
        loop.set_debug(True)  # a loop method called from another thread raises
        loop.slow_callback_duration = 60.0  # no "Executing ... took" noise on 2 cores
        loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
        # The one index of installed hooks: its dicts may be read on the loop only
        # (its ordered tuples are immutable, for any thread).
        index = manager.engine.index
        runners = LoopOnlyDict(index._by_id, loop_thread.thread)
        by_node = LoopOnlyDict(index._by_node, loop_thread.thread)
        index._by_id, index._by_node = runners, by_node
        assert manager.runners is index and manager.engine.catchup.index is index
        guard["runners"] = runners
        guard["by_node"] = by_node

    loop_thread.run(arm(), 10)
    caplog.set_level(logging.WARNING)

    stop = threading.Event()
    thread_errors: list[str] = []
    left: set[str] = set()  # the hooks the churning thread has not deleted
    created = [0]
    published = [0]

    def churn() -> None:
        rng = random.Random(11)
        try:
            while not stop.is_set():
                if len(left) < MOST_HOOKS and (len(left) < 3 or rng.random() < 0.6):
                    hook = loop_thread.run(
                        manager.create_hook("pubsub.localhost", rng.choice(nodes), "python_code", "pass"), 30
                    )
                    left.add(hook.id)
                    created[0] += 1
                elif rng.random() < 0.3:
                    loop_thread.run(manager.set_paused(rng.choice(sorted(left)), rng.random() < 0.5), 30)
                else:
                    victim = rng.choice(sorted(left))
                    assert loop_thread.run(manager.delete_hooks(hook_id=victim), 30) == 1
                    left.discard(victim)
        except BaseException:  # noqa: BLE001 - reported by the main thread
            thread_errors.append(f"churn: {traceback.format_exc()}")

    def publish() -> None:
        n = 0
        try:
            while not stop.is_set():
                publisher.publish(nodes[n % NODES], f"item {n}", item_id=f"i{n}")
                n += 1
                published[0] = n
        except BaseException:  # noqa: BLE001
            thread_errors.append(f"publisher: {traceback.format_exc()}")

    workers = [threading.Thread(target=churn, name="churn"), threading.Thread(target=publish, name="publish")]
    for worker in workers:
        worker.start()

    completions = [
        "%hook delete --id ",
        "%hook pause ",
        "%hook resume ",
        "%hook delete -s ",
        "%hook delete -s pubsub.localhost -n ",
    ]
    rounds = 0
    main_errors: list[str] = []
    deadline = time.monotonic() + DURATION
    try:
        while time.monotonic() < deadline and not thread_errors:
            rounds += 1
            try:
                text = quiet(shell, "list -O text")
                assert text.startswith(("id ", "No hook found."))
                for summary in json.loads(quiet(shell, "list -O json")):
                    assert summary["state"] in ("active", "paused", "catching up"), summary
                for _ in range(20):  # cheap reads: many of them between two round trips
                    for line in completions:
                        magics.complete(SimpleNamespace(text_until_cursor=line))
                if rounds % 10 == 1:
                    # A new live table, as in a notebook (building widgets is slow: the
                    # tables shown meanwhile refresh on the loop every 50 ms).
                    quiet(shell, "list")
                hub = magics._tables
                if rounds % 4 == 0:  # click what the kernel's thread clicks
                    with hub.lock:
                        table = hub.tables[-1] if hub.tables else None
                        rows = list(table.rows.values()) if table is not None else []
                    if rows:
                        row = rows[rounds % len(rows)]
                        row.pause.click()
                        row.details.click()
                        table.replay_button.click()
            except Exception:  # noqa: BLE001
                main_errors.append(traceback.format_exc())
                break
    finally:
        stop.set()
        for worker in workers:
            worker.join(60)

    assert not main_errors, main_errors[0]
    assert not thread_errors, thread_errors[0]
    assert not any(w.is_alive() for w in workers)

    # The final state is the one the churning thread left, wherever it is read.
    time.sleep(0.3)  # let the tables' coalesced refresh run
    ids = [h["id"] for h in json.loads(quiet(shell, "list -O json"))]
    assert set(ids) == left and len(ids) == len(left)
    assert [h.id for h in manager.snapshot().hooks] == ids
    assert set(magics.complete(SimpleNamespace(text_until_cursor="%hook pause "))) == left

    async def table_rows() -> list[list[str]]:
        return [list(t.rows) for t in magics._tables.tables]

    assert all(rows == ids for rows in loop_thread.run(table_rows(), 10))

    for guarded in guard.values():
        assert not guarded.strangers, guarded.strangers[0]
    assert not loop_errors, loop_errors[0]
    bad = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR
        or any(s in r.getMessage() for s in ("Exception in callback", "changed size during iteration", "Non-thread-safe"))
    ]
    assert not bad, bad

    # The race was real: the kernel's thread read while hooks came and went and ran.
    triggers = loop_thread.run(_triggers(manager), 10)
    print(f"{rounds} rounds, {created[0]} hooks created, {published[0]} items, {triggers} triggers")
    assert rounds >= 10 and created[0] >= 10 and published[0] >= 10, (rounds, created[0], published[0])
    assert triggers > 0
    quiet(shell, "disconnect")


async def _triggers(manager: Any) -> int:
    return manager.status()["triggers"]
