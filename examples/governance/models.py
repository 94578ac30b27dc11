"""The approved model and three retrained candidates of the governance example.

Each trains in well under a second on scikit-learn's diabetes data (the suite's training rows):

- ``approved``: gradient-boosted trees, as in ``examples/diabetes`` (held-out R² about 0.48);
- ``shuffled_labels``: the same model trained after a broken join shuffled the labels against
  the rows (R² about -0.29);
- ``leak``: the same model given ``followup_lab``, a laboratory value measured a year later, at
  the time the outcome is known: a target leak (R² about 0.97, the leak holding about 90% of
  the attribution);
- ``stumps``: three boosted trees of depth 1 (R² about 0.44, close to the approved model, but
  it reasons with three features only).

``followup.csv`` (the data with the leak column) is written by :func:`write_followup_data`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor

from xaudit import Dataset

FOLLOWUP_CSV = Path(__file__).with_name("followup.csv")


def _boosted_trees() -> GradientBoostingRegressor:
    return GradientBoostingRegressor(n_estimators=150, max_depth=3, learning_rate=0.05,
                                     subsample=0.8, random_state=0)


def approved(data: Dataset) -> GradientBoostingRegressor:
    """The approved model: 150 boosted trees of depth 3 on the training rows."""
    return _boosted_trees().fit(data.X_train, data.y_train)


def shuffled_labels(data: Dataset) -> GradientBoostingRegressor:
    """The approved recipe after a broken join: each training row got another row's label."""
    y = np.asarray(data.y_train)
    return _boosted_trees().fit(data.X_train, y[np.random.default_rng(1).permutation(y.size)])


def leak(data: Dataset) -> GradientBoostingRegressor:
    """The approved recipe on data with the target-leak column ``followup_lab``."""
    return _boosted_trees().fit(data.X_train, data.y_train)


def stumps(data: Dataset) -> GradientBoostingRegressor:
    """Three boosted trees of depth 1 (a retraining run with the wrong hyperparameters)."""
    model = GradientBoostingRegressor(n_estimators=3, max_depth=1, learning_rate=1.0,
                                      random_state=0)
    return model.fit(data.X_train, data.y_train)


def write_followup_data(path: Path = FOLLOWUP_CSV) -> Path:
    """The diabetes data (features to six significant digits) with ``followup_lab``: the
    outcome plus Gaussian noise of standard deviation 15 (seed 1), and the outcome,
    ``progression``."""
    bunch = load_diabetes()
    noise = np.random.default_rng(1).normal(0.0, 15.0, size=bunch.target.size)
    columns = [*bunch.feature_names, "followup_lab", "progression"]
    table = np.column_stack([bunch.data, bunch.target + noise, bunch.target])
    lines = [",".join(columns)] + [",".join(f"{v:.6g}" for v in row) for row in table]
    path.write_text("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":
    print(write_followup_data())
