#!/usr/bin/env bash
# Builds the documentation site into docs/_build/html: Sphinx with MyST pages, the two
# notebooks executed by myst-nb against a private Prosody on 127.0.0.1 (started and
# stopped by scripts/build_docs.py), the command, configuration and Python API
# reference generated from the code. Warnings are errors (-W --keep-going); nothing is
# fetched at build time (no intersphinx). Sets up first (scripts/setup.sh) when the
# .venv or its docs extra is missing. Extra arguments go to scripts/build_docs.py
# (e.g. --out DIR). Open docs/_build/html/index.html to read it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ ! -x "$PY" ] || ! "$PY" -c "import sphinx, myst_nb, furo" >/dev/null 2>&1 || ! command -v prosody >/dev/null 2>&1; then
    bash scripts/setup.sh
fi
exec "$PY" scripts/build_docs.py "$@"
