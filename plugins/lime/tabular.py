"""LIME for tabular rows (Ribeiro, Singh and Guestrin 2016, "Why Should I Trust You?").

Perturbations follow the training (background) distribution, one feature at a time:

- ``discretizer: none``: continuous features are drawn from ``N(mean_j, std_j)`` of the
  background (around the row instead with ``sample_around_instance``); the interpretable
  representation is the standardised value ``(z_j - mean_j) / std_j``, so on a model linear in
  ``x_j`` with coefficient ``c_j`` the local weight is ``c_j * std_j``.
- ``quartile`` / ``decile`` / ``entropy``: each continuous feature is cut into bins (background
  quantiles, or the splits of a depth-3 entropy tree on the model's predicted class of the
  background rows); a bin is drawn with its background frequency and a value inside it from a
  normal truncated to the bin (the bin's background mean and standard deviation). The
  representation is binary: 1 when the sample falls in the row's bin.
- categorical features are drawn from their background frequencies; representation 1 when
  equal to the row's value.

Samples are weighted by ``exp(-D^2 / (2 w^2))`` (Euclidean distance ``D`` in the representation,
``w = 0.75 sqrt(d)`` by default) and a weighted ridge is fitted per targeted output (see
:mod:`xaudit.plugins.lime.common`). Every row's sample set is drawn from the generator passed in,
in row order, so a seed fixes the explanation; the sample sets of many rows are stacked into
model calls of up to ``max_batch`` rows. Each surrogate's weighted R² and its value at the row
are in ``handoff.surrogate``, the model's outputs on the rows in ``handoff.outputs``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from xaudit.batching import row_blocks
from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.handoff import Handoff, SurrogateFit
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer
from xaudit.plugins._support.features import resolve_features
from xaudit.plugins._support.stability import stability_over_seeds
from xaudit.plugins.lime.common import LimeFitParams, fit_local, kernel
from xaudit.plugins.lime.tabular_sampling import Discretizer, Stats, draw, fit_stats, represent
from xaudit.progress import rows_done
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class LimeTabularParams(LimeFitParams):
    """Parameters of ``lime.tabular``."""

    discretizer: Discretizer = "quartile"
    """``none`` samples continuous features from a normal and explains standardised values;
    ``quartile``, ``decile`` or ``entropy`` explain 'the feature lies in the row's bin'."""
    categorical_features: list[int | str] = Field(default_factory=list)
    """Categorical features, by index or by the model's feature names."""
    sample_around_instance: bool = False
    """With ``discretizer: none``: centre the normal samples on the row, not the mean."""
    stability_runs: int = Field(0, ge=0, le=1_000)
    """With 2 or more: explain again ``stability_runs - 1`` times with seeds drawn from this
    explanation's generator and report, per row and output, the stability of the top
    ``stability_top_k`` features in ``metadata["stability"]`` (that many times the cost)."""
    stability_top_k: int = Field(5, ge=1)
    """How many top features the stability figures compare."""
    share_samples: bool = False
    """Draw one perturbation set per block of rows and reuse it for every row of the block
    (each row still gets ``n_samples`` samples, with row 0 its own input). The perturbation
    distribution does not depend on the row, so each explanation is distributed as with its own
    draw, at ``1/block`` of the model calls; errors are then correlated across rows."""


