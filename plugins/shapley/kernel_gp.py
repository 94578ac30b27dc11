"""KernelSHAP's Gaussian-process surrogate (``surrogate="gp"``): the pairs' odd part modelled as
a linear part plus interactions of order three and more, with Shapley values in closed form.

Model (universal kriging; Rasmussen and Williams 2006, *Gaussian Processes for Machine
Learning*, sec. 2.7): ``y_j = x_j' a + h(x_j) + e_j`` with ``a`` free (the linear part, whose
Shapley values are ``2 a``), ``h`` a centred Gaussian process with the Walsh covariance ``rho
k`` of :mod:`xaudit.plugins.shapley.kernel_walsh`, and ``e_j`` independent with variance
``1 / w_j`` (the pair's Shapley-kernel weight: the linear part is then exactly the
kernel-weighted fit of ``y - h``, which keeps the estimator consistent). The efficiency
constraint is one more observation, noise-free: ``g(all) = delta / 2``. The returned values
are the posterior mean's Shapley values, ``2 a + rho sum_j gamma_j phi(k(., x_j))``.

The scale ``rho`` (prior over noise variance) is chosen per fit (one block of rows that share
a design, fitted as output columns; see :mod:`xaudit.plugins.shapley.kernel`) by restricted maximum
likelihood (REML; Patterson and Thompson 1971; Rasmussen and Williams sec. 5.4), summed over
the targeted outputs, on at most ``SUBSAMPLE`` pairs (a stride through the design, so every
size keeps its share; their weights scaled up so the noise model is the same), climbing by
decades to a maximum refined by a parabola. The prior's relevance weights come from the
linear fit.

Cost per fit (shared by the rows of a block): a Cholesky factorisation of ``N + 1`` (``N``
pairs, at most ``MAX_PAIRS``; a larger design fits the surrogate on a stride of ``MAX_PAIRS``
pairs and the linear part on all of them, treating the surrogate as fixed for the standard
errors), a few of at most ``SUBSAMPLE`` for REML, and products of ``N x N`` by ``d``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xaudit.plugins.shapley.kernel_design import Design
from xaudit.plugins.shapley.kernel_fit import Fit, Pairs, linear_fit
from xaudit.plugins.shapley.kernel_walsh import interaction_weights, walsh_kernel, walsh_shapley

SUBSAMPLE = 512
"""Most pairs REML is evaluated on."""
MAX_PAIRS = 1024
"""Most pairs the surrogate is fitted on (2,048 gave 1.5x lower error at 64n on the 60-feature
sets of ``benchmarks/bench_leverage_shap.py``, still far below Leverage SHAP's, at twice the
time; 1,024 covers the default budget whole)."""
EXACT_DIAGONAL = 512
"""Up to this many pairs every leave-one-out residual is exact; above, per size from
``PROBES`` pairs of each sampled size."""
PROBES = 4
START, LOWEST, HIGHEST = 5.0, -8.0, 14.0
"""The REML search over ``log10`` of the scale (kernel and noise each normalised to mean one):
from ``START`` by decades, uphill, within ``[LOWEST, HIGHEST]``."""
MIN_RESIDUAL_DOF = 4
"""Fewer pairs than features plus this: the linear fit alone (nothing left to learn ``h``)."""


def _stride(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` indices spread evenly over ``range(n)``, in order."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(np.int64))


def _reml(x: np.ndarray, y: np.ndarray, noise: np.ndarray, K: np.ndarray,
          ) -> Callable[[float], float]:
    """REML log-likelihood of ``log10(rho)`` for ``y ~ N(x a, s^2 (rho K + diag(noise)))``,
    each output with its own ``s^2`` profiled out; outputs fitted exactly by ``x a`` left out."""
    from scipy.linalg import cholesky, solve_triangular

    n, d = x.shape
    C = np.empty_like(K)  # one buffer, factorised in place at every evaluation

    def loglik(log_rho: float) -> float:
        np.multiply(K, 10.0 ** log_rho, out=C)
        C[np.diag_indices(n)] += noise
        try:
            L = cholesky(C, lower=True, overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError:
            return -np.inf
        AB = solve_triangular(L, np.hstack([x, y]), lower=True, check_finite=False)
        A, B = AB[:, :d], AB[:, d:]
        sign, logdet_f = np.linalg.slogdet(A.T @ A)
        if sign <= 0:
            return -np.inf
        q = (B * B).sum(0) - (B * (A @ np.linalg.solve(A.T @ A, A.T @ B))).sum(0)
        q = q[q > 1e-24 * np.maximum((B * B).sum(0), 1e-300)]
        if q.size == 0:
            return -np.inf
        logdet_c = 2.0 * np.log(np.diag(L)).sum()
        return float(-0.5 * (q.size * (logdet_c + logdet_f) + (n - d) * np.log(q).sum()))

    return loglik


def choose_scale(pairs: Pairs, kernel: np.ndarray) -> float | None:
    """``rho`` by REML on a stride of at most ``SUBSAMPLE`` of the pairs, whose Walsh kernel
    is ``kernel``; None when every output is fitted exactly by the linear part (nothing for
    ``h`` to explain)."""
    n_all = pairs.x.shape[0]
    idx = _stride(n_all, SUBSAMPLE)
    x, y = pairs.x[idx], pairs.y[idx]
    noise = 1.0 / (pairs.w[idx] * (n_all / idx.size))  # the subsample's own design weights
    K = kernel[np.ix_(idx, idx)]
    k_bar, n_bar = float(np.mean(np.diag(K))), float(np.mean(noise))
    if not k_bar > 0:
        return None
    loglik = _reml(x, y, noise / n_bar, K / k_bar)
    grid = {g: loglik(g) for g in (START - 1.0, START, START + 1.0)}
    best = max(grid, key=lambda g: grid[g])
    while best in (min(grid), max(grid)) and LOWEST < best < HIGHEST:  # climb to a maximum
        step = best - 1.0 if best == min(grid) else best + 1.0
        grid[step] = loglik(step)
        if not grid[step] > grid[best]:
            break
        best = step
    if not np.isfinite(grid[best]):
        return None
    left, right = grid.get(best - 1.0, -np.inf), grid.get(best + 1.0, -np.inf)
    curvature = left - 2.0 * grid[best] + right
    if np.isfinite(curvature) and curvature < 0:  # vertex of the parabola through three points
        best += float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))
    return float(10.0 ** best * n_bar / k_bar)


def _loo_diagonal(L: np.ndarray, design: Design, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``J`` of the pairs whose ``(C^-1)_jj`` is computed, and those diagonals."""
    from scipy.linalg import solve_triangular

    if n <= EXACT_DIAGONAL:
        probes = np.arange(n)
    else:
        start = design.n_enumerated // 2
        probes = np.concatenate([start + np.flatnonzero(design.pair_stratum == u)[:PROBES]
                                 for u in np.unique(design.pair_stratum)]).astype(np.int64)
    unit = np.zeros((L.shape[0], probes.size))
    unit[probes, np.arange(probes.size)] = 1.0
    half = solve_triangular(L, unit, lower=True, check_finite=False)  # (C^-1)_jj = |L^-1 e_j|^2
    return probes, np.einsum("ij,ij->j", half, half)


