"""Execute a notebook headless with nbclient; save it executed; print its text outputs.

    python scripts/run_notebook.py NOTEBOOK [--output OUT.ipynb] [--cwd DIR] [--timeout S]

The kernel is ``python3`` of the interpreter running this script (the .venv's when run by
scripts/quickstart.sh) and inherits this process's environment. Exits 1 if a cell fails
(or the kernel dies); the notebook is saved either way, with the outputs so far.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def text_outputs(cell: nbformat.NotebookNode) -> str:
    """The text a cell showed: its streams, results and errors."""
    parts = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            parts.append(out.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            text = out.get("data", {}).get("text/plain")
            if text:
                parts.append(text if text.endswith("\n") else text + "\n")
        elif kind == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}\n")
    return "".join(parts)


def execute(path: Path, cwd: Path, timeout: int) -> tuple[nbformat.NotebookNode, str | None]:
    """Run every cell in a fresh kernel; returns the notebook and the error, if any."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout,
        resources={"metadata": {"path": str(cwd)}},
    )
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    try:
        client.execute()
    except CellExecutionError as exc:
        return nb, str(exc)
    except Exception as exc:  # noqa: BLE001 - e.g. DeadKernelError: report, keep the outputs
        return nb, f"{type(exc).__name__}: {exc}"
    return nb, None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebook", type=Path)
    ap.add_argument("--output", type=Path, default=None, help="where to save the executed notebook")
    ap.add_argument("--cwd", type=Path, default=None, help="the kernel's working directory (default: a temp dir)")
    ap.add_argument("--timeout", type=int, default=60, help="seconds per cell (default 60)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="pubsub-hook-notebook-") as tmp:
        cwd = args.cwd or Path(tmp)
        try:
            nb, error = execute(args.notebook, cwd, args.timeout)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, args.output)

    for number, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code" or cell.get("execution_count") is None:
            continue
        first_line = cell.source.splitlines()[0] if cell.source else ""
        print(f"--- [{number}] {first_line}")
        text = text_outputs(cell)
        if text:
            print(text, end="")
    if args.output:
        print(f"\nexecuted notebook saved to {args.output}")
    if error:
        print(f"\nFAILED: a cell raised an error\n{error}", file=sys.stderr)
        return 1
    print(f"all {sum(c.cell_type == 'code' for c in nb.cells)} code cells ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
