"""One soak run: set up, publish under the fault schedule, drain, tear down.

Everything the checker needs is written to the run's directory; the checker reads
only that (``python -m benchmarks.soak --check RUN_DIR`` checks an old run again).

Layout of a run directory::

    config.json        seed, minutes, rate, nodes, hooks, the schedule, the machine
    events.jsonl       what happened to which process, and when (the faults too)
    publisher.log      every item published: ok / fail, with times
    hooks/NAME.log     what each hook ran: "PID ITEM-ID TIME" lines
    logs/              pubsub-hook run, the kernels (product log records, cells,
                       stdout/stderr), the trigger reports of the kernels, Prosody
    rss.jsonl          RSS and CPU time of each process every 10 s
    store/             the product's data directory (hooks, positions, locks)
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import schedule as sched
from .hookfiles import HOOKS, PEP_NODES, SERVICE_NODES, create_cell, log_path
from .procs import (
    PASSWORDS,
    Events,
    HarnessError,
    KernelCtl,
    ProsodyCtl,
    PublisherCtl,
    Sampler,
    ServiceCtl,
)


@dataclass
class Config:
    seed: int = 1
    minutes: float = 30.0
    rate: float = 50.0
    faults: int | None = None  # default: schedule.default_faults(minutes)
    max_items: int = 5000
    out: Path | None = None  # the run directory (default: a new temp dir)
    prosody_dir: Path | None = None  # default: under /dev/shm when there is one
    drain_timeout: float = 180.0
    quiet: bool = False
    nodes: list[str] = field(default_factory=lambda: SERVICE_NODES + PEP_NODES)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        info["os"] = platform.freedesktop_os_release().get("PRETTY_NAME")
    except OSError:
        pass
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "prosody"], capture_output=True, text=True,
                             timeout=10)
        info["prosody"] = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    info["load_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def _commit() -> str | None:
    """The product's commit, with "+dirty" if its files differ from it."""
    from .procs import REPO

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "pubsub_hook_magic"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


