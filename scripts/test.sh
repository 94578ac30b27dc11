#!/usr/bin/env bash
# The README's second command (and CI's): set up the dev environment, then run ruff, mypy and
# the whole pytest suite, slow oracle comparisons included. Extra arguments go to pytest.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup-env.sh" dev || exit $?
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
status=0
echo "== ruff"; "$PY" -m ruff check . || status=1
echo "== mypy"; "$PY" scripts/typecheck.py || status=1
echo "== pytest"; "$PY" -m pytest "$@" || status=1
exit $status
