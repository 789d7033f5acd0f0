"""The soak's hooks: each appends ``PID ITEM-ID TIME`` to its own log, one line per
item it runs, written and closed (flushed) before the hook returns. These logs are
the checker's evidence, not the product's history."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SERVICE = "pubsub.localhost"
ACCOUNT = "alice@localhost"

SERVICE_NODES = ["s0", "s1", "s2"]
PEP_NODES = ["p0", "p1"]  # alice's own PEP


@dataclass(frozen=True)
class HookSpec:
    name: str
    node: str
    persistent: bool
    #: file: python_file, sync; file-async: python_file, ``async def`` that writes its
    #: line, then awaits 5 ms (an item in flight that a SIGKILL can catch); code:
    #: python_code; code-async: python_code with ``await``.
    kind: str

    @property
    def pep(self) -> bool:
        return self.node in PEP_NODES

    @property
    def service(self) -> str:
        return ACCOUNT if self.pep else SERVICE

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "service": self.service, "pep": self.pep}


HOOKS = [
    HookSpec("P-s0", "s0", True, "file"),
    HookSpec("P-s1", "s1", True, "file-async"),
    HookSpec("P-s2", "s2", True, "code"),
    HookSpec("P-p0", "p0", True, "file"),
    HookSpec("T-s0", "s0", False, "file"),
    HookSpec("T-s1", "s1", False, "code-async"),
    HookSpec("T-p1", "p1", False, "code"),
]

_WRITE = 'f.write(f"{os.getpid()} {item[\'id\']} {time.time():.3f}\\n")'


def log_path(run_dir: Path, spec: HookSpec) -> Path:
    return run_dir / "hooks" / f"{spec.name}.log"


def create_cell(run_dir: Path, spec: HookSpec) -> str:
    """The cell a user would run to make this hook (writing its file first)."""
    log = str(log_path(run_dir, spec))
    flags = ("" if spec.pep else f"-s {SERVICE} ") + f"-n {spec.node}" + (" -P" if spec.persistent else "")
    if spec.kind.startswith("file"):
        path = run_dir / "hooks" / f"{spec.name}.py"
        if spec.kind == "file":
            body = (
                "import os\nimport time\n\n"
                f"LOG = {log!r}\n\n\n"
                "def hook(host, client, item):\n"
                "    with open(LOG, \"a\") as f:\n"
                f"        {_WRITE}\n"
            )
        else:
            body = (
                "import asyncio\nimport os\nimport time\n\n"
                f"LOG = {log!r}\n\n\n"
                "async def hook(host, client, item):\n"
                "    with open(LOG, \"a\") as f:\n"
                f"        {_WRITE}\n"
                "    await asyncio.sleep(0.005)  # in flight: a SIGKILL now runs it again elsewhere\n"
            )
        path.write_text(body, encoding="utf-8")
        return f"%hook create {flags} -t python_file {path}"
    code = "import asyncio, os, time\n" if spec.kind == "code-async" else "import os, time\n"
    if spec.kind == "code-async":
        code += "await asyncio.sleep(0)\n"
    code += f"with open({log!r}, \"a\") as _soak_f:\n    {_WRITE.replace('f.write', '_soak_f.write')}\n"
    return f"%%hook create {flags}\n{code}"
