"""LIME (tabular, text, image) against closed forms, scikit-learn and the ``lime`` package.

Oracles: on a model linear in LIME's interpretable representation the surrogate is exact, so
the weights have a closed form (coefficient x feature scale for standardised continuous
sampling; word weight x count for bag-of-words; the sum of pixel weights over a superpixel for a
linear image model with a constant hide colour). The weighted ridge is checked against
scikit-learn's ``Ridge(sample_weight=...)``; the whole tabular and text explainers against the
``lime`` package with the same sampling settings (agreement in expectation).
"""

from __future__ import annotations

import sys
import uuid
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy.stats import kendalltau

import xaudit
from xaudit.errors import InputError
from xaudit.plugins._support.stability import seed_stability
from xaudit.plugins._support.statistics import kendall_tau
from xaudit.plugins.lime.common import LimeFitParams, fit_local
from xaudit.plugins.lime.image import image_mask

# ----------------------------------------------------------------------------- tabular


def _linear_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, Any]:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 6)) * np.array([1.0, 2.0, 3.0, 0.5, 1.0, 4.0]) + 1.0
    y = X @ np.array([1.0, -2.0, 0.5, 3.0, 0.0, 0.25]) + 0.1 * rng.normal(size=400)
    return X, y, LinearRegression().fit(X, y)


def test_continuous_weights_are_coefficient_times_scale() -> None:
    X, _, model = _linear_data()
    e = xaudit.explain(model, X[:4], method="lime.tabular", background=X, seed=1,
                       discretizer="none", feature_selection="none", n_samples=4000)
    expected = model.coef_ * X.std(axis=0)  # StandardScaler's population std
    assert e.values.shape == (4, 6, 1)
    assert e.base_values.shape == (4, 1)
    # exact linear surrogate: only the ridge shrinkage (alpha=1 against ~1e3 weighted samples)
    np.testing.assert_allclose(e.values[..., 0], np.tile(expected, (4, 1)), rtol=5e-3,
                               atol=1e-3)
    assert np.all(e.handoff.surrogate.r2 > 0.9999)
    np.testing.assert_allclose(e.handoff.outputs[:, 0], model.predict(X[:4]))
    np.testing.assert_allclose(e.handoff.surrogate.local_prediction, e.handoff.outputs, atol=0.05)


def test_sample_around_instance_and_shared_samples_keep_the_closed_form() -> None:
    X, _, model = _linear_data()
    expected = model.coef_ * X.std(axis=0)
    for extra in ({"sample_around_instance": True}, {"share_samples": True}):
        e = xaudit.explain(model, X[:3], method="lime.tabular", background=X, seed=2,
                           discretizer="none", feature_selection="none", **extra)
        np.testing.assert_allclose(e.values[..., 0], np.tile(expected, (3, 1)), rtol=5e-3,
                                   atol=1e-3)
    with pytest.raises(InputError, match="share_samples"):
        xaudit.explain(model, X[:1], method="lime.tabular", background=X, discretizer="none",
                       share_samples=True, sample_around_instance=True)


def test_weighted_ridge_matches_scikit_learn() -> None:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(5)
    Z, Y, w = rng.normal(size=(300, 5)), rng.normal(size=(300, 2)), rng.random(300)
    Y[:, 0] += Z @ np.array([1.0, -1.0, 0.5, 0.0, 2.0])
    fit = fit_local(Z, Y, w, LimeFitParams(feature_selection="none", alpha=3.0))
    for j in range(2):
        ref = Ridge(alpha=3.0).fit(Z, Y[:, j], sample_weight=w)
        np.testing.assert_allclose(fit.coef[:, j], ref.coef_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(fit.intercept[j], ref.intercept_, rtol=1e-10)
        np.testing.assert_allclose(fit.r2[j], ref.score(Z, Y[:, j], sample_weight=w),
                                   rtol=1e-10)
        np.testing.assert_allclose(fit.local_prediction[j], ref.predict(Z[:1])[0], rtol=1e-10)


@pytest.mark.parametrize("selection", ["forward", "highest_weights", "lasso_path", "auto"])
def test_feature_selection_finds_the_features_the_model_uses(selection: str) -> None:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 8))
    y = 3 * X[:, 1] - 2 * X[:, 4] + 1.5 * X[:, 6] + 0.01 * X[:, 0]
    model = LinearRegression().fit(X, y)
    e = xaudit.explain(model, X[:3], method="lime.tabular", background=X, seed=0,
                       discretizer="none", num_features=3, feature_selection=selection,
                       n_samples=2000)
    for r in range(3):
        assert set(np.flatnonzero(e.values[r, :, 0])) == {1, 4, 6}
        assert set(np.flatnonzero(e.extras["selected"][r, :, 0])) == {1, 4, 6}


