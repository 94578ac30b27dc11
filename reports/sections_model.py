"""Sections 3-4: the model (what it is, how it was built, how well it performs) and the data
(what it was trained, tested and explained on, side by side)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..feature_shares import is_attribution, is_tabular
from ..results import AuditResult
from .analysis import explanations, mean_abs, numeric_column, rank_top
from .evidence import performance_figures
from .section_base import ContextualSection
from .segments import shown_value


class ModelSection(ContextualSection):
    """The model as the adapter describes it, its documented history and its performance."""

    name = "model"
    title = "Model"
    order = 30
    template = "section_model.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """Adapter, framework, SHA-256, task, inputs, outputs, capabilities; the documented
        version, training procedure, lineage and limitations; hyperparameters read from the
        model; held-out performance with intervals and per segment."""
        model = result.model
        if not model:
            return self.not_applicable("the result holds no model description")
        spec = model.get("input_spec") or {}
        names = spec.get("feature_names") or []
        doc = self.render.documentation
        hyper = model.get("hyperparameters") or {}
        parameters = list(hyper.get("parameters") or [])
        return {"model": model, "input_spec": spec, "n_features": len(names),
                "feature_shape": spec.get("feature_shape"),
                "outputs": model.get("output_names") or [],
                "doc": doc,
                "hyper": hyper,
                "changed": [p for p in parameters if p.get("changed")],
                "parameters": parameters,
                "layers": list(hyper.get("layers") or []),  # tabled in the technical appendix
                "performance": performance_figures(result, doc.value_labels if doc else None)}


class DataSection(ContextualSection):
    """Source, hash, shape, features, explained rows and background, and how the training,
    test and explained rows compare."""

    name = "data"
    title = "Data"
    order = 40
    template = "section_data.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """The data description, a feature table over the explained rows, and the
        representativeness table."""
        data = result.data
        if not data:
            return self.not_applicable("the result holds no data description")
        sampling = data.get("sampling") or {}
        background = dict(sampling.get("background") or {})
        background_rows = background.pop("rows", None)
        explain_rows = data.get("explain_rows") or []
        features, other = self._features(result)
        return {
            "data": data,
            "split": sampling.get("split") or {},
            "explain": sampling.get("explain") or {},
            "background": background,
            "n_background_rows": len(background_rows or []),
            "n_explained": len(explain_rows),
            "explain_rows_head": explain_rows[:30],
            "features": features,
            "other": other,
            "representativeness": self._representativeness(result),
        }

    def _features(self, result: AuditResult) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        names: list[str] = list(result.data.get("feature_names") or [])
        categorical = set(result.data.get("categorical") or [])
        tabular = next((e for _, e in explanations(result) if is_tabular(e) and is_attribution(e)),
                       None)
        rows: list[dict[str, Any]] = [
                {"name": n, "type": "categorical" if n in categorical else "numeric",
                 "min": None, "max": None, "missing": None, "distinct": None} for n in names]
        order = np.arange(len(names))
        if tabular is not None and tuple(tabular.feature_names) == tuple(names):
            for j, row in enumerate(rows):
                row.update(_column_facts(tabular.inputs[:, j], row["type"]))
            scores, _ = mean_abs(tabular, 0)
            order = rank_top(names, scores, None, len(names)).indices
        k = self.render.options.top_k
        shown = [rows[i] for i in order[:k]]
        rest = [rows[i] for i in order[k:]]
        other = {
            "count": len(rest),
            "numeric": sum(r["type"] == "numeric" for r in rest),
            "categorical": sum(r["type"] == "categorical" for r in rest),
            "missing": sum(int(r["missing"] or 0) for r in rest),
            "names": [r["name"] for r in rest],
        }
        return shown, other

    def _representativeness(self, result: AuditResult) -> dict[str, Any]:
        """One row per feature and pool, the comparison with the training rows beside it;
        category shares through the documented value labels."""
        record = result.data.get("representativeness") or {}
        if not record or record.get("skipped"):
            return {"skipped": record.get("skipped") or "the run recorded no comparison of "
                                                        "the training, test and explained rows"}
        doc = self.render.documentation
        labels = doc.value_labels if doc else {}
        quantiles = list(record.get("quantiles") or [])
        shown = [q for q in (0.05, 0.5, 0.95) if q in quantiles]
        features = []
        for feature in record.get("features") or []:
            versus = {c["second"]: c for c in feature.get("comparisons") or []
                      if c.get("first") == "train"}
            rows = []
            pools = feature.get("pools") or {}
            for pool in [p for p in record.get("pools") or [] if p in pools]:
                summary = pools[pool]
                values = summary.get("quantiles") or []
                rows.append({
                    "pool": pool, "rows": summary.get("rows"), "missing": summary.get("missing"),
                    "mean": summary.get("mean"), "sd": summary.get("sd"),
                    "quantiles": [values[quantiles.index(q)] if len(values) == len(quantiles)
                                  else None for q in shown],
                    "shares": [(shown_value(labels.get(feature["feature"]), code), share)
                               for code, share in (summary.get("shares") or {}).items()],
                    "versus": versus.get(pool)})
            features.append({"feature": feature["feature"], "kind": feature["kind"],
                             "rows": rows})
        explain_from = ((result.data.get("sampling") or {}).get("explain") or {}).get("from")
        return {"skipped": None, "features": features, "quantiles": shown,
                "overlap": explain_from == "train"}


def _column_facts(column: np.ndarray, kind: str) -> dict[str, Any]:
    values = numeric_column(column)
    if values is None or kind == "categorical":
        text = [str(v) for v in column.tolist()]
        missing = sum(t in ("", "nan", "None") for t in text)
        return {"type": "categorical", "missing": missing,
                "distinct": len(set(text) - {"", "nan", "None"})}
    missing = int(np.isnan(values).sum())
    finite = values[~np.isnan(values)]
    return {"min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            "missing": missing, "distinct": int(np.unique(finite).size)}
