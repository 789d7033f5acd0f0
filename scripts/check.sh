#!/usr/bin/env bash
# The gates, without setup (run scripts/setup.sh first; .ci/run does):
#   1. ruff check pubsub_hook_magic   (rules and line length: [tool.ruff] in pyproject.toml)
#   2. mypy                           (the package: [tool.mypy] in pyproject.toml)
#   3. the fast lane, pytest -m "not kernel and not browser" (unit tests, and tests
#      against private Prosody servers without a kernel), under coverage.py, with
#      `coverage report` printed (the core modules' total last).
# Every gate runs even if an earlier one fails; the exit status is non-zero if any
# failed (pytest's own status, so "no tests collected" (5) fails too). Extra arguments
# go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
LANE="not kernel and not browser"
# What the issue calls the core: engine, live path, catch-up, summary, commands, table.
CORE="pubsub_hook_magic/engine.py,pubsub_hook_magic/admission.py,pubsub_hook_magic/live.py,\
pubsub_hook_magic/catchup.py,pubsub_hook_magic/positions.py,pubsub_hook_magic/runner.py,\
pubsub_hook_magic/registry.py,pubsub_hook_magic/summary.py,pubsub_hook_magic/manager.py,\
pubsub_hook_magic/persistence.py,pubsub_hook_magic/xmpp_session.py,pubsub_hook_magic/subscriptions.py,\
pubsub_hook_magic/commands/*,pubsub_hook_magic/table/*,pubsub_hook_magic/store.py,\
pubsub_hook_magic/cells.py,pubsub_hook_magic/client.py,pubsub_hook_magic/api.py"

failed=()

echo "== ruff check pubsub_hook_magic"
"$PY" -m ruff check --output-format concise pubsub_hook_magic || failed+=("ruff")

echo "== mypy"
"$PY" -m mypy || failed+=("mypy")

echo "== the fast lane: pytest -m \"$LANE\" (under coverage)"
"$PY" -m coverage erase
start=$SECONDS
rc=0
"$PY" -m coverage run -m pytest -m "$LANE" -p no:cacheprovider -q "$@" || rc=$?
echo "   the fast lane took $((SECONDS - start)) s (pytest exit $rc)"
[ "$rc" -eq 0 ] || failed+=("fast lane (pytest exit $rc)")
if "$PY" -m coverage combine -q; then
    "$PY" -m coverage report --sort=cover
    echo "== coverage of the core modules"
    "$PY" -m coverage report --include="$CORE" --sort=cover
else
    failed+=("coverage (no data)")
fi

if [ "${#failed[@]}" -gt 0 ]; then
    printf '== FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "== every gate passed"
