#!/usr/bin/env bash
# The README's first command: set up the environment and run the example audits end to end.
#   examples/diabetes/audit.yaml -> out/example/         (tabular: trees, SHAP, LIME, PDP, ...)
#   examples/digits/audit.yaml   -> out/example-digits/  (images: a CNN, gradient methods)
#   examples/governance/run.sh   -> out/governance/      (an approved model, three candidates)
# Each audit writes results.json, arrays.npz, report.html, report.pdf, summary.md and junit.xml.
# The exit code is the worst of the two suites' verdicts and the governance scenario's (0 when
# every gate passes and each governance candidate fails as it must).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup-env.sh" sklearn,pdf,torch || exit $?
XAUDIT="$ROOT/.venv/bin/xaudit"
"$XAUDIT" run "$ROOT/examples/diabetes/audit.yaml" --out "$ROOT/out/example" "$@"
first=$?
"$XAUDIT" run "$ROOT/examples/digits/audit.yaml" --out "$ROOT/out/example-digits" "$@"
second=$?
XAUDIT="$XAUDIT" bash "$ROOT/examples/governance/run.sh" "$ROOT/out/governance"
third=$?  # 0 when the approved model passes and each retrained candidate fails, as it must
worst=$(( first > second ? first : second ))
exit $(( worst > third ? worst : third ))
