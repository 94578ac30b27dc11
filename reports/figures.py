"""Static SVG figures drawn with matplotlib's Agg/SVG backends, inlined in HTML and PDF.

Every figure is drawn on a private :class:`~matplotlib.figure.Figure` (no pyplot state) inside an
``rc_context``, saved as SVG with text kept as text, no date and a fixed hash salt, then cleaned
for inlining: no XML prolog, no namespace URLs, and element ids prefixed by a digest of the
figure so that several figures can share one HTML document. The same data give the same bytes.

Labels come from data and models: they are drawn as literal text (no mathtext) and, as the SVG is
inlined, any control or bidirectional character left in them is shown as an escape
(:func:`~xaudit.safe_text.printable`).

Colours: attributions that push the output up are red, those that push it down are blue
(the diverging ColorBrewer RdBu ends), aggregates grey.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup

from ..safe_text import printable

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..handoff import Curve

POSITIVE = "#b2182b"
NEGATIVE = "#2166ac"
NEUTRAL = "#8c8c8c"
MAGNITUDE = "#4d4d4d"
"""Bars of sizes (mean |attribution|), which have no sign."""
ACCENT = "#1b7837"
PALETTE = (ACCENT, POSITIVE, NEGATIVE, "#762a83", "#e08214")
"""Colours of the lines of one figure, in order."""
DASHES = ("-", "--", ":", "-.")
"""Line styles of a curve's series, in order, so they differ without colour too."""
LABEL_CHARS = 34
RASTER_DPI = 200
"""Resolution of the dense point layers (beeswarm, dependence), drawn as images in the SVG so
that a thousand dots stay one element; axes, labels and bars stay vector."""

_RC: Any = {  # matplotlib types rc keys as Literals; these are all valid
    "svg.fonttype": "none",
    "svg.hashsalt": "xaudit",
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "path.simplify": True,
    "text.parse_math": False,
}
"""``text.parse_math`` off: every label is literal text, never TeX (``cost ($)`` stays as
written, ``$\\frac{$`` cannot break a figure)."""
_ID = re.compile(r'\bid="([^"]+)"')
_STYLE = re.compile(r'\sstyle="([^"]*)"')


def _presentation_attributes(match: re.Match[str]) -> str:
    """``style="fill: red; stroke: none"`` as ``fill="red" stroke="none"``.

    SVG reads both; HTML renderers parse ``style`` as HTML CSS and warn about SVG-only
    properties, so the figures carry their styling as attributes instead.
    """
    pairs = (item.split(":", 1) for item in match.group(1).split(";") if ":" in item)
    return "".join(f' {key.strip()}="{value.strip()}"' for key, value in pairs)


def short(name: str, limit: int = LABEL_CHARS) -> str:
    """``name`` as a label (:func:`~xaudit.safe_text.printable`), cut to ``limit`` characters
    with an ellipsis (tables show it in full)."""
    name = printable(name)
    return name if len(name) <= limit else name[: limit - 1] + "…"


HALF_WIDTH = 4.4
"""Inches of the figures the report sets two to a row (bars beside the beeswarm, waterfalls in
pairs): two fill an A4 page's width at about 80% scale."""


@contextmanager
def figure(width: float, height: float) -> Iterator[tuple[Figure, Axes]]:
    """A private figure and axes with the report's style."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        yield fig, fig.add_subplot()


def to_svg(fig: Figure) -> Markup:
    """The figure as a self-contained, deterministic ``<svg>`` element."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", dpi=RASTER_DPI,
                    metadata={"Date": None, "Creator": None})
    text = printable(buffer.getvalue())
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text)
    text = text.replace("xlink:href=", "href=")
    text = _STYLE.sub(_presentation_attributes, text)
    prefix = "f" + hashlib.sha256(text.encode()).hexdigest()[:8] + "-"
    ids = set(_ID.findall(text))
    text = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)",
                  lambda m: f"url(#{prefix}{m.group(1)})" if m.group(1) in ids else m.group(0),
                  text)
    text = re.sub(r'href="#([^"]+)"',
                  lambda m: f'href="#{prefix}{m.group(1)}"' if m.group(1) in ids else m.group(0),
                  text)
    text = text.replace("<svg ", '<svg class="figure-svg" role="img" ', 1)
    return Markup(text.strip())  # noqa: S704 - matplotlib escapes every text it writes