def _loo_residuals(design: Design, gamma: np.ndarray, w: np.ndarray, probes: np.ndarray,
                   p: np.ndarray) -> np.ndarray:
    """Leave-one-out residuals ``gamma_j / P_jj`` (``P`` the inverse covariance projected off
    the linear part; Rasmussen and Williams sec. 5.4.2). A sampled pair that was not probed
    takes its size's mean ``P_jj`` (``w_j``, hence ``P_jj = w_j (1 - leverage_j)`` on average,
    is the same within a size); elsewhere the plain residual ``gamma_j / w_j``."""
    scale = w.copy()
    usable = p > 1e-12 * max(float(p.max(initial=0.0)), 1e-300)
    scale[probes[usable]] = p[usable]
    if probes.size < scale.size:
        stratum = np.full(scale.size, -1)
        stratum[design.n_enumerated // 2:] = design.pair_stratum
        for u in np.unique(design.pair_stratum):
            mine = usable & (stratum[probes] == u)
            if mine.any():
                rest = np.setdiff1d(np.flatnonzero(stratum == u), probes)
                scale[rest] = p[mine].mean()
    return np.asarray(gamma / scale[:, None])


def gp_fit(design: Design, pairs: Pairs, linear: Fit) -> Fit | None:
    """The surrogate's Shapley values and leave-one-out residuals, with the linear fit's
    sensitivities (the standard errors treat the relevance weights and scale as fixed and
    reuse the linear fit's influence of each pair, an approximation the coverage test in
    ``tests/test_shapley_sampling.py`` checks), or None when
    the design is too small, enumerates every pair (the linear fit is then exact) or the
    linear part already fits every output exactly."""
    from scipy.linalg import cho_solve, cholesky

    n_all, d = pairs.x.shape
    if d < 3 or n_all < d + MIN_RESIDUAL_DOF or design.pair_stratum.size == 0:
        return None
    c = interaction_weights(linear.values)
    fitted = pairs if n_all <= MAX_PAIRS else _subset(pairs, _stride(n_all, MAX_PAIRS))
    x, w, n = fitted.x, fitted.w, fitted.x.shape[0]
    points = np.vstack([x, np.ones((1, d))])  # the sampled pairs, then the full coalition
    C = walsh_kernel(points, points, c)
    rho = choose_scale(fitted, C)
    if rho is None:
        return None
    C *= rho
    C[np.arange(n), np.arange(n)] += 1.0 / w
    try:
        L = cholesky(C, lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:
        return None
    shap_k = walsh_shapley(points, c)
    targets = np.vstack([fitted.y, fitted.delta[None, :] / 2.0])
    solved = cho_solve((L, True), np.hstack([points, targets]), check_finite=False)
    E_f, E_y = solved[:, :d], solved[:, d:]
    fcf_inv = np.linalg.pinv(points.T @ E_f)
    a = fcf_inv @ (points.T @ E_y)
    gamma = E_y - E_f @ a
    phi_h = rho * shap_k.T @ gamma
    if n_all > MAX_PAIRS:
        return _refit_linear(pairs, rho, c, points, gamma, phi_h)
    probes, c_inv_diag = _loo_diagonal(L, design, n)
    p = c_inv_diag - ((E_f[probes] @ fcf_inv) * E_f[probes]).sum(1)
    loo = _loo_residuals(design, gamma[:n], w, probes, p)
    return Fit(2.0 * a + phi_h, linear.sensitivity, loo, rho)


def _subset(pairs: Pairs, idx: np.ndarray) -> Pairs:
    """The pairs ``idx``, their weights scaled to the subsample's share of the design."""
    return Pairs(pairs.x[idx], pairs.w[idx] * (pairs.x.shape[0] / idx.size), pairs.y[idx],
                 pairs.delta)


def _refit_linear(pairs: Pairs, rho: float, c: np.ndarray, points: np.ndarray,
                  gamma: np.ndarray, phi_h: np.ndarray) -> Fit:
    """A surrogate ``h`` fitted on a subset: its Shapley values plus the linear fit of ``y - h``
    on every pair (``h`` taken as fixed: the standard errors are the linear fit's)."""
    d = pairs.x.shape[1]
    h = rho * walsh_kernel(np.vstack([pairs.x, np.ones((1, d))]), points, c) @ gamma
    rest = linear_fit(Pairs(pairs.x, pairs.w, pairs.y - h[:-1], pairs.delta - 2.0 * h[-1]))
    return Fit(phi_h + rest.values, rest.sensitivity, rest.loo_residuals, rho)
