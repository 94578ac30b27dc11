"""The scale-out example's model, trained in a second on data shipped with scikit-learn."""

from __future__ import annotations

from sklearn.ensemble import RandomForestRegressor

from xaudit import Dataset


def train_forest(data: Dataset) -> RandomForestRegressor:
    """A random forest (50 trees of depth 6) on the suite's training rows."""
    model = RandomForestRegressor(n_estimators=50, max_depth=6, random_state=0)
    return model.fit(data.X_train, data.y_train)
