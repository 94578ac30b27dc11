#!/usr/bin/env bash
# The README's first command: set up the environment and run the example audit end to end.
# Results (results.json, arrays.npz, report.html, report.pdf, summary.md, junit.xml) go to
# out/example/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup-env.sh" sklearn,pdf
"$ROOT/.venv/bin/xaudit" run "$ROOT/examples/diabetes/audit.yaml" --out "$ROOT/out/example" "$@"
