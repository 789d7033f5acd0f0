"""Support for tests, the quickstart and the benchmarks: not used by the product.

* :mod:`.server`: a private Prosody on loopback (``python -m pubsub_hook_magic.testing.server``);
  ``TestServer(profile="debian")`` runs it with Debian's defaults (limits, XEP-0198, TLS).
* :mod:`.ejabberd`: a private ejabberd on loopback with Debian's defaults
  (``python -m pubsub_hook_magic.testing.ejabberd``).
* :mod:`.certs`: a private CA and the certificates it signs (other host names, expired).
* :mod:`.proxy`: a TCP proxy on loopback that delays, counts, cuts or refuses connections,
  to try the product at a distance and under faults.
"""
