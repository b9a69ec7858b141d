"""Estimated GPU-hours of a sweep profile, from FLOPs measured on each trial's model.

python -m benchmark.perf.gpu_hours [SWEEP:PROFILE ...] [--peak-tflops 19.5] [--fraction 0.15]

For every trial of the profile the model is built (random weights, no data needed) and
`torch.utils.flop_counter.FlopCounterMode` counts the FLOPs of
  - one training step (loss forward and backward) at the sweep's batch size, times `steps`;
  - importance-sampled NLL (`nll` metric): log p(x) of one image with k = 16, scaled linearly
    to `nll_k` samples and `nll_points` images;
  - Inception-FID (`fd` on MNIST, CIFAR-10, CelebA): one Inception-v3 forward pass at 299x299,
    times `2 * fid_samples` (generated and real images).
Encoding and sampling the test split (MSE, KL, MIG, active units, the domain FD's small feature
net) are below 1% of these and left out. Optimiser updates are not counted either.

GPU-hours = FLOPs / (fraction x peak). These small models run far below a GPU's peak, so the
fraction is an assumption, not a measurement: the printed numbers are ESTIMATES.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

import variants
from benchmark.cli import Parser
from benchmark.config import TrialConfig, load_sweep
from benchmark.data import SPECS
from benchmark.paths import REPO

SWEEPS = REPO / "sweeps"


def paper_profiles(folder: Path = SWEEPS) -> list[str]:
    """`SWEEP:PROFILE` of every profile named paper* in every sweep file of `folder`: each
    sweep's paper-scale run(s) get a row, including sweeps added later."""
    out = []
    for path in sorted(folder.glob("*.yaml")):
        profiles = (yaml.safe_load(path.read_text()) or {}).get("profiles") or {}
        rel = path.relative_to(folder.parent)
        out += [f"{rel}:{name}" for name in profiles if name.startswith("paper")]
    return out


INCEPTION_DATASETS = ("mnist", "cifar10", "celeba")  # fid = Inception-FID there (see fid.py)


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _model(config: TrialConfig) -> tuple[variants.base.Variant, tuple[int, int, int]]:
    spec = SPECS[config.dataset.name]
    shape = spec.image_shape(config.dataset.resolution)
    cls = variants.get(config.variant)
    model = cls(
        config.variant_config(),
        image_shape=shape,
        latent_dim=config.latent_dim,
        architecture=config.architecture,
        num_classes=spec.num_classes,
    )
    return model, shape


def inception_flops_per_image() -> int:
    """FLOPs of one Inception-v3 forward pass at 299x299 (torchvision's, random weights)."""
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=True, init_weights=False).eval()
    with torch.no_grad():
        return _flops(lambda: net(torch.zeros(1, 3, 299, 299)))


def trial_flops(config: TrialConfig, inception: int) -> dict[str, float]:
    """Estimated FLOPs of one trial: {'train': ..., 'nll': ..., 'fid': ...}."""
    torch.manual_seed(0)
    model, shape = _model(config)
    b = config.train.batch_size
    x = torch.rand(b, *shape)
    y = torch.randint(0, model.num_classes, (b,)) if model.num_classes else None
    y = y if model.needs_labels else None

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model.loss(x, y).total.backward()

    out = {"train": float(_flops(step)) * config.train.steps, "nll": 0.0, "fid": 0.0}
    ev = config.eval
    if "nll" in ev.metrics:
        k = 16
        try:
            with torch.no_grad():
                one = _flops(lambda: model.log_likelihood(x[:1], None if y is None else y[:1], k=k))
            out["nll"] = float(one) / k * ev.nll_k * ev.nll_points
        except NotImplementedError:  # VQ-VAE: no importance-sampled NLL
            pass
    # The paper profiles score FD in Inception-v3 on these datasets ('fid' is fd's old name).
    if {"fd", "fid"} & set(ev.metrics) and config.dataset.name in INCEPTION_DATASETS:
        out["fid"] = float(inception) * 2 * ev.fid_samples
    return out


def estimate(sweep_file: str, profile: str, inception: int) -> dict[str, float]:
    """Total estimated FLOPs of a profile, by part, and its number of trials."""
    sweep = load_sweep(sweep_file, profile)
    total = {"train": 0.0, "nll": 0.0, "fid": 0.0}
    cache: dict[str, dict[str, float]] = {}
    for t in sweep.trials:
        # Seeds do not change the FLOPs: measure each distinct config once.
        key = t.config.model_copy(update={"seed": 0}).hash()
        if key not in cache:
            cache[key] = trial_flops(t.config, inception)
        for part, value in cache[key].items():
            total[part] += value
    return {**total, "trials": float(len(sweep.trials)), "gpu": sweep.resources.gpu}


def main(argv: list[str] | None = None) -> None:
    p = Parser(
        prog="python -m benchmark.perf.gpu_hours",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("profiles", nargs="*", default=None, metavar="SWEEP:PROFILE",
                   help="default: every paper* profile of every sweep in sweeps/")  # fmt: skip
    p.add_argument(
        "--peak-tflops",
        type=float,
        default=19.5,
        help="the GPU's peak FP32 TFLOP/s (default 19.5: NVIDIA A100, no TF32)",
    )
    p.add_argument(
        "--fraction",
        type=float,
        default=0.15,
        help="assumed fraction of peak reached by all trials packed on a GPU",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    inception = inception_flops_per_image()
    rate = args.peak_tflops * 1e12 * args.fraction
    print(
        f"ESTIMATE: GPU-hours at {args.fraction:.0%} of {args.peak_tflops} TFLOP/s "
        f"(Inception-v3 at 299x299: {inception / 1e9:.2f} GFLOP per image)"
    )
    print(
        "| profile | trials | GPU per trial | train PFLOP | NLL PFLOP | FID PFLOP | "
        "GPU-hours (ESTIMATE) |"
    )
    print("|---|---|---|---|---|---|---|")
    for item in args.profiles or paper_profiles():
        sweep_file, _, profile = item.partition(":")
        e = estimate(sweep_file, profile or "paper", inception)
        flops = e["train"] + e["nll"] + e["fid"]
        print(
            f"| {item} | {e['trials']:.0f} | {e['gpu']} | {e['train'] / 1e15:.1f} | "
            f"{e['nll'] / 1e15:.1f} | {e['fid'] / 1e15:.1f} | {flops / rate / 3600:.1f} |"
        )


if __name__ == "__main__":
    main()