class Soak:
    def __init__(self, config: Config):
        self.config = config
        count = config.faults if config.faults is not None else sched.default_faults(config.minutes)
        self.faults = sched.draw(config.seed, config.minutes, count, config.nodes)
        self.run_dir = Path(config.out or tempfile.mkdtemp(prefix=f"soak-{config.seed}-")).resolve()
        for sub in ("hooks", "logs", "store"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        self.events = Events(self.run_dir / "events.jsonl")
        self.errors: list[str] = []
        self.t0: float | None = None
        self.locks = {name: threading.Lock() for name in ("prosody", "proxy", "kernel", "service", "publisher")}

    def say(self, text: str) -> None:
        if not self.config.quiet:
            stamp = f"{time.time() - self.t0:7.1f}s" if self.t0 else "  setup "
            print(f"[soak {stamp}] {text}", flush=True)

    # ------------------------------------------------------------------ the run

    def run(self) -> Path:
        from pubsub_hook_magic.testing.proxy import TcpProxy
        from pubsub_hook_magic.testing.server import TestServer

        cfg = self.config
        print(f"soak: seed {cfg.seed}, {cfg.minutes:g} min, {cfg.rate:g} items/s, {len(self.faults)} faults; "
              f"run directory {self.run_dir}", flush=True)
        print(sched.table(self.faults), flush=True)
        self._write_config()
        prosody_dir = cfg.prosody_dir
        shm = Path("/dev/shm")
        if prosody_dir is None:
            # Prosody's SQLite commits each publish with fsync; in tmpfs that costs no disk
            # flush. What a SIGKILL tests (the process dies, the page cache stays) is the same.
            parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
            prosody_dir = Path(tempfile.mkdtemp(prefix="soak-prosody-", dir=parent))
        server = TestServer(storage="sqlite", data_dir=prosody_dir)
        prosody = ProsodyCtl(server, self.events)
        proxy = publisher = kernel = service = sampler = None
        try:
            for user, password in PASSWORDS.items():
                server.register(user, password)
            prosody.start()
            proxy = TcpProxy(server.host, server.port, name="soak-proxy")
            publisher = PublisherCtl(self.run_dir, server.port, self.events, cfg.rate, SERVICE_NODES, PEP_NODES,
                                     cfg.max_items)
            publisher.expect("ready", 60)
            temp = [(spec.name, create_cell(self.run_dir, spec)) for spec in HOOKS if not spec.persistent]
            kernel = KernelCtl(self.run_dir, proxy.port, self.events, self.say, temp)
            kernel.start()
            for spec in HOOKS:
                if spec.persistent:
                    kernel.cell(create_cell(self.run_dir, spec))
            for listed in kernel.hook_list():
                if listed["persistent"]:
                    name = next(s.name for s in HOOKS if s.persistent and s.name in listed["arg"])
                    self.events("persistent-hook", name=name, id=listed["id"], state=listed["state"])
            service = ServiceCtl(self.run_dir, proxy.port, self.events, self.say)
            service.start()
            service.wait_connected()
            sampler = Sampler(self.run_dir / "rss.jsonl", {
                "prosody": lambda: server.pid,
                "publisher": lambda: publisher.pid,
                "kernel": lambda: kernel.pid,
                "service": lambda: service.pid,
                "soak (proxy)": os.getpid,
            })
            sampler.start()

            publisher.command("start")
            self.t0 = time.time()
            self.events("publishing", begin=True)
            ctl = {"prosody": prosody, "proxy": proxy, "kernel": kernel, "service": service,
                   "publisher": publisher}
            threads = []
            for n, fault in enumerate(self.faults, 1):
                self._sleep_until(self.t0 + fault.at)
                thread = threading.Thread(target=self._execute, args=(n, fault, ctl), name=f"soak-fault-{n}")
                thread.start()
                threads.append(thread)
            self._sleep_until(self.t0 + cfg.minutes * 60)
            self.say("end of the schedule: waiting for the faults' effects to end")
            for thread in threads:
                thread.join()
            publisher.stop()
            self.events("publishing", begin=False)
            sampler.stop()  # (before the drain, whose log reading would count as the proxy process's)
            self.say("publisher stopped: draining")
            drained = self._drain(kernel)
            self.events("drained", ok=drained)
            try:
                (self.run_dir / "final-list.json").write_text(json.dumps(kernel.hook_list(), indent=1))
            except Exception as exc:  # noqa: BLE001
                self.errors.append(f"final %hook list: {exc}")
        except HarnessError as exc:
            self.errors.append(str(exc))
            self.say(f"HARNESS ERROR: {exc}")
        finally:
            self._tear_down(server, proxy, publisher, kernel, service, sampler, prosody_dir)
        return self.run_dir

    def _sleep_until(self, when: float) -> None:
        while (left := when - time.time()) > 0:
            time.sleep(min(left, 1.0))

    def _execute(self, n: int, fault: sched.Fault, ctl: dict[str, Any]) -> None:
        lock = self.locks[fault.target]
        with lock:
            began = self.events("fault", n=n, kind=fault.kind, params=fault.params, phase="begin")
            self.say(f"fault {n}: {fault.kind} {fault.describe()}")
            detail: dict[str, Any] = {}
            try:
                detail = self._do(fault, ctl) or {}
            except Exception as exc:  # noqa: BLE001 - a harness failure, reported
                self.errors.append(f"fault {n} ({fault.kind}): {exc!r}")
                self.say(f"fault {n} ({fault.kind}) FAILED in the harness: {exc!r}")
            self.events("fault", n=n, kind=fault.kind, phase="end", took=round(time.time() - began["t"], 2),
                        **detail)

    def _do(self, fault: sched.Fault, ctl: dict[str, Any]) -> dict[str, Any] | None:
        p = fault.params
        kind = fault.kind
        if kind == "prosody-kill":
            pid = ctl["prosody"].pid
            ctl["prosody"].down_up("kill", p["down"])
            return {"pid": pid}
        if kind == "prosody-restart":
            pid = ctl["prosody"].pid
            ctl["prosody"].down_up("stop", p["down"])
            return {"pid": pid}
        if kind == "proxy-cut":
            ctl["proxy"].cut()
            return None
        if kind == "proxy-block":
            ctl["proxy"].block()
            time.sleep(p["seconds"])
            ctl["proxy"].unblock()
            return None
        if kind == "kernel-kill":
            pid = ctl["kernel"].pid
            ctl["kernel"].kill()
            ctl["kernel"].start()
            return {"pid": pid, "new_pid": ctl["kernel"].pid}
        if kind == "kernel-restart":
            pid = ctl["kernel"].pid
            ctl["kernel"].shutdown()
            ctl["kernel"].start()
            return {"pid": pid, "new_pid": ctl["kernel"].pid}
        if kind == "service-kill":
            pid = ctl["service"].pid
            ctl["service"].kill()
            return {"pid": pid, "new_pid": ctl["service"].pid}
        if kind == "sigstop":
            which = p["process"]
            if which == "kernel":
                pid = ctl["kernel"].pid
                os.kill(pid, signal.SIGSTOP)
                time.sleep(p["seconds"])
                os.kill(pid, signal.SIGCONT)
            else:
                pid = ctl["service"].signal(signal.SIGSTOP)
                time.sleep(p["seconds"])
                if pid is not None:
                    os.kill(pid, signal.SIGCONT)
            return {"pid": pid}
        if kind == "burst":
            ctl["publisher"].burst(p["node"], p["count"])
            return None
        raise ValueError(kind)

    # ------------------------------------------------------------------ the end

    def _drain(self, kernel: KernelCtl) -> bool:
        """Wait until each hook has run the newest item published on its node (after
        it was made), then for 3 s without a new line."""
        from .checker import load_run

        deadline = time.monotonic() + self.config.drain_timeout
        while True:
            run = load_run(self.run_dir)
            waiting = run.waiting_for_drain(kernel.pid)
            if not waiting:
                break
            if time.monotonic() > deadline:
                self.say(f"drain: gave up after {self.config.drain_timeout:g} s; still waiting for {waiting}")
                return False
            time.sleep(1.0)
        sizes = None
        while True:
            now = [log_path(self.run_dir, spec).stat().st_size if log_path(self.run_dir, spec).exists() else 0
                   for spec in HOOKS]
            if now == sizes:
                return True
            sizes = now
            time.sleep(3.0)

    def _tear_down(self, server: Any, proxy: Any, publisher: PublisherCtl | None, kernel: KernelCtl | None,
                   service: ServiceCtl | None, sampler: Sampler | None, prosody_dir: Path) -> None:
        steps: list[tuple[str, Callable[[], None]]] = []
        if sampler is not None:
            steps.append(("sampler", sampler.stop))
        if publisher is not None:
            steps.append(("publisher", lambda: publisher.proc.poll() is None and publisher.stop()))
        if proxy is not None:
            steps.append(("proxy", proxy.unblock))
        if kernel is not None:
            steps.append(("kernel", lambda: kernel.pid is not None and kernel.shutdown(final=True)))
        if service is not None:
            steps.append(("service", service.stop))
        if proxy is not None:
            steps.append(("proxy", proxy.close))

        def stop_prosody() -> None:
            pid = server.pid
            server.stop()
            self.events("end", role="prosody", pid=pid, how="stopped", final=True)

        steps.append(("prosody", stop_prosody))
        for name, step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001
                self.errors.append(f"tear down {name}: {exc!r}")
        for name in ("prosody.log", "prosody.console.log"):
            src = Path(prosody_dir) / name
            if src.exists():
                shutil.copy(src, self.run_dir / "logs" / name)
        if self.config.prosody_dir is None:
            shutil.rmtree(prosody_dir, ignore_errors=True)
        self.events("finished", errors=self.errors)
        self.events.close()
        data = json.loads((self.run_dir / "config.json").read_text())
        data["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
        data["harness_errors"] = self.errors
        (self.run_dir / "config.json").write_text(json.dumps(data, indent=1))

    def _write_config(self) -> None:
        cfg = self.config
        data = {
            "seed": cfg.seed,
            "minutes": cfg.minutes,
            "rate": cfg.rate,
            "max_items": cfg.max_items,
            "service_nodes": SERVICE_NODES,
            "pep_nodes": PEP_NODES,
            "hooks": [
                {**spec.as_dict(), "log": str(log_path(self.run_dir, spec).relative_to(self.run_dir))}
                for spec in HOOKS
            ],
            "faults": [f.as_dict() for f in self.faults],
            "machine": machine(),
            "commit": _commit(),
            "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.soak", *sys.argv[1:]]),
        }
        (self.run_dir / "config.json").write_text(json.dumps(data, indent=1))