def bar_chart(labels: Sequence[str], values: np.ndarray, errors: np.ndarray | None,
              xlabel: str, colors: Sequence[str] | None = None) -> Markup:
    """Horizontal bars, largest first, with optional error bars (the caption says which)."""
    n = len(labels)
    with figure(HALF_WIDTH, 0.8 + 0.26 * max(n, 2)) as (fig, ax):
        y = np.arange(n)[::-1]
        ax.barh(y, values, xerr=errors, color=colors or [MAGNITUDE] * n,
                error_kw={"ecolor": "#333333", "capsize": 2, "elinewidth": 0.8})
        ax.set_yticks(y, [short(label) for label in labels])
        ax.set_xlabel(printable(xlabel))
        ax.axvline(0, color="#333333", linewidth=0.6)
        return to_svg(fig)


def beeswarm(names: Sequence[str], values: np.ndarray, colours: np.ndarray | None,
             xlabel: str) -> Markup:
    """One row of dots per feature at its attributions, coloured by the feature's value.

    ``values`` and ``colours`` are ``(n_rows, n_features)``; colours are scaled to [0, 1] per
    feature (``NaN`` for categories, drawn grey). Vertical offsets spread dots that fall into
    the same horizontal bin, deterministically.
    """
    n_features = len(names)
    with figure(HALF_WIDTH, 0.9 + 0.25 * max(n_features, 2)) as (fig, ax):
        span = float(np.ptp(values)) or 1.0
        for j in range(n_features):
            x = values[:, j]
            offsets = _swarm_offsets(x, span / 60.0)
            y = (n_features - 1 - j) + offsets
            c = None if colours is None else colours[:, j]
            if c is None or np.all(np.isnan(c)):
                ax.scatter(x, y, s=9, color=NEUTRAL, linewidths=0, rasterized=True)
            else:
                points = ax.scatter(x, y, s=9, c=c, cmap="viridis", vmin=0.0, vmax=1.0,
                                    linewidths=0, rasterized=True)
        ax.set_yticks(np.arange(n_features)[::-1], [short(n) for n in names])
        ax.axvline(0, color="#333333", linewidth=0.6)
        ax.set_xlabel(printable(xlabel))
        if colours is not None and not np.all(np.isnan(colours)):
            bar = fig.colorbar(points, ax=ax, ticks=[0, 1], aspect=30, pad=0.01)
            bar.ax.set_yticklabels(["low", "high"])
            bar.set_label("feature value (scaled per feature)")
        return to_svg(fig)


