"""XMPP PubSub hooks in Jupyter: ``%load_ext pubsub_hook_magic``, then ``%hook``.

The Python API (no IPython needed): :class:`HookManager` connects an account and runs
hooks; :class:`Hook`, :class:`HookType` describe them. See the README.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from .hooks import Hook, HookError, HookLoadError, HookType

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



def __getattr__(name: str) -> Any:
    """``HookManager`` and ``Trigger``, imported on first use; ``__version__``, read from
    the installed package's metadata on first use (one source: the version in
    pyproject.toml). Both cost tens of milliseconds that ``%load_ext`` does not pay."""
    if name in ("HookManager", "Trigger"):  # (imported on first use: %load_ext stays cheap)
        from .manager import HookManager
        from .runner import Trigger

        return {"HookManager": HookManager, "Trigger": Trigger}[name]
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("pubsub_hook_magic")
        except PackageNotFoundError:  # a source tree on sys.path that was never installed
            value = "0+unknown"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
    completer = getattr(ipython, "Completer", None)
    if completer is not None:  # matcher API v2: ours first, the others suppressed
        completer.custom_matchers.insert(0, magics.matcher)
    _wrap_config_magic(ipython)


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
        if magics._manager is not None:  # (a session was started: hand it over)
            setattr(ipython, _HANDOVER, (magics.loop_thread, magics.manager))
    else:
        magics.close()
    registered = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        if getattr(registered[kind].get("hook"), "__self__", None) is magics:
            del registered[kind]["hook"]
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
    _unwrap_config_magic(ipython)
    completer = getattr(ipython, "Completer", None)
    if completer is not None:
        completer.custom_matchers[:] = [
            m for m in completer.custom_matchers if getattr(m, "__self__", None) is not magics
        ]
    from . import logs

    logs.uninstall()  # a reload installs it again
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


_CONFIG_LINE = re.compile(r"^\s*HookMagics\.(\w+)\s*=\s*(.+?)\s*$", re.S)


def _wrap_config_magic(ipython: Any) -> None:
    """``%config HookMagics.x = v``: IPython's %config only logs a rejected value (the
    cell succeeds and the value stays in ``shell.config``); for our traits a bad value
    is a ``UsageError`` and changes nothing. Every other %config line is IPython's."""
    line_magics = ipython.magics_manager.magics["line"]
    original = ipython.find_line_magic("config")  # loads it if IPython registered it lazily
    if original is None or getattr(original, "_pubsub_hook_original", None) is not None:
        return

    def config(line: str = "") -> Any:
        match = _CONFIG_LINE.match(line)
        magics = getattr(ipython, _ATTR, None)
        if match is None or magics is None:
            return original(line)
        from IPython.core.error import UsageError
        from traitlets import TraitError

        name, expression = match.groups()
        if name not in magics.traits(config=True):
            choices = ", ".join(sorted(magics.traits(config=True)))
            raise UsageError(f"HookMagics has no option {name!r}: use one of {choices}")
        try:
            value = eval(expression, ipython.user_ns)  # what %config does with the value
        except Exception as exc:  # noqa: BLE001
            raise UsageError(f"HookMagics.{name}: cannot evaluate {expression!r}: {exc}") from None
        try:
            setattr(magics, name, value)
        except TraitError as exc:
            raise UsageError(f"HookMagics.{name}: {exc}") from None
        ipython.config.HookMagics[name] = value  # as %config records it

    config.__doc__ = original.__doc__
    config._pubsub_hook_original = original  # type: ignore[attr-defined]
    line_magics["config"] = config


def _unwrap_config_magic(ipython: Any) -> None:
    line_magics = ipython.magics_manager.magics["line"]
    original = getattr(line_magics.get("config"), "_pubsub_hook_original", None)
    if original is not None:
        line_magics["config"] = original
