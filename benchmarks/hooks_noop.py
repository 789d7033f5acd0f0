"""Hooks the benchmark installs (``-t python benchmarks.hooks_noop[:NAME]``).

They live in a module so that the ``python`` hook type (and ``async def``) can be
measured; ``python_file`` and ``python_code`` hooks get the same bodies as text.
"""

from __future__ import annotations

import time

#: Seconds from publish (``t`` attribute of the payload, the publisher's
#: ``time.time()``) to the hook's call, one per item (see ``record_latency``).
LATENCIES: list[float] = []


def hook(host, client, item):  # noqa: ARG001 - the hook signature
    """A no-op hook."""


async def async_hook(host, client, item):  # noqa: ARG001
    """A no-op ``async def`` hook."""


def record_latency(host, client, item):  # noqa: ARG001
    """Record publish-to-hook latency: what the bare client records per event, too."""
    now = time.time()
    LATENCIES.append(now - float(item["payload"].get("t")))


FILE_HOOK = "def hook(host, client, item):\n    pass\n"