class LimeTabular(Explainer):
    """Local weighted linear surrogates on perturbations drawn from the training distribution."""

    name = "lime.tabular"
    row_parallel = True
    summary = "LIME: a sparse weighted linear model fitted to perturbations around each row."
    description = (
        "Samples rows around each explained row from the background distribution, one feature at "
        "a time (continuous features from normal distributions or from background quantile bins, "
        "categorical ones from their frequencies), represents them relative to the row "
        "(standardised values, or whether each feature falls in the row's bin), weights them with "
        "an exponential kernel on their distance to the row and fits a sparse weighted ridge "
        "regression to the model's outputs. The values are the surrogate's coefficients; its "
        "weighted R2 says how well the local linear fit holds.")
    paper = ("Ribeiro, Singh and Guestrin 2016, 'Why Should I Trust You?': Explaining the "
             "Predictions of Any Classifier")
    limitations = (
        "Weights depend on the kernel width, which has no principled default; a different "
        "width can change the ranking of features.",
        "Perturbations are drawn feature by feature, ignoring correlations, so many samples "
        "may be unrealistic rows.",
        "Weights explain the local surrogate: check its weighted R2 (handoff.surrogate.r2) before "
        "trusting them; they do not sum to the model output.",
        "Discretized weights mean 'being in this bin' against the background mix of bins, not "
        "a marginal effect.",
    )
    Params = LimeTabularParams
    params: LimeTabularParams
    needs_background = True
    stochastic = True
    default_target = "all"

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Surrogate weights ``(n, d, k)``, intercepts ``(n, k)``, R2 and local predictions."""
        p = self.params
        if X.ndim != 2:
            raise InputError(f"lime.tabular explains rows of features (n, d); got {X.shape}")
        if background is None or len(background) < 2:
            raise InputError("lime.tabular needs a background of at least 2 training rows")
        n, d = X.shape
        cat = _categorical_indices(p.categorical_features, model, d)
        _refuse_text_in_continuous(np.concatenate([np.asarray(background), X]), cat, model)
        stats = fit_stats(np.asarray(background), cat, p.discretizer, model)
        width = p.kernel_width or 0.75 * np.sqrt(d)
        S = p.n_samples
        k = targets.n_slots
        values = np.zeros((n, d, k))
        base, r2 = np.zeros((n, k)), np.zeros((n, k))
        local, outputs = np.zeros((n, k)), np.zeros((n, k))
        selected = np.zeros((n, d, k), dtype=bool)
        share = p.share_samples
        if share and p.sample_around_instance:
            raise InputError("share_samples needs samples that do not depend on the row; "
                             "turn off sample_around_instance or share_samples")
        dtype = object if X.dtype == object else np.float64
        per_row = 1 if share else S
        limit = max(1, p.max_batch - (S if share else 0))
        for block in (range(n)[rows] for rows in row_blocks(n, limit, per_row)):
            if share:
                shared = draw(st=stats, S=S, d=d, discretizer=p.discretizer, rng=rng, dtype=dtype)
                draws = [shared] * len(block)
                flat = model.predict(np.concatenate([X[block.start:block.stop],
                                                     shared.rows[1:]]))
                preds = [np.concatenate([flat[i:i + 1], flat[len(block):]])
                         for i in range(len(block))]
            else:
                draws = []
                for r in block:
                    one = draw(st=stats, S=S, d=d, discretizer=p.discretizer, rng=rng, dtype=dtype)
                    one.rows[0] = X[r]
                    if p.sample_around_instance:
                        shift = (np.asarray(X[r][stats.continuous], dtype=np.float64)
                                 - stats.mean) / stats.scale
                        one.codes[:, stats.continuous] += shift
                        one.rows[:, stats.continuous] += shift * stats.scale
                        one.rows[0] = X[r]
                    draws.append(one)
                flat = model.predict(np.concatenate([dr.rows for dr in draws]))
                preds = [flat[i * S:(i + 1) * S] for i in range(len(block))]
            for i, r in enumerate(block):
                rep = represent(X[r], draws[i], stats, p.discretizer)
                dist = np.sqrt(((rep - rep[0]) ** 2).sum(axis=1))
                Y = preds[i][:, targets.indices[r]]
                fit = fit_local(rep, Y, kernel(dist, width), p)
                values[r], base[r], r2[r] = fit.coef, fit.intercept, fit.r2
                local[r], outputs[r], selected[r] = fit.local_prediction, Y[0], fit.selected
            rows_done(len(block))
        stability = None
        if p.stability_runs > 1:
            child = LimeTabular(p.model_copy(update={"stability_runs": 0}))
            stability = stability_over_seeds(values, lambda g: child.explain(
                model, X, background=background, targets=targets, rng=g).values,
                p.stability_runs, p.stability_top_k, rng)
        return Attribution(
            values=values, base_values=base,
            extras={"selected": selected},
            handoff=Handoff(outputs=outputs, surrogate=SurrogateFit(r2, local), marginal=True),
            metadata={"discretizer": p.discretizer, "kernel_width": float(width),
                      "n_samples": S,
                      "representation": "standardised" if p.discretizer == "none"
                      else "binary (in the row's bin / category)",
                      "conditions": [_conditions(x, stats, model, d) for x in X],
                      **({"stability": stability} if stability else {})},
        )


def _categorical_indices(given: list[int | str], model: Model, d: int) -> np.ndarray:
    found = resolve_features(list(given), model.input_spec.feature_names, d,
                             "categorical feature")
    return np.asarray(sorted(set(found)), dtype=np.int64)


def _refuse_text_in_continuous(rows: np.ndarray, cat: np.ndarray, model: Model) -> None:
    """An :class:`InputError` naming the first column outside ``categorical_features`` whose
    values are not numbers (LIME samples those from a normal distribution)."""
    if rows.dtype != object and rows.dtype.kind not in "USO":
        return
    names = model.input_spec.feature_names
    for column in np.setdiff1d(np.arange(rows.shape[1]), cat):
        try:
            np.asarray(rows[:, column], dtype=np.float64)
        except (TypeError, ValueError):
            name = names[column] if names else f"x{column}"
            example = next(v for v in rows[:, column] if not _is_number(v))
            raise InputError(
                f"lime.tabular: feature {name!r} holds text ({example!r}) but is not in "
                "categorical_features; list it there (by name or index) so it is sampled "
                "from its observed values") from None


def _is_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _conditions(x: np.ndarray, st: Stats, model: Model, d: int) -> list[str]:
    names = model.input_spec.feature_names or tuple(f"x{i}" for i in range(d))
    out = [""] * d
    for j, f in enumerate(st.continuous):
        if not st.cuts:
            out[f] = f"{names[f]} = {float(x[f]):.4g}"
            continue
        cu = st.cuts[j]
        b = int(np.searchsorted(cu, float(x[f])))
        if b == 0:
            out[f] = f"{names[f]} <= {cu[0]:.4g}"
        elif b == cu.size:
            out[f] = f"{names[f]} > {cu[-1]:.4g}"
        else:
            out[f] = f"{cu[b - 1]:.4g} < {names[f]} <= {cu[b]:.4g}"
    for f in st.categorical:
        out[f] = f"{names[f]} = {_plain(x[f])}"
    return out


def _plain(value: Any) -> str:
    return str(value.item() if isinstance(value, np.generic) else value)


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``lime.tabular``."""
    registry.add(LimeTabular)
