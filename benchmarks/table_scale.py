"""The hooks table and the listings at thousands of hooks (issue 25): what N costs.

``python -m benchmarks.table_scale [--quick] [--real 1000] [--runs 5] [--page 50]``

Three figures, each for N = 100, 1,000 and 5,000 hooks (``--quick``: 100 and 1,000;
medians of ``--runs``):

1. **The widget layer** (synthetic hooks: plain summaries, as the hub gathers them):
   a table's first render (its widgets made, the first page picked from the listing of
   N hooks and shown), one flush (every row of the page with a new run and an older
   "last"), a page turn, and the filter box (a term matching every hook's texts). The
   widgets have no front end here (no comm): what is measured is our code and
   ipywidgets' models, not the messages' way to a browser.
2. **The real hub** on ``--real`` real hooks (temporary ``python_code`` hooks on one
   PEP node of a private Prosody, :class:`~pubsub_hook_magic.testing.server.TestServer`,
   installed in one :meth:`Engine.bulk` so that making them is quick): ``TableHub``'s
   first table (``new_table``: listing, page, render, on the session's loop) and one
   flush (every hook's listing kept; the page's summaries gathered).
3. **The listings**: ``%hook list -O json`` and ``-O text`` as the handler does them
   (``manager.list_hooks()`` on the session's loop, then
   :func:`~pubsub_hook_magic.formatting.hooks_json` /
   :func:`~pubsub_hook_magic.formatting.hooks_text`): on the ``--real`` real hooks,
   and at 5,000 as ``list_hooks`` of the real hooks scaled linearly (it is one summary
   per runner) plus the formatting of 5,000 synthetic summaries, measured.

About 20 s (``--quick``: 5 s). Results in RESULTS.md (hand-written section).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from pubsub_hook_magic import formatting
from pubsub_hook_magic.hooks import Hook, HookType
from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.states import HookState, SessionState
from pubsub_hook_magic.summary import summarize
from pubsub_hook_magic.table import TableHub, render
from pubsub_hook_magic.table.widgets import Frame, HookTable, Listing
from pubsub_hook_magic.testing.server import TestServer

PASSWORD = "table-bench"
SERVICE = "pubsub.localhost"


def summaries(n: int, now: float) -> dict[str, dict[str, Any]]:
    """N hooks' summaries as the hub gathers them (each with a run 30 s ago)."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(n):
        hook = Hook(service=SERVICE, node=f"sensors/building-{i % 17}/room-{i}", type=HookType.PYTHON_CODE,
                    arg=f"store(item, room={i})", id=f"h{i:05d}", persistent=i % 2 == 0)
        s: dict[str, Any] = dict(summarize(hook, state=HookState.ACTIVE))
        s.update(triggers=3, mean_duration=0.002, last_trigger={
            "item_id": f"i{i}", "received": now - 30, "started": now - 30, "duration": 0.002, "outcome": "ok",
            "kind": "live", "error": None, "publisher": "admin@localhost",
        })
        out[s["id"]] = s
    return out


class Hub:
    """What a table asks of its hub, "the loop" being this thread (the widget layer alone)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def on_loop(self, func: Callable[..., Any], *args: Any) -> None:
        func(*args)

    def mark(self, hook_id: str | None = None) -> None: ...
    def set_paused(self, table: HookTable, hook_id: str, paused: bool) -> None: ...
    def delete(self, table: HookTable, hook_id: str) -> None: ...
    def retry_failed(self, table: HookTable, hook_id: str) -> None: ...
    def replay(self, table: HookTable, hook_id: str, trigger: Any) -> None: ...

    def refresh(self, table: HookTable) -> None:
        frame = table.last_frame
        assert frame is not None
        table.render(self.frame_for(table, frame))

    def frame_for(self, table: HookTable, frame: Frame) -> Frame:
        """The frame a hub would gather for ``table``: the page's summaries only."""
        assert frame.listing is not None
        every = self.every
        page = table.select(frame.listing)
        return Frame(frame.now, frame.header, {h: every[h] for h in page}, listing=frame.listing)

    every: dict[str, dict[str, Any]] = {}


def widget_layer(n: int, runs: int, page: int) -> dict[str, float]:
    """Figure 1 at N hooks: seconds of each step (medians), and the widget models made."""
    from ipywidgets.widgets import widget

    now = time.time()
    every = summaries(n, now)
    listing = Listing.of(every)
    header = render.Header(state=SessionState.CONNECTED, jid="alice@localhost", hooks=n)
    hub = Hub()
    hub.every = every
    times: dict[str, list[float]] = {"first": [], "flush": [], "turn": [], "filter": []}
    models = 0
    for _ in range(runs):
        before = len(widget._instances)  # noqa: SLF001 - the models alive (ipywidgets has no public count)
        started = time.perf_counter()
        table = HookTable(hub, page)
        ids = table.select(listing)
        table.render(Frame(now, header, {h: every[h] for h in ids}, listing=listing))
        times["first"].append(time.perf_counter() - started)
        models = len(widget._instances) - before  # noqa: SLF001
        for h in ids:  # one more run each, and a second later
            every[h] = {**every[h], "triggers": every[h]["triggers"] + 1}
        started = time.perf_counter()
        with hub.lock:
            ids = table.select(listing)
            table.render(Frame(now + 1, header, {h: every[h] for h in ids}, listing=listing))
        times["flush"].append(time.perf_counter() - started)
        started = time.perf_counter()
        table.next_button.click()
        times["turn"].append(time.perf_counter() - started)
        started = time.perf_counter()
        table.filter.value = "room-1"  # matches 1, 10-19, 100-199, 1000-1999…
        times["filter"].append(time.perf_counter() - started)
        table.close()
    result = {k: statistics.median(v) for k, v in times.items()}
    result["models"] = models
    return result


