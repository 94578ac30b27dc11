#!/usr/bin/env bash
# The governance gate end to end: the approved diabetes model's run, then three retrained
# candidates gated against it (--baseline), then `xaudit diff` of the stumps against it.
#   approved  exits 0: every gate passes (drift and the relative R² gate are skipped: no baseline)
#   shuffled  exits 1: performance (held-out R² about -0.29), and drift
#   leak      exits 1: concentration and drift naming followup_lab (R² about 0.97 passes)
#   stumps    exits 1: drift (s5's share of attribution), its R² of 0.44 passes
# Results go to out/governance/<run>/ (or the folder given as the first argument). Needs the
# environment scripts/example.sh sets up. Exits 0 when every run ends as expected above.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/examples/governance"
OUT="${1:-$ROOT/out/governance}"
XAUDIT="${XAUDIT:-$ROOT/.venv/bin/xaudit}"

declare -A expected=([approved]=0 [shuffled]=1 [leak]=1 [stumps]=1)
declare -A got
echo "== approved"
"$XAUDIT" run "$HERE/approved.yaml" --out "$OUT/approved" -q
got[approved]=$?
for candidate in shuffled leak stumps; do
  echo "== $candidate (against the approved run)"
  "$XAUDIT" run "$HERE/$candidate.yaml" --out "$OUT/$candidate" --baseline "$OUT/approved" -q
  got[$candidate]=$?
done
echo "== xaudit diff approved stumps"
"$XAUDIT" diff "$OUT/approved" "$OUT/stumps" || exit $?

status=0
echo "== exit codes"
for run in approved shuffled leak stumps; do
  echo "$run: ${got[$run]} (expected ${expected[$run]})"
  [ "${got[$run]}" = "${expected[$run]}" ] || status=1
done
exit $status
