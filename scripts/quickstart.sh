#!/usr/bin/env bash
# The quickstart in one command, on a fresh Debian machine: sets up (scripts/setup.sh:
# Prosody and a .venv), starts a private Prosody on 127.0.0.1 with new accounts
# alice@localhost (who may create nodes on pubsub.localhost: it is her tour) and bob@localhost
# (its admin), runs notebooks/quickstart.ipynb headless against it, prints what the
# cells printed and saves the executed notebook to artifacts/quickstart.ipynb.
# Prosody is always stopped at the end; persistent hooks go to a temp dir, so your own
# hook store is untouched. Exits non-zero if a cell fails.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

bash scripts/setup.sh

PY="$REPO/.venv/bin/python"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pubsub-hook-quickstart.XXXXXX")
SERVER_PID=""

cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(18))')
BOB_PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(18))')
ENV_FILE="$WORK/server.env"

echo "== starting a private Prosody on 127.0.0.1"
"$PY" -m pubsub_hook_magic.testing.server --user "alice:$PASSWORD" --user "bob:$BOB_PASSWORD" \
    --admin bob@localhost --node-creator alice@localhost --autocreate --env-file "$ENV_FILE" \
    >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!

for _ in $(seq 1 300); do  # up to 30 s
    [ -s "$ENV_FILE" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "the test server did not start:" >&2
        cat "$WORK/server.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [ ! -s "$ENV_FILE" ]; then
    echo "the test server was not ready within 30 s:" >&2
    cat "$WORK/server.err" >&2
    exit 1
fi
# shellcheck disable=SC1090
. "$ENV_FILE"
echo "   ready on $XMPP_TEST_HOST:$XMPP_TEST_PORT"

export XMPP_JID="$XMPP_TEST_ALICE_JID"
export XMPP_HOST="$XMPP_TEST_HOST"
export XMPP_PORT="$XMPP_TEST_PORT"
export XMPP_PASSWORD="$XMPP_TEST_ALICE_PASSWORD"
export BOB_JID="$XMPP_TEST_BOB_JID" BOB_PASSWORD="$XMPP_TEST_BOB_PASSWORD"  # the second account
export PUBSUB_HOOK_DATA_DIR="$WORK/hook-store"
mkdir -p "$WORK/kernel"

echo "== running notebooks/quickstart.ipynb as $XMPP_JID"
rc=0
"$PY" scripts/run_notebook.py notebooks/quickstart.ipynb \
    --output artifacts/quickstart.ipynb --cwd "$WORK/kernel" --timeout 60 || rc=$?

if [ "$rc" -eq 130 ]; then
    exit 130
elif [ "$rc" -ne 0 ]; then
    echo "== the quickstart FAILED (exit $rc); Prosody's log:" >&2
    tail -n 30 "$XMPP_TEST_DATA_DIR/prosody.log" >&2 2>/dev/null || true
    exit "$rc"
fi
echo "== the quickstart passed. Open artifacts/quickstart.ipynb to see it executed."
echo "   The commands are in .venv/bin: run the service as .venv/bin/pubsub-hook run"
echo "   (or 'source .venv/bin/activate' first, then pubsub-hook run); pubsub-hook --help lists the others."
