"""The processes of a soak run and what the faults do to them.

Each controller records what happens to its processes (start, kill, stop, exit) as
lines of ``events.jsonl``; the checker reads those, never the controllers' state.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {"admin": "admin-soak-secret", "alice": "alice-soak-secret"}


class Events:
    """``events.jsonl``: one JSON object a line, each with its wall-clock time ``t``."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None = None):
        self.path = path
        self._lock = threading.Lock()
        self._file = open(path, "a", buffering=1, encoding="utf-8")
        self.echo = echo

    def __call__(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"t": round(time.time(), 3), "event": event, **fields}
        with self._lock:
            self._file.write(json.dumps(record) + "\n")
        if self.echo is not None:
            self.echo(event + " " + " ".join(f"{k}={v}" for k, v in fields.items()))
        return record

    def close(self) -> None:
        with self._lock:
            self._file.close()


class HarnessError(RuntimeError):
    """The soak itself could not go on (not a verdict on the product)."""


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "PYTEST_", "XMPP_"))}
    env.update(extra)
    return env


# ---------------------------------------------------------------------- Prosody

class ProsodyCtl:
    def __init__(self, server: Any, events: Events):
        self.server = server
        self.events = events

    @property
    def pid(self) -> int | None:
        return self.server.pid

    def start(self) -> None:
        for attempt in range(20):
            try:
                self.server.start()
                break
            except RuntimeError:
                if attempt == 19:
                    raise
                time.sleep(0.5)
        self.events("start", role="prosody", pid=self.server.pid)

    def down_up(self, how: str, down: float) -> None:
        pid = self.server.pid
        if how == "kill":
            self.server.kill()
        else:
            self.server.stop()
        self.events("end", role="prosody", pid=pid, how="killed" if how == "kill" else "stopped")
        time.sleep(down)
        self.start()


# ---------------------------------------------------------------------- the publisher

