"""Several accounts in one process (issue 21): what each more account costs.

``python -m benchmarks.accounts [--accounts 10] [--hooks 50] [--runs 3] [--delay 0.05] [--items 5000]``

A private Prosody (``TestServer(storage="memory")``, plaintext), and in this process one
:class:`~pubsub_hook_magic.loopthread.LoopThread`: the session loop of a kernel with
several accounts, each a :class:`~pubsub_hook_magic.manager.HookManager` made as the
magics make it (one namespace, one :class:`~pubsub_hook_magic.accounts.Accounts`). Two
figures, each configuration interleaved with the other run by run (the order rotates),
medians of ``--runs`` runs after one warm-up of each:

1. **Connect at a distance**: accounts user0..user9, each with ``--hooks`` persistent
   ``python_code`` hooks on its own nodes of ``pubsub.localhost`` (each node holding one
   item the hooks have seen; hooks made beforehand over the direct path), all
   disconnected, then connected again at once (``asyncio.gather`` of their ``connect``)
   through a :class:`~pubsub_hook_magic.testing.proxy.TcpProxy` that delays each
   direction by ``--delay`` (its own process, so that its forwarding does not share
   our GIL). Wall time until every ``connect`` returned, and until every hook is
   ``active`` (caught up), for 10 accounts and for user0 alone; the added time per
   extra account is (10 accounts - 1) / 9. The session loop's own CPU time
   (``time.thread_time()`` on it) is printed beside.
2. **Throughput with idle accounts**: alice's temporary ``python`` no-op hook
   (``benchmarks.hooks_noop``) on a fresh node, ``--items`` items published by a
   publisher in its own process (``benchmarks.workers.PublisherRole``, 100 in flight,
   straight to Prosody): items / (last hook call - first publish), with alice alone vs
   with the 10 accounts (their 50 persistent hooks each, connected directly) idle on the
   same loop; ratio within each run, then the median. CPU per item of this process, of the
   publisher and of Prosody beside (the items/s are those of the whole stack on 2 cores).

About 1.5 min on 2 cores. Results in RESULTS.md (hand-written section).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.run import CpuMeter, Worker
from pubsub_hook_magic.accounts import Accounts
from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.states import HookState
from pubsub_hook_magic.testing.server import TestServer

SERVICE = "pubsub.localhost"
PASSWORD = "accounts-bench"
#: Target of figure 1: added connect time per extra account (seconds).
PER_ACCOUNT_TARGET = 0.2
#: Target of figure 2: throughput with the idle accounts / alone.
IDLE_TARGET = 0.95


def _proxy_main(conn: Any, host: str, port: int, delay: float) -> None:
    """A spawned process holding the delaying proxy until its pipe closes."""
    from pubsub_hook_magic.testing.proxy import TcpProxy

    with TcpProxy(host, port, delay=delay, name="bench-accounts-proxy") as proxy:
        conn.send((proxy.host, proxy.port))
        with contextlib.suppress(EOFError):
            conn.recv()


class FarProxy:
    """:class:`TcpProxy` in its own process (``host``, ``port``: where to connect)."""

    def __init__(self, srv: TestServer, delay: float):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_proxy_main, args=(child, srv.host, srv.port, delay), daemon=True,
                                name="bench-accounts-proxy")
        self.proc.start()
        child.close()
        if not self.conn.poll(60):
            raise TimeoutError("the proxy process did not start")
        self.host, self.port = self.conn.recv()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send("stop")
        self.conn.close()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)


class Kernel:
    """The session loop of a kernel with several accounts, and their stores."""

    def __init__(self, srv: TestServer, stores: Path):
        self.srv = srv
        self.stores = stores
        self.thread = LoopThread(name="bench-accounts-session")
        self.namespace: dict[str, Any] = {}
        self.accounts = Accounts()

    def run(self, coro: Any, timeout: float = 300) -> Any:
        return self.thread.run(coro, timeout)

    def manager(self, user: str) -> HookManager:
        """(On the loop.) A manager of ``user`` as the magics make one, with its own store."""
        return HookManager(self.namespace, data_dir=str(self.stores / user), accounts=self.accounts)

    async def connect(self, users: list[str], host: str, port: int) -> tuple[list[HookManager], dict[str, float]]:
        """Connect ``users`` at once; seconds until every ``connect`` returned, until
        every hook is active, and the loop's CPU time meanwhile."""
        managers = [self.manager(u) for u in users]
        cpu0, started = time.thread_time(), time.perf_counter()
        results = await asyncio.gather(
            *(m.connect(f"{u}@localhost/bench", PASSWORD, host=host, port=port, tls=False, timeout=60)
              for u, m in zip(users, managers, strict=True)),
            return_exceptions=True,
        )
        connected = time.perf_counter() - started
        failed = [(u, r) for u, r in zip(users, results, strict=True) if isinstance(r, BaseException) or r]
        if failed:
            await self.disconnect(managers)
            raise RuntimeError(f"connect failed or warned: {failed}")
        deadline = time.monotonic() + 60
        while True:
            states = [r.state for m in managers for r in m.runners.ordered()]
            if all(s == HookState.ACTIVE for s in states):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"hooks not active after 60 s: {sorted(set(states))}")
            await asyncio.sleep(0.005)
        ready = time.perf_counter() - started
        return managers, {"connect": connected, "ready": ready, "cpu": time.thread_time() - cpu0,
                          "hooks": len(states)}

    async def prepare_all(self, nodes: dict[str, list[str]]) -> None:
        await asyncio.gather(*(self.prepare(u, ns) for u, ns in nodes.items()))

    async def disconnect(self, managers: list[HookManager]) -> None:
        await asyncio.gather(*(m.disconnect() for m in managers))

    async def prepare(self, user: str, nodes: list[str]) -> None:
        """Persistent hooks of ``user`` on ``nodes``, made over the direct path."""
        manager = self.manager(user)
        await manager.connect(f"{user}@localhost/bench", PASSWORD, host=self.srv.host, port=self.srv.port, tls=False)
        try:
            for node in nodes:
                await manager.create_hook(SERVICE, node, "python_code", "pass", persistent=True)
        finally:
            await manager.disconnect()


