"""XMPP PubSub hooks in Jupyter: ``%load_ext pubsub_hook_magic``, then ``%hook``.

The Python API (no IPython needed): :func:`connect` logs in and returns a
:class:`Session` whose methods are ``%hook``'s sub-commands, called synchronously from a
cell or a script (``@session.hook("news")`` makes a function a hook); :func:`session`
returns the one ``connect()`` or ``%hook connect`` made. :class:`HookManager` is the
async API under it; :class:`Hook`, :class:`HookType` describe hooks. See the README.

The IPython extension (load, unload, and the session handed over by ``%reload_ext``)
is :mod:`.extension`.

The map (docs/ARCHITECTURE.md has the whole table). Two threads: the kernel's, and the
session's loop thread, which owns everything the engine holds; the kernel's thread
crosses over only through :class:`.loopthread.LoopThread` and reads immutable
:mod:`.snapshot` values.

* the façade: :mod:`.manager` (``HookManager``), :mod:`.actions`;
* the engine (session loop): :mod:`.engine` (the API), :mod:`.registry` (the one
  index), :mod:`.runner` with :mod:`.admission`, :mod:`.execution`, :mod:`.retries`,
  :mod:`.sourcewatch`; :mod:`.live` (the event path), :mod:`.catchup`,
  :mod:`.positions`, :mod:`.background`;
* XMPP: :mod:`.xmpp_session`, :mod:`.xmpp_plugin` (the only one touching slixmpp's
  internals), :mod:`.xmpp_reconnect`, :mod:`.xmpp_requests`, :mod:`.subscriptions`,
  :mod:`.peers`;
* storage and processes: :mod:`.store`, :mod:`.deadletters`, :mod:`.ownership`,
  :mod:`.persistence` (the coordinator);
* vocabulary: :mod:`.states`, :mod:`.hooks`, :mod:`.events`, :mod:`.trigger`,
  :mod:`.summary`;
* commands and front ends: :mod:`.commands` (the one registry), :mod:`.magics`,
  :mod:`.table`, :mod:`.cli`, :mod:`.extension`.
"""

from __future__ import annotations

from typing import Any

from .hooks import Hook, HookError, HookLoadError, HookType

__all__ = [
    "Hook",
    "HookError",
    "HookLoadError",
    "HookManager",
    "HookType",
    "Session",
    "Trigger",
    "connect",
    "load_ipython_extension",
    "session",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    """``HookManager`` and ``Trigger``, imported on first use; ``__version__``, read from
    the installed package's metadata on first use (one source: the version in
    pyproject.toml). Both cost tens of milliseconds that ``%load_ext`` does not pay."""
    if name == "Session":  # the synchronous API's session (.api)
        from .api import Session

        return Session
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


def connect(jid: str | None = None, **options: Any) -> Any:
    """Log in to an XMPP account and return its :class:`~.api.Session` (in IPython, the
    session ``%hook`` uses): see :func:`.api.connect` for the options (``password``,
    ``password_env``, ``host``, ``port``, ``tls``, ``direct_tls``, ``ca_file``,
    ``timeout``)."""
    from . import api

    return api.connect(jid, **options)




def session(account: str | None = None) -> Any:
    """The :class:`~.api.Session` that ``connect()`` or ``%hook connect`` made (the
    default account's, or ``account``'s); an error that says to connect first when
    there is none."""
    from . import api

    return api.session(account)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext pubsub_hook_magic``: register ``%hook`` with its own session.

    After ``%reload_ext`` the new magics take over the running session and hooks.
    """
    from .extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext pubsub_hook_magic``: disconnect, stop the loop thread, drop ``%hook``.

    Within ``%reload_ext`` the session is handed over to the reloaded extension instead.
    """
    from .extension import unload

    unload(ipython)