def test_same_seed_same_output_and_other_seed_differs() -> None:
    X, _, model = _linear_data()
    runs = [xaudit.explain(model, X[:3], method="lime.tabular", background=X, seed=s,
                           n_samples=500) for s in (7, 7, 8)]
    np.testing.assert_array_equal(runs[0].values, runs[1].values)
    np.testing.assert_array_equal(runs[0].base_values, runs[1].base_values)
    assert not np.array_equal(runs[0].values, runs[2].values)


def test_top5_stability_across_ten_seeds() -> None:
    """The helper's figures equal scipy's Kendall tau and a Jaccard index computed here on the
    same ten explanations; on a forest that uses 5 of 10 features, the top 5 are stable."""
    from sklearn.datasets import make_friedman1
    from sklearn.ensemble import RandomForestRegressor

    X, y = make_friedman1(600, n_features=10, random_state=0)
    model = RandomForestRegressor(30, max_depth=8, random_state=0).fit(X, y)
    params = {"discretizer": "none", "feature_selection": "none", "n_samples": 2000}
    report = seed_stability(model, X[:2], seeds=10, top_k=5, background=X, **params)
    assert [(r["row"], r["slot"]) for r in report] == [(0, 0), (1, 0)]
    weights = np.stack([xaudit.explain(model, X[:1], method="lime.tabular", background=X,
                                       seed=s, **params).values[0, :, 0] for s in range(10)])
    tops = [set(np.argsort(-np.abs(w))[:5]) for w in weights]
    taus, jaccard = [], []
    for a, b in combinations(range(10), 2):
        union = sorted(tops[a] | tops[b])
        taus.append(kendalltau(np.abs(weights[a, union]), np.abs(weights[b, union])).statistic)
        jaccard.append(len(tops[a] & tops[b]) / len(tops[a] | tops[b]))
    np.testing.assert_allclose(report[0]["rank_correlation"], np.mean(taus), rtol=1e-12)
    np.testing.assert_allclose(report[0]["top_k_jaccard"], np.mean(jaccard), rtol=1e-12)
    print(f"\nLIME top-5 stability over 10 seeds: Kendall tau {report[0]['rank_correlation']:.3f}"
          f" (min {report[0]['rank_correlation_min']:.3f}), top-5 Jaccard "
          f"{report[0]['top_k_jaccard']:.3f}, same top-5 in {report[0]['top_k_agreement']:.0%}")
    assert report[0]["top_k_jaccard"] > 0.6
    assert report[0]["rank_correlation"] > 0.3
    assert set().union(*tops) >= {0, 1, 3}  # the strongest informative features are found


