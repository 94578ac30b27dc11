"""lime.tabular and lime.image against the ``lime`` package, side by side in one run.

Workloads (issue 6):

- a 100-tree RandomForestClassifier on 20 features; each side explains the same rows of class 1
  with 5,000 samples per row, quartile discretization, ``auto`` feature selection and 10
  features (the ``lime`` package's defaults), explainer objects built inside the timed call.
  Our default draws an independent sample set per row; the second row of the table reuses one
  perturbation set per block of rows (``share_samples``; still 5,000 samples per row, drawn
  from the same distribution, so each row's explanation is distributed as before, at a fraction
  of the model calls). The figure beside the ratio is the mean Jaccard index of the two sides'
  top-5 features per row (both are random: 1.0 is not expected, a high value is).
- a 224x224 image (scikit-image's chelsea) and a small torch CNN, 1,000 samples, quickshift
  with lime's parameters, mean hide colour, 100 images per model call on both sides: time,
  model calls and the correlation between the two sides' superpixel weights.

    .venv/bin/python benchmarks/bench_lime.py [--only TEXT] [--json rows.json]
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
from lime.lime_image import LimeImageExplainer
from lime.lime_tabular import LimeTabularExplainer
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

import xaudit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import Workload, run

N_ROWS = 8
N_SAMPLES = 5000


def _top5_jaccard(ours: np.ndarray, ref: np.ndarray) -> float:
    scores = []
    for a, b in zip(ours, ref, strict=True):
        top_a = set(np.argsort(-np.abs(a))[:5].tolist())
        top_b = set(np.argsort(-np.abs(b))[:5].tolist())
        scores.append(len(top_a & top_b) / len(top_a | top_b))
    return float(np.mean(scores))


def _tabular_ours(model: Any, rows: np.ndarray, train: np.ndarray, share: bool) -> np.ndarray:
    e = xaudit.explain(model, rows, method="lime.tabular", background=train, seed=0, target=1,
                       n_samples=N_SAMPLES, num_features=10, discretizer="quartile",
                       share_samples=share)
    return np.asarray(e.values[..., 0])


def _tabular_lime(model: Any, rows: np.ndarray, train: np.ndarray) -> np.ndarray:
    explainer = LimeTabularExplainer(train, mode="classification", random_state=0)
    out = np.zeros(rows.shape)
    for r, row in enumerate(rows):
        exp = explainer.explain_instance(row, model.predict_proba, labels=(1,),
                                         num_features=10, num_samples=N_SAMPLES)
        for feature, weight in exp.local_exp[1]:
            out[r, feature] = weight
    return out


def tabular_workloads() -> list[Workload]:
    """The forest of the issue's figure (82 ms per row for lime, measured on a quiet machine),
    as built by shared/anchors/lime_anchor.py: 100 trees of depth 8 on 5,000 rows, 2 jobs."""
    X, y = make_classification(n_samples=5000, n_features=20, n_informative=8, random_state=0)
    forest = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0,
                                    n_jobs=2).fit(X, y)
    train, rows = X, X[:N_ROWS]
    model = xaudit.adapt(forest)

    def per_row(ours: Any, ref: Any) -> dict[str, float]:
        return {"rows": float(N_ROWS), "samples_per_row": float(N_SAMPLES)}

    return [
        Workload(f"lime.tabular RF100 20 feat, 5000 samples x {N_ROWS} rows",
                 lambda: _tabular_ours(model, rows, train, share=False),
                 lambda: _tabular_lime(forest, rows, train), "lime 0.2", target_ratio=0.5,
                 error=_top5_jaccard, error_label="top5 jaccard", repeats=1, extra=per_row),
        Workload(f"  same, share_samples (one draw per {N_ROWS} rows)",
                 lambda: _tabular_ours(model, rows, train, share=True),
                 lambda: _tabular_lime(forest, rows, train), "lime 0.2", target_ratio=0.5,
                 error=_top5_jaccard, error_label="top5 jaccard", repeats=1, extra=per_row),
    ]


class _CountingCNN:
    """A small torch CNN on (n, 224, 224, 3) float32 images, counting its calls."""

    def __init__(self) -> None:
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(1)
        self.torch = torch
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(256, 10)).eval()
        self.calls = 0
        self.rows = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.rows += len(images)
        batch = self.torch.as_tensor(np.ascontiguousarray(
            np.moveaxis(np.asarray(images, dtype=np.float32), -1, 1)))
        with self.torch.no_grad():
            return self.torch.softmax(self.net(batch), dim=1).numpy().astype(np.float64)


def image_workloads() -> list[Workload]:
    """LIME image, 1,000 samples on a 224x224 image, both sides batched by 100."""
    from skimage import data, transform

    image = transform.resize(data.chelsea(), (224, 224), anti_aliasing=True)
    image = ((image - image.min()) / (image.max() - image.min())).astype(np.float32)
    cnn_ours, cnn_ref = _CountingCNN(), _CountingCNN()
    model = xaudit.adapt(cnn_ours, feature_shape=[224, 224, 3], modality="image",
                         output_names=[f"class_{i}" for i in range(10)])
    label = int(np.argmax(cnn_ref(image[None])[0]))
    cnn_ref.calls = cnn_ref.rows = 0

    def ours() -> dict[str, Any]:
        cnn_ours.calls = 0
        e = xaudit.explain(model, image[None], method="lime.image", seed=0, target="predicted",
                           n_samples=1000, batch_size=100)
        m = int(e.extras["n_segments"][0])
        return {"weights": e.extras["segment_weights"][0, :m, 0], "calls": cnn_ours.calls,
                "reported_calls": e.metadata["model_calls"], "segments": e.extras["segments"][0]}

    def reference() -> dict[str, Any]:
        cnn_ref.calls = 0
        explainer = LimeImageExplainer(random_state=0)
        with contextlib.redirect_stderr(io.StringIO()):  # lime 0.2.0.1 always shows tqdm
            exp = explainer.explain_instance(image.astype(np.float64), cnn_ref,
                                             labels=(label,), top_labels=None,
                                             num_samples=1000, batch_size=100)
        weights = np.zeros(int(exp.segments.max()) + 1)
        for segment, weight in exp.local_exp[label]:
            weights[segment] = weight
        return {"weights": weights, "calls": cnn_ref.calls, "segments": exp.segments}

    def correlation(a: dict[str, Any], b: dict[str, Any]) -> float:
        if not np.array_equal(a["segments"], b["segments"]):
            return float("nan")  # different superpixels: weights are not comparable
        return float(np.corrcoef(a["weights"], b["weights"])[0, 1])

    def calls(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
        # calls_incl_target: every call of ours, with the host's one call that finds the
        # predicted class (target="predicted"); model_calls: the explainer's batched calls
        return {"model_calls": float(a["reported_calls"]), "calls_incl_target": float(a["calls"]),
                "lime_calls": float(b["calls"]), "segments": float(a["weights"].size)}

    return [Workload("lime.image 224x224 CNN, 1000 samples, batch 100", ours, reference,
                     "lime 0.2", error=correlation, error_label="weight corr", repeats=1,
                     warmup=False, extra=calls)]


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    print("BLAS and torch use one thread on both sides (small dense fits stall when threaded).")
    with threadpool_limits(1):
        run(tabular_workloads() + image_workloads(), "LIME: xaudit vs lime")
