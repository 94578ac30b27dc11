"""``method="auto"``: the exact or fastest faithful explainer the model's capabilities allow.

The rule, first match wins (each candidate must also pass the host's negotiation: the model
offers what it requires and its input modality):

1. a tree ensemble (capability ``tree_ensemble``) -> ``shap.tree``: exact TreeSHAP in
   polynomial time (Lundberg et al. 2020); path-dependent without a background,
   interventional with one;
2. differentiable with float inputs (capability ``gradients``) -> ``gradient.integrated``:
   integrated gradients from a zero baseline (Sundararajan, Taly and Yan 2017), complete up to
   its quadrature error (the convergence delta it reports);
3. at most :data:`EXACT_MAX_FEATURES` features -> ``shap.exact``: every coalition evaluated,
   ``(2^d - 2) x B`` model calls per row over ``B`` background rows;
4. otherwise -> ``shap.kernel``: KernelSHAP with 2,048 coalitions per row (Lundberg and Lee
   2017), which still enumerates every coalition up to 11 features.

The cutoff of rule 3 was measured (``benchmarks/bench_auto_cutoff.py``, 5 rows, background
100, 2-core CPU): on a scikit-learn MLP exact Shapley values cost 0.95x KernelSHAP's time at
10 features, 1.4x at 11, 1.8x at 12, 3.7x at 13 and 14x at 14, while KernelSHAP stays exact
(it enumerates) up to 11 features and is within 1e-3 relative L2 error beyond.

Rules 3 and 4 need a background. When none is given, :func:`default_background` takes up to
:data:`DEFAULT_BACKGROUND_ROWS` of the explained rows, drawn with the explanation's seed, as
shap's ``Explainer(model, X)`` does with its data. Rules 1 and 2 use none (path-dependent
TreeSHAP, a zero baseline). The choice, its reason and the background rows used are recorded
in the explanation's ``metadata["method_choice"]`` (:data:`CHOICE_KEY`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .capabilities import unmet
from .errors import CapabilityError
from .host import Host
from .model import Model
from .seeding import derive_seed, rng_for

if TYPE_CHECKING:
    from .explanation import Explanation

AUTO = "auto"
EXACT_MAX_FEATURES = 10
"""Up to this many features ``auto`` computes exact Shapley values; beyond, KernelSHAP."""
DEFAULT_BACKGROUND_ROWS = 100
"""Explained rows ``auto`` takes as the background of Shapley methods when none is given."""
CHOICE_KEY = "method_choice"
"""The key of an explanation's ``metadata`` under which the host records ``auto``'s choice."""

RULE = (
    "tree ensemble -> shap.tree; differentiable (gradients, float inputs) -> "
    f"gradient.integrated; at most {EXACT_MAX_FEATURES} features -> shap.exact; otherwise "
    f"shap.kernel. Without a background, shap.exact and shap.kernel use up to "
    f"{DEFAULT_BACKGROUND_ROWS} of the explained rows, drawn with the seed")
"""The rule in one line (``xaudit plugins`` prints it)."""


@dataclass(frozen=True)
class Choice:
    """The method ``auto`` chose for a model, and why."""

    method: str
    reason: str

    @property
    def needs_background(self) -> bool:
        """Whether the chosen method integrates over background rows."""
        return self.method in ("shap.exact", "shap.kernel")

    def record(self, given: bool, drawn: np.ndarray | None, n: int) -> dict[str, Any]:
        """What ``metadata[CHOICE_KEY]`` records: the method, the reason, the rule and the
        background: ``given`` by the caller, or ``drawn`` (positions among the ``n`` explained
        rows, stored as ``background_rows``), or none needed."""
        found: dict[str, Any] = {"requested": AUTO, "method": self.method,
                                 "reason": self.reason, "rule": RULE}
        if given:
            found["background"] = "given by the caller"
        elif drawn is not None:
            found["background"] = (f"all {n} explained rows" if drawn.size == n else
                                   f"{drawn.size} of the {n} explained rows, drawn with the seed")
            found["background_rows"] = drawn.tolist()
        else:
            found["background"] = ("none: path-dependent TreeSHAP" if self.method == "shap.tree"
                                   else "none: a zero baseline")
        return found


def choose_method(model: Model, host: Host) -> Choice:
    """The explainer :data:`RULE` picks for ``model``; CapabilityError when none fits."""
    d = int(np.prod(model.input_spec.feature_shape))
    floats = not model.input_spec.dtype.startswith("int")
    candidates = [
        ("shap.tree", "tree_ensemble" in model.capabilities,
         "the model is a tree ensemble: exact TreeSHAP"),
        ("gradient.integrated", "gradients" in model.capabilities and floats,
         "the model is differentiable: integrated gradients"),
        ("shap.exact", d <= EXACT_MAX_FEATURES,
         f"{d} feature(s), at most {EXACT_MAX_FEATURES}: exact Shapley values"),
        ("shap.kernel", True, f"{d} features, more than {EXACT_MAX_FEATURES}: KernelSHAP"),
    ]
    for method, applies, reason in candidates:
        if applies and method in host.explainers:
            cls = host.explainers.get(method)
            if not unmet(model, cls.requires, cls.modalities):
                return Choice(method, reason)
    compatible = ", ".join(host.compatible_explainers(model)) or "none"
    raise CapabilityError(
        f"method 'auto' found no method for model {model.name!r} ({model.input_spec.modality} "
        f"input, capabilities: {', '.join(sorted(model.capabilities))}); its rule is: {RULE}. "
        f"Name a method; explainers that work with this model: {compatible}")


def default_background(X: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to :data:`DEFAULT_BACKGROUND_ROWS` rows of ``X`` (all when fewer), drawn with a seed
    derived from ``seed``; returns the rows and their sorted positions in ``X``."""
    n = X.shape[0]
    if n <= DEFAULT_BACKGROUND_ROWS:
        rows = np.arange(n)
    else:
        rng = rng_for(derive_seed(seed, "auto", "background"))
        rows = np.sort(rng.choice(n, size=DEFAULT_BACKGROUND_ROWS, replace=False))
    return X[rows], rows


def recorded_background(explanation: Explanation) -> np.ndarray | None:
    """The background ``auto`` drew from the explained rows, or ``None`` when it drew none."""
    choice = explanation.metadata.get(CHOICE_KEY) or {}
    rows = choice.get("background_rows")
    return None if rows is None else explanation.inputs[np.asarray(rows, dtype=np.int64)]
