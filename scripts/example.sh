#!/usr/bin/env bash
# The README's first command: set up the environment and run the example audits end to end.
#   examples/diabetes/audit.yaml -> out/example/         (tabular: trees, SHAP, LIME, PDP, ...)
#   examples/digits/audit.yaml   -> out/example-digits/  (images: a CNN, gradient methods)
#   examples/governance/run.sh   -> out/governance/      (an approved model, three candidates)
# Each audit writes results.json, arrays.npz, report.html, report.pdf, summary.md, junit.xml and
# manifest.json; `xaudit verify` then checks the two example folders against their manifests.
# Explanations are cached in out/.xaudit-cache, so a second run with unchanged models reuses
# them (--no-cache computes everything again). The exit code is the worst of the two suites'
# verdicts, the verifications and the governance scenario's (0 when every gate passes, every
# folder verifies and each governance candidate fails as it must).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup-env.sh" sklearn,pdf,torch,verify || exit $?
XAUDIT="$ROOT/.venv/bin/xaudit"
worst=0
keep() { [ "$1" -gt "$worst" ] && worst=$1; return 0; }
for name in diabetes digits; do
    out="$ROOT/out/example"; [ "$name" = digits ] && out="$ROOT/out/example-digits"
    "$XAUDIT" run "$ROOT/examples/$name/audit.yaml" --out "$out" \
        --cache "$ROOT/out/.xaudit-cache" "$@"
    keep $?
    "$XAUDIT" verify "$out"
    keep $?
done
XAUDIT="$XAUDIT" bash "$ROOT/examples/governance/run.sh" "$ROOT/out/governance"
keep $?  # 0 when the approved model passes and each retrained candidate fails, as it must
exit "$worst"
