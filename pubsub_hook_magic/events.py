"""What fires a hook: the PubSub events it asks for, and a filter on payloads.

A hook runs for the events it names with ``-e/--event`` (``publish`` by default):

``publish``
    an item was published (XEP-0060 7.1); ``item`` is the ``<item/>``.
``retract``
    an item was retracted (7.2); ``item`` is the ``<retract/>`` element, ``item["id"]``
    the retracted id. Also synthesised at catch-up for the items that left the node
    while the session was away (retracted, or evicted past the node's ``max_items``).
``purge``
    every item of the node was deleted (8.5); ``item`` is the ``<purge/>`` element,
    ``item["node"]`` the node.
``delete``
    the node itself was deleted (8.4); ``item`` is the ``<delete/>`` element,
    ``item["node"]`` the node.

The hook tells them apart by ``item.name`` (``"item"``, ``"retract"``, ``"purge"``,
``"delete"``), the same for the three hook types.

``--where EXPR`` keeps a hook to the publications whose payload matches an XPath
expression (ElementTree's subset; ``{uri}tag`` or ``prefix:tag`` with ``--ns
prefix=uri``), evaluated with the payload as the context node: ``.[@type='note']``
tests the payload itself, ``{urn:x}author[.='bob']`` a child. The others are counted as
``filtered``, without a run or a trigger.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from collections.abc import Iterable
from xml.etree import ElementPath

from .hooks import HookError

__all__ = ["Event", "PayloadFilter", "parse_events", "parse_namespaces", "prepare", "retraction"]


class Event(StrEnum):
    PUBLISH = "publish"
    RETRACT = "retract"
    PURGE = "purge"
    DELETE = "delete"


#: What a hook asks for when it names no event.
DEFAULT_EVENTS: tuple[Event, ...] = (Event.PUBLISH,)


def parse_events(value: str | Iterable[str] | None) -> tuple[Event, ...]:
    """``"publish,retract"`` (or a list of names) as events, in a fixed order; a
    :class:`HookError` that lists the valid names otherwise."""
    if value is None:
        return DEFAULT_EVENTS
    names = value.split(",") if isinstance(value, str) else list(value)
    events = set()
    for name in names:
        name = str(name).strip().lower()
        if not name:
            continue
        try:
            events.add(Event(name))
        except ValueError:
            valid = ", ".join(e.value for e in Event)
            raise HookError(f"unknown event {name!r}: give one or more of {valid}, e.g. -e publish,retract") from None
    if not events:
        return DEFAULT_EVENTS
    return tuple(e for e in Event if e in events)


def parse_namespaces(values: Iterable[str] | dict[str, str] | None) -> dict[str, str]:
    """``["a=urn:x", ...]`` (``--ns``) as a prefix map."""
    if not values:
        return {}
    if isinstance(values, dict):
        return {str(k): str(v) for k, v in values.items()}
    namespaces = {}
    for value in values:
        prefix, sep, uri = str(value).partition("=")
        if not sep or not prefix.strip() or not uri.strip():
            raise HookError(f"--ns {value!r} is not PREFIX=URI: give e.g. --ns atom=http://www.w3.org/2005/Atom")
        namespaces[prefix.strip()] = uri.strip()
    return namespaces


class PayloadFilter:
    """A ``--where`` expression, checked when the hook is made."""

    __slots__ = ("expr", "namespaces")

    def __init__(self, expr: str, namespaces: dict[str, str] | None = None):
        self.expr = expr
        self.namespaces = namespaces or {}
        from xml.etree.ElementTree import Element

        try:
            for _found in ElementPath.iterfind(Element("x"), expr, self.namespaces):
                break
        except (SyntaxError, KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f": {exc}" if str(exc) else ""
            raise HookError(
                f"--where {expr!r} is not an expression ElementTree understands{detail}; "
                "e.g. --where \".[@type='note']\" or --where '{urn:x}author' "
                "(prefixes need --ns PREFIX=URI)"
            ) from None

    def matches(self, item: Any) -> bool:
        """Whether the payload of ``item`` (an ``<item/>`` stanza) matches."""
        for payload in item.xml:
            return ElementPath.find(payload, self.expr, self.namespaces) is not None
        return False

    def __repr__(self) -> str:
        return f"PayloadFilter({self.expr!r})"


def retraction(item_id: str) -> Any:
    """A ``<retract id=.../>`` event element, as servers send (for catch-up)."""
    from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventRetract

    element = EventRetract()
    element["id"] = item_id
    return element


def prepare(hook: Any) -> None:
    """Check a hook's events and ``--where`` filter (a :class:`HookError` says what is
    wrong); normalise them and compile the filter onto the hook."""
    hook.events = tuple(e.value for e in parse_events(hook.events))
    hook.namespaces = parse_namespaces(hook.namespaces)
    hook.filter = PayloadFilter(hook.where, hook.namespaces) if hook.where else None
