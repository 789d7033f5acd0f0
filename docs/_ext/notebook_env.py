"""Each executed notebook gets its own account: a Sphinx extension.

``scripts/build_docs.py`` starts a private Prosody, registers one account per notebook
and writes a JSON file ``{docname: {VARIABLE: value}}``, named by
``$PUBSUB_HOOK_DOCS_NOTEBOOK_ENV``. Before a notebook is read (and so executed by
myst-nb, whose kernel inherits this process's environment), its variables are set here:
two notebooks never share an account or a hook store, even when they run in parallel.
Without the file nothing is set (the notebooks then read the environment as it is).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

VARIABLE = "PUBSUB_HOOK_DOCS_NOTEBOOK_ENV"


def notebook_env() -> dict[str, dict[str, str]]:
    """The variables of each notebook's docname (empty without the file)."""
    path = os.environ.get(VARIABLE)
    if not path:
        return {}
    data = json.loads(Path(path).read_text())
    return {docname: {str(k): str(v) for k, v in values.items()} for docname, values in data.items()}


def _before_read(app: Sphinx, docname: str, source: list[str]) -> None:
    os.environ.update(notebook_env().get(docname, {}))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("source-read", _before_read)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
