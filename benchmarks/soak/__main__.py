"""``python -m benchmarks.soak``: a soak run, its checker's verdicts, ``benchmarks/SOAK.md``.

    python -m benchmarks.soak --minutes 30 --seed 7          # writes benchmarks/SOAK.md
    python -m benchmarks.soak --minutes 2 --seed 15 --no-write --json result.json
    python -m benchmarks.soak --check RUN_DIR                 # check a finished run again

Exit status: 0 when every verdict holds, 1 when one does not, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import checker, report
from .orchestrate import Config, Soak


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=None, help="the schedule's seed (default: drawn, and printed)")
    ap.add_argument("--minutes", type=float, default=30.0, help="minutes of publishing under faults (30)")
    ap.add_argument("--rate", type=float, default=50.0, help="items per second (50)")
    ap.add_argument("--faults", type=int, default=None,
                    help="how many faults (default: 1.6 a minute, at least one of each kind)")
    ap.add_argument("--max-items", type=int, default=5000, help="items each node keeps (5000)")
    ap.add_argument("--out", type=Path, default=None, help="run directory (default: a new temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="also write the checker's result here")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/SOAK.md")
    ap.add_argument("--check", type=Path, default=None, metavar="RUN_DIR",
                    help="only check a finished run directory (and write SOAK.md unless --no-write)")
    ap.add_argument("--quiet", action="store_true", help="print only the schedule and the verdicts")
    args = ap.parse_args(argv)

    if args.check is not None:
        run_dir = args.check
    else:
        seed = args.seed
        if seed is None:
            import random

            seed = random.SystemRandom().randrange(1, 10**6)
        try:
            soak = Soak(Config(seed=seed, minutes=args.minutes, rate=args.rate, faults=args.faults,
                               max_items=args.max_items, out=args.out, quiet=args.quiet))
        except ValueError as exc:
            print(f"soak: {exc}", file=sys.stderr)
            return 2
        run_dir = soak.run()
    result = checker.check(run_dir)
    result["run_dir"] = str(run_dir)
    for line in checker.summary_lines(result):
        print(line)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    if not args.no_write:
        print(f"wrote {report.write(result)}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
