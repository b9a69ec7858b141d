"""Time of the per-trial image-quality evaluation: N samples from a model, then FD and KID
through torchmetrics in the domain feature net (`fd_<dataset>`), against N real test images.

Timed the way `benchmark.evaluate.image_quality` runs it in a trial (sampling included), beside
a bare float64 numpy/scipy Fréchet distance on the same features, so the overhead of going
through torchmetrics is visible.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from benchmark.config import load_sweep
from benchmark.evaluate import image_quality
from benchmark.feature_nets import load_or_train
from benchmark.trial import build_model, load_trial_data


def _bare_fd(real: torch.Tensor, fake: torch.Tensor, net: torch.nn.Module) -> float:
    with torch.no_grad():
        a = net.features(real).double().numpy()
        b = net.features(fake).double().numpy()
    mu = a.mean(0) - b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # an untrained model's samples may have a singular cov
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(ca @ cb).real
    return float(mu @ mu + np.trace(ca + cb - 2 * covmean))


def measure_fid(sweep: str, n: int, feature_nets: Path, device: str | None) -> dict:
    config = load_sweep(sweep).trials[0].config
    config = config.model_copy(
        update={"eval": config.eval.model_copy(update={"fid_samples": n, "kid_subset_size":
                                                       min(1000, n)})}
    )  # fmt: skip
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    data = load_trial_data(config)
    net, info = load_or_train(config.dataset.name, data.image_shape[1], feature_nets)
    torch.manual_seed(0)
    model = build_model(config, data).to(dev).eval()
    t0 = time.perf_counter()
    metrics, _ = image_quality(model, data, config.eval, dev, 0, (net, info), config.dataset.name)
    ours = time.perf_counter() - t0
    with torch.no_grad():
        fake = model.sample(n, generator=torch.Generator(device=dev).manual_seed(0)).cpu()
    t1 = time.perf_counter()
    _bare_fd(data.x_test[:n], fake, net)
    bare = time.perf_counter() - t1
    return {
        "dataset": data.description,
        "metric": next(k for k in metrics if k.startswith("fd_")),
        "n": n,
        "ours": ours,
        "bare": bare,
        "device": str(dev),
        "architecture": config.architecture,
    }
