"""Where the per-item CPU of the hook path goes, without the network (diagnosis).

``python -m benchmarks.micro [--items N] [--repeat R]``

Feeds the same pre-parsed PubSub notification stanzas straight into slixmpp's stanza
dispatch (``XMLStream._spawn_event``, what ``data_received`` calls for each stanza) of

* a bare slixmpp client that only counts ``pubsub_publish`` events, and
* our :class:`~pubsub_hook_magic.xmpp_session.XmppSession` + :class:`HookManager` with one
  no-op hook, as the package sets them up (same plugins, handlers and defaults),

then with one suspected cost at a time switched off by a monkeypatch, in this process
only (the package's files are not touched). The difference to "ours: default" is what
that part costs per item. CPU is ``time.process_time()`` (all threads: the watchdog's
included), per item, median of R repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import shutil
from typing import Any, Callable

TEMPLATE = (
    "<message xmlns='jabber:client' from='pubsub.localhost' to='alice@localhost/bench' "
    "type='headline' id='ev{i}'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
    "<items node='bench'><item id='m-{i}' publisher='admin@localhost/bench'>"
    "<x xmlns='urn:bench' t='{t!r}'/></item></items></event></message>"
)


def stanzas(n: int, start: int = 0) -> list[Any]:
    from xml.etree import ElementTree as ET

    now = time.time()
    return [ET.fromstring(TEMPLATE.format(i=i, t=now)) for i in range(start, start + n)]


async def feed(client: Any, xmls: list[Any], done: Callable[[], bool], batch: int = 1, measured: bool = True) -> float:
    """CPU seconds to dispatch every stanza and run every hook; ``batch`` stanzas are
    dispatched per loop iteration (as if that many came in one socket read).

    Objects alive before are frozen out of the garbage collector's reach, so that what
    earlier variants left behind does not make this one's collections slower."""
    gc.collect()
    gc.freeze()
    if MEASURE_WITH_CALLGRIND and measured:
        _callgrind("-i", "on")
    c0 = time.process_time()
    for i, xml in enumerate(xmls):
        client._spawn_event(xml)
        if i % batch == batch - 1:
            await asyncio.sleep(0)  # as if the next socket read came in
    while not done():
        await asyncio.sleep(0)
    cpu = time.process_time() - c0
    if MEASURE_WITH_CALLGRIND and measured:
        _callgrind("-i", "off")
    return cpu


#: Under ``valgrind --tool=callgrind --instr-atstart=no`` (``--callgrind``): count the
#: instructions of the measured feed only (deterministic, unlike time on a shared VM).
MEASURE_WITH_CALLGRIND = os.environ.get("MICRO_CALLGRIND") == "1"


def _callgrind(*args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True, timeout=600)


# ------------------------------------------------------------------ set-ups

DROPPED: list[int] = []  # items the hooks dropped (queue full), per run of ours()


async def bare(n: int) -> float:
    from slixmpp import ClientXMPP

    client = ClientXMPP("bob@localhost/bench", "pw", loop=asyncio.get_running_loop())
    for plugin in ("xep_0030", "xep_0004", "xep_0060"):
        client.register_plugin(plugin)
    seen = [0]

    def on_publish(msg: Any) -> None:
        item = msg["pubsub_event"]["items"]["item"]
        if item["id"].startswith("m-"):
            seen[0] += 1

    client.add_event_handler("pubsub_publish", on_publish)
    warm = n // 4
    await feed(client, stanzas(warm), lambda: seen[0] >= warm, measured=False)  # steady state first
    return await feed(client, stanzas(n, warm), lambda: seen[0] >= warm + n)


