"""Benchmarks of pubsub_hook_magic against bare slixmpp (issue 5): ``python -m benchmarks``."""
