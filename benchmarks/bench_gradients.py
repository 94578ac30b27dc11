"""Gradient attributions against Captum 0.9, side by side in one run (issue 5's workloads).

Workloads, with torch on 2 threads: Integrated Gradients (50 Gauss-Legendre steps, Captum's
default) on a 784-256-10 MLP for 256 rows; IG (50 steps, internal batch 256) on the seeds'
32x32 ``SimpleCNN`` for 32 images; GradientSHAP (50 samples, 100 background rows) on the MLP
for 256 rows; Grad-CAM on the CNN's last convolution for 32 images, upsampled to 32x32. Both
sides explain each row's predicted output, and both find it inside the timed call. Models are
random (fixed torch seed): timing does not depend on training. The error column is the
largest difference between the two sides, relative to the largest value (GradientSHAP draws
differ between the libraries, so its error is a Monte Carlo gap, not a bug).

    .venv/bin/python benchmarks/bench_gradients.py [--only TEXT] [--json rows.json]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from captum.attr import GradientShap, IntegratedGradients, LayerAttribution, LayerGradCam
from torch import nn

import xaudit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import Workload, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from seed_models import SimpleCNN  # the seeds' CNN, shared with the tests

torch.set_num_threads(2)


def _relative(ours: Any, ref: Any) -> float:
    ref = np.asarray(ref.detach().numpy() if hasattr(ref, "detach") else ref)
    return float(np.abs(np.asarray(ours) - ref).max() / np.abs(ref).max())


def _predicted(net: Any, x: Any) -> Any:
    with torch.no_grad():
        return net(x).argmax(1)


def _ours(model: Any, X: np.ndarray, method: str, **params: Any) -> np.ndarray:
    return np.asarray(xaudit.explain(model, X, method=method, **params).values[..., 0])


def _gradcam_ours(model: Any, X: np.ndarray) -> Any:
    try:
        return np.asarray(xaudit.explain(model, X, method="gradcam", layer="conv3")
                          .values[:, 0, ..., 0])
    except Exception as exc:  # another helper's method: report, do not stop the benchmark
        print(f"  gradcam failed: {type(exc).__name__}: {exc}", flush=True)
        return None


def workloads() -> list[Workload]:
    """The four workloads of issue 5."""
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
    cnn = SimpleCNN().eval()
    rng = np.random.default_rng(0)
    rows = rng.random((256, 784)).astype(np.float32)
    background = rng.random((100, 784)).astype(np.float32)
    images = rng.random((32, 3, 32, 32)).astype(np.float32)
    mlp_model = xaudit.adapt(mlp, device="cpu")
    cnn_model = xaudit.adapt(cnn, device="cpu", feature_shape=[3, 32, 32])
    x_rows, x_bg, x_images = map(torch.tensor, (rows, background, images))
    ig_mlp, ig_cnn = IntegratedGradients(mlp), IntegratedGradients(cnn)
    shap_mlp, cam = GradientShap(mlp), LayerGradCam(cnn, cnn.conv3)

    def captum_cam() -> Any:
        maps = cam.attribute(x_images, target=_predicted(cnn, x_images),
                             relu_attributions=True)
        return LayerAttribution.interpolate(maps, (32, 32), "bilinear")[:, 0]

    workloads = [
        Workload("IG 50 steps, MLP 784-256-10, 256 rows",
                 lambda: _ours(mlp_model, rows, "gradient.integrated", n_steps=50),
                 lambda: ig_mlp.attribute(x_rows, target=_predicted(mlp, x_rows), n_steps=50),
                 "captum 0.9", target_ratio=1.0, error=_relative, error_label="rel"),
        Workload("IG 50 steps, seeds' CNN, 32 images, batch 256",
                 lambda: _ours(cnn_model, images, "gradient.integrated", n_steps=50,
                               max_batch=256),
                 lambda: ig_cnn.attribute(x_images, target=_predicted(cnn, x_images),
                                          n_steps=50, internal_batch_size=256),
                 "captum 0.9", target_ratio=1.0, error=_relative, error_label="rel"),
        Workload("GradientSHAP 50 samples, MLP, 256 rows",
                 lambda: _ours(mlp_model, rows, "shap.gradient", background=background,
                               n_samples=50),
                 lambda: shap_mlp.attribute(x_rows, x_bg, target=_predicted(mlp, x_rows),
                                            n_samples=50),
                 "captum 0.9", target_ratio=1.0, error=_relative, error_label="rel(MC)"),
    ]
    if _gradcam_ours(cnn_model, images[:2]) is not None:
        workloads.append(Workload(
            "Grad-CAM conv3, seeds' CNN, 32 images",
            lambda: _gradcam_ours(cnn_model, images), captum_cam, "captum 0.9",
            target_ratio=1.0, error=_relative, error_label="rel", repeats=10))
    else:
        print("  Grad-CAM row skipped: xaudit method 'gradcam' failed", flush=True)
    return workloads


def main() -> None:
    """Run the workloads and print the table."""
    run(workloads(), f"gradient methods vs Captum 0.9 (torch {torch.__version__}, "
                     f"{torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