async def ours(
    n: int,
    *,
    kind: str = "python",
    arg: str = "benchmarks.hooks_noop",
    time_limit: float | None = 60.0,
    other_hooks: int = 0,
    same_hooks: int = 0,
    patch: Callable[[Any, Any], Any] | None = None,
    batch: int = 1,
) -> float:
    from pubsub_hook_magic.hooks import Hook, HookType, new_hook_id, normalize_arg
    from pubsub_hook_magic.manager import HookManager
    from pubsub_hook_magic.xmpp_session import XmppSession

    tmp = tempfile.mkdtemp(prefix="phm-micro-")
    manager = HookManager(data_dir=tmp, time_limit=time_limit)
    session = XmppSession("alice@localhost/bench", "pw", on_item=manager.engine.live.on_item, on_event=manager.engine.live.on_event, host="127.0.0.1", port=1, tls=False)
    session.client = session._make_client()
    manager.session = session
    if kind == "python_file" and not arg:
        from .hooks_noop import FILE_HOOK

        arg = f"{tmp}/noop_file_hook.py"
        with open(arg, "w", encoding="utf-8") as f:
            f.write(FILE_HOOK)

    def install(node: str) -> Any:
        t = HookType.parse(kind)
        hook = Hook(service="pubsub.localhost", node=node, type=t, arg=normalize_arg(t, arg),
                    id=new_hook_id(lambda i: i in manager.runners))
        loader = manager.engine.load
        if loader is not None:
            hook.func = loader(hook)
        else:  # older versions of the package
            from pubsub_hook_magic.hooks import load_hook

            hook.func = load_hook(hook, manager.namespace)
        manager.engine.install(hook)
        return manager.runners[hook.id]

    for i in range(other_hooks):
        install(f"other-{i}")
    runners = [install("bench") for _ in range(1 + same_hooks)]
    undo = patch(manager, session) if patch is not None else None
    try:
        warm = n // 4  # steady state first
        await feed(session.client, stanzas(warm), lambda: all(r.count + r.dropped >= warm for r in runners), batch, measured=False)
        cpu = await feed(session.client, stanzas(n, warm), lambda: all(r.count + r.dropped >= warm + n for r in runners), batch)
        DROPPED.append(sum(r.dropped for r in runners))  # (warm-up included)
        return cpu
    finally:
        for runner in list(manager.runners.values()):
            await runner.stop()
        if undo is not None:
            undo()


# ------------------------------------------------------------------ the suspects


def no_fingerprint(manager: Any, session: Any) -> Callable[[], None]:
    """Items referenced without their payload fingerprint (every payload looks alike)."""
    from pubsub_hook_magic.dedupe import ItemRef

    saved = ItemRef.__dict__["of"]
    # (1, not 0: a fingerprint of 0 means "no payload", completed by a fetch: see payloads.py)
    ItemRef.of = classmethod(lambda cls, item: cls(item["id"] or "", item, fingerprint=1))  # type: ignore[method-assign]
    return lambda: setattr(ItemRef, "of", saved)


def eager_digest(manager: Any, session: Any) -> Callable[[], None]:
    """The payload digest computed for every item, as before it became lazy."""
    from pubsub_hook_magic.dedupe import ItemRef, payload_fingerprint

    saved = ItemRef.__dict__["of"]

    def of(cls: Any, item: Any) -> Any:
        ref = cls(item["id"] or "", item, fingerprint=payload_fingerprint(item))
        ref.digest  # noqa: B018
        return ref

    ItemRef.of = classmethod(of)  # type: ignore[method-assign]
    return lambda: setattr(ItemRef, "of", saved)


def no_source_check(manager: Any, session: Any) -> None:
    for runner in manager.runners.values():
        if hasattr(runner, "_source"):
            runner._source = None


def xep0060_items_handler_beside_ours(manager: Any, session: Any) -> None:
    """xep_0060's own items handler registered again beside ours (as before ours
    took its place)."""
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import StanzaPath

    plugin = session.client.plugin["xep_0060"]
    session.client.plugin["pubsub_hook_magic"].xep_0060_items = None
    session.client.register_handler(
        Callback("Pubsub Event: Items", StanzaPath("message/pubsub_event/items"), plugin._handle_event_items)
    )


def no_yield_per_item(manager: Any, session: Any) -> Callable[[], None]:
    """The runner's worker loop without ``await asyncio.sleep(0)`` and the run lock
    per item (restarted with this loop)."""
    from pubsub_hook_magic.runner import HookRunner

    async def work(self: Any) -> None:
        queue = self._queue
        while True:
            item, trigger = await queue.get()
            await self.run(item, trigger)

    saved = HookRunner._work
    HookRunner._work = work
    for runner in manager.runners.values():
        runner._worker.cancel()
        runner._worker = None
        runner.start()
    return lambda: setattr(HookRunner, "_work", saved)


def everything(manager: Any, session: Any) -> Callable[[], None]:
    undo = [no_fingerprint(manager, session), no_yield_per_item(manager, session)]
    no_source_check(manager, session)
    return lambda: [u() for u in undo]