def test_stability_in_metadata() -> None:
    """On a model linear in the representation every run recovers the same weights, so the
    top 5 (distinct magnitudes) rank identically: rank correlation and Jaccard are 1."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 7))
    model = LinearRegression().fit(X, X @ np.array([5.0, -4.0, 3.0, 2.0, -1.0, 0.5, 0.1]))
    kwargs = {"background": X, "discretizer": "none", "feature_selection": "none",
              "n_samples": 1000, "stability_runs": 10, "seed": 3}
    e = xaudit.explain(model, X[:2], method="lime.tabular", **kwargs)
    assert [(s["row"], s["slot"]) for s in e.metadata["stability"]] == [(0, 0), (1, 0)]
    for figures in e.metadata["stability"]:
        assert figures["runs"] == 10
        assert figures["rank_correlation"] == pytest.approx(1.0)
        assert figures["top_k_jaccard"] == 1.0
    again = xaudit.explain(model, X[:2], method="lime.tabular", **kwargs)
    assert again.metadata["stability"] == e.metadata["stability"]
    np.testing.assert_array_equal(again.values, e.values)
    plain = xaudit.explain(model, X[:2], method="lime.tabular",
                           **{**kwargs, "stability_runs": 0})
    np.testing.assert_array_equal(plain.values, e.values)  # reruns come after the explanation
    assert "stability" not in plain.metadata


def test_kendall_tau_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 4, 9).astype(float), rng.integers(0, 4, 9).astype(float)
        np.testing.assert_allclose(kendall_tau(a, b), kendalltau(a, b).statistic, rtol=1e-12)


def test_discretized_weights_of_a_step_model() -> None:
    # f = 2 * [x0 > q3(x0)] - [x1 <= q1(x1)]: linear in the quartile indicators, so the binary
    # surrogate is exact: weight +2 (row in x0's top bin), -1 (row in x1's bottom bin), else 0
    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 4))
    q1, q3 = np.percentile(X[:, 1], 25), np.percentile(X[:, 0], 75)

    def step(rows: np.ndarray) -> np.ndarray:
        return 2.0 * (rows[:, 0] > q3) - 1.0 * (rows[:, 1] <= q1)

    row = np.array([[q3 + 1.0, q1 - 1.0, 0.0, 0.0]])
    e = xaudit.explain(step, row, method="lime.tabular", background=X, seed=0,
                       discretizer="quartile", feature_selection="none", alpha=1e-6)
    np.testing.assert_allclose(e.values[0, :, 0], [2.0, -1.0, 0.0, 0.0], atol=1e-6)
    conditions = e.metadata["conditions"][0]
    assert conditions[0].startswith("x0 >")
    assert conditions[1].startswith("x1 <=")
    d = xaudit.explain(step, row, method="lime.tabular", background=X, seed=0,
                       discretizer="decile", feature_selection="none")
    assert d.values[0, 0, 0] > 1.0
    assert d.values[0, 1, 0] < -0.5


def test_categorical_features_follow_training_frequencies() -> None:
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.normal(size=1000), rng.choice([0.0, 1.0, 2.0], 1000,
                                                           p=[0.6, 0.3, 0.1])])
    seen: list[np.ndarray] = []

    def model(rows: np.ndarray) -> np.ndarray:
        seen.append(rows)
        return 3.0 * (rows[:, 1] == 2.0) + 0.0 * rows[:, 0]

    adapted = xaudit.adapt(model, feature_shape=[2], output_names=["y"])
    e = xaudit.explain(adapted, np.array([[0.0, 2.0]]), method="lime.tabular", background=X,
                       seed=0, categorical_features=[1], feature_selection="none",
                       n_samples=6000, alpha=1e-6)
    drawn = np.concatenate(seen)[:, 1]
    for value, share in ((0.0, 0.6), (1.0, 0.3), (2.0, 0.1)):
        assert abs(np.mean(drawn == value) - np.mean(X[:, 1] == value)) < 0.02 + 0 * share
    np.testing.assert_allclose(e.values[0, 1, 0], 3.0, atol=1e-4)
    assert e.metadata["conditions"][0][1] == "x1 = 2.0"


def test_string_categories_in_object_rows() -> None:
    rng = np.random.default_rng(0)
    X = np.empty((500, 3), dtype=object)
    X[:, 0], X[:, 2] = rng.normal(size=500), rng.normal(size=500)
    X[:, 1] = rng.choice(["red", "green", "blue"], 500, p=[0.5, 0.3, 0.2])

    def f(rows: np.ndarray) -> np.ndarray:
        return 2.0 * np.asarray(rows[:, 0], dtype=float) + 3.0 * (rows[:, 1] == "blue")

    model = xaudit.adapt(f, feature_shape=[3], output_names=["y"])
    row = X[np.flatnonzero(X[:, 1] == "blue")[:1]]
    e = xaudit.explain(model, row, method="lime.tabular", background=X, seed=0,
                       categorical_features=[1], discretizer="none", feature_selection="none",
                       alpha=1e-6)
    # closed form: 2 x population std of x0 for the slope, 3 for "is blue" (exact surrogate)
    np.testing.assert_allclose(e.values[0, :, 0],
                               [2.0 * np.asarray(X[:, 0], dtype=float).std(), 3.0, 0.0],
                               atol=1e-6)
    assert e.metadata["conditions"][0][1] == "x1 = blue"


def test_entropy_discretizer_needs_a_classifier() -> None:
    from sklearn.linear_model import LogisticRegression

    X, y, reg = _linear_data()
    clf = LogisticRegression().fit(X, y > np.median(y))
    e = xaudit.explain(clf, X[:2], method="lime.tabular", background=X, seed=0,
                       discretizer="entropy", n_samples=500)
    assert e.values.shape == (2, 6, 2)
    with pytest.raises(InputError, match="entropy"):
        xaudit.explain(reg, X[:1], method="lime.tabular", background=X, discretizer="entropy")
    with pytest.raises(InputError, match="categorical feature 'age'"):
        xaudit.explain(reg, X[:1], method="lime.tabular", background=X,
                       categorical_features=["age"])


@pytest.mark.slow
@pytest.mark.parametrize("discretizer", ["none", "quartile"])
def test_tabular_agrees_with_the_lime_package(discretizer: str) -> None:
    """Same sampling design as lime's (training mean/std or quartile bins with truncated
    normals, kernel sqrt(exp(-d^2/w^2)), ridge alpha 1): means over 4 seeds of 20,000 samples
    agree within 4 standard errors of their difference."""
    from lime.lime_tabular import LimeTabularExplainer

    rng = np.random.default_rng(0)
    bg = rng.normal(size=(500, 4)) * np.array([1.0, 0.5, 2.0, 1.0])

    def f(rows: np.ndarray) -> np.ndarray:
        return np.sin(rows[:, 0]) + rows[:, 1] ** 2 + 0.3 * rows[:, 2] * rows[:, 3]

    x = bg[3]
    ref_explainer = LimeTabularExplainer(bg, mode="regression",
                                         discretize_continuous=discretizer != "none",
                                         feature_selection="none", random_state=0)
    ref = []
    for s in range(4):
        ref_explainer.random_state = np.random.RandomState(s)
        exp = ref_explainer.explain_instance(x, f, num_features=4, num_samples=20000)
        ref.append([w for _, w in sorted(exp.local_exp[1])])
    ours = [xaudit.explain(f, x[None], method="lime.tabular", background=bg, seed=s,
                           discretizer=discretizer, feature_selection="none",
                           n_samples=20000).values[0, :, 0] for s in range(4)]
    se = np.sqrt(np.var(ref, axis=0, ddof=1) / 4 + np.var(ours, axis=0, ddof=1) / 4)
    gap = np.abs(np.mean(ours, axis=0) - np.mean(ref, axis=0))
    print(f"\nlime.tabular ({discretizer}) vs lime: |mean gap| {np.round(gap, 4)}, "
          f"s.e. {np.round(se, 4)}")
    assert np.all(gap <= 4 * se + 0.01)


# ----------------------------------------------------------------------------- text

WORDS = {"great": 2.0, "wonderful": 1.5, "awful": -2.0, "boring": -1.0}


def _word_model(texts: np.ndarray) -> np.ndarray:
    out = []
    for text in np.asarray(texts).ravel():
        tokens = str(text).lower().replace(",", " ").split()
        out.append(sum(WORDS.get(t, 0.0) for t in tokens))
    return np.asarray(out)


def test_bag_of_words_weights_are_word_weight_times_count() -> None:
    model = xaudit.adapt(_word_model, modality="text", output_names=["score"])
    texts = np.array(["great film, great cast but boring", "awful"])
    e = xaudit.explain(model, texts, method="lime.text", seed=0, feature_selection="none",
                       n_samples=2000, alpha=1e-6)
    tokens = e.handoff.tokens
    assert tokens == (("great", "film", "cast", "but", "boring"), ("awful",))
    np.testing.assert_allclose(e.values[0, :5, 0], [4.0, 0, 0, 0, -1.0], atol=1e-4)
    assert e.values.shape == (2, 5, 1)
    assert np.all(e.values[1, 1:] == 0)
    assert e.extras["token_mask"].sum(axis=1).tolist() == [5, 1]
    p = xaudit.explain(model, texts[:1], method="lime.text", seed=0, bow=False,
                       feature_selection="none", n_samples=2000, alpha=1e-6)
    assert p.handoff.tokens[0] == ("great", "film", "great", "cast", "but", "boring")
    np.testing.assert_allclose(p.values[0, :, 0], [2.0, 0, 2.0, 0, 0, -1.0], atol=1e-4)


def test_position_aware_masking_keeps_positions() -> None:
    """A model that reads only the first word: position-aware masking keeps the other words in
    place, so only the first occurrence matters (weight = its word weight, exactly)."""

    def first_word(texts: np.ndarray) -> np.ndarray:
        return np.asarray([WORDS.get(str(t).split()[0], 0.0) if str(t).split() else 0.0
                           for t in np.asarray(texts).ravel()])

    model = xaudit.adapt(first_word, modality="text", output_names=["score"])
    e = xaudit.explain(model, np.array(["great film great"]), method="lime.text", seed=0,
                       bow=False, feature_selection="none", n_samples=500, alpha=1e-8)
    np.testing.assert_allclose(e.values[0, :, 0], [2.0, 0.0, 0.0], atol=1e-6)


def test_split_expression_is_configurable() -> None:
    model = xaudit.adapt(_word_model, modality="text", output_names=["score"])
    e = xaudit.explain(model, np.array(["great|awful film"]), method="lime.text", seed=0,
                       split_expression=r"\|", n_samples=200)
    assert e.handoff.tokens == (("great", "awful film"),)
    with pytest.raises(InputError, match="regular expression"):
        xaudit.explain(model, np.array(["x"]), method="lime.text", split_expression="(")


CORPUS_POS = ["great film and wonderful acting", "a wonderful moving story", "great cast",
              "loved it, simply wonderful", "brilliant and great fun", "great great story"]
CORPUS_NEG = ["terrible film and awful acting", "a boring awful story", "awful cast",
              "hated it, simply terrible", "dull and boring fun", "boring boring story"]


def _text_pipeline() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X = np.array(CORPUS_POS + CORPUS_NEG)
    y = np.array([1] * len(CORPUS_POS) + [0] * len(CORPUS_NEG))
    return make_pipeline(TfidfVectorizer(), LogisticRegression(C=20)).fit(X, y)


def test_scikit_learn_text_pipeline() -> None:
    pipe = _text_pipeline()
    model = xaudit.adapt(pipe)
    assert model.input_spec.modality == "text"
    assert model.input_spec.feature_shape == ()
    texts = np.array(["a great story with awful acting"])
    e = xaudit.explain(pipe, texts, method="lime.text", target=1, seed=0)
    weights = dict(zip(e.handoff.tokens[0], e.values[0, :, 0], strict=True))
    assert weights["great"] > 0.05
    assert weights["awful"] < -0.05
    np.testing.assert_allclose(e.handoff.outputs[0, 0], pipe.predict_proba(texts)[0, 1])


def test_most_important_word_is_the_pipelines_heaviest_word() -> None:
    """Oracle: the fitted LogisticRegression's coefficients over the TF-IDF vocabulary."""
    pipe = _text_pipeline()
    vectorizer, classifier = pipe[0], pipe[-1]
    coef = dict(zip(vectorizer.get_feature_names_out(), classifier.coef_[0], strict=True))
    texts = np.array(["a great story with awful acting", "simply awful film, great cast",
                      "dull film with brilliant acting", "hated it, boring cast"])
    e = xaudit.explain(pipe, texts, method="lime.text", target=1, seed=3)
    for r, tokens in enumerate(e.handoff.tokens):
        weights = e.values[r, :len(tokens), 0]
        heaviest = max(tokens, key=lambda t: abs(coef.get(t.lower(), 0.0)))
        assert tokens[int(np.argmax(np.abs(weights)))] == heaviest, (texts[r], weights)
        for token, weight in zip(tokens, weights, strict=True):
            if abs(coef.get(token, 0.0)) > 1.0:
                assert np.sign(weight) == np.sign(coef[token]), (token, weight)


