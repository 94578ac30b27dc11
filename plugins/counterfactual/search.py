"""The searches behind ``counterfactual``: a gradient-free genetic search for any model, a
gradient-based one for differentiable models, greedy sparsification and a diverse selection.

A :class:`Problem` fixes one row ``x``: which features may move (and within which ranges or
categories), how far a candidate is (MAD-scaled L1, Wachter et al. 2017; categorical features
count 1 when changed, as in Mothilal et al. 2020), and how far its output is from the target
(:class:`Goal`, a gap of 0 when reached). Both searches return every candidate they met whose
output reaches the target; sparsification reverts changes that are not needed, and the selection
picks ``n`` valid candidates, each the best trade-off between closeness and distance from those
already picked (a greedy form of DiCE's diversity term).

* :func:`genetic_search` minimises ``gap + proximity_weight * distance / d`` over a seeded
  population (values drawn from the reference rows or uniformly in the ranges).
* :func:`gradient_search` follows Wachter et al.'s objective with DiCE's joint form (Mothilal et
  al. 2020, eq. 1-4): ``n`` candidates optimised together by Adam on
  ``hinge(gap) + proximity_weight * mean scaled L1 / d - diversity_weight * det(K)``, with
  ``K_ij = 1 / (1 + scaled L1(c_i, c_j))`` (DiCE's "inverse distance" DPP kernel), projected onto
  the ranges after each step; candidates are snapped to their categories and re-checked by
  ``predict`` before they count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

HINGE_MARGIN = 0.01
"""Margin by which the gradient route aims past the decision boundary (output units)."""


@dataclass(frozen=True)
class Goal:
    """What one row's counterfactuals must reach, as a gap on the model outputs ``(n, m)``.

    ``class``: output ``index`` strictly the largest; ``away``: output ``index`` (the row's
    predicted class) no longer the largest; ``range``: output ``index`` within ``[low, high]``.
    """

    kind: Literal["class", "away", "range"]
    index: int
    low: float = 0.0
    high: float = 0.0

    def gap(self, out: np.ndarray, clip: bool = True) -> np.ndarray:
        """Each row's distance from the target (0 when reached; with ``clip=False`` negative
        by the margin it is exceeded). Ties between classes do not reach a class target."""
        mine = out[:, self.index]
        if self.kind == "range":
            short = np.maximum(self.low - mine, mine - self.high)
        else:
            others = np.delete(out, self.index, axis=1).max(axis=1)
            tie = (others == mine).astype(np.float64)
            short = others - mine + tie if self.kind == "class" else mine - others + tie
        return np.asarray(np.maximum(short, 0.0) if clip else short, dtype=np.float64)

    def hinge(self, out: Any, torch: Any) -> Any:
        """The differentiable gap of torch outputs ``(n, m)``, aiming ``HINGE_MARGIN`` past the
        boundary: ``(n,)``."""
        mine = out[:, self.index]
        if self.kind == "range":
            short = torch.maximum(self.low - mine, mine - self.high)
        else:
            rest = torch.cat([out[:, : self.index], out[:, self.index + 1:]], dim=1)
            others = rest.amax(dim=1)  # (max(dim=) with indices is slow on CPU)
            short = others - mine if self.kind == "class" else mine - others
        return torch.relu(short + HINGE_MARGIN)


@dataclass
class Problem:
    """One row's counterfactual search problem."""

    x: np.ndarray
    mutable: np.ndarray
    """Indices of the features that may change."""
    low: np.ndarray
    high: np.ndarray
    categories: dict[int, np.ndarray]
    """Allowed values of categorical features."""
    pool: np.ndarray
    """Reference rows whose values seed and mutate candidates (realistic values)."""
    scale: np.ndarray
    """Per-feature MAD (1 where the MAD is 0)."""
    predict: Callable[[np.ndarray], np.ndarray]
    goal: Goal

    def gap(self, outputs: np.ndarray, clip: bool = True) -> np.ndarray:
        """The goal's gap for model outputs ``(n, m)``."""
        return self.goal.gap(outputs, clip)

    def distance(self, candidates: np.ndarray) -> np.ndarray:
        """MAD-scaled L1 distance to ``x`` (changed categorical features count 1)."""
        diff = np.abs(candidates - self.x) / self.scale
        for j in self.categories:
            diff[:, j] = candidates[:, j] != self.x[j]
        return np.asarray(diff.sum(axis=1))

    def repair(self, candidates: np.ndarray) -> np.ndarray:
        """Immutable features back to ``x``, ranges clipped, categories snapped."""
        fixed = np.repeat(self.x[None], candidates.shape[0], axis=0)
        fixed[:, self.mutable] = candidates[:, self.mutable]
        fixed = np.clip(fixed, self.low, self.high)
        for j, levels in self.categories.items():
            nearest = np.abs(fixed[:, j, None] - levels[None]).argmin(axis=1)
            fixed[:, j] = levels[nearest]
        fixed_features = np.setdiff1d(np.arange(self.x.size), self.mutable)
        fixed[:, fixed_features] = self.x[fixed_features]
        return np.asarray(fixed)

    def reaching(self, candidates: np.ndarray) -> np.ndarray:
        """The distinct repaired candidates whose ``predict`` output reaches the goal."""
        if candidates.shape[0] == 0:
            return candidates
        fixed = np.unique(self.repair(candidates), axis=0)
        return np.asarray(fixed[self.gap(self.predict(fixed)) <= 0])