def _account(srv: TestServer, user: str) -> dict[str, Any]:
    return {"jid": f"{user}@localhost/bench", "password": PASSWORD, "host": srv.host, "port": srv.port}


def _rotations(labels: list[str], runs: int) -> list[tuple[int, str]]:
    """(run, label) in order: run 0 is the warm-up; the order rotates from run to run."""
    return [(r, labels[(r + i) % len(labels)]) for r in range(runs + 1) for i in range(len(labels))]


def connect_far(k: Kernel, proxy: FarProxy, users: list[str], runs: int) -> dict[str, list[dict[str, float]]]:
    configs = {"1 account": users[:1], f"{len(users)} accounts": users}
    figures: dict[str, list[dict[str, float]]] = {c: [] for c in configs}
    for run, label in _rotations(list(configs), runs):
        time.sleep(0.3)  # the last disconnect's bytes through the proxy
        managers, got = k.run(k.connect(configs[label], proxy.host, proxy.port))
        k.run(k.disconnect(managers))
        print(f"     {'warm-up' if run == 0 else f'run {run}':8} {label:11} connect {got['connect']:6.3f} s, "
              f"all active {got['ready']:6.3f} s, loop CPU {got['cpu']:6.3f} s ({got['hooks']} hooks)", flush=True)
        if run:
            figures[label].append(got)
    return figures


def _cpu(proc: Any) -> float:
    times = proc.cpu_times()
    return times.user + times.system


async def _measure(alice: HookManager, pub: Worker, prosody: Any, node: str, items: int) -> dict[str, float]:
    hook = await alice.create_hook(SERVICE, node, "python", "benchmarks.hooks_noop")
    runner = alice.runners[hook.id]
    cpu0, prosody0 = time.process_time(), _cpu(prosody)
    published = await asyncio.to_thread(pub.call, "publish", node, items, "i-", 100, None, timeout=300)
    deadline = time.monotonic() + 120
    while runner.count + runner.dropped < items and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    cpu, prosody_cpu = time.process_time() - cpu0, _cpu(prosody) - prosody0
    count, dropped = runner.count, runner.dropped
    t_last = runner.last_trigger.started if runner.last_trigger else 0.0
    await alice.delete_hooks(hook_id=hook.id)
    if published["errors"] or count < items:
        raise RuntimeError(f"{count} of {items} runs, {dropped} dropped, {published['errors']} publish errors "
                           f"({published['first_error']})")
    return {"throughput": items / (t_last - published["t_first"]), "cpu": cpu / items,
            "send_rate": published["send_rate"] or 0.0, "publisher_cpu": published["cpu"] / items,
            "prosody_cpu": prosody_cpu / items}


