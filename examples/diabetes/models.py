"""Models for the example audit, trained in seconds on data shipped with scikit-learn."""

from __future__ import annotations

from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from xaudit import Dataset


def train_ridge(data: Dataset) -> Pipeline:
    """A standardised ridge regression on the suite's training rows."""
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=(0.1, 1.0, 10.0)))
    return model.fit(data.X_train, data.y_train)
