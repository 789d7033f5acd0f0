"""The ``%hook`` command line: one registry of sub-commands, their flags and their help.

Read by the IPython magic, ``pubsub-hook``, the help (``%hook -h``, ``%hook?``) and
tab completion, so every sub-command is declared once. Imports no IPython: errors are
:class:`CommandError` (a ``HookError``), which the magic turns into ``UsageError``.

The map:

* :mod:`.registry`: :class:`SubCommand`, the :func:`command` decorator, the parser
  built from :data:`COMMANDS`, :func:`parse_command` and :func:`dispatch`;
* :mod:`.parsing`: tokenizing (POSIX quotes, with offsets), the parser that raises,
  the verbatim rest of a line (code, XML), and the one function reading argparse
  internals;
* one module per group of sub-commands, each with its flags beside its handler:
  :mod:`.session` (connect, disconnect, log, status), :mod:`.hooks` (create, list,
  delete, pause, resume), :mod:`.runs` (replay, test, failed, retry), :mod:`.items`
  (publish, retract, nodes, node create);
* :mod:`.complete`: completion of a line.

Handlers take ``(ctx, args)``: ctx is the magic (:class:`Context`): the façade, its
loop's doorway, the settings, the accounts. Each is one call of the façade (of the
account :func:`account_for` picks: ``-p``, the hook's own, or the default), then
printing.
"""

from __future__ import annotations

# The command modules register their sub-commands on import, in this order (the help's).
from . import session, hooks, runs, items  # isort: skip
from .complete import Candidate, complete, complete_typed
from .hooks import FORMATS, add_create_arguments, add_delete_arguments, create_options, default_type_hint
from .items import ACCESS_MODELS, PUBLISH_MODELS, node_config
from .parsing import CommandError, HelpShown, Token, tokenize
from .registry import (
    COMMANDS,
    Context,
    SubCommand,
    account_for,
    add_profile_argument,
    build_parser,
    connected_managers,
    dispatch,
    full_help,
    names,
    parse_command,
    parser,
)
from .runs import add_failed_arguments, add_retry_arguments
from .session import add_connect_arguments

__all__ = [
    "ACCESS_MODELS",
    "COMMANDS",
    "FORMATS",
    "PUBLISH_MODELS",
    "Candidate",
    "CommandError",
    "Context",
    "HelpShown",
    "SubCommand",
    "Token",
    "account_for",
    "add_connect_arguments",
    "add_create_arguments",
    "add_delete_arguments",
    "add_failed_arguments",
    "add_profile_argument",
    "add_retry_arguments",
    "build_parser",
    "complete",
    "complete_typed",
    "connected_managers",
    "create_options",
    "default_type_hint",
    "dispatch",
    "full_help",
    "hooks",
    "items",
    "names",
    "node_config",
    "parse_command",
    "parser",
    "runs",
    "session",
    "tokenize",
]