def throughput(k: Kernel, pub: Worker, users: list[str], runs: int, items: int) -> dict[str, list[dict[str, float]]]:
    import psutil

    prosody = psutil.Process(k.srv.pid)
    alice = k.manager("alice")
    k.run(alice.connect("alice@localhost/bench", PASSWORD, host=k.srv.host, port=k.srv.port, tls=False))
    labels = ["alone", f"+ {len(users)} idle"]
    figures: dict[str, list[dict[str, float]]] = {c: [] for c in labels}
    try:
        for run, label in _rotations(labels, runs):
            node = f"tp-{time.monotonic_ns()}"
            pub.call("create_nodes", [node])
            idle: list[HookManager] = []
            if label != "alone":
                idle, _ = k.run(k.connect(users, k.srv.host, k.srv.port))
                time.sleep(0.5)  # settled: nothing of their connect left on the loop
            got = k.run(_measure(alice, pub, prosody, node, items))
            if idle:
                k.run(k.disconnect(idle))
            print(f"     {'warm-up' if run == 0 else f'run {run}':8} {label:9} {got['throughput']:6.0f} items/s "
                  f"(published at {got['send_rate']:5.0f}/s); CPU per item: ours {got['cpu'] * 1e6:4.0f} us, "
                  f"publisher {got['publisher_cpu'] * 1e6:4.0f} us, Prosody {got['prosody_cpu'] * 1e6:4.0f} us",
                  flush=True)
            if run:
                figures[label].append(got)
    finally:
        k.run(alice.disconnect())
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.accounts", description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=10, help="accounts of the many-accounts case (default: 10)")
    ap.add_argument("--hooks", type=int, default=50, help="persistent hooks per account (default: 50)")
    ap.add_argument("--runs", type=int, default=3, help="measured runs of each configuration (default: 3)")
    ap.add_argument("--delay", type=float, default=0.05, help="seconds the proxy adds each way (default: 0.05)")
    ap.add_argument("--items", type=int, default=5000, help="items per throughput run (default: 5000)")
    args = ap.parse_args(argv)
    logging.getLogger("pubsub_hook_magic").setLevel(logging.ERROR)
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
    began = time.monotonic()
    meter = CpuMeter()
    users = [f"user{i}" for i in range(max(2, args.accounts))]
    runs = max(1, args.runs)
    with contextlib.ExitStack() as stack:
        srv = stack.enter_context(TestServer(storage="memory"))
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda u: srv.register(u, PASSWORD), ["admin", "alice", *users]))
        pub = Worker("publisher", **_account(srv, "admin"))
        stack.callback(pub.stop)
        proxy = FarProxy(srv, args.delay)
        stack.callback(proxy.close)
        pub.ready()
        stores = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="phm-bench-accounts-")))
        k = Kernel(srv, stores)
        stack.callback(k.thread.stop)
        nodes = {u: [f"{u}-n{i}" for i in range(args.hooks)] for u in users}
        every = [n for ns in nodes.values() for n in ns]
        pub.call("create_nodes", every)
        pub.call("publish_nodes", every, 1, "seen-")
        k.run(k.prepare_all(nodes))
        print(f"{len(users)} accounts x {args.hooks} persistent hooks made in {time.monotonic() - began:.1f} s",
              flush=True)

        before = meter.snapshot()
        print(f"[1] connect through the proxy ({args.delay * 1000:g} ms each way, RTT "
              f"{args.delay * 2000:g} ms), all at once on one loop; {runs} run(s) each after a warm-up", flush=True)
        far = connect_far(k, proxy, users, runs)
        others1 = meter.others(before, meter.snapshot())
        before = meter.snapshot()
        print(f"[2] throughput of a no-op hook, {args.items} items, 100 in flight; {runs} run(s) each after a warm-up",
              flush=True)
        tp = throughput(k, pub, users, runs, args.items)
        others2 = meter.others(before, meter.snapshot())

    one, many = (far[label] for label in far)
    extra = len(users) - 1
    print(f"\n[1] connect of {len(users)} accounts x {args.hooks} hooks vs 1 at RTT {args.delay * 2000:g} ms "
          f"(medians of {runs}; other programs used {others1:.2f} cores):")
    for what in ("connect", "ready"):
        a = statistics.median(f[what] for f in one)
        b = statistics.median(f[what] for f in many)
        per = (b - a) / extra
        if what == "connect":
            name = "connect returned"
            verdict = f"target <= {PER_ACCOUNT_TARGET * 1000:g} ms: {'met' if per <= PER_ACCOUNT_TARGET else 'MISSED'}"
        else:
            name, verdict = "every hook active", "information"
        print(f"    {name:18} 1: {a:6.3f} s  {len(users)}: {b:6.3f} s  per extra account: {per * 1000:5.0f} ms "
              f"({verdict})")
    cpu_a = statistics.median(f["cpu"] for f in one)
    cpu_b = statistics.median(f["cpu"] for f in many)
    print(f"    session loop CPU until all active: 1: {cpu_a:.3f} s  {len(users)}: {cpu_b:.3f} s  "
          f"per extra account: {(cpu_b - cpu_a) / extra * 1000:.0f} ms")
    alone, idle = (tp[label] for label in tp)
    ratio = statistics.median(i["throughput"] / a["throughput"] for a, i in zip(alone, idle, strict=True))
    print(f"[2] no-op hook throughput with {len(users)} idle accounts vs alone (medians of {runs}; "
          f"other programs used {others2:.2f} cores):")
    print(f"    alone {statistics.median(f['throughput'] for f in alone):6.0f} items/s, "
          f"{statistics.median(f['cpu'] for f in alone) * 1e6:4.0f} us CPU per item; "
          f"+ {len(users)} idle {statistics.median(f['throughput'] for f in idle):6.0f} items/s, "
          f"{statistics.median(f['cpu'] for f in idle) * 1e6:4.0f} us CPU per item")
    print(f"    (CPU per item elsewhere, medians of all runs: publisher "
          f"{statistics.median(f['publisher_cpu'] for f in alone + idle) * 1e6:.0f} us, Prosody "
          f"{statistics.median(f['prosody_cpu'] for f in alone + idle) * 1e6:.0f} us)")
    print(f"    ratio (per run, median): {ratio:.3f} (target >= {IDLE_TARGET}: "
          f"{'met' if ratio >= IDLE_TARGET else 'MISSED'}); per run: "
          + ", ".join(f"{i['throughput'] / a['throughput']:.3f}" for a, i in zip(alone, idle, strict=True)))
    print(f"\n({time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