@pytest.mark.slow
def test_text_agrees_with_the_lime_package() -> None:
    from lime.lime_text import LimeTextExplainer

    pipe = _text_pipeline()
    text = "a great story with awful acting and boring cast"
    ref_explainer = LimeTextExplainer(feature_selection="none", random_state=0)
    ref = []
    for s in range(3):
        ref_explainer.random_state = np.random.RandomState(s)
        exp = ref_explainer.explain_instance(text, pipe.predict_proba, labels=(1,),
                                             num_features=9, num_samples=5000)
        by_word = {exp.domain_mapper.indexed_string.word(i): w for i, w in exp.local_exp[1]}
        ref.append(by_word)
    ours = [xaudit.explain(pipe, np.array([text]), method="lime.text", target=1, seed=s,
                           feature_selection="none")
            for s in range(3)]
    tokens = ours[0].handoff.tokens[0]
    ours_mean = np.mean([o.values[0, :, 0] for o in ours], axis=0)
    ref_mean = np.array([np.mean([r[t] for r in ref]) for t in tokens])
    np.testing.assert_allclose(ours_mean, ref_mean, atol=0.01 + 0.1 * np.abs(ref_mean).max())


def test_torch_text_model() -> None:
    torch = pytest.importorskip("torch")
    vocab = {w: i + 1 for i, w in enumerate(sorted({t for s in CORPUS_POS + CORPUS_NEG
                                                     for t in s.replace(",", "").split()}))}
    torch.manual_seed(0)
    bag = torch.nn.EmbeddingBag(len(vocab) + 1, 4, mode="sum", padding_idx=0)
    head = torch.nn.Linear(4, 2)

    def predict(texts: np.ndarray) -> np.ndarray:
        ids = [[vocab.get(t, 0) for t in str(s).replace(",", "").split()] or [0]
               for s in np.asarray(texts).ravel()]
        flat = torch.tensor([i for row in ids for i in row])
        offsets = torch.tensor(np.cumsum([0] + [len(r) for r in ids[:-1]]))
        with torch.no_grad():
            return head(bag(flat, offsets)).numpy().astype(np.float64)

    model = xaudit.adapt(predict, modality="text", output_names=["neg", "pos"])
    text = "great story and awful acting"
    e = xaudit.explain(model, np.array([text]), method="lime.text", seed=0, alpha=1e-6,
                       feature_selection="none", n_samples=1000)
    # the model is linear in the token counts: weight = head(embedding of the token)
    with torch.no_grad():
        per_token = (bag.weight @ head.weight.T).numpy()
    expected = np.stack([per_token[vocab[t]] for t in e.handoff.tokens[0]])
    np.testing.assert_allclose(e.values[0], expected, atol=1e-4)


