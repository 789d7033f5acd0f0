"""The synchronous Python API, for notebook cells and plain scripts.

::

    import pubsub_hook_magic as phm

    xmpp = phm.connect("alice@example.org", password_env="ALICE_PW")

    @xmpp.hook("news", service="pubsub.example.org")
    def on_news(host, client, item):
        print(item["id"])

    xmpp.publish("news", "<entry xmlns='urn:example'/>", service="pubsub.example.org")
    xmpp.list()          # in a notebook: the live table
    xmpp.delete(on_news)

Each call runs on the session's loop thread and waits for its result (a timeout, and
Ctrl-C, cancel it), from any thread but that loop: :class:`Session` is the same session
``%hook`` uses in IPython (``%hook list`` shows the hooks a cell's decorator made), and
its own in a script. Calls take the options of the ``%hook`` sub-command of the same
name as keywords, with the same checks and the same error texts: a one-line
``UsageError`` in IPython, a :class:`~.hooks.HookError` elsewhere.

Running a cell again replaces the hooks it made instead of adding more (:mod:`.cells`).

The async twin is :class:`~.manager.HookManager` (``session.manager``), whose
coroutines run on the session's loop: awaited inside a hook (``await host.publish(...)``:
a hook runs on that loop, where these synchronous calls are refused), or run from a cell
with ``session.run(session.manager.publish(None, "news", xml))``. From async code on
another loop (a cell's top-level ``await``), ``await session.aio.publish(...)`` and the
other calls wait in a worker thread, never blocking that loop.
"""

from __future__ import annotations

import argparse
import asyncio
import builtins
import functools
import getpass
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .cells import Created
from .client import HookClient
from .hooks import HookError

if TYPE_CHECKING:
    from .hooks import Hook
    from .manager import HookManager
    from .summary import HookSummary
    from .trigger import Trigger

__all__ = ["HookList", "Session", "connect", "session"]

F = TypeVar("F", bound=Callable[..., Any])

#: The options of ``%hook create``, as keywords of :meth:`Session.create`.
CREATE_OPTIONS = ("catch_up", "retry", "retry_delay", "events", "where", "namespaces")


