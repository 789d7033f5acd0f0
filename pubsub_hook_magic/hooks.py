"""What a hook is, and how its code is loaded and checked.

A hook ties a PubSub node, ``(service, node)``, to a piece of Python that is called for
every item published there as ``hook(host, client, item)``. The code comes in one of
four types: the first three as in Libervia's ``li pubsub hook``, the fourth ours:

``python``
    A module to import, with a callable ``hook`` in it (``package.module``); our
    extension: ``package.module:function`` names another callable.
``python_file``
    A Python file that defines a callable ``hook``; the path is made absolute.
``python_code``
    Python statements run with ``host``, ``client`` and ``item`` set, in a namespace
    shared with the notebook (the user namespace); top-level ``await`` is allowed.
``python_function``
    A function given as itself (``func=on_news``, the ``@xmpp.hook`` decorator, or
    ``%hook create -t python_function on_news``), sync or ``async def``; the argument is
    its name. A persistent one stores the function's source (:func:`function_source`)
    and is defined again from it after a restart, in the notebook's namespace, as a
    persistent ``python_code`` hook is (waiting for notebook names it reads).

Everything is checked when the hook is created, not at the first item: a hook that
cannot load raises :class:`HookLoadError` with a message that says what to fix.
"""

from __future__ import annotations

import ast
import enum
import functools
import importlib
import inspect
import linecache
import math
import os
import secrets
import sys
import textwrap
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

__all__ = [
    "RECORD_FORMAT",
    "Hook",
    "HookError",
    "HookLoadError",
    "HookType",
    "check_retry",
    "define_function",
    "function_name",
    "function_source",
    "load_hook",
    "missing_names",
    "new_hook_id",
    "normalize_arg",
    "source_path",
]


class HookError(Exception):
    """An error a user can fix; its message is one line that says how."""


class HookLoadError(HookError):
    """The hook's code cannot be loaded: bad module, file or code."""


class HookType(enum.StrEnum):
    """The four kinds of hook code (``str(HookType.PYTHON) == "python"``)."""

    PYTHON = "python"
    PYTHON_FILE = "python_file"
    PYTHON_CODE = "python_code"
    PYTHON_FUNCTION = "python_function"

    @classmethod
    def parse(cls, value: str | HookType) -> HookType:
        """The type named ``value``, or a :class:`HookError` listing the valid ones."""
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(t.value for t in cls)
            raise HookError(f"unknown hook type {value!r}: use one of {choices}") from None


def new_hook_id(taken: Callable[[str], bool] = lambda _id: False) -> str:
    """A short random id (6 hex digits) that ``taken`` does not reject."""
    while True:
        hook_id = secrets.token_hex(3)
        if not taken(hook_id):
            return hook_id


def normalize_arg(hook_type: HookType, arg: str) -> str:
    """The argument as stored and matched: a ``python_file`` path made absolute."""
    if hook_type is HookType.PYTHON_FILE and arg:
        return os.path.abspath(os.path.expanduser(arg))
    if hook_type in (HookType.PYTHON, HookType.PYTHON_FUNCTION):
        return arg.strip()
    return arg


#: The store format (``"format"`` of a hook record, see :mod:`.store`) that a
#: ``python_function`` hook's record says it needs: an older version lists such a hook
#: as needing a newer version instead of failing to read its type.
RECORD_FORMAT = 2


