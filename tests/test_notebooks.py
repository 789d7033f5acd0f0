"""The notebooks (quickstart.ipynb, microblog.ipynb), each executed headless in a fresh
kernel against the private Prosody, as a fresh user."""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import stat
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pubsub_hook_magic.testing.server import TestServer

from .conftest import PASSWORDS
from .support import stored_hooks

pytestmark = pytest.mark.kernel

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
QUICKSTART = NOTEBOOKS / "quickstart.ipynb"
MICROBLOG = NOTEBOOKS / "microblog.ipynb"
_users = itertools.count(1)


def cell_text(cell: nbformat.NotebookNode) -> str:
    """What a code cell showed: streams, results and errors, as text."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", ""))
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
    return "".join(parts)


class Executed:
    """An executed notebook, its code cells found by how their source starts."""

    def __init__(self, nb: nbformat.NotebookNode):
        self.cells = [c for c in nb.cells if c.cell_type == "code"]

    def outputs(self, source_start: str) -> list[str]:
        found = [cell_text(c) for c in self.cells if c.source.lstrip().startswith(source_start)]
        assert found, f"no code cell starts with {source_start!r}"
        return found

    def output(self, source_start: str) -> str:
        [text] = self.outputs(source_start)
        return text

    def exact(self, source: str) -> str:
        [text] = [cell_text(c) for c in self.cells if c.source.strip() == source]
        return text

    def containing(self, fragment: str) -> list[str]:
        return [cell_text(c) for c in self.cells if fragment in c.source]


def execute_notebook(
    path: Path, server: TestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[nbformat.NotebookNode, str, Path]:
    """Runs the notebook as a fresh user, the account and the store given by the
    environment; returns (the executed notebook, jid, store dir)."""
    user = f"nbuser{next(_users)}"
    password = secrets.token_urlsafe(12)
    jid = server.register(user, password)
    store = tmp_path / "store"
    workdir = tmp_path / "work"
    workdir.mkdir()
    # The kernel inherits this process's environment.
    monkeypatch.setenv("XMPP_JID", jid)
    monkeypatch.setenv("XMPP_HOST", server.host)
    monkeypatch.setenv("XMPP_PORT", str(server.port))
    monkeypatch.setenv("XMPP_PASSWORD", password)
    monkeypatch.setenv("PUBSUB_HOOK_DATA_DIR", str(store))
    # The second account of the quickstart: it publishes to pubsub.localhost, where only
    # admins create nodes (as the quickstart's own server makes bob one).
    monkeypatch.setenv("BOB_JID", "admin@localhost")
    monkeypatch.setenv("BOB_PASSWORD", PASSWORDS["admin"])
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    for name in list(os.environ):
        if name.startswith("JPY_"):
            monkeypatch.delenv(name)

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=60,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError if any cell fails
    return nb, jid, store


@pytest.fixture
def quickstart(server: TestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Runs the quickstart as a fresh user; returns (Executed, jid, store dir)."""
    nb, jid, store = execute_notebook(QUICKSTART, server, tmp_path, monkeypatch)
    return Executed(nb), jid, store


