"""Cost of the disentanglement metrics with disentanglement_lib's default protocol.

`python -m benchmark.perf.disentanglement` prints the table; :func:`time_metrics` returns it.

- MIG, DCI, SAP, modularity/explicitness: wall-clock seconds of the array-level function on
  ``n_points`` train codes (and the protocol's 5,000 test codes) of the dSprites factor grid
  (3 x 6 x 40 x 32 x 32 classes, drawn uniformly); the codes are a fixed noisy linear mix of
  the factors, so the classifiers see a realistic, partly disentangled code.
- FactorVAE and BetaVAE scores: seconds of the whole protocol (10,000 training votes and
  5,000 evaluation votes of 64 images each; FactorVAE also 10,000 images for the variances)
  on the dSprites-like renderer, with a fixed random projection of the pixels as the
  representation: the rendering and the metric, without an encoder's cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

import numpy as np

from benchmark.metrics import beta_vae, factor_vae
from benchmark.metrics.dci import NUM_TEST, dci
from benchmark.metrics.ground_truth import dsprites_like
from benchmark.metrics.mig import mig
from benchmark.metrics.modularity import modularity_explicitness
from benchmark.metrics.sap import sap

__all__ = ["time_metrics"]

_SIZES = (3, 6, 40, 32, 32)


def _codes(n: int, latent_dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    factors = np.stack([rng.integers(0, s, size=n) for s in _SIZES], axis=1)
    scaled = factors / (np.asarray(_SIZES) - 1)
    mix = np.eye(len(_SIZES), latent_dim) + 0.2 * rng.normal(size=(len(_SIZES), latent_dim))
    return scaled @ mix + 0.05 * rng.normal(size=(n, latent_dim)), factors


class _PixelProjection:
    """Images (n, 1, R, R) -> (n, latent_dim): a fixed random linear map of the pixels."""

    def __init__(self, resolution: int, latent_dim: int, seed: int):
        rng = np.random.default_rng(seed)
        self.weights = rng.normal(size=(resolution * resolution, latent_dim)).astype(np.float32)

    def __call__(self, images) -> np.ndarray:
        return images.numpy().reshape(len(images), -1) @ self.weights


def _timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def time_metrics(
    n_points: int = 10_000,
    *,
    n_test: int = NUM_TEST,
    latent_dim: int = 10,
    resolution: int = 32,
    seed: int = 0,
    sampled: bool = True,
    metrics: Collection[str] | None = None,
) -> list[dict]:
    """Seconds of each metric with disentanglement_lib's protocol.

    Args:
        n_points: train codes of the array metrics (10,000 in the protocol).
        n_test: test codes (5,000 in the protocol).
        latent_dim: code dimension d.
        resolution: image side of the dSprites-like renderer for the sampled scores.
        seed: seed of the codes, the projection and the metrics' random state.
        sampled: also time the FactorVAE and BetaVAE scores (~1M rendered images each).
        metrics: time only these (names as in the result); default all.

    Returns:
        One dict per metric: ``metric``, ``seconds`` (wall clock), ``cpu_seconds`` (CPU time
        of this process, all threads: the honest number on a shared machine), ``setting``
        (what was run) and ``value`` (the score, as a sanity check).
    """
    rng = np.random.default_rng(seed)
    z_train, y_train = _codes(n_points, latent_dim, rng)
    z_test, y_test = _codes(n_test, latent_dim, rng)
    split = (z_train, y_train, z_test, y_test)
    setting = f"{n_points} train / {n_test} test codes, d={latent_dim}, dSprites factor grid"
    rows = []
    for name, fn in (
        ("mig", lambda: mig(z_train, y_train)),
        ("dci", lambda: dci(*split)["disentanglement"]),
        ("sap", lambda: sap(*split)),
        ("modularity_explicitness", lambda: modularity_explicitness(*split)["modularity"]),
    ):
        if metrics is not None and name not in metrics:
            continue
        seconds, cpu, value = _timed(fn)
        rows.append({
            "metric": name, "seconds": seconds, "cpu_seconds": cpu, "setting": setting,
            "value": value,
        })  # fmt: skip
    if sampled:
        grid = dsprites_like(resolution)
        rep = _PixelProjection(resolution, latent_dim, seed)
        for name, fn, protocol in (
            ("factor_vae", factor_vae.factor_vae_score, factor_vae.PROTOCOL),
            ("beta_vae", beta_vae.beta_vae_score, beta_vae.PROTOCOL),
        ):
            if metrics is not None and name not in metrics:
                continue
            seconds, cpu, out = _timed(lambda fn=fn, p=protocol: fn(grid, rep, seed, **p))
            rows.append({
                "metric": name,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "setting": f"{dict(protocol)}, dSprites-like {resolution}x{resolution}, "
                           f"pixel projection to d={latent_dim}",
                "value": out["eval_accuracy"],
            })  # fmt: skip
    return rows


if __name__ == "__main__":
    for row in time_metrics():
        print(
            f"{row['metric']:<26}{row['seconds']:>9.1f} s wall{row['cpu_seconds']:>9.1f} s CPU   "
            f"{row['setting']}"
        )