def genetic_search(problem: Problem, rng: np.random.Generator, population: int,
                   generations: int, proximity_weight: float) -> np.ndarray:
    """Every distinct candidate met whose output reaches the target (rows of an array)."""
    d = problem.x.size
    if problem.mutable.size == 0:
        return np.empty((0, d))
    pop = _mutate(np.repeat(problem.x[None], population, axis=0), problem, rng, 0.5)
    found: list[np.ndarray] = []
    for _ in range(generations):
        gaps = problem.gap(problem.predict(pop))
        found.append(pop[gaps <= 0])
        fitness = gaps + proximity_weight * problem.distance(pop) / d
        order = np.argsort(fitness, kind="stable")
        parents = pop[order[: max(2, population // 2)]]
        a = parents[rng.integers(0, parents.shape[0], population)]
        b = parents[rng.integers(0, parents.shape[0], population)]
        children = np.where(rng.random((population, d)) < 0.5, a, b)
        children = _mutate(children, problem, rng, 1.0 / max(problem.mutable.size, 1))
        children[: parents.shape[0] // 2] = parents[: parents.shape[0] // 2]  # elitism
        pop = children
    valid = np.concatenate(found)
    return np.unique(valid, axis=0) if valid.size else np.empty((0, d))


def _mutate(pop: np.ndarray, problem: Problem, rng: np.random.Generator,
            rate: float) -> np.ndarray:
    """Replace mutable features, each with probability ``rate``, by a reference value or a
    uniform draw from its range (half each)."""
    out = pop.copy()
    n = pop.shape[0]
    for j in problem.mutable.tolist():
        hit = np.asarray(rng.random(n) < rate)
        if not hit.any():
            continue
        drawn = problem.pool[rng.integers(0, problem.pool.shape[0], n), j]
        if j not in problem.categories:
            uniform = rng.uniform(problem.low[j], problem.high[j], n)
            drawn = np.where(rng.random(n) < 0.5, drawn, uniform)
        out[hit, j] = drawn[hit]
    return problem.repair(out)


def gradient_search(problem: Problem, net: Any, rng: np.random.Generator, n: int, steps: int,
                    learning_rate: float, proximity_weight: float,
                    diversity_weight: float) -> np.ndarray:
    """DiCE-style joint gradient search of ``n`` candidates through ``net.torch_forward``;
    returns every repaired candidate met that ``predict`` confirms (distinct rows)."""
    import torch

    d = problem.x.size
    if problem.mutable.size == 0:
        return np.empty((0, d))
    mask = np.zeros(d)
    mask[problem.mutable] = 1.0
    start = rng.normal(0.0, 0.5, (n, d)) * mask  # in MAD units around x, mutable features
    x_t, scale_t, mask_t = (net.to_tensors(a[None])[0][0].detach()
                            for a in (problem.x, problem.scale, mask))
    dtype = x_t.dtype
    lower = torch.as_tensor((problem.low - problem.x) / problem.scale, dtype=dtype)
    upper = torch.as_tensor((problem.high - problem.x) / problem.scale, dtype=dtype)
    lower, upper = lower.to(x_t.device), upper.to(x_t.device)
    z = torch.as_tensor(start, dtype=dtype, device=x_t.device).clamp(lower, upper)
    z.requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=learning_rate)
    seen: list[np.ndarray] = []
    with torch.enable_grad():
        for _ in range(steps):
            candidates = x_t + z * scale_t * mask_t
            out = net.torch_forward(candidates)
            loss = problem.goal.hinge(out, torch).mean()
            loss = loss + proximity_weight * (z.abs() * mask_t).sum(dim=1).mean() / d
            if n > 1 and diversity_weight > 0:
                spread = (z[:, None, :] - z[None, :, :]).abs().mul(mask_t).sum(dim=-1)
                loss = loss - diversity_weight * torch.linalg.det(1.0 / (1.0 + spread))
            reached = problem.gap(out.detach().cpu().double().numpy()) <= 0
            seen.append(_rows(problem, z, mask)[reached])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                z.copy_(torch.minimum(torch.maximum(z, lower), upper))
    return problem.reaching(np.concatenate([*seen, _rows(problem, z, mask)]))


def _rows(problem: Problem, z: Any, mask: np.ndarray) -> np.ndarray:
    """Candidates for the scaled changes ``z``, in float64 (unmoved features exactly ``x``)."""
    return np.asarray(problem.x + z.detach().cpu().double().numpy() * problem.scale * mask)


def sparsify(problem: Problem, candidates: np.ndarray) -> np.ndarray:
    """Revert changed features to ``x`` one at a time while the target stays reached.

    Each round tries, for every candidate, reverting each changed feature (one batched model
    call) and keeps the valid revert that removes the largest scaled change.
    """
    current = candidates.copy()
    active = np.ones(current.shape[0], dtype=bool)
    while active.any():
        trials: list[np.ndarray] = []
        owners: list[int] = []
        gains: list[float] = []
        for r in np.flatnonzero(active).tolist():
            for j in np.flatnonzero(current[r] != problem.x).tolist():
                trial = current[r].copy()
                trial[j] = problem.x[j]
                trials.append(trial)
                owners.append(r)
                gains.append(1.0 if j in problem.categories else
                             float(abs(current[r, j] - problem.x[j]) / problem.scale[j]))
        if not trials:
            break
        stacked = np.asarray(trials)
        ok = problem.gap(problem.predict(stacked)) <= 0
        active[:] = False
        best: dict[int, tuple[float, int]] = {}
        for t, (owner, gain) in enumerate(zip(owners, gains, strict=True)):
            if ok[t] and gain > best.get(owner, (-1.0, -1))[0]:
                best[owner] = (gain, t)
        for owner, (_, t) in best.items():
            current[owner] = stacked[t]
            active[owner] = True
    return np.unique(current, axis=0) if current.size else current


def select_diverse(problem: Problem, candidates: np.ndarray, n: int,
                   diversity_weight: float) -> np.ndarray:
    """``n`` candidates: the closest first, then each maximising
    ``-distance + diversity_weight * (scaled L1 to the nearest one already chosen)``."""
    if candidates.shape[0] == 0:
        return candidates
    dist = problem.distance(candidates)
    chosen = [int(np.argmin(dist))]
    while len(chosen) < min(n, candidates.shape[0]):
        spread = np.min([(np.abs(candidates - candidates[c]) / problem.scale).sum(axis=1)
                         for c in chosen], axis=0)
        score = -dist + diversity_weight * spread
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return candidates[chosen]


def mad_scale(reference: np.ndarray) -> np.ndarray:
    """Median absolute deviation of each column (1 where it is 0 or not finite)."""
    median = np.median(reference, axis=0)
    mad = np.median(np.abs(reference - median), axis=0)
    return np.where(np.isfinite(mad) & (mad > 0), mad, 1.0)
