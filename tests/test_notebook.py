"""The example notebook runs from top to bottom in a Jupyter kernel (nbclient + ipykernel) and
shows what it promises: the explanation inline, shap's beeswarm, a check, an in-memory audit
and the report it writes. The committed file carries no outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from xaudit.results import AuditResult

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "notebook" / "xaudit.ipynb"


def _outputs(cell: nbformat.NotebookNode) -> list[dict[str, object]]:
    return [o["data"] for o in cell.outputs if o.output_type in ("execute_result",
                                                                 "display_data")]


def test_the_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.slow
def test_the_notebook_runs_and_shows_each_step(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in notebook.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    shown = {i: _outputs(c) for i, c in enumerate(code)}
    html = "\n".join(str(d.get("text/html", "")) for outs in shown.values() for d in outs)
    assert "xaudit Explanation</strong> · method <code>shap.exact</code>" in html
    assert "method chosen by <code>auto</code>" in html
    beeswarm = next(c for c in code if "beeswarm" in c.source)
    assert any("image/png" in d for d in _outputs(beeswarm))
    assert "xaudit check <code>completeness@shap.exact</code>" in html
    assert "xaudit audit diabetes-mlp</strong> · verdict <strong>OK</strong>" in html
    out = tmp_path / "xaudit-notebook"
    assert (out / "report.html").is_file()
    audit = AuditResult.load(out)
    assert audit.exit_code() == 0
    labels = audit.explanations["shapley"].row_index.labels
    assert all(str(label).startswith("patient-") for label in labels)
