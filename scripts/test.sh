#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test-suite: unit tests, and the magics in
# real IPython kernels against a private Prosody on loopback. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