VARIANTS: list[tuple[str, Callable[[int], Any]]] = [
    ("bare slixmpp (counts pubsub_publish)", bare),
    ("ours: default (`python` no-op hook, time limit 60 s)", lambda n: ours(n)),
    ("ours: no time limit (watchdog never armed)", lambda n: ours(n, time_limit=None)),
    ("ours: payload fingerprint stubbed", lambda n: ours(n, patch=no_fingerprint)),
    ("ours: payload digest computed per item (the old way)", lambda n: ours(n, patch=eager_digest)),
    ("ours: no source mtime check per run", lambda n: ours(n, patch=no_source_check)),
    ("ours: xep_0060's items handler beside ours (the old way)", lambda n: ours(n, patch=xep0060_items_handler_beside_ours)),
    ("ours: no sleep(0) + lock per item in the runner", lambda n: ours(n, patch=no_yield_per_item)),
    ("ours: no time limit, fingerprint, source check or sleep(0) per item", lambda n: ours(n, time_limit=None, patch=everything)),
    ("ours: `python_code` no-op (pass)", lambda n: ours(n, kind="python_code", arg="pass")),
    ("ours: `python_file` no-op", lambda n: ours(n, kind="python_file", arg="")),
    ("ours: `async def` no-op", lambda n: ours(n, arg="benchmarks.hooks_noop:async_hook")),
    ("ours: 1 hook + 1000 hooks on other nodes", lambda n: ours(n, other_hooks=1000)),
    ("ours: 1 + 10 hooks on the same node", lambda n: ours(n, same_hooks=10)),
    ("ours: default, 50 stanzas per socket read", lambda n: ours(n, batch=50)),
    ("ours: no sleep(0) per item, 50 stanzas per socket read", lambda n: ours(n, batch=50, patch=no_yield_per_item)),
]


def _busy(us: float) -> None:
    """Pure-Python work for about ``us`` microseconds (what dispatch does between runs)."""
    end = time.perf_counter() + us / 1e6
    while time.perf_counter() < end:
        pass


def _paired(a: Callable[[], None], b: Callable[[], None], n: int = 3000, rounds: int = 9) -> float:
    """Median over rounds of CPU per call of ``b`` minus ``a`` (alternated), in us."""
    deltas = []
    for _ in range(rounds):
        costs = []
        for f in (a, b):
            gc.collect()
            c0 = time.process_time()
            for _i in range(n):
                f()
            costs.append((time.process_time() - c0) / n)
        deltas.append((costs[1] - costs[0]) * 1e6)
    return statistics.median(deltas)


async def _runner_loop_cost(n: int = 3000, rounds: int = 9) -> tuple[float, float]:
    """CPU per item of the runner's worker loop, with and without the per-item
    ``async with lock`` + ``await asyncio.sleep(0)``, one item arriving per loop turn."""

    async def noop_run(item: Any) -> None:
        return None

    async def plain(queue: asyncio.Queue) -> None:
        while True:
            item = await queue.get()
            await noop_run(item)

    async def yielding(queue: asyncio.Queue) -> None:
        lock = asyncio.Lock()
        while True:
            item = await queue.get()
            async with lock:
                await noop_run(item)
            await asyncio.sleep(0)

    async def one(worker: Any) -> float:
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.get_running_loop().create_task(worker(queue))
        await asyncio.sleep(0)
        c0 = time.process_time()
        for i in range(n):
            queue.put_nowait(i)
            await asyncio.sleep(0)
        while queue.qsize():
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        cpu = time.process_time() - c0
        task.cancel()
        return cpu / n * 1e6

    a, b = [], []
    for _ in range(rounds):
        a.append(await one(plain))
        b.append(await one(yielding))
    return statistics.median(a), statistics.median(b)


def unit_costs() -> list[tuple[str, float]]:
    """Microseconds per item of single suspects, measured alone."""
    from slixmpp import ClientXMPP

    from pubsub_hook_magic.dedupe import payload_digest, payload_fingerprint
    from pubsub_hook_magic.xmpp_session import XmppSession
    from pubsub_hook_magic.watchdog import Watchdog

    async def make() -> tuple[Any, Any, Any]:
        bare = ClientXMPP("bob@localhost/bench", "pw", loop=asyncio.get_running_loop())
        for plugin in ("xep_0030", "xep_0004", "xep_0060"):
            bare.register_plugin(plugin)
        session = XmppSession("alice@localhost/bench", "pw", on_item=lambda *a: None, host="127.0.0.1", port=1, tls=False)
        ours = session._make_client()
        return bare, ours, bare._build_stanza(stanzas(1)[0])

    bare, ours, msg = asyncio.run(make())
    item = msg["pubsub_event"]["items"]["item"]
    wd = Watchdog()

    def work() -> None:
        _busy(150)

    def work_guarded() -> None:
        _busy(150)
        with wd.guard(60):
            pass

    def handlers(client: Any) -> list[Any]:
        return client._XMLStream__handlers

    def match_all(client: Any) -> Callable[[], None]:
        hs = handlers(client)
        return lambda: [h for h in hs if h.match(msg)]

    def timed(stmt: Callable[[], Any], number: int = 2000) -> float:
        return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6

    plain, yielding = asyncio.run(_runner_loop_cost())
    return [
        ("payload_digest(item) (tostring + blake2b; only for stored positions)", timed(lambda: payload_digest(item))),
        ("payload_fingerprint(item) (per item)", timed(lambda: payload_fingerprint(item))),
        ("watchdog.guard(60) around a no-op, between 150 us of other work "
         "(its thread wakes each time; CPU of all threads)", _paired(work, work_guarded)),
        ("runner worker loop: per-item `async with lock` + `await asyncio.sleep(0)` "
         f"({plain:.1f} -> {yielding:.1f} us per item)", yielding - plain),
        ("os.stat(hook file) (source mtime check)", timed(lambda: __import__("os").stat(__file__))),
        ("xep_0060 _handle_event_items(msg) (fires pubsub_publish nobody handles)",
         timed(lambda: bare.plugin["xep_0060"]._handle_event_items(msg))),
        (f"match the stanza against our client's {len(handlers(ours))} handlers "
         f"(bare: {len(handlers(bare))})", timed(match_all(ours))),
        ("  the same against the bare client's handlers", timed(match_all(bare))),
        ("item['id']", timed(lambda: item["id"])),
        ("item['publisher']", timed(lambda: item["publisher"])),
    ]