@dataclass(eq=False)
class Hook:
    """One hook: where it listens, what it runs, and whether it outlives the session."""

    service: str
    node: str
    type: HookType
    arg: str
    persistent: bool = False
    id: str = ""
    created: float = field(default_factory=time.time)
    #: Run the items published while the session was away (at connect, after a
    #: reconnection), from the node's stored items.
    catch_up: bool = True
    #: The loaded callable ``f(host, client, item)``; None while it cannot load.
    func: Callable[..., Any] | None = field(default=None, repr=False)
    #: Why the code could not be loaded (a persistent hook that broke since it was stored).
    load_error: str | None = None
    #: How many times a failed run (error or time limit) is tried again before the
    #: item goes to the hook's dead letters.
    retry: int = 0
    #: Seconds before the first retry; each further one waits twice as long (at most
    #: :data:`MAX_RETRY_DELAY`).
    retry_delay: float = 1.0
    #: The PubSub events the hook runs for (see :mod:`.events`).
    events: tuple[str, ...] = ("publish",)
    #: ``--where``: an XPath expression publications' payloads must match (and the
    #: namespace prefixes it uses); the compiled filter is set by ``events.prepare``.
    where: str | None = None
    namespaces: dict[str, str] = field(default_factory=dict)
    filter: Any = field(default=None, repr=False)
    #: What ``create`` has to say about the hook (e.g. an event the node does not send).
    notes: list[str] = field(default_factory=list, repr=False)
    #: ``python_function``: the function's source, decorators removed and dedented
    #: (:func:`function_source`); stored, so that a persistent function hook is defined
    #: again from it after a restart. None when it could not be taken (a lambda, a
    #: closure...: such a hook cannot be persistent).
    source: str | None = None
    #: ``python_function``: the live function given to ``create`` (never stored; None
    #: for a hook read from the store, which runs its :attr:`source`).
    function: Callable[..., Any] | None = field(default=None, repr=False)
    #: The notebook cell that made the hook (see :mod:`.cells`), if one did.
    origin: str | None = None

    def __post_init__(self) -> None:
        self.retry, self.retry_delay = check_retry(self.retry, self.retry_delay)

    @property
    def key(self) -> tuple[str, str]:
        """The node this hook listens to, as ``(service, node)``."""
        return (self.service, self.node)

    @property
    def code(self) -> str | None:
        """The hook's Python source, where it is kept as text: the code of a
        ``python_code`` hook, the function's :attr:`source` of a ``python_function``
        hook (None if not taken); None for modules and files. It is what reads
        notebook names (:func:`missing_names`)."""
        if self.type is HookType.PYTHON_CODE:
            return self.arg
        if self.type is HookType.PYTHON_FUNCTION:
            return self.source
        return None

    @property
    def lifetime(self) -> str:
        return "persistent" if self.persistent else "temporary"

    def describe(self) -> str:
        """One line naming the hook, for the user."""
        on = "" if self.events == ("publish",) else f" for {','.join(self.events)}"
        where = f" where {self.where}" if self.where else ""
        what = f"{self.type} {self.arg}()" if self.type is HookType.PYTHON_FUNCTION else str(self.type)
        retries = f"; a failed run is tried again up to {self.retry} time(s)" if self.retry else ""
        return (
            f"hook {self.id}: {what} on node {self.node!r} of {self.service}{on}{where} "
            f"({self.lifetime}{retries})"
        )

    def to_record(self) -> dict[str, Any]:
        """The part of the hook that the persistent store keeps."""
        return {
            "id": self.id,
            "service": self.service,
            "node": self.node,
            "type": self.type.value,
            "arg": self.arg,
            "created": self.created,
            "catch_up": self.catch_up,
            "retry": self.retry,
            "retry_delay": self.retry_delay,
            "events": list(self.events),
            **({"where": self.where, "namespaces": self.namespaces} if self.where else {}),
            **({"source": self.source} if self.source is not None else {}),
            **({"origin": self.origin} if self.origin else {}),
            **({"format": RECORD_FORMAT} if self.type is HookType.PYTHON_FUNCTION else {}),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Hook:
        """The persistent hook of a store record (:meth:`to_record`); older records,
        without the keys added since, read as before."""
        source = record.get("source")
        origin = record.get("origin")
        return cls(
            service=str(record["service"]),
            node=str(record["node"]),
            type=HookType.parse(record["type"]),
            arg=str(record["arg"]),
            persistent=True,
            id=str(record["id"]),
            created=float(record.get("created") or time.time()),
            catch_up=bool(record.get("catch_up", True)),
            retry=record.get("retry", 0),
            retry_delay=record.get("retry_delay", 1.0),
            events=tuple(record.get("events") or ("publish",)),  # older stores: publications
            where=record.get("where") or None,
            namespaces=dict(record.get("namespaces") or {}),
            source=str(source) if source is not None else None,
            origin=str(origin) if origin else None,
        )


#: The longest wait between two retries of a failed run, in seconds.
MAX_RETRY_DELAY = 300.0


def check_retry(retry: Any, retry_delay: Any) -> tuple[int, float]:
    """``retry`` (a count, 0 or more) and ``retry_delay`` (seconds, 0 or more) as
    numbers, or a :class:`HookError` that says what is wrong."""
    if isinstance(retry, bool) or not isinstance(retry, (int, float)) or not (
        math.isfinite(retry) and retry >= 0 and retry == int(retry)
    ):
        raise HookError(f"--retry must be a whole number of retries, 0 or more, not {retry!r}")
    if isinstance(retry_delay, bool) or not isinstance(retry_delay, (int, float)) or not (
        math.isfinite(retry_delay) and retry_delay >= 0
    ):
        raise HookError(f"--retry-delay must be a number of seconds, 0 or more, not {retry_delay!r}")
    return int(retry), float(retry_delay)


# --------------------------------------------------------------------------- loading


def load_hook(hook: Hook, namespace: dict[str, Any]) -> Callable[..., Any]:
    """Load and check the code of ``hook``; return the callable ``f(host, client, item)``.

    ``namespace`` is the namespace ``python_code`` hooks read and write (the notebook's
    user namespace in IPython). Raises :class:`HookLoadError` with a fix-it message.
    """
    if hook.type is HookType.PYTHON:
        func = _load_module_hook(hook.arg)
    elif hook.type is HookType.PYTHON_FILE:
        func = _load_file_hook(hook.arg)
    elif hook.type is HookType.PYTHON_FUNCTION:
        return _load_function_hook(hook, namespace)
    else:
        return _load_code_hook(hook.arg, namespace, name=f"<hook {hook.id or 'new'}>")
    _check_signature(func, f"the hook of {hook.arg}")
    return func


def _load_module_hook(spec: str) -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    attr = attr or "hook"
    if not module_name:
        raise HookLoadError("a python hook needs a module name, e.g. mypackage.hooks")
    if not all(part.isidentifier() for part in module_name.split(".")) or not attr.isidentifier():
        raise HookLoadError(
            f"{spec!r} is not a module name (package.module or package.module:function); "
            "for code, use -t python_code or a %%hook create cell"
        )
    try:
        module = _import_fresh(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name + ".").startswith(exc.name + "."):
            raise HookLoadError(  # the module exists; something it imports does not
                f"importing {module_name!r} raised {_exc_line(exc)}: fix the module and try again"
            ) from None
        raise HookLoadError(
            f"cannot import {module_name!r} ({exc}): check the name, and that it is "
            "installed in the kernel's environment or on sys.path"
        ) from None
    except BaseException as exc:  # the module's own code failed
        raise HookLoadError(
            f"importing {module_name!r} raised {_exc_line(exc)}: fix the module and try again"
        ) from None
    func = getattr(module, attr, None)
    if func is None:
        raise HookLoadError(
            f"module {module_name!r} has no {attr!r}: define "
            f"`def {attr}(host, client, item): ...` in it"
        )
    if not callable(func):
        raise HookLoadError(
            f"{module_name}.{attr} is {type(func).__name__}, not a function: define "
            f"`def {attr}(host, client, item): ...`"
        )
    return func


#: Source file modification times of the modules python hooks were loaded from.
_module_mtimes: dict[str, float] = {}


def _import_fresh(name: str) -> types.ModuleType:
    """Import ``name``; reload it if its source changed since a hook last loaded it,
    so that re-creating a hook after an edit runs the edited code."""
    module = sys.modules.get(name)
    if module is None:
        module = importlib.import_module(name)
    elif _source_mtime(module) != _module_mtimes.get(name, _source_mtime(module)):
        module = importlib.reload(module)
    _module_mtimes[name] = _source_mtime(module)
    return module


def _source_mtime(module: types.ModuleType) -> float:
    try:
        return os.stat(module.__file__ or "").st_mtime
    except (OSError, TypeError):
        return 0.0


def _load_file_hook(path: str) -> Callable[..., Any]:
    file = Path(path)
    if not file.exists():
        raise HookLoadError(f"{path} does not exist: give the path of a Python file")
    if not file.is_file():
        raise HookLoadError(f"{path} is not a file: give the path of a Python file")
    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HookLoadError(f"cannot read {path}: {exc}") from None
    try:
        code = compile(source, str(file), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise HookLoadError(f"{path}, line {exc.lineno}: SyntaxError: {exc.msg}") from None
    module = types.ModuleType(f"pubsub_hook_file_{file.stem}")
    module.__file__ = str(file)
    try:
        exec(code, module.__dict__)
    except BaseException as exc:
        raise HookLoadError(
            f"running {path} raised {_exc_line(exc)}{_where(exc, str(file))}: fix the file"
        ) from None
    func = module.__dict__.get("hook")
    if func is None:
        raise HookLoadError(
            f"{path} defines no `hook`: add `def hook(host, client, item): ...` to it"
        )
    if not callable(func):
        raise HookLoadError(
            f"`hook` in {path} is {type(func).__name__}, not a function: define "
            "`def hook(host, client, item): ...`"
        )
    return func


def _check_signature(func: Callable[..., Any], what: str, shown: str | None = None) -> None:
    """Refuse ``func`` (named ``what`` in the message, its signature shown as
    ``shown`` if given) unless it can be called as ``func(host, client, item)``."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # builtins without a signature: trust them
        return
    try:
        signature.bind(None, None, None)
    except TypeError:
        raise HookLoadError(
            f"{what} has the signature {shown or signature}, but is called as "
            "hook(host, client, item): give it those three parameters"
        ) from None


# ---- python_function


def function_name(func: Any) -> str:
    """The name a function hook is listed by: the function's ``__name__`` (a callable
    object's type name)."""
    name = getattr(func, "__name__", None)
    return name if isinstance(name, str) and name else type(func).__name__


def function_source(func: Callable[..., Any], namespace: dict[str, Any] | None = None) -> str:
    """The source of ``func`` that a persistent ``python_function`` hook stores: its
    ``def`` (or ``async def``) alone, decorators removed, dedented.

    ``inspect.getsource`` finds it (IPython keeps the sources of cells, so functions
    defined in cells have one). Only a function defined with ``def`` at the top level
    of a cell or script can be defined again from its source alone: a lambda, a
    nested function or closure, a method, a builtin, a callable object, a function
    wrapped by another decorator, one defined in another module than ``namespace``
    (the namespace the hook would be defined in again) or one whose source cannot be
    found raise a one-line :class:`HookError` that says why and what to do.
    """
    name = function_name(func)
    try:
        return _function_source(func, namespace)
    except _NotRestorable as exc:
        fix = exc.fix or "define it with def at the top level of a cell, or make a python_file hook"
        raise HookError(f"persistent=True stores the function's source: {name} {exc}; {fix}") from None


class _NotRestorable(Exception):
    """Why a function cannot be defined again from its source (``fix``: what to do, if
    not the usual)."""

    def __init__(self, why: str, fix: str | None = None):
        super().__init__(why)
        self.fix = fix


def _function_source(func: Any, namespace: dict[str, Any] | None) -> str:
    if inspect.ismethod(func):
        raise _NotRestorable(f"is a bound method (of a {type(func.__self__).__name__} object)")
    if inspect.isbuiltin(func) or isinstance(func, (types.BuiltinFunctionType, types.MethodWrapperType)):
        raise _NotRestorable("is a builtin, which has no Python source")
    if not inspect.isfunction(func):
        raise _NotRestorable(f"is a {type(func).__name__} object, not a function defined with def")
    name, qualname = func.__name__, func.__qualname__
    if name == "<lambda>":
        raise _NotRestorable("is a lambda, which has no name to define it again by")
    if func.__code__.co_freevars:
        used = ", ".join(func.__code__.co_freevars)
        raise _NotRestorable(f"is a closure (it uses {used} from its enclosing function)")
    if "<locals>" in qualname:
        raise _NotRestorable(f"is defined inside {qualname.rsplit('.<locals>', 1)[0]}()")
    if qualname != name:
        raise _NotRestorable(f"is defined in class {qualname.rsplit('.', 1)[0]}")
    if hasattr(func, "__wrapped__"):
        raise _NotRestorable("is wrapped by another decorator, which its source alone would lose")
    if namespace is not None and func.__globals__ is not namespace and func.__module__ != "__main__":
        raise _NotRestorable(
            f"is defined in module {func.__module__}, whose names its source would not find",
            f"make it a python hook ({func.__module__}:{name}), or define it in a cell",
        )
    try:
        text = inspect.getsource(func)
    except (OSError, TypeError) as exc:
        raise _NotRestorable(f"has no source Python can find ({exc})") from None
    source = _def_alone(textwrap.dedent(text), name)
    if source is None:
        raise _NotRestorable("has a source that does not parse as its def alone")
    return source


def _def_alone(text: str, name: str) -> str | None:
    """The ``def name`` statement of ``text`` without its decorators, dedented (None if
    ``text`` is not one such statement)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    if not tree.body:
        return None
    node = tree.body[0]
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name != name:
        return None
    lines = text.splitlines(keepends=True)
    source = textwrap.dedent("".join(lines[node.lineno - 1 : node.end_lineno]))
    return source if source.endswith("\n") else source + "\n"


def _function_def(source: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The one function definition of a stored source, or a :class:`HookLoadError`."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise HookLoadError(
            f"the function's stored source does not compile: line {exc.lineno}: SyntaxError: {exc.msg}"
        ) from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise HookLoadError("the function's stored source is not one def: create the hook again from the function")
    return tree.body[0]


class _DefiningScope(dict):
    """Where a stored function is defined again: names are read from the shared
    namespace (its defaults and annotations may use notebook names), but what the
    ``def`` binds (the function's own name) stays here, so a notebook variable of that
    name is never overwritten."""

    __slots__ = ("shared",)

    def __init__(self, shared: dict[str, Any]):
        super().__init__()
        self.shared = shared

    def __getitem__(self, key: str) -> Any:
        try:
            return dict.__getitem__(self, key)
        except KeyError:
            return self.shared[key]


def define_function(source: str, namespace: dict[str, Any], filename: str = "<hook function>") -> Callable[..., Any]:
    """The function that ``source`` (one ``def``, as :func:`function_source` gives)
    defines, run as if defined in ``namespace``: its globals are ``namespace`` (it
    reads and writes notebook names as a function of a cell does), but its own name is
    not bound there. Its signature must be ``(host, client, item)``.

    If defining it needs notebook names not defined yet (a default value, an
    annotation), it is defined at its first call instead (a persistent hook waits for
    those names first). Raises :class:`HookLoadError` with a fix-it message.
    """
    node = _function_def(source)
    name = node.name
    compiled = compile(source, filename, "exec", dont_inherit=True)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        func = _define(compiled, name, namespace)
    except NameError as exc:
        if exc.name not in missing_names(source, namespace):
            raise HookLoadError(f"defining {name} from its stored source raised {_exc_line(exc)}: fix it") from None
    except BaseException as exc:
        raise HookLoadError(f"defining {name} from its stored source raised {_exc_line(exc)}: fix it") from None
    else:
        _check_signature(func, name)
        return func
    # A notebook name is missing at definition time: check the signature on a stub,
    # define it at the first call (after the notebook defined the name).
    _check_signature(_signature_stub(node), name, shown=f"({ast.unparse(node.args)})")
    defined: list[Callable[..., Any]] = []

    def run_function(host: Any, client: Any, item: Any) -> Any:
        if not defined:
            defined.append(_define(compiled, name, namespace))
        return defined[0](host, client, item)

    run_function.__name__ = run_function.__qualname__ = name
    return run_function


def _define(compiled: types.CodeType, name: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    scope = _DefiningScope(namespace)
    exec(compiled, scope)
    made = dict.__getitem__(scope, name)
    # The same function with the namespace as its globals, as if defined in a cell.
    func = types.FunctionType(made.__code__, namespace, made.__name__, made.__defaults__, made.__closure__)
    func.__kwdefaults__ = made.__kwdefaults__
    func.__annotations__ = made.__annotations__
    func.__doc__ = made.__doc__
    func.__qualname__ = made.__qualname__
    func.__module__ = namespace.get("__name__", made.__module__)
    return func


def _signature_stub(node: ast.FunctionDef | ast.AsyncFunctionDef) -> Callable[..., Any]:
    """A function with ``node``'s parameters (no defaults' values, no annotations)."""
    args = node.args
    stub_args = ast.arguments(
        posonlyargs=[ast.arg(a.arg) for a in args.posonlyargs],
        args=[ast.arg(a.arg) for a in args.args],
        vararg=ast.arg(args.vararg.arg) if args.vararg else None,
        kwonlyargs=[ast.arg(a.arg) for a in args.kwonlyargs],
        kw_defaults=[None if d is None else ast.Constant(None) for d in args.kw_defaults],
        kwarg=ast.arg(args.kwarg.arg) if args.kwarg else None,
        defaults=[ast.Constant(None) for _ in args.defaults],
    )
    stub = ast.FunctionDef(name=node.name, args=stub_args, body=[ast.Pass()], decorator_list=[], returns=None)
    module = ast.fix_missing_locations(ast.Module(body=[stub], type_ignores=[]))
    scope: dict[str, Any] = {}
    exec(compile(module, "<signature>", "exec", dont_inherit=True), scope)
    return scope[node.name]


def _load_function_hook(hook: Hook, namespace: dict[str, Any]) -> Callable[..., Any]:
    """The live function of a ``python_function`` hook, checked; else (a stored hook
    after a restart) the function defined again from its source."""
    func = hook.function
    if func is not None:
        if not callable(func):
            raise HookLoadError(
                f"{hook.arg} is {type(func).__name__}, not a function: give a function "
                "f(host, client, item)"
            )
        _check_signature(func, hook.arg or function_name(func))
        return func
    if not hook.source:
        raise HookLoadError(
            f"the function {hook.arg} has no stored source: create the hook again from the function"
        )
    return define_function(hook.source, namespace, filename=f"<hook {hook.id or 'new'} {hook.arg}>")


#: Names a python_code hook sees as its own, whatever the shared namespace holds.
CODE_HOOK_NAMES = frozenset({"host", "client", "item"})
#: How often each hook's python_code was compiled in this process (its tracebacks'
#: file name says which version: linecache keeps each version's lines apart).
_code_versions: dict[str, int] = {}


class CodeNamespace(dict):
    """Globals of a ``python_code`` hook: ``host``, ``client`` and ``item`` are its own;
    every other name is read from, and written to, the shared namespace.

    So the code can use and fill notebook variables, while two hooks (or the notebook)
    never see each other's ``item``. Functions and comprehensions in the code resolve
    names through it too.
    """

    __slots__ = ("shared",)

    def __init__(self, shared: dict[str, Any]):
        super().__init__()
        self.shared = shared

    def __getitem__(self, key: str) -> Any:
        try:
            return dict.__getitem__(self, key)
        except KeyError:
            return self.shared[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key in CODE_HOOK_NAMES or key == "__builtins__":
            dict.__setitem__(self, key, value)
        else:
            self.shared[key] = value

    def __delitem__(self, key: str) -> None:
        if dict.__contains__(self, key):
            dict.__delitem__(self, key)
        else:
            del self.shared[key]

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.shared

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


def compile_code(code: str, filename: str) -> types.CodeType:
    """Compile hook code (top-level ``await`` allowed) or raise :class:`HookLoadError`."""
    if not code.strip():
        raise HookLoadError("a python_code hook needs code: give it after the options")
    try:
        compiled = compile(
            code, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
        )
    except SyntaxError as exc:
        raise HookLoadError(
            f"the code does not compile: line {exc.lineno}: SyntaxError: {exc.msg}"
        ) from None
    # Tracebacks of the hook show its lines.
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    return compiled


def _load_code_hook(code: str, namespace: dict[str, Any], name: str) -> Callable[..., Any]:
    # Tracebacks show File "<hook 32dbe1, python_code>" (", version 2" once its code
    # was compiled again: another cell, a reconnect), with the code's lines.
    version = _code_versions[name] = _code_versions.get(name, 0) + 1
    filename = f"{name[:-1]}, python_code{f', version {version}' if version > 1 else ''}>"
    compiled = compile_code(code, filename)
    is_async = bool(compiled.co_flags & inspect.CO_COROUTINE)
    scope = CodeNamespace(namespace)

    def run_code(host: Any, client: Any, item: Any) -> Any:
        dict.__setitem__(scope, "host", host)
        dict.__setitem__(scope, "client", client)
        dict.__setitem__(scope, "item", item)
        return eval(compiled, scope)  # a coroutine when the code awaits

    run_code.__qualname__ = run_code.__name__ = "python_code"
    run_code.is_async = is_async  # type: ignore[attr-defined]
    run_code.code = compiled  # type: ignore[attr-defined]
    return run_code


def missing_names(code: str, namespace: dict[str, Any]) -> list[str]:
    """The names ``python_code`` reads but neither defines nor finds in ``namespace``
    or the builtins: in a notebook, variables the code expects the notebook to define.
    (A cheap over-approximation of definitions: any name assigned anywhere counts.)"""
    return [n for n in _free_names(code) if n not in namespace]


@functools.lru_cache(maxsize=256)
def _free_names(code: str) -> tuple[str, ...]:
    """The names ``code`` reads but neither defines nor finds in the builtins, sorted
    (parsed once per code: persistent hooks are checked after every cell)."""
    import builtins

    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ()
    loaded: set[str] = set()
    defined: set[str] = set(CODE_HOOK_NAMES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
            args = node.args if not isinstance(node, ast.ClassDef) else None
            if args is not None:
                for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
                    if arg is not None:
                        defined.add(arg.arg)
        elif isinstance(node, ast.Lambda):
            for arg in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs):
                defined.add(arg.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                defined.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            defined.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            pass
    return tuple(sorted(n for n in loaded - defined if not hasattr(builtins, n)))


def source_path(hook: Hook) -> str | None:
    """The file a ``python_file`` or ``python`` hook's code comes from (None for code)."""
    if hook.type is HookType.PYTHON_FILE:
        return hook.arg
    if hook.type is HookType.PYTHON:
        module = sys.modules.get(hook.arg.partition(":")[0])
        return getattr(module, "__file__", None)
    return None


def _exc_line(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _where(exc: BaseException, filename: str) -> str:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" at line {line}" if line else ""