@pytest.fixture
def microblog(server: TestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Runs the microblog notebook as a fresh user; returns (Executed, notebook, jid)."""
    nb, jid, _store = execute_notebook(MICROBLOG, server, tmp_path, monkeypatch)
    return Executed(nb), nb, jid


@pytest.mark.timeout(300)
def test_quickstart_notebook_runs_and_shows_each_step(quickstart):
    run, jid, store = quickstart

    # connect, first from the environment, then again after the disconnect
    first, again = run.outputs("%hook connect --no-tls")
    assert first.strip() == f"Connected as {jid}."
    assert again.strip() == f"Connected as {jid}; 1 persistent hook(s) installed."

    # the python_code hook saw both publications, the line one and the cell one
    assert "notes: ['hello', 'hello again']" in run.output("assert wait_until(lambda: len(notes) >= 2)")
    published = run.outputs("%hook publish") + run.outputs("%%hook publish")
    assert all(re.fullmatch(r"Published item \S+ to urn:example:\w+\.\n", p) for p in published), published

    # each hook type fired once for the third item
    fired = run.output("assert wait_until(lambda: len(notes) == 3")
    assert "notes:       ['hello', 'hello again', 'third']" in fired
    assert "file_hits:   ['third']" in fired  # python_file
    assert "module_hits: ['note-3']" in fired  # python module, async def hook
    assert "cell_hits:   ['THIRD']" in fired  # %%hook create, with await
    for kind in ("python_code", "python_file", "python"):
        assert any(
            f": {kind} on node 'urn:example:notes' of {jid} (temporary)." in out
            for out in run.containing("create -n urn:example:notes")
        ), kind
    assert "(persistent)." in run.output("journal = []")
    assert "journal: ['day one']" in run.outputs("assert wait_until(lambda: len(journal) == 1)")[0]

    # %hook list -O json: every hook, persistent first, with its trigger counts
    hooks = json.loads(run.output("%hook list -O json"))
    summary = [(h["node"], h["type"], h["persistent"], h["triggers"], h["errors"]) for h in hooks]
    assert summary == [
        ("urn:example:journal", "python_code", True, 1, 0),
        ("urn:example:notes", "python_code", False, 3, 0),
        ("urn:example:notes", "python_file", False, 1, 0),
        ("urn:example:notes", "python", False, 1, 0),
        ("urn:example:notes", "python_code", False, 1, 0),
        ("news", "python_code", False, 2, 0),
    ]
    assert all(h["service"] == jid and h["state"] == "active" for h in hooks[:-1])
    assert hooks[-1]["service"] == "pubsub.localhost"
    by_type = {h["type"]: h for h in hooks if h["node"] == "urn:example:notes"}
    assert by_type["python_file"]["arg"].endswith("/hook_file.py")
    assert os.path.isabs(by_type["python_file"]["arg"])
    assert by_type["python"]["arg"] == "my_hooks"
    assert hooks[1]["arg"] == 'notes.append(item["payload"].text)'
    assert "await asyncio.sleep(0)" in hooks[4]["arg"]
    assert [t["item_id"] for t in hooks[1]["recent"]][-1] == "note-3"
    assert hooks[0]["last_trigger"]["item_id"] == "day-1"

    # the plain table lists the same hooks
    table = run.exact("%hook list")
    assert table.splitlines()[0].split()[:4] == ["id", "service", "node", "type"]
    rows = [line for line in table.splitlines() if re.match(r"[0-9a-f]{6}  ", line)]  # (cut values: a line below)
    assert len(rows) == 6, table

    # the second account's items on the PubSub service: not its old one, both new ones
    assert "headlines: [('h2', 'news 2'), ('h3', 'news 3')]" in run.output("for n in (2, 3):")
    assert run.output("%hook delete -s pubsub.localhost -n news").strip() == "1 hook(s) have been deleted"

    # the raising hook: its error, with the item id, in %hook list
    [after_error] = run.containing("len(cell_hits) == 2")
    assert "last failed on item note-4" in after_error
    assert "ValueError: refusing item note-4" in after_error
    # (its row shows the code's start, cut; the whole code follows on lines of its own)
    failing_row = [line for line in after_error.splitlines() if re.match(r"[0-9a-f]{6} .*if item\[\"payl", line)]
    assert len(failing_row) == 1 and failing_row[0].split()[-6:-3] == ["active", "1", "1"], after_error
    assert '"boom": raise ValueError' in after_error  # the whole code, wrapped

    # delete: the three python_code hooks of the node, then the two that remain
    assert run.output("%hook delete -n urn:example:notes -t python_code").strip() == "3 hook(s) have been deleted"
    assert run.exact("%hook delete -n urn:example:notes").strip() == "2 hook(s) have been deleted"
    status = run.output("%hook status")
    assert f"connected as {jid}" in status
    assert "1 hook(s) (1 persistent) on 1 node(s)" in status
    assert str(store) in status

    # the persistent hook came back after disconnect + connect, and fired again
    assert "journal: ['day one', 'day two']" in run.outputs("assert wait_until(lambda: len(journal) == 2)")[0]
    assert run.output("%hook delete -n urn:example:journal").strip() == "1 hook(s) have been deleted"
    assert [o.strip() for o in run.outputs("%hook disconnect")] == [f"Disconnected {jid}."] * 2

    # the store was in the test's temp dir, private, and is empty again
    [stored] = list(store.glob("hooks-*.json"))
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert stored_hooks(store) == {jid: []}


def widget_values(nb: nbformat.NotebookNode) -> list[str]:
    """The ``value`` of every widget in the state nbclient saved with the notebook."""
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return [m["state"]["value"] for m in state.values() if isinstance(m["state"].get("value"), str)]


@pytest.mark.timeout(300)
def test_microblog_notebook_parses_posts_and_shows_them_escaped(microblog):
    run, nb, jid = microblog
    assert run.output("%hook connect --no-tls").strip() == f"Connected as {jid}."

    # parse_entry, tried alone: a bare entry and a non-Atom payload give defaults
    empty = "{'id': '', 'title': '(no title)', 'author': '(unknown)', 'uri': '', 'published': ''}"
    assert run.output("import xml.etree.ElementTree as ET").splitlines() == [empty, empty]

    created = run.output("%hook create -n urn:xmpp:microblog:0")
    assert re.fullmatch(
        rf"Created hook \w+: python_file on node 'urn:xmpp:microblog:0' of {re.escape(jid)} \(temporary\)\.\n"
        r"(Note: your PEP has no node 'urn:xmpp:microblog:0' yet: the hook runs once something publishes to it[^\n]*\n)?",
        created,
    ), created
    published = run.outputs("%%hook publish -n urn:xmpp:microblog:0")
    assert [p.strip() for p in published] == [
        f"Published item post-{i} to urn:xmpp:microblog:0." for i in range(1, 9)
    ]

    # the hook parsed the six posts, in order, missing <published> included; per-author counts
    assert run.output("assert await wait_until(lambda: len(posts) == 6)").splitlines() == [
        "6 posts:",
        "  post-1  2024-05-01T09:00:00Z  Alice  Hello, microblog!",
        "  post-2  2024-05-01T09:05:00Z  Bob    First post from Bob",
        "  post-3  2024-05-01T09:10:00Z  Alice  <b>not bold</b> (markup stays text)",
        "  post-4  (no date)             Carol  Carol was here",
        "  post-5  2024-05-01T09:20:00Z  Bob    Bob again",
        "  post-6  2024-05-01T09:25:00Z  Alice  Three posts for Alice",
        "posts per author:",
        "  Alice: 3",
        "  Bob: 2",
        "  Carol: 1",
    ]

    # the title with markup is escaped in the HTML table
    escaped = "&lt;b&gt;not bold&lt;/b&gt; (markup stays text)"
    row = run.output("[row] = [line for line in table.value.splitlines()")
    assert row.strip() == f"<tr><td>2024-05-01T09:10:00Z</td><td>Alice</td><td>{escaped}</td></tr>"

    # the live view, as saved with the notebook: the widgets hold all six posts, escaped,
    # and a bar per author
    [view] = [c for c in run.cells if c.source.strip().endswith("display(view)") and "send_state" in c.source]
    assert [o["output_type"] for o in view.outputs] == ["display_data"]
    assert "application/vnd.jupyter.widget-view+json" in view.outputs[0]["data"]
    values = widget_values(nb)
    [table] = [v for v in values if v.startswith("<table")]
    assert escaped in table and "<b>not bold" not in table
    assert table.count("<tr>") == 1 + 6
    assert table.index("Three posts for Alice") < table.index("Hello, microblog!")  # newest first
    [bars] = [v for v in values if "background:" in v]
    assert re.findall(r">(\w+)</span>.*?<span>(\d+)</span>", bars) == [("Alice", "3"), ("Bob", "2"), ("Carol", "1")]

    # the mirror: post-7 published, then retracted; post-8 kept
    assert run.output("%hook retract -n urn:xmpp:microblog:0 post-7").strip() == (
        "Retracted item post-7 from urn:xmpp:microblog:0."
    )
    assert run.output("assert await wait_until(lambda: titles ==").strip() == "{'post-8': 'A post to keep'}"

    assert run.output("%hook delete -n urn:xmpp:microblog:0").strip() == "2 hook(s) have been deleted"
    assert run.output("%hook disconnect").strip() == f"Disconnected {jid}."
    # no cell showed an error or wrote to stderr
    assert not [o for c in run.cells for o in c.outputs if o["output_type"] == "error" or o.get("name") == "stderr"]
