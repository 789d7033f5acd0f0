"""Thousands of hooks (issue 25): what each more hook costs, at N = 100, 1,000, 10,000.

``python -m benchmarks.many_hooks [--sizes 100,1000,10000] [--quick] [--kinds persistent,temporary]``

A private Prosody (``TestServer(storage="memory")``, plaintext) and, in this process, one
:class:`~pubsub_hook_magic.loopthread.LoopThread` (a kernel's session loop) running one
:class:`~pubsub_hook_magic.manager.HookManager` of ``admin`` (the owner of
``pubsub.localhost``), through its public API only. For each N, side by side in one run:

* **persistent**: N ``python_code`` hooks (``pass``), persistent, one per node of
  ``pubsub.localhost`` (nodes made beforehand, each holding one item); then
* **temporary**: N temporary hooks on N nodes of the account's own PEP.

For each: the time of every ``create_hook`` (the N-th, as the median of the last 5,
against the 100th, the median of creates 96..100: target <= 1.5x), the total create
time, ``list_hooks()`` at N, the process's RSS and open descriptors per hook (after
minus before the creates: target independent of N), and for persistent hooks
``connect`` again (disconnect first) minus a login alone (a connect of the same
account with an empty store, just before), the time until every hook is caught up
(``active``), and ``delete_hooks`` of every hook one id at a time (total).

The soft ``RLIMIT_NOFILE`` is raised to the hard limit first, so that a version
that opens a descriptor per hook is measured rather than stopped.

``--quick`` (the smoke test, ``tests/test_benchmarks_smoke.py``): N = 20 and 120, no
time asserted. Results in RESULTS.md (hand-written section "Thousands of hooks").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.states import HookState
from pubsub_hook_magic.testing.server import TestServer

SERVICE = "pubsub.localhost"
USER, PASSWORD = "admin", "many-hooks-bench"
#: Target: the N-th create / the 100th.
GROWTH_TARGET = 1.5


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss() -> int:
    import psutil

    gc.collect()
    return int(psutil.Process().memory_info().rss)


class Bench:
    def __init__(self, srv: TestServer, stores: Path):
        self.srv = srv
        self.stores = stores
        self.thread = LoopThread(name="bench-many-hooks")
        self.runs = 0

    def run(self, coro: Any, timeout: float = 3600) -> Any:
        return self.thread.run(coro, timeout)

    async def manager(self, store: str) -> tuple[HookManager, float]:
        manager = HookManager({}, data_dir=str(self.stores / store))
        started = time.perf_counter()
        warnings = await manager.connect(f"{USER}@localhost/bench", PASSWORD, host=self.srv.host,
                                         port=self.srv.port, tls=False, timeout=60)
        if warnings:
            raise RuntimeError(f"connect warned: {warnings}")
        return manager, time.perf_counter() - started

    async def prepare_nodes(self, manager: HookManager, nodes: list[str]) -> None:
        """Make the nodes, each with one item (100 requests in flight)."""
        gate = asyncio.Semaphore(100)

        async def one(node: str) -> None:
            async with gate:
                await manager.create_node(SERVICE, node)
                await manager.publish(SERVICE, node, '<x xmlns="urn:bench"/>', item_id="seen")

        await asyncio.gather(*(one(n) for n in nodes))

    async def creates(self, manager: HookManager, service: str, nodes: list[str], persistent: bool) -> list[float]:
        times = []
        for node in nodes:
            t0 = time.perf_counter()
            await manager.create_hook(service, node, "python_code", "pass", persistent=persistent)
            times.append(time.perf_counter() - t0)
        return times

    async def wait_active(self, manager: HookManager, n: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while True:
            snapshot = manager.snapshot()
            if len(snapshot.hooks) >= n and all(h.state == HookState.ACTIVE for h in snapshot.hooks):
                return
            if time.monotonic() > deadline:
                states = sorted({h.state.value for h in snapshot.hooks})
                raise RuntimeError(f"hooks not active after {timeout} s: {states}")
            await asyncio.sleep(0.01)

    async def list_time(self, manager: HookManager) -> float:
        t0 = time.perf_counter()
        manager.list_hooks()
        return time.perf_counter() - t0

    def persistent(self, n: int) -> dict[str, float]:
        self.runs += 1
        store = f"p{self.runs}"
        nodes = [f"many-{self.runs}-{i}" for i in range(n)]
        manager, _ = self.run(self.manager(store))
        self.run(self.prepare_nodes(manager, nodes))
        fds0, rss0 = _fds(), _rss()
        t0 = time.perf_counter()
        times = self.run(self.creates(manager, SERVICE, nodes, True))
        total_create = time.perf_counter() - t0
        self.run(self.wait_active(manager, n))
        fds1, rss1 = _fds(), _rss()
        listed = self.run(self.list_time(manager))
        self.run(manager.disconnect())
        # A login alone (an empty store), then the connect of the N hooks.
        empty, login = self.run(self.manager(f"{store}-empty"))
        self.run(empty.disconnect())
        t0 = time.perf_counter()
        manager, connect = self.run(self.manager(store))
        self.run(self.wait_active(manager, n))
        ready = time.perf_counter() - t0
        ids = [h.id for h in manager.hooks()]
        t0 = time.perf_counter()

        async def delete() -> None:
            for hook_id in ids:
                await manager.delete_hooks(hook_id=hook_id)

        self.run(delete())
        total_delete = time.perf_counter() - t0
        self.run(manager.disconnect())
        return _figures(times, n, total_create, listed, fds1 - fds0, rss1 - rss0) | {
            "connect": connect - login, "login": login, "ready": ready - login, "delete": total_delete,
        }

    def temporary(self, n: int) -> dict[str, float]:
        self.runs += 1
        manager, _ = self.run(self.manager(f"t{self.runs}"))
        nodes = [f"many-{self.runs}-{i}" for i in range(n)]
        fds0, rss0 = _fds(), _rss()
        t0 = time.perf_counter()
        times = self.run(self.creates(manager, f"{USER}@localhost", nodes, False))
        total_create = time.perf_counter() - t0
        fds1, rss1 = _fds(), _rss()
        listed = self.run(self.list_time(manager))
        ids = [h.id for h in manager.hooks()]
        t0 = time.perf_counter()

        async def delete() -> None:
            for hook_id in ids:
                await manager.delete_hooks(hook_id=hook_id)

        self.run(delete())
        total_delete = time.perf_counter() - t0
        self.run(manager.disconnect())
        return _figures(times, n, total_create, listed, fds1 - fds0, rss1 - rss0) | {"delete": total_delete}


def _figures(times: list[float], n: int, total: float, listed: float, fds: int, rss: int) -> dict[str, float]:
    hundredth = statistics.median(times[95:100]) if n >= 100 else statistics.median(times[: max(1, n // 5)])
    nth = statistics.median(times[-5:])
    return {"n": n, "first": hundredth, "nth": nth, "growth": nth / hundredth, "create": total, "list": listed,
            "fds": fds / n, "rss": rss / n}


def _print(kind: str, got: dict[str, float]) -> None:
    n = int(got["n"])
    verdict = "met" if got["growth"] <= GROWTH_TARGET else "MISSED"
    print(f"    {kind:10} N={n:<6} create: 100th {got['first'] * 1000:6.2f} ms, N-th {got['nth'] * 1000:6.2f} ms, "
          f"growth {got['growth']:5.2f}x (target <= {GROWTH_TARGET}x: {verdict}); total {got['create']:7.2f} s; "
          f"delete all {got['delete']:7.2f} s", flush=True)
    line = (f"    {'':10} {'':8} list_hooks {got['list'] * 1000:7.1f} ms; descriptors per hook {got['fds']:5.3f}; "
            f"RSS per hook {got['rss'] / 1024:5.1f} KiB")
    if "connect" in got:
        line += (f"; connect minus login {got['connect']:6.3f} s (login {got['login']:5.3f} s), caught up after "
                 f"{got['ready']:6.3f} s")
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.many_hooks", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,10000", help="numbers of hooks (default: 100,1000,10000)")
    ap.add_argument("--kinds", default="persistent,temporary", help="persistent, temporary or both (default)")
    ap.add_argument("--quick", action="store_true", help="N = 20 and 120: proves it runs (the smoke test)")
    args = ap.parse_args(argv)
    sizes = [20, 120] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    kinds = [k for k in args.kinds.split(",") if k]
    logging.getLogger("pubsub_hook_magic").setLevel(logging.ERROR)
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    began = time.monotonic()
    results: list[tuple[str, dict[str, float]]] = []
    with contextlib.ExitStack() as stack:
        srv = stack.enter_context(TestServer(storage="memory"))
        srv.register(USER, PASSWORD)
        stores = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="phm-bench-many-")))
        bench = Bench(srv, stores)
        stack.callback(bench.thread.stop)
        print(f"Thousands of hooks: N = {', '.join(map(str, sizes))}; {', '.join(kinds)} "
              f"(descriptor limit {soft} -> {resource.getrlimit(resource.RLIMIT_NOFILE)[0]})", flush=True)
        for n in sizes:
            for kind in kinds:
                got = bench.persistent(n) if kind == "persistent" else bench.temporary(n)
                _print(kind, got)
                results.append((kind, got))
    print("\nSummary (N-th create / 100th; descriptors per hook):")
    for kind, got in results:
        print(f"    {kind:10} N={int(got['n']):<6} growth {got['growth']:5.2f}x, descriptors per hook "
              f"{got['fds']:5.3f}, total create {got['create']:.2f} s, delete {got['delete']:.2f} s")
    print(f"\n({time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
