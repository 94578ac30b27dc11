"""scikit-learn output spaces, DataFrame inputs with categorical dtypes, and load-time probes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import xaudit
from xaudit.cli import main
from xaudit.probe import probe_model
from xaudit.runner import build_dataset


def _mixed_frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.normal(50, 10, n),
        "colour": rng.choice(["red", "green", "blue"], n),
        "age": rng.integers(18, 80, n).astype(float),
    })
    y = frame["income"] * 0.5 + frame["colour"].map({"red": 3.0, "green": -1.0, "blue": 0.0})
    return frame, (y + rng.normal(0, 0.1, n)).to_numpy()


def test_log_odds_of_logistic_regression_equal_its_decision_function() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    model = xaudit.adapt(clf, output="log_odds")
    assert model.output_names == ("log_odds(0)", "log_odds(1)")
    out = model.predict(X[:50])
    # Closed form: for a logistic model, log(p1 / (1 - p1)) is the linear score.
    np.testing.assert_allclose(out[:, 1], clf.decision_function(X[:50]), rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(out[:, 0], -clf.decision_function(X[:50]), rtol=1e-7, atol=1e-7)
    with pytest.raises(xaudit.ModelLoadError, match="needs a classifier"):
        xaudit.adapt(LinearRegression().fit(X, y), output="log_odds")


def test_pipeline_with_string_categories_takes_object_rows() -> None:
    frame, y = _mixed_frame()
    pre = ColumnTransformer([("onehot", OneHotEncoder(), ["colour"])], remainder="passthrough")
    pipe = make_pipeline(pre, Ridge()).fit(frame, y)
    model = xaudit.adapt(pipe)
    rows = frame.to_numpy()  # object array: floats and strings mixed
    np.testing.assert_allclose(model.predict(rows)[:, 0], pipe.predict(frame), atol=1e-9)


def test_categorical_dtype_model_gets_the_training_categories() -> None:
    frame, y = _mixed_frame()
    frame["colour"] = frame["colour"].astype("category")
    hgb = HistGradientBoostingRegressor(categorical_features="from_dtype", max_iter=30,
                                        random_state=0).fit(frame, y)
    categories = {"colour": list(frame["colour"].cat.categories)}
    model = xaudit.adapt(hgb, categories=categories)
    rows = frame.to_numpy()
    np.testing.assert_allclose(model.predict(rows)[:, 0], hgb.predict(frame), atol=1e-12)
    exp = xaudit.explain(model, rows[:5], method="ablation", background=rows[50:80])
    assert exp.values.shape == (5, 3, 1)
    assert exp.feature_names == ("income", "colour", "age")


def test_suite_with_csv_categorical_column(tmp_path: Path) -> None:
    frame, y = _mixed_frame()
    frame.assign(target=y).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "factory.py").write_text(
        "import pandas as pd\n"
        "from sklearn.ensemble import HistGradientBoostingRegressor\n"
        "def train(data):\n"
        "    frame = pd.DataFrame(data.X_train, columns=data.feature_names)\n"
        "    frame['income'] = frame['income'].astype(float)\n"
        "    frame['age'] = frame['age'].astype(float)\n"
        "    cats = sorted(set(data.X[:, 1]))\n"
        "    frame['colour'] = pd.Categorical(frame['colour'], categories=cats)\n"
        "    return HistGradientBoostingRegressor(categorical_features='from_dtype',\n"
        "                                         max_iter=20).fit(frame, data.y_train)\n"
    )
    (tmp_path / "suite.yaml").write_text(
        "name: categorical\n"
        "model: {factory: 'factory:train'}\n"
        "data: {source: data.csv, target: target, categorical: [colour], explain: {n: 5}}\n"
        "explainers: [{id: abl, method: ablation}]\n"
    )
    assert main(["run", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / "out")]) == 5
    result = xaudit.AuditResult.load(tmp_path / "out")
    assert result.explanations["abl"].values.shape == (5, 3, 1)
    assert set(result.explanations["abl"].inputs[:, 1]) <= {"red", "green", "blue"}


def test_probe_refuses_feature_count_mismatch_and_unstable_models() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    model = xaudit.adapt(LinearRegression().fit(X[:, :10], y))
    with pytest.raises(xaudit.InputError, match="the data has 30 features but the model "
                                                "expects 10"):
        probe_model(model, X)
    rng = np.random.default_rng(0)
    noisy = xaudit.adapt(lambda rows: rows.sum(axis=1) + rng.normal(size=len(rows)),
                         feature_shape=[30], output_names=["y"])
    with pytest.raises(xaudit.InputError, match="different outputs for the same rows"):
        probe_model(noisy, X)
    probe_model(model, X[:, :10])


def test_suite_with_wrong_feature_count_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                ) -> None:
    (tmp_path / "factory.py").write_text(
        "from sklearn.linear_model import LinearRegression\n"
        "def train(data):\n"
        "    return LinearRegression().fit(data.X_train[:, :5], data.y_train)\n"
    )
    (tmp_path / "suite.yaml").write_text(
        "name: mismatch\nmodel: {factory: 'factory:train'}\ndata: {source: 'sklearn:diabetes'}\n"
        "explainers: [{id: abl, method: ablation}]\n"
    )
    assert main(["run", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / "out")]) == 4
    assert "model: the data has 10 features but the model expects 5" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_wrong_model_file_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "model.txt"
    path.write_text("not a model")
    with pytest.raises(xaudit.ModelLoadError, match=r"model\.txt"):
        xaudit.adapt(path)


def test_suite_target_predicted_selects_each_rows_argmax(tmp_path: Path) -> None:
    (tmp_path / "factory.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n"
        "def train(data):\n"
        "    return LogisticRegression(max_iter=500).fit(data.X_train, data.y_train)\n"
    )
    (tmp_path / "suite.yaml").write_text(
        "name: predicted\nmodel: {factory: 'factory:train'}\n"
        "data: {source: 'sklearn:iris', explain: {n: 12}}\n"
        "explainers: [{id: every, method: ablation, target: all},\n"
        "             {id: top, method: ablation, target: predicted}]\n"
        "report: {formats: [json]}\n"
    )
    assert main(["run", str(tmp_path / "suite.yaml"), "--out", str(tmp_path / "out")]) == 5
    result = xaudit.AuditResult.load(tmp_path / "out")
    every, top = result.explanations["every"], result.explanations["top"]
    suite = xaudit.load_suite(tmp_path / "suite.yaml")
    data = build_dataset(suite.data, suite.seed, suite.base_dir)
    clf = LogisticRegression(max_iter=500).fit(data.X_train, data.y_train)
    expected = clf.predict_proba(top.inputs).argmax(axis=1)
    np.testing.assert_array_equal(top.target_indices[:, 0], expected)
    rows = np.arange(top.n_rows)
    np.testing.assert_array_equal(top.values[..., 0], every.values[rows, :, expected])
