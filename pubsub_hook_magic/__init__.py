"""XMPP PubSub hooks in Jupyter: ``%load_ext pubsub_hook_magic``, then ``%hook``.

The Python API (no IPython needed): :class:`HookManager` connects an account and runs
hooks; :class:`Hook`, :class:`HookType` describe them. See the README.
"""

from __future__ import annotations

import sys
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
_HANDOVER = "_pubsub_hook_handover"


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext pubsub_hook_magic``: register ``%hook`` with its own session.

    After ``%reload_ext`` the new magics take over the running session and hooks.
    """
    from .magics import HookMagics

    if getattr(ipython, _ATTR, None) is not None:  # loaded twice: keep one session
        unload_ipython_extension(ipython)
    handover = getattr(ipython, _HANDOVER, None)
    setattr(ipython, _HANDOVER, None)
    magics = HookMagics(ipython, handover=handover)
    ipython.register_magics(magics)
    setattr(ipython, _ATTR, magics)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext pubsub_hook_magic``: disconnect, stop the loop thread, drop ``%hook``.

    Within ``%reload_ext`` the session is handed over to the reloaded extension instead.
    """
    magics = getattr(ipython, _ATTR, None)
    if magics is None:
        return
    setattr(ipython, _ATTR, None)
    if _reloading():
        magics.close_tables()
        setattr(ipython, _HANDOVER, (magics.loop_thread, magics.manager))
    else:
        magics.close()
    registered = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        if getattr(registered[kind].get("hook"), "__self__", None) is magics:
            del registered[kind]["hook"]
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)


def _reloading() -> bool:
    """Whether IPython's ``reload_extension`` is on the call stack."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "reload_extension" and type(
            frame.f_locals.get("self")
        ).__name__ == "ExtensionManager":
            return True
        frame = frame.f_back
    return False
