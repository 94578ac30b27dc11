"""The prior of KernelSHAP's Gaussian-process surrogate: a Walsh (parity) kernel and its
Shapley values in closed form.

Code a coalition ``S`` of ``d`` players as ``x_i = +1`` for ``i in S`` and ``-1`` otherwise.
Every game is a sum of parity functions ``chi_T(x) = prod_{i in T} x_i``; the odd ones
(``|T|`` odd) carry all of its Shapley value, ``2 / |T|`` of the coefficient to each member of
``T`` (see :mod:`xaudit.plugins.shapley.kernel_fit`). The surrogate's prior puts independent
centred Gaussian coefficients on the odd parities of order three and more, with variance
``prod_{i in T} c_i``: a product ("ANOVA") prior (Wahba 1990, *Spline Models for Observational
Data*, ch. 10; Duvenaud, Nickisch and Rasmussen 2011, "Additive Gaussian processes") that
decays geometrically with the order of the interaction and weighs each feature by its
relevance ``c_i`` (automatic relevance determination, MacKay 1994; Neal 1996). The covariance
of the surrogate at two coalitions is then

    k(x, z) = (prod_i (1 + c_i x_i z_i) - prod_i (1 - c_i x_i z_i)) / 2 - sum_i c_i x_i z_i,

and the Shapley value of ``k(., z)`` (the function ``x -> k(x, z)``) for player ``i`` is

    sum_{T odd, |T| >= 3, i in T} (2 / |T|) prod_{j in T} c_j z_j
        = 2 u_i (int_0^1 (prod_{j != i} (1 + t u_j) + prod_{j != i} (1 - t u_j)) / 2 dt - 1)

with ``u_j = c_j z_j`` (``1 / |T|`` is ``int_0^1 t^{|T| - 1} dt``). The integrand is a
polynomial of degree ``d - 1`` in ``t``, so Gauss-Legendre quadrature with ``ceil(d / 2)``
nodes is exact.
"""

from __future__ import annotations

import numpy as np

EXPECTED_ORDER = 1.5
"""``sum_i c_i``: the prior variance of order ``k`` is at most ``1.5^k / k!`` of the scale
whatever the number of features, so third-order terms lead and high orders stay possible."""
RELEVANCE_FLOOR = 1e-3
"""Smallest relevance (relative to the largest): every feature may interact a little."""
MAX_WEIGHT = 0.95
"""Largest ``c_i`` (the closed form below needs ``c_i < 1``)."""


def interaction_weights(first_pass: np.ndarray) -> np.ndarray:
    """``c`` ``(d,)`` from first-pass Shapley values ``(d, k)``: each output's magnitudes
    normalised to sum one, summed over outputs, floored, scaled to sum ``EXPECTED_ORDER``
    and capped at ``MAX_WEIGHT``."""
    size = np.abs(first_pass)
    total = size.sum(0)
    relevance = (size[:, total > 0] / total[total > 0]).sum(1)
    if not np.any(relevance > 0):
        relevance = np.ones(first_pass.shape[0])
    relevance = np.maximum(relevance, RELEVANCE_FLOOR * relevance.max())
    return np.asarray(np.minimum(EXPECTED_ORDER * relevance / relevance.sum(), MAX_WEIGHT))


def walsh_kernel(A: np.ndarray, B: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``k(a, b)`` for the rows of ``A`` ``(m, d)`` and ``B`` ``(n, d)`` in ``{-1, 1}``.

    With ``u = a_i b_i = +-1``, ``log(1 + c_i u) = alpha_i + u atanh(c_i)`` where ``alpha_i =
    log(1 - c_i^2) / 2``, so the two products are ``exp(alpha +- sum_i atanh(c_i) a_i b_i)``
    and their half difference is ``exp(alpha) sinh(.)``: two matrix products and one
    exponential in all, done in place in one ``(m, n)`` array and one scratch array (on a
    design of a thousand pairs, fresh temporaries doubled the time).
    """
    alpha = 0.5 * np.log1p(-c * c).sum()
    kernel: np.ndarray = (A * np.arctanh(c)) @ B.T
    kernel += alpha
    np.exp(kernel, out=kernel)
    scratch = np.reciprocal(kernel)
    scratch *= np.exp(2.0 * alpha)
    kernel -= scratch
    kernel *= 0.5
    np.matmul(A * c, B.T, out=scratch)
    kernel -= scratch
    return kernel


def _leave_one_out_products(factors: np.ndarray) -> np.ndarray:
    """``prod_{j != i} factors[:, j]`` for every ``i``, without division, ``(n, d)``."""
    n, d = factors.shape
    before = np.ones((n, d))
    after = np.ones((n, d))
    before[:, 1:] = np.cumprod(factors[:, :-1], axis=1)
    after[:, :-1] = np.cumprod(factors[:, :0:-1], axis=1)[:, ::-1]
    return before * after


def walsh_shapley(Z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Shapley values of ``k(., z)`` for each row ``z`` of ``Z`` ``(n, d)``, ``(n, d)``."""
    d = Z.shape[1]
    nodes, weights = np.polynomial.legendre.leggauss((d + 1) // 2 + 1)
    u = Z * c
    integral = np.zeros(Z.shape)
    for t, weight in zip(0.5 * (nodes + 1.0), 0.5 * weights, strict=True):
        integral += weight * 0.5 * (_leave_one_out_products(1.0 + t * u)
                                    + _leave_one_out_products(1.0 - t * u))
    return np.asarray(2.0 * u * (integral - 1.0))
