"""The IPython extension: what ``%load_ext``, ``%unload_ext`` and ``%reload_ext`` do.

Loading registers :class:`~.magics.HookMagics` (``%hook``), its completion matcher,
and two small wrappers, both undone by unloading:

* ``%config HookMagics.x = v`` becomes strict (:class:`ConfigMagic`);
* the shell's ``extension_manager.reload_extension`` is watched
  (:class:`ReloadWatch`), so that unloading knows it is half of a reload, without
  looking at the call stack: the running session and its hooks are then handed over
  to the reloaded extension, and ``%reload_ext`` leaves exactly one live session.
  ``%unload_ext`` alone stops the session.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["ConfigMagic", "ReloadWatch", "load", "shell_client", "unload"]

#: The package whose reload is watched (the extension's module).
PACKAGE = __name__.rpartition(".")[0]
#: Attributes of the shell: the loaded magics (tests read it), and a session being
#: handed from the unloaded extension to the reloaded one.
MAGICS_ATTR = "_pubsub_hook_magics"
HANDOVER_ATTR = "_pubsub_hook_handover"


def load(ipython: Any) -> None:
    """``%load_ext``: register ``%hook``, taking over a session handed over by a reload."""
    from .magics import HookMagics

    if getattr(ipython, MAGICS_ATTR, None) is not None:  # loaded twice: keep one session
        unload(ipython)
    handover = getattr(ipython, HANDOVER_ATTR, None)
    setattr(ipython, HANDOVER_ATTR, None)
    magics = HookMagics(ipython, handover=handover)
    ipython.register_magics(magics)
    setattr(ipython, MAGICS_ATTR, magics)
    completer = getattr(ipython, "Completer", None)
    if completer is not None:  # matcher API v2: ours first, the others suppressed
        completer.custom_matchers.insert(0, magics.matcher)
    ConfigMagic.install(ipython)
    ReloadWatch.install(ipython)


def shell_client(load: bool = False) -> Any:
    """The client the ``%hook`` magics of the running IPython shell use (see
    :mod:`.client`); the extension is loaded first when ``load`` and it is not. None
    outside IPython (IPython is never imported here: a script stays without it)."""
    import sys

    if "IPython" not in sys.modules:
        return None
    shell = sys.modules["IPython"].get_ipython()
    if shell is None:
        return None
    magics = getattr(shell, MAGICS_ATTR, None)
    if magics is None and load:
        shell.extension_manager.load_extension(PACKAGE)
        magics = getattr(shell, MAGICS_ATTR, None)
    return magics.client if magics is not None else None


def unload(ipython: Any) -> None:
    """``%unload_ext``: disconnect, stop the loop thread, drop ``%hook`` and what
    :func:`load` added. Within ``%reload_ext``, hand the session over instead."""
    magics = getattr(ipython, MAGICS_ATTR, None)
    if magics is None:
        return
    setattr(ipython, MAGICS_ATTR, None)
    handover = magics.hand_over() if ReloadWatch.reloading(ipython) else None
    if handover is not None:
        setattr(ipython, HANDOVER_ATTR, handover)
    else:
        magics.close()
    registered = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        if getattr(registered[kind].get("hook"), "__self__", None) is magics:
            del registered[kind]["hook"]
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
    ConfigMagic.uninstall(ipython)
    ReloadWatch.uninstall(ipython)
    completer = getattr(ipython, "Completer", None)
    if completer is not None:
        completer.custom_matchers[:] = [
            m for m in completer.custom_matchers if getattr(m, "__self__", None) is not magics
        ]
    from . import logs

    logs.uninstall()  # a reload installs it again
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)


class ReloadWatch:
    """Stands in for the shell's ``extension_manager.reload_extension`` (an instance
    attribute over IPython's method), and says whether a reload of this package is in
    progress. IPython's reload is ``unload_extension``, ``importlib.reload``, then
    ``load_ipython_extension``: the unload cannot tell it from a plain ``%unload_ext``
    otherwise. When a future IPython has no such method, nothing is watched and a
    reload starts a new session (the hooks that are not persistent are lost)."""

    def __init__(self, original: Any):
        self.original = original
        self.active = False

    def __call__(self, module_str: str, *args: Any, **kwargs: Any) -> Any:
        if module_str != PACKAGE:
            return self.original(module_str, *args, **kwargs)
        self.active = True
        try:
            return self.original(module_str, *args, **kwargs)
        finally:
            self.active = False

    @classmethod
    def install(cls, ipython: Any) -> None:
        manager: Any = getattr(ipython, "extension_manager", None)
        current = getattr(manager, "reload_extension", None)
        if current is None or isinstance(current, cls):
            return  # (within a reload, the watch is already there and still running)
        manager.reload_extension = cls(current)

    @classmethod
    def uninstall(cls, ipython: Any) -> None:
        manager: Any = getattr(ipython, "extension_manager", None)
        current = getattr(manager, "reload_extension", None)
        if isinstance(current, cls) and not current.active:  # (a reload's load reuses it)
            del manager.reload_extension  # IPython's method again, unless it was wrapped before us
            if manager.reload_extension != current.original:
                manager.reload_extension = current.original

    @classmethod
    def reloading(cls, ipython: Any) -> bool:
        current = getattr(getattr(ipython, "extension_manager", None), "reload_extension", None)
        return isinstance(current, cls) and current.active


_CONFIG_LINE = re.compile(r"^\s*HookMagics\.(\w+)\s*=\s*(.+?)\s*$", re.S)


class ConfigMagic:
    """``%config HookMagics.x = v``: IPython's %config only logs a rejected value (the
    cell succeeds and the value stays in ``shell.config``); for our traits a bad value
    is a ``UsageError`` and changes nothing. Every other %config line is IPython's."""

    def __init__(self, ipython: Any, original: Any):
        self.ipython = ipython
        self.original = original
        self.__doc__ = original.__doc__

    def __call__(self, line: str = "") -> Any:
        ipython = self.ipython
        match = _CONFIG_LINE.match(line)
        magics = getattr(ipython, MAGICS_ATTR, None)
        if match is None or magics is None:
            return self.original(line)
        from IPython.core.error import UsageError
        from traitlets import TraitError

        name, expression = match.groups()
        if name not in magics.traits(config=True):
            choices = ", ".join(sorted(magics.traits(config=True)))
            raise UsageError(f"HookMagics has no option {name!r}: use one of {choices}")
        try:
            value = eval(expression, ipython.user_ns)  # what %config does with the value
        except Exception as exc:
            raise UsageError(f"HookMagics.{name}: cannot evaluate {expression!r}: {exc}") from None
        try:
            setattr(magics, name, value)
        except TraitError as exc:
            raise UsageError(f"HookMagics.{name}: {exc}") from None
        ipython.config.HookMagics[name] = value  # as %config records it
        return None

    @classmethod
    def install(cls, ipython: Any) -> None:
        original = ipython.find_line_magic("config")  # loads it if IPython registered it lazily
        if original is None or isinstance(original, cls):
            return
        ipython.magics_manager.magics["line"]["config"] = cls(ipython, original)

    @classmethod
    def uninstall(cls, ipython: Any) -> None:
        line_magics = ipython.magics_manager.magics["line"]
        current = line_magics.get("config")
        if isinstance(current, cls):
            line_magics["config"] = current.original