def _swarm_offsets(x: np.ndarray, width: float) -> np.ndarray:
    bins = np.floor((x - x.min()) / max(width, 1e-300)).astype(np.int64)
    offsets = np.zeros(x.size)
    for b in np.unique(bins):
        members = np.flatnonzero(bins == b)
        k = np.arange(members.size)
        step = 0.8 / max(members.size, 8)
        offsets[members] = np.where(k % 2 == 0, 1, -1) * ((k + 1) // 2) * step
    return offsets


def scatter(x: np.ndarray, y: np.ndarray, xlabel: str, ylabel: str) -> Markup:
    """Attribution against feature value (a dependence plot), red above zero, blue below."""
    with figure(3.0, 2.3) as (fig, ax):
        colours = np.where(y >= 0, POSITIVE, NEGATIVE)
        ax.scatter(x, y, s=10, c=list(colours), linewidths=0, rasterized=True)
        ax.axhline(0, color="#333333", linewidth=0.6)
        ax.set_xlabel(short(xlabel, 40))
        ax.set_ylabel(printable(ylabel))
        return to_svg(fig)


def waterfall(base: float, labels: Sequence[str], contributions: np.ndarray, xlabel: str,
              end_label: str) -> Markup:
    """From the base value, each contribution as a step, to base + sum.

    The base value and the end point are drawn as dotted lines with their values, and the axis
    spans the steps (as in Lundberg and Lee's waterfall plots), so that small contributions
    stay visible next to a large base value.
    """
    n = len(labels)
    with figure(HALF_WIDTH, 0.9 + 0.2 * (n + 2)) as (fig, ax):
        rows = [f"base value = {base:.4g}", *[short(label, 44) for label in labels],
                f"{printable(end_label)} = {base + float(np.sum(contributions)):.4g}"]
        y = np.arange(len(rows))[::-1]
        position = base
        positions = [base]
        for i, value in enumerate(contributions, start=1):
            colour = POSITIVE if value >= 0 else NEGATIVE
            ax.barh(y[i], value, left=position, color=colour, height=0.6)
            position += value
            positions.append(position)
        low, high = min(positions), max(positions)
        pad = 0.12 * ((high - low) or abs(base) or 1.0)
        for i, value in enumerate(contributions, start=1):
            end = positions[i]
            ax.text(end + (pad * 0.05 if value >= 0 else -pad * 0.05), y[i], f"{value:+.3g}",
                    va="center", ha="left" if value >= 0 else "right", fontsize=7)
        ax.plot([base], [y[0]], marker="o", color=NEUTRAL)
        ax.plot([position], [y[-1]], marker="o", color="#1a1a1a")
        ax.axvline(base, color=NEUTRAL, linewidth=0.7, linestyle=":")
        ax.axvline(position, color="#1a1a1a", linewidth=0.7, linestyle=":")
        ax.set_xlim(low - pad, high + pad)
        ax.set_yticks(y, rows)
        ax.set_xlabel(printable(xlabel))
        return to_svg(fig)


def lines(x: np.ndarray, ys: Sequence[np.ndarray], labels: Sequence[str], xlabel: str,
          ylabel: str, faint: np.ndarray | None = None, hline: float | None = None) -> Markup:
    """Curves (a PDP, a check's curve) over optional faint lines (ICE curves)."""
    with figure(4.2, 2.6) as (fig, ax):
        if faint is not None:
            for row in faint:
                ax.plot(x, row, color=NEUTRAL, linewidth=0.5, alpha=0.4)
        for i, (y, label) in enumerate(zip(ys, labels, strict=True)):
            ax.plot(x, y, color=PALETTE[i % len(PALETTE)], linewidth=1.6, label=short(label))
        if hline is not None:
            ax.axhline(hline, color="#333333", linewidth=0.8, linestyle="--")
        ax.set_xlabel(short(xlabel, 50))
        ax.set_ylabel(short(ylabel, 40))
        if len(ys) > 1:
            ax.legend(frameon=False, fontsize=7)
        return to_svg(fig)


def curve(handed: Curve) -> Markup:
    """A check's curve (:class:`~xaudit.handoff.Curve`): each series over the shared x with
    its band shaded beneath it, told apart by colour and line style; the legend sits below the
    axes, where it hides no part of a curve."""
    with figure(4.6, 3.2) as (fig, ax):
        for i, series in enumerate(handed.series):
            colour = PALETTE[i % len(PALETTE)]
            ax.plot(handed.x, series.y, color=colour, linewidth=1.6, zorder=3,
                    linestyle=DASHES[i % len(DASHES)], label=short(series.label, 60))
            if series.band is not None:
                ax.fill_between(handed.x, series.band.lower, series.band.upper, color=colour,
                                alpha=0.18, linewidth=0, zorder=2,
                                label=short(series.band.label, 60))
        ax.set_xlabel(short(handed.x_label, 50))
        ax.set_ylabel(short(handed.y_label, 40))
        fig.legend(loc="outside lower center", frameon=False, fontsize=7)
        return to_svg(fig)


def surface(x: np.ndarray, y: np.ndarray, z: np.ndarray, xlabel: str, ylabel: str,
            label: str) -> Markup:
    """A two-way partial dependence: the output (colour) over the grid of two features;
    ``z`` is ``(len(x), len(y))``."""
    with figure(4.2, 3.0) as (fig, ax):
        mesh = ax.pcolormesh(x, y, z.T, shading="nearest", cmap="viridis")
        fig.colorbar(mesh, ax=ax, label=short(label, 40))
        ax.set_xlabel(short(xlabel, 50))
        ax.set_ylabel(short(ylabel, 40))
        return to_svg(fig)


def histogram(values: np.ndarray, xlabel: str, threshold: float | None) -> Markup:
    """Distribution of a check's per-row values, with the gate's threshold as a dashed line."""
    with figure(4.2, 2.3) as (fig, ax):
        finite = values[np.isfinite(values)]
        n_bins = min(30, max(5, finite.size // 2))
        reference = [threshold] if threshold is not None else []
        spread = np.concatenate([finite, reference])
        if spread.size and np.all(spread > 0) and spread.max() / spread.min() > 1e3:
            # values orders of magnitude below (or above) the gate: a log axis shows both
            edges = np.geomspace(spread.min() / 2, spread.max() * 2, n_bins + 1)
            ax.hist(finite, bins=edges.tolist(), color=ACCENT, alpha=0.85)
            ax.set_xscale("log")
        else:
            ax.hist(finite, bins=n_bins, color=ACCENT, alpha=0.85)
        if threshold is not None:
            ax.axvline(threshold, color=POSITIVE, linestyle="--", linewidth=1.0,
                       label=f"threshold {threshold:g}")
            ax.legend(frameon=False, fontsize=7)
        ax.set_xlabel(printable(xlabel))
        ax.set_ylabel("rows")
        return to_svg(fig)


@dataclass(frozen=True)
class MapScale:
    """The colour map an attribution map is drawn with, and the caption that says so."""

    cmap: str
    vmin: float
    vmax: float
    caption: str


def map_scale(heat: np.ndarray) -> MapScale:
    """Diverging red/blue around zero when the map has both signs; one sequential colour when
    every value has the same sign (saliency magnitudes, Grad-CAM after its ReLU), so that a
    caption never names a colour the map does not draw."""
    finite = heat[np.isfinite(heat)]
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 0.0
    if low < 0 < high:
        limit = max(-low, high)
        return MapScale("RdBu_r", -limit, limit,
                        "Attribution map over the input: red raises the output, blue lowers "
                        "it, white is no effect; the colour bar gives the attribution.")
    if high > 0 or low == high:
        return MapScale("Reds", 0.0, high or 1.0,
                        "Attribution map over the input: no attribution is negative, so one "
                        "colour is drawn: the darker the red, the larger the attribution "
                        "(colour bar).")
    return MapScale("Blues_r", low, 0.0,
                    "Attribution map over the input: no attribution is positive, so one "
                    "colour is drawn: the darker the blue, the more the pixel lowers the "
                    "output (colour bar).")


def heatmap_overlay(image: np.ndarray | None, heat: np.ndarray, title: str) -> Markup:
    """An attribution map over the input image in the colours of :func:`map_scale`, with a
    colour bar in attribution units."""
    scale = map_scale(heat)
    with figure(2.4, 2.4) as (fig, ax):
        if image is not None:
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
        drawn = ax.imshow(heat, cmap=scale.cmap, vmin=scale.vmin, vmax=scale.vmax,
                          alpha=0.55 if image is not None else 1.0, interpolation="nearest")
        bar = fig.colorbar(drawn, ax=ax, fraction=0.046, pad=0.03)
        bar.ax.tick_params(labelsize=6)
        ax.set_title(short(title, 30), fontsize=8)
        ax.set_axis_off()
        return to_svg(fig)


def colour_for(value: float, limit: float) -> str:
    """A CSS background for a token highlight: red for positive, blue for negative."""
    strength = 0.0 if limit <= 0 else min(abs(value) / limit, 1.0)
    rgb = (178, 24, 43) if value >= 0 else (33, 102, 172)
    return f"rgba({rgb[0]}, {rgb[1]}, {rgb[2]}, {0.08 + 0.6 * strength:.2f})"
