"""LIME for text (Ribeiro, Singh and Guestrin 2016, "Why Should I Trust You?").

A document is split into tokens by a regular expression (``split_expression``, default ``\\W+``:
runs of non-word characters separate tokens and are kept verbatim between them). The
interpretable features are, with ``bow: true``, the distinct tokens (removing one removes every
occurrence: the bag-of-words view of the paper) or, with ``bow: false``, each token occurrence
(removing one replaces that position by ``mask_string``, so position-aware models keep the
document length). Each sample removes a uniformly chosen number ``1 .. d`` of features chosen
at random; samples are weighted by ``exp(-D^2 / (2 w^2))`` with ``D`` = 100 x the cosine
distance between the sample's binary vector and the full document (``w = 25`` by default), and a
weighted ridge is fitted per targeted output (see :mod:`xaudit.plugins.lime.common`).

Rows of ``X`` are strings (``(n,)``, or ``(n, 1)``); the model receives perturbed strings shaped
like the rows. Attributions are ``(n, T, k)`` with ``T`` the largest feature count of the rows;
row ``r``'s first ``len(handoff.tokens[r])`` slots hold its features' weights and the rest
are 0 (padding, also marked False in ``extras["token_mask"]``). The token axis is named
``token_0 .. token_{T-1}`` (``metadata["feature_names"]``); the words are in ``handoff.tokens``,
the surrogate's fit in ``handoff.surrogate`` and the model's outputs in ``handoff.outputs``.
"""

from __future__ import annotations

import re

import numpy as np
from pydantic import Field

from xaudit.batching import row_blocks
from xaudit.errors import InputError
from xaudit.explanation import Attribution
from xaudit.handoff import Handoff, SurrogateFit
from xaudit.hookspecs import hookimpl
from xaudit.model import Model
from xaudit.plugin import Explainer
from xaudit.plugins.lime.common import LimeFitParams, cosine_distance_to_ones, fit_local, kernel
from xaudit.registry import Registry
from xaudit.targets import TargetSelection


class LimeTextParams(LimeFitParams):
    """Parameters of ``lime.text``."""

    bow: bool = True
    """Bag of words (a feature is a distinct token, all occurrences removed together) or
    position-aware (a feature is one occurrence, replaced by ``mask_string``)."""
    split_expression: str = r"\W+"
    """Regular expression matching the separators between tokens."""
    mask_string: str = "UNKWORDZ"
    """What replaces a removed occurrence when ``bow`` is false."""
    distance_scale: float = Field(100.0, gt=0.0)
    """Cosine distances are multiplied by this before the kernel (as in the lime package)."""


class _Document:
    """A string cut into tokens and separators, able to rebuild itself without some tokens."""

    def __init__(self, text: str, pattern: re.Pattern[str], bow: bool) -> None:
        parts = pattern.split(text)
        # re.split with one capturing group alternates token, separator, token, ...
        self.pieces = parts
        self.token_at = [i for i in range(0, len(parts), 2) if parts[i]]
        tokens = [parts[i] for i in self.token_at]
        if bow:
            self.features = list(dict.fromkeys(tokens))
            index = {t: j for j, t in enumerate(self.features)}
            self.feature_of = np.asarray([index[t] for t in tokens], dtype=np.int64)
        else:
            self.features = tokens
            self.feature_of = np.arange(len(tokens), dtype=np.int64)

    def render(self, keep: np.ndarray, mask: str | None) -> str:
        """The text with features where ``keep`` is False removed (or replaced by ``mask``)."""
        pieces = list(self.pieces)
        for position, feature in zip(self.token_at, self.feature_of, strict=True):
            if not keep[feature]:
                pieces[position] = "" if mask is None else mask
        return "".join(pieces)


