"""Support for tests, the quickstart and the benchmarks: not used by the product.

* :mod:`.server`: a private Prosody on loopback (``python -m pubsub_hook_magic.testing.server``).
* :mod:`.proxy`: a TCP proxy on loopback that delays, counts, cuts or refuses connections,
  to try the product at a distance and under faults.
"""