def real_hooks(n: int, runs: int, page: int, sizes: list[int]) -> dict[str, Any]:
    """Figures 2 and 3 on ``n`` real hooks."""
    from pubsub_hook_magic.commands.hooks import _listed

    logging.getLogger("pubsub_hook_magic").setLevel(logging.ERROR)
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
    out: dict[str, Any] = {}
    with TestServer(storage="memory", autocreate=True) as srv:
        srv.register("alice", PASSWORD)
        thread = LoopThread(name="bench-table-session")
        manager = HookManager({})
        try:
            thread.run(manager.connect("alice@localhost/bench", PASSWORD, host=srv.host, port=srv.port,
                                       tls=False), 60)
            thread.run(manager.publish(None, "bench-table", "<x xmlns='urn:x'/>", item_id="first"), 30)

            async def install() -> None:
                with manager.engine.bulk():
                    for i in range(n):
                        await manager.create_hook(None, "bench-table", "python_code", f"x = {i}")

            started = time.perf_counter()
            thread.run(install(), 600)
            out["install"] = time.perf_counter() - started
            hub = TableHub(manager, thread, interval=3600, page_size=page)
            firsts, flushes, lists, jsons, texts = [], [], [], [], []
            for _ in range(runs):
                started = time.perf_counter()
                table = hub.new_table()
                firsts.append(time.perf_counter() - started)
                assert len(table.rows) == min(page, n)

                def flush() -> float:
                    began = time.perf_counter()
                    hub._render(hub.tables, False, set())  # noqa: SLF001 - one flush, timed on the loop
                    return time.perf_counter() - began

                flushes.append(thread.call(flush))
                started = time.perf_counter()
                listed = thread.call(_listed, [manager])
                lists.append(time.perf_counter() - started)
                started = time.perf_counter()
                formatting.hooks_json(listed)
                jsons.append(time.perf_counter() - started)
                started = time.perf_counter()
                formatting.hooks_text(listed)
                texts.append(time.perf_counter() - started)
            hub.close()
            out.update(first=statistics.median(firsts), flush=statistics.median(flushes),
                       list=statistics.median(lists), json=statistics.median(jsons), text=statistics.median(texts))
        finally:
            started = time.perf_counter()
            try:
                thread.run(manager.disconnect(), 900)
                out["disconnect"] = time.perf_counter() - started
            except TimeoutError:
                out["disconnect"] = float("nan")
            thread.stop()
    # The formatting alone at each N (synthetic summaries, with the account as -O json has it).
    now = time.time()
    for size in sizes:
        listed = [{**s, "account": "alice@localhost"} for s in summaries(size, now).values()]
        js, ts = [], []
        for _ in range(runs):
            started = time.perf_counter()
            formatting.hooks_json(listed)
            js.append(time.perf_counter() - started)
            started = time.perf_counter()
            formatting.hooks_text(listed)
            ts.append(time.perf_counter() - started)
        out[f"json@{size}"], out[f"text@{size}"] = statistics.median(js), statistics.median(ts)
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.table_scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 100 and 1,000 only, 100 real hooks, 2 runs")
    ap.add_argument("--real", type=int, default=None, help="real hooks of figures 2 and 3 (default: 1000)")
    ap.add_argument("--runs", type=int, default=None, help="measured runs (default: 5)")
    ap.add_argument("--page", type=int, default=50, help="rows of a page (default: 50)")
    args = ap.parse_args(argv)
    began = time.monotonic()
    sizes = [100, 1000] if args.quick else [100, 1000, 5000]
    runs = args.runs or (2 if args.quick else 5)
    real = args.real or (100 if args.quick else 1000)
    page = args.page

    print(f"[1] widget layer, page of {page} rows, synthetic hooks (medians of {runs}):", flush=True)
    print(f"    {'N':>6}  {'first render':>12}  {'one flush':>11}  {'page turn':>11}  {'filter':>11}  models")
    for n in sizes:
        r = widget_layer(n, runs, page)
        print(f"    {n:6,}  {ms(r['first']):>12}  {ms(r['flush']):>11}  {ms(r['turn']):>11}  {ms(r['filter']):>11}  "
              f"{r['models']:.0f}", flush=True)

    print(f"[2] real hub, {real:,} real hooks (temporary, python_code, one PEP node; medians of {runs}):", flush=True)
    r = real_hooks(real, runs, page, sizes)
    print(f"    {real:,} hooks installed in {r['install']:.2f} s (one Engine.bulk)")
    print(f"    TableHub.new_table (first render): {ms(r['first'])}; one flush: {ms(r['flush'])}")
    print(f"    (disconnect, removing the {real:,} hooks: {r['disconnect']:.1f} s; not the table's)")
    print(f"[3] the listings (%hook list), medians of {runs}:")
    print(f"    {real:,} real hooks: list_hooks() {ms(r['list'])}, -O json {ms(r['list'] + r['json'])} "
          f"(encoding {ms(r['json'])}), -O text {ms(r['list'] + r['text'])} (formatting {ms(r['text'])})")
    per_hook = r["list"] / real
    for n in sizes:
        listing = per_hook * n
        print(f"    N = {n:6,}: -O json {ms(listing + r[f'json@{n}'])} (list_hooks {ms(listing)} scaled from "
              f"{real:,} real + encoding {ms(r[f'json@{n}'])} measured), -O text "
              f"{ms(listing + r[f'text@{n}'])} (formatting {ms(r[f'text@{n}'])})", flush=True)
    print(f"\n({time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
