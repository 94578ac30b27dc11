"""The callable and generic scikit-learn adapters against the frameworks' own outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import xaudit
from xaudit.errors import InputError, ModelLoadError


def test_classifier_gives_probabilities_named_by_class() -> None:
    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    model = xaudit.adapt(clf)
    assert model.adapter == "sklearn"
    assert model.task == "classification"
    assert model.output_names == ("0", "1", "2")
    np.testing.assert_array_equal(model.predict(X), clf.predict_proba(X))


def test_decision_function_output_for_binary_has_one_column() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    model = xaudit.adapt(clf, output="decision_function")
    assert model.output_names == ("margin(1)",)
    np.testing.assert_array_equal(model.predict(X)[:, 0], clf.decision_function(X))


def test_regressor_and_dataframe_pipeline_keep_column_names() -> None:
    data = load_diabetes(as_frame=True)
    frame = data.frame.drop(columns="target")
    frame["region"] = np.where(frame["sex"] > 0, 1.0, 0.0)
    pre = ColumnTransformer([("cat", OneHotEncoder(), ["region"])], remainder="passthrough")
    pipe = make_pipeline(pre, LinearRegression()).fit(frame, data.target)
    model = xaudit.adapt(pipe)
    assert model.input_spec.feature_names == tuple(frame.columns)
    assert model.output_names == ("prediction",)
    np.testing.assert_allclose(
        model.predict(frame.to_numpy())[:, 0], pipe.predict(frame), rtol=0, atol=1e-9
    )


def test_unfitted_estimator_and_wrong_width_are_refused() -> None:
    with pytest.raises(ModelLoadError, match="not fitted"):
        xaudit.adapt(LinearRegression())
    X, y = load_diabetes(return_X_y=True)
    model = xaudit.adapt(LinearRegression().fit(X, y))
    with pytest.raises(InputError, match=r"expects rows shaped \(10,\), got \(9,\)"):
        model.predict(X[:, :9])


def test_output_names_must_match_output_count() -> None:
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ModelLoadError, match="output_names has 2 name"):
        xaudit.adapt(RandomForestClassifier(n_estimators=3).fit(X, y), output_names=["a", "b"])


def test_callable_shapes_bind_on_first_call_and_outputs_are_checked() -> None:
    w = np.array([1.0, -2.0, 0.5])
    model = xaudit.adapt(lambda X: X @ w)
    X = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(model.predict(X)[:, 0], X @ w)
    assert model.input_spec.feature_shape == (3,)
    assert model.output_names == ("output_0",)
    with pytest.raises(InputError, match="expects rows shaped"):
        model.predict(np.ones((2, 4)))
    bad = xaudit.adapt(lambda X: np.full(len(X), np.inf), feature_shape=[3])
    with pytest.raises(InputError, match="non-finite"):
        bad.predict(X)
    wrong = xaudit.adapt(lambda X: X[:2, 0], feature_shape=[3], output_names=["y"])
    with pytest.raises(InputError, match="returned shape"):
        wrong.predict(X)


def test_pickle_files_need_trust_and_skops_loads(tmp_path: Path) -> None:
    import joblib
    import skops.io as sio

    X, y = load_diabetes(return_X_y=True)
    reg = LinearRegression().fit(X, y)
    pickled = tmp_path / "model.joblib"
    joblib.dump(reg, pickled)
    with pytest.raises(ModelLoadError, match="can run arbitrary code"):
        xaudit.adapt(pickled)
    trusted = xaudit.adapt(pickled, trust=True)
    np.testing.assert_array_equal(trusted.predict(X)[:, 0], reg.predict(X))
    safe = tmp_path / "model.skops"
    sio.dump(reg, safe)
    loaded = xaudit.adapt(safe)
    np.testing.assert_array_equal(loaded.predict(X)[:, 0], reg.predict(X))
    import hashlib

    assert loaded.fingerprint() == hashlib.sha256(safe.read_bytes()).hexdigest()


def test_in_memory_fingerprint_is_stable_and_sensitive() -> None:
    X, y = load_diabetes(return_X_y=True)
    a = xaudit.adapt(LinearRegression().fit(X, y)).fingerprint()
    b = xaudit.adapt(LinearRegression().fit(X, y)).fingerprint()
    c = xaudit.adapt(LinearRegression().fit(X[:-1], y[:-1])).fingerprint()
    assert a == b
    assert a != c
    assert len(a) == 64


def test_unknown_objects_are_refused_with_the_adapters_listed() -> None:
    with pytest.raises(ModelLoadError, match=r"no adapter claims .*registered adapters: callable"):
        xaudit.adapt(object())
    with pytest.raises(xaudit.UnknownNameError, match="did you mean 'sklearn'"):
        xaudit.adapt(lambda X: X, adapter="sklaern")


def test_dataframe_input_to_explain_keeps_names() -> None:
    data = load_diabetes(as_frame=True)
    X = data.frame.drop(columns="target")
    reg = LinearRegression().fit(X, data.target)
    exp = xaudit.explain(reg, X.iloc[:3], method="ablation", background=X.iloc[:20])
    assert exp.feature_names == tuple(X.columns)
    assert isinstance(X, pd.DataFrame)
