"""The soak (issue 15): steady load, a seeded schedule of mixed faults, an independent
checker. ``python -m benchmarks.soak --minutes 30 --seed 7`` (see benchmarks/README.md).

* :mod:`.schedule`: the faults, drawn from ``--seed`` (printed at the start);
* :mod:`.publisher`: the publisher process (numbered items at a steady rate, bursts);
* :mod:`.procs`: Prosody, the proxy, the kernel, ``pubsub-hook run``, RSS sampling;
* :mod:`.orchestrate`: the run itself (set up, faults, drain, tear down);
* :mod:`.checker`: reads only the logs, and gives each hook its verdict;
* :mod:`.report`: ``benchmarks/SOAK.md``.
"""
