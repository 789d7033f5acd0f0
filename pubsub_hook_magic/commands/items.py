"""The sub-commands on items and nodes, from the connected account (``-p``: one of
several): ``publish``, ``retract``, ``nodes`` and ``node create``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from .parsing import Expand, Token
from .registry import Context, SubCommand, command, register, session_for
from .runs import parse_with_payload

__all__ = ["ACCESS_MODELS", "PUBLISH_MODELS", "node_config"]

#: XEP-0060's access models (4.5) and publish models (``pubsub#publish_model``).
ACCESS_MODELS = ("open", "presence", "roster", "whitelist", "authorize")
PUBLISH_MODELS = ("publishers", "subscribers", "open")


def _add_service_and_node(p: argparse.ArgumentParser, node_help: str) -> None:
    p.add_argument("-s", "--service", default="", help="PubSub service JID (default: your own JID, i.e. PEP)")
    p.add_argument("-n", "--node", required=True, help=node_help)


def _publish_arguments(p: argparse.ArgumentParser) -> None:
    _add_service_and_node(p, "node to publish to")
    p.add_argument("-i", "--id", default="", help="item id (default: the service chooses)")
    p.add_argument("payload", nargs="*", metavar="XML", help="the item's payload")


def _parse_publish(
    line: str, tokens: Iterator[Token], cell: str | None, expand: Expand | None = None
) -> argparse.Namespace:
    return parse_with_payload("publish", line, tokens, cell, expand)


@command(
    "publish",
    help="publish an item from your account (to try hooks)",
    description="Publish one item to NODE of SERVICE from the connected account. The "
    "payload is one XML element: the rest of the line, or the cell of %%hook publish.",
    arguments=_publish_arguments,
    parse=_parse_publish,
)
def publish(ctx: Context, args: argparse.Namespace) -> None:
    item_id = session_for(ctx, args).publish(args.node, args.payload, service=args.service or None, id=args.id or None)
    print(f"Published item {item_id} to {args.node}.")


def _retract_arguments(p: argparse.ArgumentParser) -> None:
    _add_service_and_node(p, "node of the item")
    p.add_argument("item", metavar="ITEM_ID", help="the id of the item to retract")


@command(
    "retract",
    help="retract an item you published (its subscribers are notified)",
    description="Retract item ITEM_ID from NODE of SERVICE, asking the service to notify "
    "the node's subscribers (hooks on retract run).",
    arguments=_retract_arguments,
)
def retract(ctx: Context, args: argparse.Namespace) -> None:
    session_for(ctx, args).retract(args.node, args.item, service=args.service or None)
    print(f"Retracted item {args.item} from {args.node}.")


def _nodes_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("service", nargs="?", default="", help="PubSub service JID (default: your own PEP)")


@command("nodes", help="list the nodes a service offers (service discovery)", arguments=_nodes_arguments)
def nodes(ctx: Context, args: argparse.Namespace) -> None:
    found = session_for(ctx, args).nodes(args.service or None)
    if not found:
        print("No node found.")
    for node, name in found:
        print(f"{node}  ({name})" if name and name != node else node)


# ---------------------------------------------------------------------- node create


def _node_create_arguments(p: argparse.ArgumentParser) -> None:
    _add_service_and_node(p, "the node's name")
    p.add_argument(
        "--access-model",
        choices=ACCESS_MODELS,
        default=None,
        help="who may subscribe and read items (default: the service's, usually open)",
    )
    p.add_argument(
        "--publish-model",
        choices=PUBLISH_MODELS,
        default=None,
        help="who may publish (default: the service's, usually publishers: the owner)",
    )
    p.add_argument(
        "-f",
        "--field",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="a configuration field, e.g. -f max_items 100 (repeatable; pubsub# is added)",
    )
    p.add_argument("-F", "--full-prefix", action="store_true", help="do not add pubsub# before the -f keys")


def node_config(args: argparse.Namespace) -> dict[str, str]:
    """The configuration fields of ``node create`` (Libervia's -f KEY VALUE, with
    ``pubsub#`` added unless -F, and the --access-model / --publish-model shorthands)."""
    config: dict[str, str] = {}
    for key, value in args.field:
        config[key if args.full_prefix or key.startswith("pubsub#") else f"pubsub#{key}"] = value
    if args.access_model:
        config["pubsub#access_model"] = args.access_model
    if args.publish_model:
        config["pubsub#publish_model"] = args.publish_model
    return config


def node_create(ctx: Context, args: argparse.Namespace) -> None:
    session = session_for(ctx, args)
    service, node = session.create_node(args.node, service=args.service or None, fields=node_config(args))
    print(f"Created node {node} on {service}.")


register(
    SubCommand(
        "node",
        help="create a node (node create -n NODE), as Libervia's li pubsub node",
        description="Nodes of a PubSub service or of your PEP.",
        children=(
            SubCommand(
                "create",
                help="create a node, with its access model",
                run=node_create,
                arguments=_node_create_arguments,
                description="Create NODE on SERVICE (default: your own PEP), as Libervia's "
                "li pubsub node create; -f sets any configuration field.",
            ),
        ),
        needs_child="give an action: %hook node create -n NODE [-s SERVICE] [--access-model MODEL]",
    )
)