# ----------------------------------------------------------------------------- image


def _cat(size: tuple[int, int] = (32, 40)) -> np.ndarray:
    from skimage import data, transform

    return transform.resize(data.chelsea(), size, anti_aliasing=True).astype(np.float32)


def test_image_weights_are_segment_sums_for_a_linear_model() -> None:
    torch = pytest.importorskip("torch")
    img = _cat()  # (H, W, 3) in [0, 1]
    torch.manual_seed(0)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(img.size, 2)).double()
    model = xaudit.adapt(linear, feature_shape=list(img.shape), modality="image",
                         dtype="float64")
    e = xaudit.explain(model, img[None], method="lime.image", seed=0, segmenter="slic",
                       hide_color=0.0, n_samples=400, batch_size=64, alpha=1e-8)
    seg = e.extras["segments"][0]
    W = linear[1].weight.detach().numpy().reshape(2, *img.shape)
    m = int(e.extras["n_segments"][0])
    expected = np.stack([[(img * W[j])[seg == s].sum() for j in range(2)] for s in range(m)])
    np.testing.assert_allclose(e.extras["segment_weights"][0, :m], expected, rtol=1e-5,
                               atol=1e-6)
    assert e.values.shape == (1, *img.shape, 2)
    np.testing.assert_allclose(e.values[0, :, :, 1, :], expected[seg])  # every channel
    assert e.metadata["model_calls"] == int(np.ceil(400 / 64))
    assert e.metadata["channel_axis"] == "last"


