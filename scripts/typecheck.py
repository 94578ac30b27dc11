"""Run mypy on the ``xaudit`` package as users import it.

The repository maps ``core/`` to ``xaudit`` and ``adapters/``, ``plugins/``, ``reports/`` to its
subpackages (see pyproject.toml). mypy cannot follow setuptools' editable-install import hook,
so this builds a view of symlinks laid out as the installed package and checks that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIEW = ROOT / os.environ.get("XAUDIT_TYPECHECK_VIEW", ".typecheck")
"""Where the view is built; set ``XAUDIT_TYPECHECK_VIEW`` to run several checks at once."""
SUBPACKAGES = ("adapters", "plugins", "reports")


def build_view() -> Path:
    """Create ``.typecheck/xaudit`` mirroring the installed layout; returns its parent."""
    shutil.rmtree(VIEW, ignore_errors=True)
    package = VIEW / "xaudit"
    package.mkdir(parents=True)
    for source in (ROOT / "core").iterdir():
        if source.name != "__pycache__":
            (package / source.name).symlink_to(source)
    for name in SUBPACKAGES:
        (package / name).symlink_to(ROOT / name, target_is_directory=True)
    return VIEW


def main() -> int:
    """Run mypy over the view plus the examples and tests; returns mypy's exit code."""
    view = build_view()
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
               "--cache-dir", str(view / ".mypy_cache"), "-p", "xaudit"]
    return subprocess.call(command, cwd=view)


if __name__ == "__main__":
    raise SystemExit(main())
