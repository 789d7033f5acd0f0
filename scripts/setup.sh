#!/usr/bin/env bash
# Sets up a fresh Debian machine for pubsub_hook_magic: Prosody (Debian's package, for the
# private test server; its system service is not started; lua-dbi-sqlite3 for its SQLite
# storage in the soak), Chromium (Debian's package, for
# the browser test) and a virtualenv in .venv with the package and its test, browser and
# docs extras (and the dev tools: ruff, mypy, coverage) from PyPI. Idempotent: run it as often as you like.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v prosody >/dev/null 2>&1; then
    echo "== installing Prosody (apt)"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq prosody >/dev/null
    # Debian starts the system service on install; we run private servers only.
    $SUDO systemctl stop prosody >/dev/null 2>&1 || $SUDO service prosody stop >/dev/null 2>&1 || true
fi

if ! dpkg -s ejabberd >/dev/null 2>&1; then
    # For pubsub_hook_magic.testing.ejabberd (tests against a second real server, with
    # Debian's defaults). We run private instances only: a policy-rc.d that answers 101
    # keeps invoke-rc.d from starting the system service during the install, and it is
    # disabled (and stopped, if systemd started it anyway) right after. An epmd left
    # running by the postinst does no harm: our instances do not use epmd.
    echo "== installing ejabberd (apt)"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    POLICY=/usr/sbin/policy-rc.d
    POLICY_SAVED=""
    if [ -e "$POLICY" ]; then POLICY_SAVED="$(mktemp)"; $SUDO cp -p "$POLICY" "$POLICY_SAVED"; fi
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ejabberd >/dev/null || { \
        if [ -n "$POLICY_SAVED" ]; then $SUDO mv "$POLICY_SAVED" "$POLICY"; else $SUDO rm -f "$POLICY"; fi; exit 1; }
    if [ -n "$POLICY_SAVED" ]; then $SUDO mv "$POLICY_SAVED" "$POLICY"; else $SUDO rm -f "$POLICY"; fi
    $SUDO systemctl disable --now ejabberd >/dev/null 2>&1 || $SUDO service ejabberd stop >/dev/null 2>&1 || true
fi

if ! dpkg -s lua-dbi-sqlite3 >/dev/null 2>&1; then
    # For the soak (python -m benchmarks.soak, tests/test_soak.py): Prosody's SQLite
    # storage (TestServer(storage="sqlite")) goes through LuaDBI.
    echo "== installing lua-dbi-sqlite3 (apt)"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq lua-dbi-sqlite3 >/dev/null
fi

if [ ! -x /usr/bin/chromium ]; then
    # For tests/test_browser_table.py: Playwright drives Debian's Chromium through
    # executable_path (`playwright install` downloads browsers, which cannot work here).
    echo "== installing Chromium (apt)"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -c 'import ensurepip' >/dev/null 2>&1; then
        # Debian's python3 makes venvs only with python3-venv (not installed by default).
        echo "== installing python3-venv (apt)"
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    fi
    echo "== creating .venv"
    "$PY" -m venv .venv
fi
echo "== installing pubsub_hook_magic and its test, browser, dev (ruff, mypy, coverage) and docs (sphinx, myst-nb, furo) extras into .venv"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# PYTHONWARNINGS: setuptools' build backend warns about every editable install.
PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q -e '.[test,browser,dev,docs]' 2>&1 | grep -v -e '^WARNING: Location' -e 'ignored: it is neither' || true
.venv/bin/python -c "import pubsub_hook_magic, slixmpp, IPython, ipykernel, ipywidgets, nbclient, playwright, jupyterlab, sphinx, myst_nb, furo" \
    || { echo "setup failed: the package or its dependencies do not import" >&2; exit 1; }
.venv/bin/python -m ruff --version >/dev/null && .venv/bin/python -m mypy --version >/dev/null \
    && .venv/bin/python -m coverage --version >/dev/null \
    || { echo "setup failed: the gates' tools (ruff, mypy, coverage) do not run" >&2; exit 1; }