def _user_errors(method: F) -> F:
    """A ``HookError`` raised by ``method`` as the client's error class (in IPython one
    that shows as a one-line ``UsageError``)."""

    @functools.wraps(method)
    def wrapper(self: Session, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except HookError as exc:
            error_class = self.client.error_class
            if isinstance(exc, error_class):
                raise
            raise error_class(str(exc)) from None

    return wrapper  # type: ignore[return-value]


class HookList(list):  # (of HookSummary)
    """The hooks of :meth:`Session.list`: a list of :class:`~.summary.HookSummary`; in a
    notebook, displayed as the live hooks table."""

    def __init__(self, summaries: list[HookSummary], text: str, show_table: Callable[[str], bool] | None):
        super().__init__(summaries)
        self.text = text
        self._show_table = show_table

    def _ipython_display_(self) -> None:
        if self._show_table is None or not self._show_table(self.text):
            print(self.text)

    def __str__(self) -> str:
        return self.text


class Session:
    """One account's hooks, called synchronously: what ``%hook`` does, as methods.

    Made by :func:`connect` (or :func:`session`); ``account`` None is the default
    account (the first connected), as ``%hook`` without ``-p``."""

    def __init__(self, client: HookClient, account: str | None = None):
        self.client = client
        self.account = account

    def __repr__(self) -> str:
        return f"<pubsub_hook_magic.Session {self.jid or 'not connected'}>"

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    @property
    def manager(self) -> HookManager:
        """The account's :class:`~.manager.HookManager` (the async API, on the
        session's loop)."""
        return self.client.account(self.account)

    def _manager(self, hook_id: str | None = None) -> HookManager:
        return self.client.account(self.account, hook_id)

    @property
    def jid(self) -> str | None:
        """The account's bare JID (None when not connected)."""
        return self._manager().jid

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """Run a coroutine of :attr:`manager` on the session's loop and wait for it."""
        return self.client.run(coro, timeout)

    @property
    def aio(self) -> AsyncSession:
        """This session's calls as coroutines, for async code on another loop (each
        waits in a worker thread, so the caller's loop never blocks)."""
        return AsyncSession(self)

    # ------------------------------------------------------------------ hooks

    def hook(self, node: str, *, service: str | None = None, **options: Any) -> Callable[[F], F]:
        """Decorator: make the function a hook on ``node`` (of ``service``; default:
        your PEP), called as ``f(host, client, item)`` for every item (``async def``
        too). Takes :meth:`create`'s options; returns the function unchanged.

        Listed by the function's name. Running the cell again replaces the hook (same
        id when nothing changed; the new code, with positions and history kept, when
        only the body did)."""

        def decorate(func: F) -> F:
            self.create(node, func=func, service=service, **options)
            return func

        return decorate

    @_user_errors
    def create(
        self,
        node: str,
        arg: str | None = None,
        *,
        func: Callable[..., Any] | None = None,
        service: str | None = None,
        type: str | None = None,
        persistent: bool = False,
        again: bool = False,
        **options: Any,
    ) -> Hook:
        """Create a hook, as ``%hook create``: ``arg`` is the module (``type="python"``,
        the default), the file (``"python_file"``) or the code (``"python_code"``);
        ``func`` a function (``"python_function"``). Options: ``catch_up``, ``retry``,
        ``retry_delay``, ``events``, ``where``, ``namespaces``. ``persistent=True``
        stores it (a function's source is stored). An identical hook is refused unless
        ``again=True``. Returns the :class:`~.hooks.Hook`."""
        made = self.create_hook(
            node, arg, func=func, service=service, type=type, persistent=persistent, again=again, **options
        )
        for line in made.lines():
            self.client.say(line)
        return made.hook

    def create_hook(
        self,
        node: str,
        arg: str | None = None,
        *,
        func: Callable[..., Any] | None = None,
        service: str | None = None,
        type: str | None = None,
        persistent: bool = False,
        again: bool = False,
        **options: Any,
    ) -> Created:
        """:meth:`create`, returning what was done (created, kept, replaced) instead of
        saying it: the ``%hook create`` magic prints :meth:`.Created.lines`."""
        unknown = sorted(set(options) - set(CREATE_OPTIONS))
        if unknown:
            raise HookError(
                f"create() got {', '.join(unknown)}: its options are {', '.join(CREATE_OPTIONS)}"
            )
        if func is not None:
            if type not in (None, "python_function"):
                raise HookError(f"func= makes a python_function hook, not {type}: leave out type=")
            type = "python_function"
        elif type == "python_function":
            raise HookError("a python_function hook needs the function: pass func=...")
        hook_type = type or "python"
        if arg is None:
            if func is None:
                raise HookError(f"a {hook_type} hook needs its argument (arg=...): a module, file or code")
            arg = getattr(func, "__name__", "")
        client = self.client
        client.apply_config()
        manager = self._manager()
        return client.run(
            manager.place_hook(
                service or None, node, hook_type, arg, persistent=persistent, again=again, func=func,
                cell=client.cell_run(), **options,
            )
        )

    @_user_errors
    def list(self) -> HookList:
        """Every hook of the account, with its statistics and recent triggers (typed
        :class:`~.summary.HookSummary` records); displayed, the live table."""
        from . import formatting

        manager = self._manager()
        summaries = [{**s, "account": manager.jid} for s in self.client.call(manager.list_hooks)]
        return HookList(summaries, formatting.hooks_text(summaries), self.client.show_table)  # type: ignore[arg-type]

    @_user_errors
    def delete(
        self,
        hook_or_id: Any = None,
        *,
        node: str | None = None,
        service: str | None = None,
        type: str | None = None,
        arg: str | None = None,
        events: str | None = None,
        every: bool = False,
    ) -> int:
        """Delete a hook (its id, the :class:`~.hooks.Hook`, its summary, or a function
        made a hook), or, as ``%hook delete``, every hook on ``node`` (or a pattern of
        nodes, ``"sensors/*"``) narrowed by ``type`` and ``arg``; ``every=True``: every
        hook of the account. Returns how many were deleted."""
        hook_id = self._hook_id(hook_or_id) if hook_or_id is not None else None
        if hook_id is None and not node and not every:
            raise HookError("give the hook (its id), node=... or every=True: delete() deletes nothing by itself")
        manager = self._manager(hook_id)
        return self.client.run(
            manager.delete_hooks(service, node, type, arg, hook_id=hook_id, events=events, every=every)
        )

    @_user_errors
    def pause(self, hook: Any) -> Hook:
        """Pause a hook: the items it skips are counted."""
        hook_id = self._hook_id(hook)
        return self.client.run(self._manager(hook_id).set_paused(hook_id, True))

    @_user_errors
    def resume(self, hook: Any) -> builtins.list[str]:
        """Resume a paused hook, or one kept from its node (subscribe again, look for
        a deleted node); returns what was done."""
        hook_id = self._hook_id(hook)
        return self.client.run(self._manager(hook_id).resume(hook_id))

    def _hook_id(self, hook: Any) -> str:
        """The id of ``hook``: an id, a Hook, a summary, or a function made a hook."""
        if isinstance(hook, str):
            return hook
        if isinstance(hook, Mapping) and "id" in hook:
            return str(hook["id"])
        if isinstance(getattr(hook, "id", None), str):
            return hook.id
        if callable(hook):
            name = getattr(hook, "__name__", None)
            found = [
                h for m in self.client.all_managers() for h in m.hooks()
                if str(h.type) == "python_function" and (getattr(h, "function", None) is hook or h.arg == name)
            ]
            if len(found) == 1:
                return found[0].id
            if not found:
                raise HookError(f"{name} is not a hook: list() shows the hooks")
            ids = ", ".join(h.id for h in found)
            raise HookError(f"{name} is {len(found)} hooks ({ids}): give the id of one")
        raise HookError(f"not a hook: {hook!r} (give a hook id, a Hook, or a function made a hook)")

    # ------------------------------------------------------------------ runs

    @_user_errors
    def replay(self, hook: Any, item: str | None = None, *, last: int | None = None) -> builtins.list[Trigger]:
        """Run a hook again on its last item, on ``item`` (an id), or on the node's
        ``last`` stored items; returns the runs' triggers."""
        hook_id = self._hook_id(hook)
        return self.client.run(self._manager(hook_id).replay(hook_id, item, last))

    @_user_errors
    def test(self, hook: Any, payload: str, *, item_id: str | None = None) -> Trigger:
        """Run a hook on an item built from ``payload`` (XML), without the network."""
        hook_id = self._hook_id(hook)
        return self.client.run(self._manager(hook_id).test(hook_id, payload, item_id))

    @_user_errors
    def failed(self, hook: Any) -> builtins.list[dict[str, Any]]:
        """The items a hook could not run after its retries (its dead letters)."""
        hook_id = self._hook_id(hook)
        return self.client.call(self._manager(hook_id).failed, hook_id)

    @_user_errors
    def retry(self, hook: Any, item: str | None = None, *, discard: bool = False) -> builtins.list[Trigger] | int:
        """Run a hook again on its failed items (or only ``item``); those that succeed
        are removed. ``discard=True`` drops them instead and returns how many."""
        hook_id = self._hook_id(hook)
        manager = self._manager(hook_id)
        if discard:
            return self.client.run(manager.discard_failed(hook_id, item))
        waiting = len(self.client.call(manager.failed, hook_id))
        limit = self.client.timeout + waiting * self.client.time_limit
        return self.client.run(manager.retry_failed(hook_id, item), limit)

    # ------------------------------------------------------------------ items, nodes

    @_user_errors
    def publish(self, node: str, payload: str, *, service: str | None = None, id: str | None = None) -> str:
        """Publish an item (``payload``: one XML element) to ``node``; returns its id."""
        return self.client.run(self._manager().publish(service, node, payload, id))

    @_user_errors
    def retract(self, node: str, item_id: str, *, service: str | None = None) -> None:
        """Retract the item ``item_id`` from ``node``."""
        self.client.run(self._manager().retract(service, node, item_id))

    @_user_errors
    def nodes(self, service: str | None = None) -> builtins.list[tuple[str, str]]:
        """The nodes ``service`` offers (default: your PEP), as ``(node, name)``."""
        return self.client.run(self._manager().nodes(service))

    @_user_errors
    def create_node(
        self,
        node: str,
        *,
        service: str | None = None,
        access_model: str | None = None,
        publish_model: str | None = None,
        fields: Mapping[str, str] | None = None,
        **config: Any,
    ) -> tuple[str, str]:
        """Create ``node`` (on ``service``; default: your PEP), as ``%hook node
        create``: ``max_items=10`` is the field ``pubsub#max_items``; ``fields`` gives
        fields by their full names. Returns ``(service, node)``."""
        from .commands import ACCESS_MODELS, PUBLISH_MODELS, node_config

        for name, value, allowed in (
            ("access_model", access_model, ACCESS_MODELS),
            ("publish_model", publish_model, PUBLISH_MODELS),
        ):
            if value is not None and value not in allowed:
                raise HookError(f"{name} {value!r} is not one of {', '.join(allowed)}")
        settings = argparse.Namespace(
            field=[(key, str(value)) for key, value in config.items()],
            full_prefix=False,
            access_model=access_model,
            publish_model=publish_model,
        )
        return self.client.run(
            self._manager().create_node(service, node, {**node_config(settings), **(fields or {})})
        )

    # ------------------------------------------------------------------ the session

    @_user_errors
    def status(self) -> dict[str, Any]:
        """The session's state and totals."""
        return self.client.call(self._manager().status)

    @_user_errors
    def disconnect(self) -> None:
        """Close the account's session: temporary hooks are dropped, persistent ones
        stay stored."""
        self.client.run(self._manager().disconnect())

    @_user_errors
    def log(self, last: int = 20) -> builtins.list[str]:
        """The last log records of the extension and slixmpp (warnings and errors;
        ``%hook log``), a line each. In a notebook they are kept for this, never printed
        into cells; outside IPython they go to Python's ``logging``."""
        records = self.client.log_records
        if records is None:
            raise HookError(
                "outside IPython the records go to Python's logging: call "
                "logging.basicConfig(level='INFO') to see them"
            )
        return [entry.line() for entry in records.recent(max(1, last))]

    def wait(self, seconds: float | None = None) -> None:
        """Block while the hooks run (a script's main loop): ``seconds``, or until
        Ctrl-C."""
        try:
            threading.Event().wait(seconds)
        except KeyboardInterrupt:
            return


class AsyncSession:
    """:class:`Session`'s calls as coroutines (``await xmpp.aio.publish(...)``)."""

    def __init__(self, sync: Session):
        self._sync = sync

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._sync, name)
        if not callable(method):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        call.__name__ = name
        call.__doc__ = method.__doc__
        return call


