"""The fault schedule: drawn once from the seed, before the run, and printed.

Faults start at distinct instants (at least ``MIN_GAP`` seconds apart) but their effects
overlap: a proxy block lasts 5-40 s, a SIGSTOP 2-20 s, a restarted kernel takes seconds
to connect again, and the next fault does not wait for them (only two faults on the same
target are serialised: a kernel is not killed while it is being started).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

#: Every kind of fault, with what it does (for the schedule table).
KINDS: dict[str, str] = {
    "prosody-kill": "SIGKILL Prosody, start it again after the downtime",
    "prosody-restart": "stop Prosody (SIGTERM), start it again after the downtime",
    "proxy-cut": "reset every connection through the proxy (the network drops)",
    "proxy-block": "the proxy resets live and new connections for a while",
    "kernel-kill": "SIGKILL the kernel; a new one: %load_ext, %hook connect, temporary hooks again",
    "kernel-restart": "shut the kernel down (shutdown_request); a new one, as above",
    "service-kill": "SIGKILL pubsub-hook run; start it again",
    "sigstop": "SIGSTOP the kernel or pubsub-hook run (a laptop lid), SIGCONT later",
    "burst": "2,000 items at once on one node (beside the steady rate)",
}

#: Which lock a kind takes: faults on one target never run at once.
TARGET = {
    "prosody-kill": "prosody",
    "prosody-restart": "prosody",
    "proxy-cut": "proxy",
    "proxy-block": "proxy",
    "kernel-kill": "kernel",
    "kernel-restart": "kernel",
    "service-kill": "service",
    "burst": "publisher",
}

#: Relative weights of the kinds drawn after each kind has been drawn once.
WEIGHTS = {
    "prosody-kill": 2,
    "prosody-restart": 1,
    "proxy-cut": 2,
    "proxy-block": 2,
    "kernel-kill": 2,
    "kernel-restart": 1,
    "service-kill": 2,
    "sigstop": 2,
    "burst": 1,
}

MIN_GAP = 1.5  # seconds between two fault starts
WARM_UP = 10.0  # seconds of steady load before the first fault
BURST = 2000


@dataclass
class Fault:
    at: float  # seconds after the publisher started
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        if self.kind == "sigstop":
            return self.params["process"]
        return TARGET[self.kind]

    def describe(self) -> str:
        p = self.params
        if self.kind in ("prosody-kill", "prosody-restart"):
            return f"down {p['down']:.1f} s"
        if self.kind == "proxy-block":
            return f"for {p['seconds']:.1f} s"
        if self.kind == "sigstop":
            return f"{p['process']} for {p['seconds']:.1f} s"
        if self.kind == "burst":
            return f"{p['count']} items on {p['node']}"
        return ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_faults(minutes: float) -> int:
    """About 1.6 faults a minute, and at least one of each kind."""
    return max(len(KINDS), round(minutes * 1.6))


def draw(seed: int, minutes: float, count: int, nodes: list[str]) -> list[Fault]:
    """``count`` faults between the warm-up and the last 15 % of the run (left for the
    effects to end), at least ``MIN_GAP`` apart; each kind at least once when
    ``count`` allows."""
    rng = random.Random(seed)
    duration = minutes * 60.0
    start, end = min(WARM_UP, duration * 0.1), duration * 0.85
    if end - start < count * MIN_GAP:
        raise ValueError(f"{count} faults do not fit in {minutes:g} min: raise --minutes or lower --faults")
    kinds = list(KINDS)
    if count >= len(kinds):
        chosen = kinds[:]
        names, weights = zip(*WEIGHTS.items())
        chosen += rng.choices(names, weights=weights, k=count - len(kinds))
    else:
        chosen = rng.sample(kinds, count)
    rng.shuffle(chosen)
    # Distinct instants: uniform points in a span shortened by the gaps, then spread.
    span = end - start - (count - 1) * MIN_GAP
    times = [t + i * MIN_GAP for i, t in enumerate(sorted(rng.uniform(start, start + span) for _ in range(count)))]
    faults = []
    for at, kind in zip(times, chosen):
        faults.append(Fault(round(at, 2), kind, _params(rng, kind, nodes)))
    return faults


def _params(rng: random.Random, kind: str, nodes: list[str]) -> dict[str, Any]:
    if kind in ("prosody-kill", "prosody-restart"):
        return {"down": round(rng.uniform(0.5, 5.0), 1)}
    if kind == "proxy-block":
        return {"seconds": round(rng.uniform(5.0, 40.0), 1)}
    if kind == "sigstop":
        return {"process": rng.choice(["kernel", "service"]), "seconds": round(rng.uniform(2.0, 20.0), 1)}
    if kind == "burst":
        return {"node": rng.choice(nodes), "count": BURST}
    return {}


def table(faults: list[Fault]) -> str:
    """The schedule as printed at the start."""
    lines = [f"{'#':>3} {'at (s)':>8}  {'fault':<16} parameters"]
    for n, fault in enumerate(faults, 1):
        lines.append(f"{n:>3} {fault.at:>8.1f}  {fault.kind:<16} {fault.describe()}")
    return "\n".join(lines)
