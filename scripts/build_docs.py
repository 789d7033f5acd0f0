"""Build the documentation site with its notebooks executed against a private Prosody.

    python scripts/build_docs.py [--out DIR] [--builder html] [-- SPHINX-ARGS...]

Starts a private Prosody on 127.0.0.1 (``pubsub_hook_magic.testing.TestServer``, as
``scripts/quickstart.sh`` and ``tests/test_notebooks.py`` do), registers an account for
each notebook (and bob, an admin of ``pubsub.localhost``, who publishes in the
quickstart), then runs ``sphinx-build -W --keep-going`` on ``docs/`` into ``--out``
(default ``docs/_build/html``). Each notebook's kernel gets its account, its own
hook store in a temp dir and the server's address through the environment
(``XMPP_JID``, ``XMPP_HOST``, ``XMPP_PORT``, ``XMPP_PASSWORD``, ``BOB_JID``,
``BOB_PASSWORD``, ``PUBSUB_HOOK_DATA_DIR``; see ``docs/_ext/notebook_env.py``). Prosody
is stopped at the end; the exit status is sphinx-build's.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))

from pubsub_hook_magic.testing.server import TestServer  # noqa: E402 - after the path

#: The executed notebooks (docnames) and the local part of the account each one uses.
NOTEBOOKS = {"tutorial/quickstart": "alice", "tutorial/microblog": "carol"}
BOB = "bob"  # the quickstart's second account, an admin of pubsub.localhost


def notebook_env(server: TestServer, work: Path) -> dict[str, dict[str, str]]:
    """Register the accounts; the environment of each notebook, by docname."""
    bob_password = secrets.token_urlsafe(12)
    bob = server.register(BOB, bob_password)
    envs = {}
    for docname, user in NOTEBOOKS.items():
        password = secrets.token_urlsafe(12)
        jid = server.register(user, password)
        store = work / f"store-{user}"
        envs[docname] = {
            "XMPP_JID": jid,
            "XMPP_HOST": server.host,
            "XMPP_PORT": str(server.port),
            "XMPP_PASSWORD": password,
            "BOB_JID": bob,
            "BOB_PASSWORD": bob_password,
            "PUBSUB_HOOK_DATA_DIR": str(store),
        }
    return envs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DOCS / "_build" / "html", help="where the site goes")
    ap.add_argument("--builder", default="html", help="the Sphinx builder (default: html)")
    ap.add_argument("sphinx_args", nargs="*", help="more arguments for sphinx-build (after --)")
    args = ap.parse_args(argv)
    if shutil.which("prosody") is None:
        print("build_docs: Prosody is not installed: run scripts/setup.sh", file=sys.stderr)
        return 2

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pubsub-hook-docs-") as tmp:
        work = Path(tmp)
        with TestServer(storage="memory", autocreate=True, admins=(f"{BOB}@localhost",)) as server:
            env_file = work / "notebook-env.json"
            env_file.write_text(json.dumps(notebook_env(server, work)))
            env = dict(os.environ, PUBSUB_HOOK_DOCS_NOTEBOOK_ENV=str(env_file), PYDEVD_DISABLE_FILE_VALIDATION="1")
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
            for name in [n for n in env if n.startswith("JPY_")]:
                del env[name]
            print(f"== private Prosody on {server.host}:{server.port}; building the docs into {args.out}", flush=True)
            command = [
                sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-j", "auto",
                "-b", args.builder, "-d", str(args.out.parent / ".doctrees"),
                str(DOCS), str(args.out), *args.sphinx_args,
            ]  # fmt: skip
            rc = subprocess.run(command, env=env, cwd=ROOT).returncode
            if rc != 0:
                print(f"== sphinx-build FAILED (exit {rc}); Prosody's log:", file=sys.stderr)
                print(server.log_tail(20), file=sys.stderr)
    print(f"== the docs build took {time.monotonic() - started:.0f} s (sphinx-build exit {rc})", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
