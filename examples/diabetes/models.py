"""Models for the example audit, trained in seconds on data shipped with scikit-learn."""

from __future__ import annotations

from sklearn.ensemble import GradientBoostingRegressor

from xaudit import Dataset


def train_boosted_trees(data: Dataset) -> GradientBoostingRegressor:
    """Gradient-boosted regression trees (150 trees of depth 3) on the suite's training rows."""
    model = GradientBoostingRegressor(n_estimators=150, max_depth=3, learning_rate=0.05,
                                      subsample=0.8, random_state=0)
    return model.fit(data.X_train, data.y_train)
