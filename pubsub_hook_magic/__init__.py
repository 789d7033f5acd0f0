"""XMPP PubSub hooks in Jupyter: ``%load_ext pubsub_hook_magic``, then ``%hook``.

The Python API (no IPython needed): :class:`HookManager` connects an account and runs
hooks; :class:`Hook`, :class:`HookType` describe them. See the README.
"""

from __future__ import annotations

from typing import Any

from .hooks import Hook, HookError, HookLoadError, HookType
from .manager import HookManager
from .runner import Trigger

__all__ = [
    "Hook",
    "HookError",
    "HookLoadError",
    "HookManager",
    "HookType",
    "Trigger",
    "load_ipython_extension",
    "unload_ipython_extension",
]

__version__ = "0.1.0"

_ATTR = "_pubsub_hook_magics"


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext pubsub_hook_magic``: register ``%hook`` with its own session."""
    from .magics import HookMagics

    if getattr(ipython, _ATTR, None) is not None:  # loaded twice: keep one session
        unload_ipython_extension(ipython)
    magics = HookMagics(ipython)
    ipython.register_magics(magics)
    setattr(ipython, _ATTR, magics)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext pubsub_hook_magic``: disconnect, stop the loop thread, drop ``%hook``."""
    magics = getattr(ipython, _ATTR, None)
    if magics is None:
        return
    setattr(ipython, _ATTR, None)
    magics.close()
    registered = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        if getattr(registered[kind].get("hook"), "__self__", None) is magics:
            del registered[kind]["hook"]
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
