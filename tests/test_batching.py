"""The one row-batching rule, ``xaudit.batching.row_blocks``, against its definition."""

from __future__ import annotations

import numpy as np
import pytest

import xaudit
from xaudit.batching import predict_batched, row_blocks


@pytest.mark.parametrize(("n", "max_rows", "per_row"), [
    (0, 5, 1), (1, 5, 1), (10, 3, 1), (10, 10, 1), (10, 100, 1), (10, 12, 5), (10, 4, 5),
    (7, 1, 1), (9, 8, 3),
])
def test_blocks_cover_the_rows_in_order_within_the_budget(n: int, max_rows: int,
                                                           per_row: int) -> None:
    blocks = row_blocks(n, max_rows, per_row)
    size = max(1, max_rows // per_row)  # the definition
    assert [list(range(n))[b] for b in blocks] == [
        list(range(s, min(n, s + size))) for s in range(0, n, size)]
    assert all(b.stop - b.start <= size for b in blocks)
    covered = [i for b in blocks for i in range(b.start, b.stop)]
    assert covered == list(range(n))
    if per_row <= max_rows:
        assert all((b.stop - b.start) * per_row <= max_rows for b in blocks)


def test_a_row_is_never_split() -> None:
    assert row_blocks(3, 4, per_row=10) == [slice(0, 1), slice(1, 2), slice(2, 3)]


def test_predict_batched_calls_the_model_per_block() -> None:
    calls: list[int] = []

    def f(X: np.ndarray) -> np.ndarray:
        calls.append(len(X))
        return X.sum(axis=1)

    model = xaudit.adapt(f, adapter="callable", feature_shape=[2], output_names=["s"])
    X = np.arange(14.0).reshape(7, 2)
    calls.clear()
    np.testing.assert_array_equal(predict_batched(model, X, 3)[:, 0], X.sum(axis=1))
    assert calls == [3, 3, 1]