def test_top_labels_and_masks_in_metadata() -> None:
    torch = pytest.importorskip("torch")
    img = _cat((24, 24))
    torch.manual_seed(1)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(img.size, 5)).double()
    model = xaudit.adapt(linear, feature_shape=list(img.shape), modality="image",
                         dtype="float64")
    e = xaudit.explain(model, img[None], method="lime.image", seed=0, segmenter="slic",
                       segmenter_params={"n_segments": 12}, hide_color=0.0, n_samples=300,
                       top_labels=2, alpha=1e-8, mask_segments=3)
    with torch.no_grad():
        scores = linear(torch.as_tensor(img[None], dtype=torch.float64)).numpy()[0]
    top = sorted(np.argsort(-scores)[:2].tolist())
    assert e.metadata["top_labels"] == [top]
    seg = e.extras["segments"][0]
    m = e.metadata["n_segments"][0]
    W = linear[1].weight.detach().numpy().reshape(5, *img.shape)
    for j in range(5):
        got = e.extras["segment_weights"][0, :m, j]
        if j in top:  # closed form: the sum of the pixel weights over each superpixel
            want = [(img * W[j])[seg == s].sum() for s in range(m)]
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
            positive = [s for s in np.argsort(-got, kind="stable")[:3] if got[s] > 0]
            assert e.metadata["masks"][0][str(j)] == positive
            np.testing.assert_allclose(e.metadata["segment_weights"][0][str(j)], got)
            np.testing.assert_array_equal(image_mask(e, slot=j, num_features=3),
                                          np.isin(seg, positive))
        else:
            assert np.all(got == 0)
            assert str(j) not in e.metadata["masks"][0]


@pytest.mark.parametrize("segmenter", ["quickshift", "slic", "felzenszwalb"])
def test_cnn_on_the_cat_channels_first(segmenter: str) -> None:
    torch = pytest.importorskip("torch")
    small = {"kernel_size": 2, "max_dist": 10} if segmenter == "quickshift" else {}
    chw = np.moveaxis(_cat(), -1, 0)  # the model takes (3, H, W)
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(16, 3)).eval()
    model = xaudit.adapt(cnn, feature_shape=list(chw.shape), modality="image",
                         output="softmax")
    e = xaudit.explain(model, chw[None], method="lime.image", target="predicted", seed=0,
                       segmenter=segmenter, segmenter_params=small, n_samples=120,
                       batch_size=50)
    seg = e.extras["segments"][0]
    assert seg.shape == chw.shape[1:]
    assert e.metadata["channel_axis"] == "first"
    w = e.extras["segment_weights"][0, :, 0]
    for c in range(3):
        np.testing.assert_allclose(e.values[0, c, :, :, 0], w[seg])
    assert e.metadata["model_calls"] == 3
    np.testing.assert_allclose(e.handoff.outputs[0, 0], model.predict(chw[None]).max())
    mask = image_mask(e, num_features=2, positive_only=False)
    m = int(e.extras["n_segments"][0])
    np.testing.assert_array_equal(mask, np.isin(seg, np.argsort(-np.abs(w[:m]))[:2]))
    assert m > 2
    again = xaudit.explain(model, chw[None], method="lime.image", target="predicted", seed=0,
                           segmenter=segmenter, segmenter_params=small, n_samples=120,
                           batch_size=50)
    np.testing.assert_array_equal(e.values, again.values)