class PublisherCtl:
    def __init__(self, run_dir: Path, port: int, events: Events, rate: float, service_nodes: list[str],
                 pep_nodes: list[str], max_items: int):
        self.events = events
        self.log_path = run_dir / "publisher.log"
        self.lines: queue.Queue[str] = queue.Queue()
        stderr = open(run_dir / "logs" / "publisher.err", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.soak.publisher", "--port", str(port), "--log", str(self.log_path),
             "--rate", str(rate), "--service-nodes", ",".join(service_nodes), "--pep-nodes", ",".join(pep_nodes),
             "--max-items", str(max_items)],
            cwd=str(REPO), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
            env=_clean_env({"SOAK_ADMIN_PW": PASSWORDS["admin"], "SOAK_ALICE_PW": PASSWORDS["alice"]}),
        )
        stderr.close()
        threading.Thread(target=self._read, daemon=True, name="soak-publisher-out").start()
        self.events("start", role="publisher", pid=self.proc.pid)
        self._bursts: dict[str, queue.Queue[str]] = {}

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc.poll() is None else None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def expect(self, word: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise HarnessError(f"the publisher exited ({self.proc.returncode}); see logs/publisher.err")
                if time.monotonic() >= deadline:
                    raise HarnessError(f"the publisher did not say {word!r} within {timeout:g} s") from None
                continue
            if line.startswith(word):
                return line

    def command(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def burst(self, node: str, count: int) -> None:
        self.command(f"burst {node} {count}")
        self.expect(f"burst-done {node}", 300)

    def stop(self) -> None:
        self.command("stop")
        self.expect("stopped", 60)
        self.proc.wait(30)
        self.events("end", role="publisher", pid=self.proc.pid, how="stopped")


# ---------------------------------------------------------------------- pubsub-hook run

class ServiceCtl:
    """``pubsub-hook run`` on alice's account and store, through the proxy; restarted
    when it exits, as ``systemd`` (``Restart=always``) would."""

    def __init__(self, run_dir: Path, proxy_port: int, events: Events, say: Callable[[str], None]):
        self.run_dir = run_dir
        self.events = events
        self.say = say
        self.env = _clean_env({
            "PUBSUB_HOOK_DATA_DIR": str(run_dir / "store"),
            "XMPP_JID": "alice@localhost",
            "XMPP_HOST": "127.0.0.1",
            "XMPP_PORT": str(proxy_port),
            "XMPP_PASSWORD": PASSWORDS["alice"],
        })
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None
        self._mu = threading.RLock()
        self._handled: set[int] = set()  # pids whose end we caused (and recorded)
        self._stopping = False
        self._n = 0
        self._watch = threading.Thread(target=self._supervise, daemon=True, name="soak-service-watch")

    @property
    def pid(self) -> int | None:
        proc = self.proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> None:
        with self._mu:
            self._n += 1
            self.log = self.run_dir / "logs" / f"service-{self._n:02d}.log"
            out = open(self.log, "ab")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pubsub_hook_magic.cli", "run", "--no-tls"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=str(self.run_dir),
            )
            out.close()
            self.events("start", role="service", pid=self.proc.pid, log=self.log.name)
        if not self._watch.is_alive():
            self._watch.start()

    def wait_connected(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log is not None and "connected as" in self.log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise HarnessError("pubsub-hook run did not connect; see its log")

    def _supervise(self) -> None:
        while not self._stopping:
            time.sleep(0.2)
            with self._mu:
                proc = self.proc
                if proc is None or self._stopping or proc.poll() is None or proc.pid in self._handled:
                    continue
                self._handled.add(proc.pid)
                self.events("end", role="service", pid=proc.pid, how=f"exited {proc.returncode}")
                self.say(f"pubsub-hook run (pid {proc.pid}) exited with {proc.returncode}: started again")
            time.sleep(1.0)
            with self._mu:
                if not self._stopping:
                    self.start()

    def kill(self) -> None:
        with self._mu:
            proc = self.proc
            if proc is None:
                return
            self._handled.add(proc.pid)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                self.events("end", role="service", pid=proc.pid, how="killed")
            self.start()

    def signal(self, signum: int) -> int | None:
        with self._mu:
            pid = self.pid
            if pid is not None:
                os.kill(pid, signum)
            return pid

    def stop(self) -> None:
        with self._mu:
            self._stopping = True
            proc = self.proc
            if proc is None:
                return
            self._handled.add(proc.pid)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                    how = f"stopped {proc.returncode}"
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    how = "killed"  # (did not stop within 30 s of SIGTERM)
                self.events("end", role="service", pid=proc.pid, how=how, final=True)


# ---------------------------------------------------------------------- the kernel

#: Run in each new kernel after %load_ext: the product's log records of this process go
#: to a file (INFO and up; slixmpp's WARNING and up), and every trigger that is not a
#: plain run (gap, dropped, error, timeout, skipped) is written to a reports file.
KERNEL_HARNESS = """\
import logging as _soak_logging
_soak_handler = _soak_logging.FileHandler({log!r})
_soak_handler.setFormatter(_soak_logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
_soak_logging.getLogger("pubsub_hook_magic").addHandler(_soak_handler)
_soak_logging.getLogger("pubsub_hook_magic").setLevel(_soak_logging.INFO)
_soak_handler_x = _soak_logging.FileHandler({log!r})
_soak_handler_x.setLevel(_soak_logging.WARNING)
_soak_handler_x.setFormatter(_soak_handler.formatter)
_soak_logging.getLogger("slixmpp").addHandler(_soak_handler_x)
def _soak_report(runner, trigger, _path={reports!r}):
    # Self-contained (its imports inside): it may run while IPython empties the
    # notebook's namespace at shutdown.
    import json, os, time
    outcome = str(getattr(trigger.outcome, "value", trigger.outcome))
    if outcome == "ok":
        return
    with open(_path, "a") as f:
        f.write(json.dumps({{"t": time.time(), "pid": os.getpid(), "hook": runner.hook.id,
                             "node": runner.hook.node, "arg": runner.hook.arg, "outcome": outcome,
                             "item": trigger.item_id, "error": trigger.error}}) + "\\n")
_soak_magics = get_ipython()._pubsub_hook_magics
_soak_magics.loop_thread.call_soon(_soak_magics.manager.add_trigger_listener, _soak_report)
"""


class CellError(RuntimeError):
    pass


class KernelCtl:
    """One IPython kernel at a time (jupyter_client), alice's notebook."""

    def __init__(self, run_dir: Path, proxy_port: int, events: Events, say: Callable[[str], None],
                 temp_hooks: list[tuple[str, str]]):
        self.run_dir = run_dir
        self.proxy_port = proxy_port
        self.events = events
        self.say = say
        #: (name, the %hook create cell) of each temporary hook, made at each start
        self.temp_hooks = temp_hooks
        self.km: Any = None
        self.kc: Any = None
        self.pid: int | None = None
        self._n = 0
        self.cells_log = open(run_dir / "logs" / "kernel-cells.log", "a", buffering=1, encoding="utf-8")

    def connect_line(self) -> str:
        return (f"%hook connect alice@localhost --host 127.0.0.1 --port {self.proxy_port} "
                "--password-env ALICE_PW --no-tls --timeout 20")

    def start(self, deadline: float = 300.0) -> None:
        from jupyter_client.manager import KernelManager

        self._n += 1
        env = _clean_env({"PUBSUB_HOOK_DATA_DIR": str(self.run_dir / "store"), "ALICE_PW": PASSWORDS["alice"],
                          "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
        out = open(self.run_dir / "logs" / f"kernel-{self._n:02d}.out", "ab")
        km = KernelManager(kernel_name="python3")
        km.start_kernel(env=env, cwd=str(self.run_dir), stdout=out, stderr=out)
        out.close()
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        self.km, self.kc, self.pid = km, kc, km.provisioner.pid
        self.events("start", role="kernel", pid=self.pid, n=self._n)
        until = time.monotonic() + deadline
        self.cell("%load_ext pubsub_hook_magic")
        logs = self.run_dir / "logs"
        self.cell(KERNEL_HARNESS.format(log=str(logs / f"kernel-{self._n:02d}.log"),
                                        reports=str(logs / "kernel-reports.jsonl")))
        self.retry(self.connect_line(), until)
        for name, create in self.temp_hooks:
            begin = time.time()
            out = self.retry(create, until, made=name)
            self.events("temp-hook", name=name, pid=self.pid, begin=round(begin, 3), end=round(time.time(), 3),
                        answer=out.strip()[:200])

    def retry(self, code: str, until: float, made: str | None = None) -> str:
        """Run a cell until it succeeds (the session may be reconnecting, the proxy
        blocked, the server down: what a user would do). ``made``: the cell creates
        the hook of that name; a failed attempt that made it anyway (an answer that
        came too late) is not repeated."""
        while True:
            try:
                return self.cell(code, timeout=60)
            except CellError as exc:
                if time.monotonic() > until:
                    raise HarnessError(f"kernel: {code.splitlines()[0]} kept failing: {exc}") from None
                self.cells_log.write(f"{time.time():.3f} retry after: {exc}\n")
                time.sleep(1.0)
                if made is not None:
                    try:
                        if any(made in h["arg"] for h in self.hook_list()):
                            return "(made by the attempt that failed)"
                    except (CellError, ValueError):
                        pass

    def cell(self, code: str, timeout: float = 60) -> str:
        kc = self.kc
        msg_id = kc.execute(code, allow_stdin=False, store_history=False)
        deadline = time.monotonic() + timeout
        stdout, stderr, error = "", "", None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HarnessError(f"kernel cell did not finish in {timeout} s: {code.splitlines()[0]}")
            try:
                msg = kc.get_iopub_msg(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if msg["parent_header"].get("msg_id") != msg_id:
                    self.cells_log.write(f"{time.time():.3f} (background) {content['text']}")
                elif content["name"] == "stdout":
                    stdout += content["text"]
                else:
                    stderr += content["text"]
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
                if content["ename"] != "UsageError":
                    stderr += "\n".join(content.get("traceback", []))
            elif kind == "status" and content["execution_state"] == "idle":
                break
        # The reply says whether the cell failed: a UsageError comes as text on stderr,
        # with no error message on iopub.
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HarnessError(f"kernel cell got no reply in {timeout} s: {code.splitlines()[0]}")
            try:
                reply = kc.get_shell_msg(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        if reply["content"]["status"] != "ok" and error is None:
            content = reply["content"]
            error = f"{content.get('ename') or 'error'}: {content.get('evalue') or stderr.strip()[-300:]}"
        self.cells_log.write(f"{time.time():.3f} pid {self.pid} {code.splitlines()[0][:100]}\n")
        if stdout or stderr:
            self.cells_log.write(stdout + stderr + ("\n" if not (stdout + stderr).endswith("\n") else ""))
        if error is not None:
            raise CellError(error)
        return stdout

    def _forget(self) -> None:
        try:
            self.kc.stop_channels()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001 - already dead
            pass
        self.km = self.kc = self.pid = None

    def kill(self) -> None:
        pid = self.pid
        os.kill(pid, signal.SIGKILL)
        self.km.provisioner.process.wait()
        self.events("end", role="kernel", pid=pid, how="killed")
        self._forget()

    def shutdown(self, final: bool = False) -> None:
        """A graceful shutdown (what a notebook's restart does): a shutdown_request,
        then jupyter_client's wait (SIGKILL after ``shutdown_wait_time``, 5 s)."""
        pid = self.pid
        os.kill(pid, signal.SIGCONT)
        process = self.km.provisioner.process
        begin = time.time()
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=False)
        except Exception as exc:  # noqa: BLE001
            self.say(f"kernel shutdown: {exc!r}")
        rc = process.poll() if process is not None else None
        if rc is None and process is not None:
            process.kill()
            rc = process.wait()
        how = "killed" if rc == -signal.SIGKILL else f"stopped {rc}"
        self.events("end", role="kernel", pid=pid, how=how, took=round(time.time() - begin, 2), final=final)
        self.km = self.kc = self.pid = None

    def hook_list(self) -> list[dict[str, Any]]:
        return json.loads(self.cell("%hook list -O json"))


# ---------------------------------------------------------------------- RSS and CPU

class Sampler:
    """RSS and CPU time of each role's current process, every ``every`` seconds."""

    def __init__(self, path: Path, roles: dict[str, Callable[[], int | None]], every: float = 10.0):
        self.path = path
        self.roles = roles
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="soak-sampler")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def sample(self) -> None:
        import psutil

        with open(self.path, "a", encoding="utf-8") as f:
            now = time.time()
            for role, pid_of in self.roles.items():
                pid = pid_of()
                if pid is None:
                    continue
                try:
                    proc = psutil.Process(pid)
                    rss = proc.memory_info().rss
                    cpu = proc.cpu_times()
                except psutil.Error:
                    continue
                f.write(json.dumps({"t": round(now, 3), "role": role, "pid": pid, "rss": rss,
                                    "cpu": round(cpu.user + cpu.system, 3)}) + "\n")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - sampling must not stop the run
                pass
            self._stop.wait(self.every)
