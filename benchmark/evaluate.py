"""Test-split metrics of a trained variant, in the conventions of docs/design.md.

- mse: per-pixel squared error between x and `reconstruct(x)` (posterior mean), on [0, 1].
- kl, recon: batch means in nats (`variants.losses`); elbo = -(recon + kl) with β = 1, so it
  is comparable across β.
- active_units: latent dims whose posterior mean varies over the test split (Cov > 0.01).
- mig: disentanglement_lib's MIG on the mean representation of `mig_points` fresh images whose
  factor classes are drawn uniformly (only for datasets with ground-truth factors).
- nll: importance-sampled -log p(x) with `nll_k` samples on the first `nll_points` test images,
  also as bits/dim.
- decoder_likelihood (a note): which likelihood p(x|z), and whether recon, elbo, nll and bits/dim
  are those of a normalised density for this data (`Likelihood.density_note`; e.g. Bernoulli on
  grey pixels is not); learned likelihood parameters (the Gaussian's σ) are recorded as metrics.
- fid: `fd_<dataset>` / `kid_<dataset>` in the dataset's domain feature net, and
  `fid_inception` when the Inception weights are on disk (never mixed; see metrics/fid.py).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from benchmark.config import EvalConfig
from benchmark.data import Dataset
from benchmark.feature_nets import metric_name as feature_net_metric
from benchmark.metrics import active_units, mig
from benchmark.metrics.fid import (
    domain_fd_note,
    frechet_distance_and_kid,
    inception_fid,
    inception_note,
    inception_skip_reason,
    inception_weights,
)
from variants.base import Variant


def _batches(x: torch.Tensor, size: int):
    for start in range(0, x.shape[0], size):
        yield slice(start, start + size)


@torch.no_grad()
def evaluate(
    model: Variant,
    data: Dataset,
    cfg: EvalConfig,
    *,
    device: torch.device,
    seed: int,
    feature_net: FeatureNetOrReason = None,
    dataset_name: str | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """Returns (metrics, notes): numbers to log, and strings saying how each was obtained.

    `feature_net` is the dataset's domain feature net and its cache record, for `fd_<dataset>`,
    or a string saying why there is none; `dataset_name` (default: data.name) is the <dataset>.
    """
    model.eval()
    torch.manual_seed(seed + 1)  # the one-sample ELBO draws noise: make it repeatable
    x_all, y_all = data.x_test, data.y_test
    n = x_all.shape[0]
    continuous = model.continuous_latents
    sq_err = recon = kl = 0.0
    extras: dict[str, float] = {}
    means = []
    for sl in _batches(x_all, cfg.batch_size):
        x = x_all[sl].to(device)
        y = None if y_all is None else y_all[sl].to(device)
        sq_err += (model.reconstruct(x, y) - x).pow(2).sum().item()
        out = model.loss(x, y)
        recon += out.recon.item() * x.shape[0]
        kl += out.kl.item() * x.shape[0]
        for key, value in out.extras.items():
            extras[key] = extras.get(key, 0.0) + float(value) * x.shape[0]
        if continuous:
            means.append(model.encode(x, y).mean.cpu())
    pixels = math.prod(data.image_shape)
    metrics = {
        "mse": sq_err / (n * pixels),
        "recon": recon / n,
        "kl": kl / n,
        "elbo": -(recon + kl) / n,
        **{key: total / n for key, total in extras.items()},
    }
    notes = {"eval_points": str(n), **model.notes()}
    normalised = _likelihood_notes(model, x_all, metrics, notes)
    if "fid" in cfg.metrics:
        quality, quality_notes = image_quality(
            model, data, cfg, device, seed, feature_net, dataset_name or data.name
        )
        metrics.update(quality)
        notes.update(quality_notes)
    if not continuous:
        for key in ("mig", "active_units", "nll"):
            notes.setdefault(key, f"not applicable: {model.name} has discrete latents")
        return metrics, notes
    metrics["active_units"] = float(active_units(torch.cat(means)))
    notes["representation"] = model.representation

    if "mig" in cfg.metrics:
        if data.sample_factors is None:
            notes["mig"] = f"not applicable: {data.name} has no ground-truth factors"
        else:
            imgs, factors = data.sample_factors(cfg.mig_points, np.random.default_rng(seed))
            labels = None
            if data.label_factor is not None:
                labels = torch.from_numpy(factors[:, data.label_factor])
            codes = torch.cat([
                model.encode(imgs[sl].to(device), None if labels is None else labels[sl].to(device))
                .mean.cpu()
                for sl in _batches(imgs, 1000)
            ])  # fmt: skip
            metrics["mig"] = mig(codes.numpy(), factors, n_bins=cfg.mig_bins)
            metrics["mig_num_points"] = float(cfg.mig_points)
            metrics["mig_bins"] = float(cfg.mig_bins)
            notes["mig"] = (
                f"disentanglement_lib MIG on posterior means of {cfg.mig_points} images with "
                f"uniformly drawn factor classes ({', '.join(data.factor_names)}), "
                f"{cfg.mig_bins} bins"
            )
            notes["mig_representation"] = model.representation

    if "nll" in cfg.metrics:
        x = x_all[: cfg.nll_points].to(device)
        y = None if y_all is None else y_all[: cfg.nll_points].to(device)
        log_px = torch.cat([
            model.log_likelihood(x[sl], None if y is None else y[sl], k=cfg.nll_k)
            for sl in _batches(x, 50)
        ])  # fmt: skip
        metrics["nll"] = -log_px.mean().item()
        metrics["bits_per_dim"] = metrics["nll"] / (pixels * math.log(2))
        metrics["nll_k"] = float(cfg.nll_k)
        notes["nll"] = f"importance sampling, k={cfg.nll_k}, first {x.shape[0]} test images"
        if not normalised:
            notes["nll"] += "; not a normalised density for grey pixels"
    return metrics, notes


def _likelihood_notes(
    model: Variant, x: torch.Tensor, metrics: dict[str, float], notes: dict[str, str]
) -> bool:
    """Adds the decoder likelihood's note and learned parameters; True if its recon, elbo and
    nll are those of a normalised density for the data `x` (binary or grey)."""
    likelihood = getattr(model, "likelihood", None)
    if likelihood is None:  # a plug-in variant outside the Variant base class
        return True
    binary = bool(((x == 0) | (x == 1)).all())
    normalised, note = likelihood.density_note(binary)
    notes["decoder_likelihood"] = f"{likelihood.describe()}: {note}"
    metrics.update(likelihood.metrics())
    return normalised


FeatureNetOrReason = tuple[torch.nn.Module, dict] | str | None


def image_quality(
    model: Variant,
    data: Dataset,
    cfg: EvalConfig,
    device: torch.device,
    seed: int,
    feature_net: FeatureNetOrReason,
    dataset_name: str,
) -> tuple[dict[str, float], dict[str, str]]:
    """FD/KID in the domain net's features (`fd_<dataset>`, `kid_<dataset>`) and, when its
    weights are on disk, Inception FID (`fid_inception`): N = cfg.fid_samples samples from the
    prior against the first N test images. Label-conditioned variants sample with those test
    images' labels, so both sets have the same class mix."""
    n = cfg.fid_samples
    real = data.x_test[:n]
    y = data.y_test[:n].to(device) if model.needs_labels and data.y_test is not None else None
    gen = torch.Generator(device=device).manual_seed(seed + 2)
    fake = torch.cat([
        model.sample(min(cfg.batch_size, n - start),
                     None if y is None else y[start : start + cfg.batch_size], generator=gen).cpu()
        for start in range(0, n, cfg.batch_size)
    ]).clamp(0, 1)  # fmt: skip
    metrics: dict[str, float] = {"fid_samples": float(n)}
    notes: dict[str, str] = {}
    name = feature_net_metric(dataset_name)
    t0 = time.perf_counter()
    if isinstance(feature_net, tuple):
        net, info = feature_net
        scores = frechet_distance_and_kid(
            real, fake, net, kid_subset_size=cfg.kid_subset_size, seed=seed
        )
        metrics[name] = scores["fd"]
        metrics["kid_" + dataset_name] = scores["kid_mean"]
        metrics["kid_" + dataset_name + "_std"] = scores["kid_std"]
        notes["fid"] = domain_fd_note(name, n, info) + (
            f"; KID: {scores['kid_subsets']} subsets of {scores['kid_subset_size']}"
        )
    else:
        notes["fid"] = f"{name} not computed: {feature_net or 'no domain feature net'}"
    skip = inception_skip_reason(cfg.inception_weights)
    if skip is None:
        weights = inception_weights(cfg.inception_weights)
        metrics["fid_inception"] = inception_fid(real, fake, weights)["fd"]
        notes["fid_inception"] = inception_note(n)
    else:
        notes["fid_inception"] = skip
    metrics["fid_seconds"] = time.perf_counter() - t0
    return metrics, notes