def test_mean_hide_colour_paints_each_superpixel_its_mean() -> None:
    img = _cat((16, 16))
    seen: list[np.ndarray] = []

    def model(rows: np.ndarray) -> np.ndarray:
        seen.append(rows)
        return rows.reshape(len(rows), -1).mean(axis=1)

    adapted = xaudit.adapt(model, feature_shape=list(img.shape), modality="image",
                           output_names=["m"])
    e = xaudit.explain(adapted, img[None], method="lime.image", seed=0, segmenter="slic",
                       segmenter_params={"n_segments": 6}, n_samples=20, batch_size=8)
    assert [len(rows) for rows in seen] == [8, 8, 4]  # batched, and counted
    assert e.metadata["model_calls"] == 3
    seg = e.extras["segments"][0]
    batch = np.concatenate(seen)
    off = np.flatnonzero(~np.all(batch == img, axis=(1, 2, 3)))[0]
    changed = np.any(batch[off] != img, axis=-1)
    s = int(seg[changed][0])
    np.testing.assert_allclose(batch[off][seg == s], np.broadcast_to(
        img[seg == s].mean(axis=0), (int((seg == s).sum()), 3)), rtol=1e-5)


# ----------------------------------------------------------------------------- suites

FACTORIES = '''\
import numpy as np
from sklearn.linear_model import LinearRegression
FITTED = []

def linear(data):
    model = LinearRegression().fit(data.X_train, data.y_train)
    FITTED.append((model, data))
    return model

def cnn():
    import torch
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(2, 2)).eval()
'''


@pytest.fixture
def factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    name = f"xaudit_lime_models_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path, name
    sys.modules.pop(name, None)


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_tabular_lime_from_a_suite(factories: Any) -> None:
    root, name = factories
    suite = _write(root / "lime.yaml", {
        "name": "lime-tabular", "seed": 4,
        "model": {"factory": f"{name}:linear"},
        "data": {"source": "sklearn:diabetes", "explain": {"n": 3}, "background": {"n": 200}},
        "explainers": [{"id": "lime", "method": "lime.tabular",
                        "params": {"discretizer": "none", "feature_selection": "none"}}],
    })
    result = xaudit.run_suite(suite)
    e = result.explanations["lime"]
    model, data = sys.modules[name].FITTED[-1]
    bg_std = np.asarray(data.background, dtype=np.float64).std(axis=0)
    np.testing.assert_allclose(e.values[..., 0], np.tile(model.coef_ * bg_std, (3, 1)),
                               rtol=2e-2, atol=1e-2 * np.abs(model.coef_ * bg_std).max())


def test_image_lime_from_a_suite(factories: Any) -> None:
    pytest.importorskip("torch")
    root, name = factories
    images = np.stack([np.moveaxis(_cat((16, 16)), -1, 0)] * 3).astype(np.float32)
    np.savez(root / "cats.npz", X=images, y=np.zeros(3))
    suite = _write(root / "img.yaml", {
        "name": "lime-image", "seed": 1,
        "model": {"factory": f"{name}:cnn",
                  "options": {"feature_shape": [3, 16, 16], "modality": "image"}},
        "data": {"source": "cats.npz", "split": {"test_size": 0}, "explain": {"n": 1},
                 "background": {"n": 1}},
        "explainers": [{"id": "lime", "method": "lime.image", "target": "predicted",
                        "params": {"segmenter": "slic", "n_samples": 40}}],
    })
    result = xaudit.run_suite(suite)
    assert not result.explainer_errors, result.explainer_errors
    e = result.explanations["lime"]
    assert e.values.shape == (1, 3, 16, 16, 1)
    assert e.extras["segments"].shape == (1, 16, 16)


def test_text_lime_names_its_token_axis() -> None:
    model = xaudit.adapt(_word_model, modality="text", output_names=["score"])
    e = xaudit.explain(model, np.array(["great film", "awful"]), method="lime.text",
                       n_samples=100)
    assert e.values.shape == (2, 2, 1)
    assert e.feature_names == ("token_0", "token_1")


