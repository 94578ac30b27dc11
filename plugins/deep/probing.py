"""Layer-wise linear probes: how linearly decodable the labels are from each layer's output.

For each named layer of a torch model, the layer's output on the explained rows is read with a
forward hook, flattened and standardised, and a linear probe (logistic regression for class
labels, ridge regression for numeric ones) is scored by ``cv``-fold cross-validation (Alain and
Bengio, 2017, "Understanding Intermediate Layers Using Linear Classifier Probes", ICLR workshop;
Belinkov, 2022, "Probing Classifiers: Promises, Shortcomings, and Advances", Computational
Linguistics 48(1)). scikit-learn fits the probes (``cross_val_score``, imported lazily).

Result schema: a *global* explanation. ``values`` ``(cv, L, 1)``: row ``f`` holds each layer's
score on fold ``f``; the feature axis names the layers (``metadata["feature_names"]``) and the
one output slot the score (``cv accuracy`` or ``cv r2``). ``metadata`` also holds per-layer mean
and standard deviation, the chance level (majority-class share) and each layer's width.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from xaudit.batching import row_blocks
from xaudit.capabilities import refusal, require
from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.handoff import Handoff
from xaudit.hookspecs import hookimpl
from xaudit.model import MODALITIES, LayeredModel, Model
from xaudit.plugin import Explainer, PluginParams
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class ProbingParams(PluginParams):
    """Parameters of ``probing``."""

    layers: list[str] | None = None
    """Layer names (``named_modules`` names) to probe; default every named layer that runs in
    the forward."""
    cv: int = Field(5, ge=2, le=100)
    """Cross-validation folds (stratified for class labels)."""
    probe: Literal["auto", "logistic", "ridge"] = "auto"
    """``logistic`` for class labels, ``ridge`` for numeric ones; ``auto`` chooses by the
    labels (integers or strings with at most 20 distinct values are classes)."""
    regularization: float = Field(1.0, gt=0.0)
    """Logistic ``C`` (inverse strength) or ridge ``alpha``."""
    max_batch: int = Field(1024, gt=0)
    """Rows per forward pass."""


class LinearProbing(Explainer):
    """Cross-validated accuracy of a linear probe on each layer's representation."""

    name = "probing"
    summary = "Layer-wise linear probes with cross-validated accuracy per layer."
    description = (
        "Reads each named layer's output on the explained rows, flattens and standardises it, and "
        "scores a linear probe (logistic regression for class labels, ridge regression for "
        "numeric ones) by cross-validation. There is one row per fold and one value per layer: "
        "how well the labels can be decoded linearly from each layer, to be compared with chance; "
        "a measurement over all rows, not an attribution.")
    paper = ("Alain and Bengio 2017, Understanding Intermediate Layers Using Linear Classifier "
             "Probes; Belinkov 2022, Probing Classifiers: Promises, Shortcomings, and Advances")
    limitations = (
        "A probe measures what is linearly decodable from a layer, not what the model uses: "
        "high probe accuracy does not show the model relies on the information.",
        "With wide layers and few rows a probe can fit noise; compare with the chance level.",
    )
    Params = ProbingParams
    params: ProbingParams
    requires = frozenset({"layers"})
    modalities = MODALITIES
    needs_labels = True
    stochastic = True

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator,
                y: np.ndarray | None = None) -> Attribution:
        """Fold scores ``(cv, L, 1)`` of one probe per layer."""
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        p = self.params
        if y is None:
            raise InputError("probing needs the labels of the explained rows")
        labels = np.asarray(y).reshape(X.shape[0], -1)[:, 0]
        net = require(model, "layers", self.name)
        names = p.layers or list(net.layer_names())
        if not names:
            raise refusal(self.name, "named layers to probe", model, "the model lists none")
        features = representations(net, X, names, p.max_batch)
        idle = [name for name in names if name not in features]
        if idle and p.layers:
            raise InputError(f"probing: layer(s) {', '.join(idle)} did not run in the forward "
                             f"of model {model.name!r}")
        names = [name for name in names if name in features]  # by default, the layers that ran
        classes = _is_classes(labels) if p.probe == "auto" else p.probe == "logistic"
        seed = int(rng.integers(0, 2**31 - 1))
        if classes:
            _, counts = np.unique(labels, return_counts=True)
            if counts.min() < p.cv:
                raise InputError(f"probing: the rarest class has {counts.min()} rows, fewer "
                                 f"than cv={p.cv} folds; lower cv or explain more rows")
            splitter: Any = StratifiedKFold(p.cv, shuffle=True, random_state=seed)
            probe: Any = LogisticRegression(C=p.regularization, max_iter=2000)
            chance = float(counts.max() / counts.sum())
        else:
            splitter = KFold(p.cv, shuffle=True, random_state=seed)
            probe = Ridge(alpha=p.regularization)
            chance = 0.0
        scores = np.empty((p.cv, len(names)))
        for column, layer in enumerate(names):
            pipeline = make_pipeline(StandardScaler(), probe)
            scores[:, column] = cross_val_score(pipeline, features[layer], labels, cv=splitter,
                                                scoring="accuracy" if classes else "r2")
        metric = "cv accuracy" if classes else "cv r2"
        return Attribution(
            values=scores[:, :, None],
            handoff=Handoff(kind="global"),
            metadata={
                "feature_names": list(names), "output_names": [metric],
                "probe": "logistic" if classes else "ridge",
                "mean": scores.mean(axis=0).tolist(), "std": scores.std(axis=0, ddof=1).tolist(),
                "chance": chance, "widths": [int(features[n].shape[1]) for n in names],
                "random_state": seed,
            },
        )


def representations(model: LayeredModel, X: np.ndarray, names: list[str],
                    max_batch: int) -> dict[str, np.ndarray]:
    """Each named layer's output on the rows of ``X``, flattened to ``(n, width)``; a layer
    the forward does not run (a submodule whose weights a parent uses directly) is left out."""
    import torch

    captured: dict[str, list[np.ndarray]] = {name: [] for name in names}
    handles = []
    for name in names:
        def hook(_module: Any, _inputs: Any, output: Any, name: str = name) -> None:
            out = output[0] if isinstance(output, tuple | list) else output
            captured[name].append(out.detach().reshape(out.shape[0], -1).double().cpu().numpy())
        handles.append(model.layer(name).register_forward_hook(hook))
    try:
        with torch.no_grad():
            for rows in row_blocks(X.shape[0], max_batch):
                model.torch_forward(*model.to_tensors(X[rows]))
    finally:
        for handle in handles:
            handle.remove()
    return {name: np.concatenate(parts) for name, parts in captured.items() if parts}


def _is_classes(labels: np.ndarray) -> bool:
    if labels.dtype.kind in "OUSb":
        return True
    integral = labels.dtype.kind in "iu" or bool(np.all(np.mod(labels, 1) == 0))
    return integral and np.unique(labels).size <= 20


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``probing``."""
    registry.add(LinearProbing)