def _callgrind_all(variants: list[int], items: int) -> int:
    """Each variant once under callgrind: instructions per item (deterministic)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    print(f"Instructions per item (valgrind callgrind, measured feed of {items} stanzas only, "
          f"after {items // 4} to warm up; deterministic to about 0.1%):", flush=True)
    env = dict(os.environ, PYTHONHASHSEED="0", MICRO_CALLGRIND="1")
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in variants:
            out = subprocess.run(
                ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={tmp}/cg.%p",
                 sys.executable, "-m", "benchmarks.micro", "--one", str(i), "--items", str(items)],
                capture_output=True, text=True, timeout=1800, env=env,
            )
            collected = [line for line in out.stderr.splitlines() if "Collected :" in line]
            if out.returncode != 0 or not collected:
                raise RuntimeError(f"{VARIANTS[i][0]} failed under valgrind:\n{out.stderr[-3000:]}")
            dropped = json.loads(out.stdout.strip().splitlines()[-1])["dropped"]
            figures[i] = int(collected[-1].split(":")[-1]) / items / 1000
            rel = ""
            if i > 1 and 1 in figures:
                rel = f"  ({figures[i] - figures[1]:+7.1f} k vs default)"
            if 0 in figures and i > 0:
                rel += f"  [{figures[i] / figures[0]:.2f}x bare]"
            drop = f"  [DROPPED {dropped}]" if dropped else ""
            print(f"  {figures[i]:8.1f} k  {VARIANTS[i][0]}{rel}{drop}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.micro", description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--callgrind", action="store_true",
                    help="count instructions under valgrind instead of timing (deterministic; slow)")
    ap.add_argument("--no-units", action="store_true", help="skip the single-suspect measurements")
    ap.add_argument("--only", default="", help="run only the variants whose names contain one of these comma-separated strings")
    args = ap.parse_args(argv)
    import logging

    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
    if args.one is not None:  # a child: one variant, one figure
        name, make = VARIANTS[args.one]
        DROPPED.clear()
        us = asyncio.run(make(args.items)) / args.items * 1e6
        print(json.dumps({"us": us, "dropped": max(DROPPED or [0])}))
        return 0
    wanted = [w for w in args.only.split(",") if w]
    variants = [i for i, (name, _m) in enumerate(VARIANTS) if not wanted or any(w in name for w in wanted)]
    if args.callgrind:
        return _callgrind_all(variants, args.items)
    print(f"CPU per item, {args.items} stanzas fed to slixmpp's dispatch after {args.items // 4} to warm up; "
          f"each figure is the median of {args.repeat} fresh processes, run round-robin:", flush=True)
    figures: dict[int, list[float]] = {i: [] for i in variants}
    drops: dict[int, int] = {i: 0 for i in variants}
    for _r in range(args.repeat):
        for i in variants:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.micro", "--one", str(i), "--items", str(args.items)],
                capture_output=True, text=True, timeout=600,
            )
            if out.returncode != 0:
                raise RuntimeError(f"{VARIANTS[i][0]} failed:\n{out.stderr}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            figures[i].append(result["us"])
            drops[i] = max(drops[i], result["dropped"])
    base = statistics.median(figures[1]) if 1 in figures else None
    for i in variants:
        name = VARIANTS[i][0]
        us = statistics.median(figures[i])
        delta = f"  ({us - base:+6.1f} vs default)" if base is not None and i > 1 else ""
        dropped = f"  [DROPPED {drops[i]} of {args.items + args.items // 4} items: queue full]" if drops[i] else ""
        spread = f"  [{min(figures[i]):.0f}..{max(figures[i]):.0f}]"
        print(f"  {us:7.1f} us  {name}{delta}{spread}{dropped}", flush=True)
    if args.no_units:
        return 0
    print("\nSingle suspects, measured alone (us per item):")
    for name, us in unit_costs():
        print(f"  {us:7.2f} us  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
