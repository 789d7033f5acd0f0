"""A real IPython kernel (ipykernel via jupyter_client), driven as a front end would."""

from __future__ import annotations

import os
import queue
import time
from typing import Any


class BenchKernel:
    """One kernel process; cells are timed from ``execute_request`` to ``execute_reply``.

    Every ``comm_msg`` seen on iopub is recorded with its arrival time (widget updates
    sent from the extension's background thread land there).
    """

    def __init__(self, env: dict[str, str], cwd: str):
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=cwd)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.comm_msgs: list[float] = []

    @property
    def pid(self) -> int:
        return self.km.provisioner.pid  # type: ignore[union-attr]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the kernel process so far."""
        try:
            import psutil

            t = psutil.Process(self.pid).cpu_times()
            return t.user + t.system
        except ImportError:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _on_iopub(self, msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "comm_msg":
            self.comm_msgs.append(time.monotonic())

    def drain(self, seconds: float = 0.0) -> None:
        """Read iopub for ``seconds`` (at least what is already there)."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            try:
                msg = self.kc.get_iopub_msg(timeout=max(0.0, remaining) if remaining > 0 else 0)
            except queue.Empty:
                if remaining <= 0:
                    return
                continue
            self._on_iopub(msg)

    def run(self, code: str, timeout: float = 120) -> tuple[float, str, dict[str, Any]]:
        """Execute a cell; returns (seconds to execute_reply, stdout, reply content).
        Raises RuntimeError if the cell fails."""
        started = time.perf_counter()
        msg_id = self.kc.execute(code, allow_stdin=False, store_history=False)
        deadline = time.monotonic() + timeout
        while True:
            reply = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        elapsed = time.perf_counter() - started
        stdout, errors = "", ""
        while True:  # the outputs, up to the idle status of this cell
            msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            self._on_iopub(msg)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    stdout += content["text"]
                else:
                    errors += content["text"]
            elif kind == "error":
                errors += f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                break
        content = reply["content"]
        if content["status"] != "ok":
            raise RuntimeError(f"cell failed: {content.get('ename')}: {content.get('evalue')}\n{errors}\n--- {code}")
        return elapsed, stdout, content

    def close(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)


def kernel_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JPY_", "PYTEST_", "XMPP_"))
    }
    env.update(extra)
    return env
