"""Section 8: attribution maps over images, and token highlights for text.

Images: an explanation whose rows are 2-D or 3-D (``(H, W)``, ``(C, H, W)`` or ``(H, W, C)``
with 1 or 3 channels); the attribution map is summed over channels and laid over the input.
Text: an explanation with ``handoff.tokens`` (one tuple of token strings per row, at most as
long as the value axis); each token is shaded by its attribution.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..explanation import Explanation
from ..results import AuditResult
from . import figures
from .analysis import explanations, row_ids
from .section_base import ContextualSection

MAX_TOKENS = 400


class MediaSection(ContextualSection):
    """Heatmap overlays and token highlights."""

    name = "media"
    title = "Images and text"
    order = 80
    template = "section_media.html.j2"

    def context(self, result: AuditResult) -> dict[str, Any]:
        """One block per image or text explanation."""
        rows = self.render.options.local_rows or 1
        blocks = []
        for key, e in explanations(result):
            ids = row_ids(result, e.n_rows)
            tokens = e.handoff.tokens
            if tokens is not None:
                blocks.append({"kind": "text", "key": key, "method": e.method,
                               "rows": [_tokens(e, r, ids[r], tokens[r])
                                        for r in range(min(rows, e.n_rows))]})
            elif len(e.feature_shape) in (2, 3):
                outputs = list(result.model.get("output_names") or [])
                blocks.append({"kind": "image", "key": key, "method": e.method,
                               "figures": [_overlay(e, r, ids[r], outputs)
                                           for r in range(min(rows, e.n_rows))]})
        if not blocks:
            return self.not_applicable("no explainer produced image or text attributions "
                                       "(the model's inputs are tabular)")
        return {"blocks": blocks}


def _channels_last(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        return np.moveaxis(array, 0, -1)
    return array


def _output_label(e: Explanation, row: int, outputs: list[str]) -> str:
    """The explained output of ``row``: the model's own name for a per-row target such as
    ``predicted``, else the explanation's slot name."""
    index = int(e.target_indices[row, 0])
    if e.output_names[0] == "predicted" and 0 <= index < len(outputs):
        return f"predicted {outputs[index]}"
    return e.output_names[0]


def _overlay(e: Explanation, row: int, row_id: int, outputs: list[str]) -> dict[str, Any]:
    """The map of ``row`` over its input, and the caption naming the colours it draws."""
    heat = _channels_last(e.values[row, ..., 0])
    if heat.ndim == 3:
        heat = heat.sum(axis=-1)
    image: np.ndarray | None = None
    try:
        raw = _channels_last(np.asarray(e.inputs[row], dtype=np.float64))
    except (TypeError, ValueError):
        raw = None
    if raw is not None and raw.shape[:2] == heat.shape:
        low, high = float(raw.min()), float(raw.max())
        image = (raw - low) / (high - low) if high > low else np.zeros_like(raw)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
    title = f"row {row_id}: {_output_label(e, row, outputs)}"
    return {"figure": figures.heatmap_overlay(image, heat, title),
            "caption": figures.map_scale(heat).caption}


def _tokens(e: Explanation, row: int, row_id: int, tokens: tuple[str, ...]) -> dict[str, Any]:
    phi = e.values[row, ..., 0].reshape(-1)
    limit = float(np.max(np.abs(phi))) if phi.size else 0.0
    shown = [{"text": t, "value": float(phi[i]), "colour": figures.colour_for(phi[i], limit)}
             for i, t in enumerate(tokens[: min(len(tokens), phi.size, MAX_TOKENS)])]
    return {"row_id": row_id, "output": e.output_names[0], "tokens": shown,
            "truncated": len(tokens) > MAX_TOKENS}
