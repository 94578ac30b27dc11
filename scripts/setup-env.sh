#!/usr/bin/env bash
# Create or refresh the project's virtual environment in .venv.
#
# Usage: bash scripts/setup-env.sh [EXTRAS]    (EXTRAS defaults to "sklearn"; e.g. "dev")
#
# Installs Debian's Pango/HarfBuzz libraries when missing (WeasyPrint's PDF rendering needs
# them), creates .venv with Python >= 3.11, installs torch==2.13.0 first when the extras need
# torch (a CPU build that lies on this platform's disk; an unpinned torch would pull a multi-GB
# CUDA build), then installs xaudit in editable mode with the extras. A stamp file skips the pip
# step when nothing changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-sklearn}"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
TORCH_PIN="torch==2.13.0"

log() { printf '[setup] %s\n' "$*" >&2; }

"$PYTHON" - <<'PY' || { log "Python 3.11 or newer is required (set PYTHON=...)"; exit 4; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

install_system_libraries() {
    local missing=()
    for lib in libpango-1.0.so.0 libpangoft2-1.0.so.0 libharfbuzz-subset.so.0; do
        ldconfig -p 2>/dev/null | grep "$lib" >/dev/null || missing+=("$lib")  # no -q: pipefail
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing system libraries for PDF rendering (missing: ${missing[*]})"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
            log "not root and no sudo: install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 yourself"
            return 0
        fi
    fi
    if command -v apt-get >/dev/null 2>&1; then
        $sudo apt-get update -qq >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
            libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 >/dev/null \
            || log "apt-get could not install the Pango libraries; PDF output will be unavailable"
    else
        log "no apt-get: install Pango and HarfBuzz (subset) with your package manager"
    fi
}

install_system_libraries

if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi

STAMP="$VENV/.xaudit-setup"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/scripts/setup-env.sh" | sha256sum | cut -c1-16) $EXTRAS"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    log "environment up to date ($EXTRAS)"
    exit 0
fi

PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
case ",$EXTRAS," in
    *,dev,*|*,torch,*|*,all,*)
        log "installing $TORCH_PIN (CPU build)"
        "${PIP[@]}" "$TORCH_PIN" 2> >(grep -v "^WARNING: Location" >&2)
        ;;
esac
log "installing xaudit[$EXTRAS] in editable mode"
"${PIP[@]}" -e "$ROOT[$EXTRAS]" 2> >(grep -v "^WARNING: Location" >&2)
echo "$WANT" > "$STAMP"