# ---------------------------------------------------------------------- connect


_script_client: HookClient | None = None
_script_lock = threading.Lock()


def _client(start: bool) -> HookClient | None:
    """The client of this process: in IPython the ``%hook`` magics' (the extension is
    loaded if it is not: ``start``), else the script's own."""
    global _script_client
    from .extension import shell_client

    found = shell_client(load=start)
    if found is not None:
        return found
    with _script_lock:
        if _script_client is None and start:
            _script_client = HookClient()
        return _script_client


def connect(
    jid: str | None = None,
    *,
    password: str | None = None,
    password_env: str | None = None,
    host: str | None = None,
    port: int | None = None,
    tls: bool = True,
    direct_tls: bool = False,
    ca_file: str | None = None,
    timeout: float = 30,
    default: bool = False,
) -> Session:
    """Log in to an XMPP account (``jid``, else ``$XMPP_JID``) and return its
    :class:`Session`; its persistent hooks are installed again.

    In IPython it is the session ``%hook`` uses. The password is ``password``, else
    the variable ``password_env``, else ``$XMPP_PASSWORD``, else a prompt where one can
    be shown; it is never stored, printed or logged. ``tls=False`` allows a plaintext
    stream (a test server on loopback only). Connecting an account that is connected
    returns its session (a cell run again); another JID adds an account."""
    client = _client(start=True)
    assert client is not None
    wanted = jid.split("/", 1)[0] if jid else None
    try:
        if wanted is not None and wanted in client.accounts:
            manager = client.call(client.accounts.resolve, wanted)
            if manager.state != "failed":
                return Session(client, wanted)
        from .commands.session import connect_account

        args = argparse.Namespace(
            jid=jid, profile=None, password=password, password_env=password_env, host=host, port=port,
            no_tls=not tls, direct_tls=direct_tls, ca_file=ca_file, timeout=timeout, default=default,
        )
        can_prompt = client.shell is not None or (sys.stdin is not None and sys.stdin.isatty())
        for line in connect_account(cast(Any, client), args, getpass.getpass if can_prompt else None):
            client.say(line)
    except HookError as exc:
        if isinstance(exc, client.error_class):
            raise
        raise client.error_class(str(exc)) from None
    return Session(client, args.jid.split("/", 1)[0] if args.jid else None)


def session(account: str | None = None) -> Session:
    """The session ``connect()`` or ``%hook connect`` made: the default account's, or
    ``account``'s (a bare JID, or its local part). An error says to connect first
    when there is none."""
    client = _client(start=False)
    error = client.error_class if client is not None else HookError
    if client is None or not client.connected_jids():
        raise error("not connected: call pubsub_hook_magic.connect('user@example.org') first (or %hook connect)")
    try:
        manager = client.call(client.accounts.resolve, account)
    except HookError as exc:
        raise error(str(exc)) from None
    return Session(client, manager.jid if account else None)