TEXT_FACTORY = '''\
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

def pipeline(data):
    # a plain function around the pipeline: the suite then uses the callable adapter
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(C=20)).fit(data.X, data.y)

    def predict(texts):
        return pipe.predict_proba(np.asarray(texts).ravel())

    return predict
'''


def test_text_lime_from_a_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"xaudit_lime_text_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(TEXT_FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    texts = np.array(CORPUS_POS + CORPUS_NEG)
    np.savez(tmp_path / "reviews.npz", X=texts,
             y=np.array([1] * len(CORPUS_POS) + [0] * len(CORPUS_NEG)))
    suite = _write(tmp_path / "text.yaml", {
        "name": "lime-text", "seed": 2,
        "model": {"factory": f"{name}:pipeline", "adapter": "callable",
                  "output_names": ["negative", "positive"], "options": {"modality": "text"}},
        "data": {"source": "reviews.npz", "split": {"test_size": 0}, "explain": {"n": 3},
                 "background": {"n": 2}},
        "explainers": [{"id": "lime", "method": "lime.text", "target": "positive",
                        "params": {"n_samples": 300}}],
    })
    try:
        result = xaudit.run_suite(suite)
    finally:
        sys.modules.pop(name, None)
    assert not result.explainer_errors, result.explainer_errors
    e = result.explanations["lime"]
    assert len(e.handoff.tokens) == 3
    assert e.values.shape[0] == 3
    for r, tokens in enumerate(e.handoff.tokens):
        weights = dict(zip(tokens, e.values[r, :len(tokens), 0], strict=True))
        for word in ("great", "wonderful"):
            if word in weights:
                assert weights[word] > 0
        for word in ("awful", "boring", "terrible"):
            if word in weights:
                assert weights[word] < 0


PIPE_FACTORY = '''\
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

def pipeline(data):
    return make_pipeline(TfidfVectorizer(), LogisticRegression(C=20)).fit(data.X, data.y)
'''


def test_scikit_learn_text_pipeline_from_a_suite(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"xaudit_lime_pipe_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(PIPE_FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    np.savez(tmp_path / "reviews.npz", X=np.array(CORPUS_POS + CORPUS_NEG),
             y=np.array([1] * len(CORPUS_POS) + [0] * len(CORPUS_NEG)))
    suite = _write(tmp_path / "pipe.yaml", {
        "name": "lime-text-pipeline", "seed": 2, "model": {"factory": f"{name}:pipeline"},
        "data": {"source": "reviews.npz", "split": {"test_size": 0}, "explain": {"n": 2},
                 "background": {"n": 2}},
        "explainers": [{"id": "lime", "method": "lime.text", "target": "1",
                        "params": {"n_samples": 200}}],
    })
    try:
        result = xaudit.run_suite(suite)
    finally:
        sys.modules.pop(name, None)
    assert not result.explainer_errors, result.explainer_errors
    assert len(result.explanations["lime"].handoff.tokens) == 2


# ----------------------------------------------------------------------------- conformance


def _conformance_cases() -> list[Any]:
    from xaudit.plugins.lime.image import LimeImage
    from xaudit.plugins.lime.tabular import LimeTabular
    from xaudit.plugins.lime.text import LimeText
    from xaudit.testing import explainer_checks

    text_model = xaudit.adapt(lambda t: np.column_stack([_word_model(t), -_word_model(t)]),
                              modality="text", output_names=["pos", "neg"])
    texts = np.array(["great film", "awful boring plot", "a wonderful, great cast"])
    img = _cat((12, 12))

    def mean_colour(rows: np.ndarray) -> np.ndarray:
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1, 3).mean(axis=1)

    image_model = xaudit.adapt(mean_colour, feature_shape=list(img.shape), modality="image",
                               output_names=["r", "g", "b"])
    cases = [
        *(("tabular", *c) for c in explainer_checks(LimeTabular, params={"n_samples": 300})),
        *(("text", *c) for c in explainer_checks(
            LimeText, text_model, texts, texts, params={"n_samples": 200})),
        *(("image", *c) for c in explainer_checks(
            LimeImage, image_model, np.stack([img, img[::-1]]), img[None],
            # hide_color 0: painting superpixels their mean colour keeps the image's mean colour,
            # so this model's outputs would not move and every output would read zero
            params={"n_samples": 30, "segmenter": "slic", "hide_color": 0.0})),
    ]
    return [pytest.param(run, id=f"{kind}-{name}") for kind, name, run in cases]


@pytest.mark.parametrize("run", _conformance_cases())
def test_conformance_kit(run: Any) -> None:
    run()