class LimeText(Explainer):
    """Local weighted linear surrogates over the presence of tokens."""

    name = "lime.text"
    row_parallel = True
    summary = "LIME for text: which tokens' removal changes the prediction, by a local surrogate."
    description = (
        "Splits each document into tokens, samples documents with random subsets of the tokens "
        "removed, weights them with an exponential kernel on the cosine distance to the full "
        "document, and fits a weighted ridge regression of the model's outputs on the tokens' "
        "presence. Each token's value is its coefficient; the surrogate's weighted R2 says how "
        "well the local linear fit holds.")
    paper = ("Ribeiro, Singh and Guestrin 2016, 'Why Should I Trust You?': Explaining the "
             "Predictions of Any Classifier")
    limitations = (
        "Removing words produces ungrammatical text the model never saw; weights describe the "
        "model on those inputs.",
        "Bag-of-words features merge every occurrence of a token; use bow: false for models "
        "that depend on position.",
        "Weights explain a local linear surrogate; check its weighted R2 (handoff.surrogate.r2).",
    )
    Params = LimeTextParams
    params: LimeTextParams
    modalities = frozenset({"text"})
    stochastic = True

    def explain(self, model: Model, X: np.ndarray, *, background: np.ndarray | None,
                targets: TargetSelection, rng: np.random.Generator) -> Attribution:
        """Token weights ``(n, T, k)`` (0-padded), intercepts, R2 and each row's tokens."""
        p = self.params
        texts = _texts(X)
        try:
            pattern = re.compile(f"({p.split_expression})")
        except re.error as exc:
            raise InputError(f"split_expression {p.split_expression!r} is not a valid "
                             f"regular expression: {exc}") from None
        docs = [_Document(t, pattern, p.bow) for t in texts]
        n, k, S = len(docs), targets.n_slots, p.n_samples
        width_tokens = max([len(doc.features) for doc in docs], default=0)
        values = np.zeros((n, max(width_tokens, 1), k))
        mask_out = np.zeros((n, max(width_tokens, 1)), dtype=bool)
        base, r2 = np.zeros((n, k)), np.zeros((n, k))
        local, outputs = np.zeros((n, k)), np.zeros((n, k))
        mask = None if p.bow else p.mask_string
        row_shape = X.shape[1:]
        for block in (range(n)[rows] for rows in row_blocks(n, p.max_batch, S)):
            Zs: list[np.ndarray] = []
            strings: list[str] = []
            for r in block:
                Z = _masks(len(docs[r].features), S, rng)
                Zs.append(Z)
                strings.extend(docs[r].render(z, mask) for z in Z.astype(bool))
            batch = np.empty(len(strings), dtype=object)
            batch[:] = strings
            batch = batch.reshape(-1, *row_shape)
            preds = model.predict(batch)
            for i, r in enumerate(block):
                d = len(docs[r].features)
                Y = preds[i * S:(i + 1) * S][:, targets.indices[r]]
                outputs[r] = Y[0]
                if d == 0:
                    base[r], local[r], r2[r] = Y[0], Y[0], 1.0
                    continue
                Z = Zs[i]
                w = kernel(cosine_distance_to_ones(Z) * p.distance_scale,
                           p.kernel_width or 25.0)
                fit = fit_local(Z, Y, w, p)
                values[r, :d], base[r], r2[r] = fit.coef, fit.intercept, fit.r2
                local[r] = fit.local_prediction
                mask_out[r, :d] = True
        return Attribution(
            values=values, base_values=base,
            extras={"token_mask": mask_out},
            metadata={"bow": p.bow,
                      "feature_names": [f"token_{i}" for i in range(values.shape[1])],
                      "split_expression": p.split_expression, "n_samples": S,
                      "kernel_width": float(p.kernel_width or 25.0),
                      "padding": "0 after each row's tokens (see extras['token_mask'])"},
            handoff=Handoff(outputs=outputs, surrogate=SurrogateFit(r2, local),
                            tokens=tuple(tuple(doc.features) for doc in docs)),
        )


def _texts(X: np.ndarray) -> list[str]:
    rows = X.reshape(X.shape[0], -1) if X.ndim > 1 else X[:, None]
    if rows.shape[1] != 1:
        raise InputError(f"lime.text explains one string per row; got rows shaped {X.shape[1:]}")
    out = []
    for value in rows[:, 0]:
        if not isinstance(value, str | np.str_):
            raise InputError(f"lime.text needs strings; a row holds {type(value).__name__}")
        out.append(str(value))
    return out


def _masks(d: int, S: int, rng: np.random.Generator) -> np.ndarray:
    """``S`` binary rows over ``d`` features: row 0 keeps all, row s removes a uniformly drawn
    number ``1 .. d`` of features, chosen uniformly (the lime package's design)."""
    Z = np.ones((S, max(d, 1)))
    if d == 0:
        return Z[:, :0]
    counts = rng.integers(1, d + 1, size=S - 1)
    order = np.argsort(rng.random((S - 1, d)), axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(d)[None, :].repeat(S - 1, axis=0), axis=1)
    Z[1:] = ranks >= counts[:, None]
    return Z


@hookimpl
def xaudit_register_explainers(registry: Registry[Explainer]) -> None:
    """Register ``lime.text``."""
    registry.add(LimeText)
