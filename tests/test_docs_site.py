"""The documentation site (mkdocs.yml) builds offline and its API reference is generated from
the docstrings: every ``:::`` directive of docs/api.md renders the object's docstring."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import xaudit

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_site_builds_and_the_api_reference_holds_the_docstrings(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-f",
                           str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                          capture_output=True, text=True, cwd=ROOT, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    page = (tmp_path / "site" / "api" / "index.html").read_text()
    targets = re.findall(r"^::: (\S+)$", (ROOT / "docs" / "api.md").read_text(), re.M)
    assert len(targets) >= 15
    for target in targets:
        assert f'id="{target}"' in page, f"{target} is not in the API reference"
    first_line = (xaudit.explain.__doc__ or "").split("\n", 1)[0].replace("``", "")
    assert re.sub(r"<[^>]+>", "", first_line) in re.sub(r"<[^>]+>", "", page)
