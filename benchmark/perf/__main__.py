"""python -m benchmark.perf: training throughput beside a bare loop, and FD/KID evaluation time."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchmark.manifest import git_commit, machine
from benchmark.perf.fid_eval import measure_fid
from benchmark.perf.train_throughput import measure


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmark.perf", description=__doc__)
    p.add_argument("--sweep", default="sweeps/beta_tradeoff.yaml", help="model and data to time")
    p.add_argument("--steps", type=int, default=400, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 = what each trial of a local sweep gets)")  # fmt: skip
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--fid-sweep", default="sweeps/latent_dim.yaml",
                   help="data and model for the FD/KID timing")  # fmt: skip
    p.add_argument("--fid-samples", type=int, default=2000, help="N for the FD/KID timing")
    p.add_argument("--feature-nets", default="results/feature_nets",
                   help="cache of domain feature nets (trained there if missing)")  # fmt: skip
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}; torch {torch.__version__}; commit {git_commit()}")
    r = measure(args.sweep, args.steps, args.repeats, args.device)
    print(
        f"training throughput, {r['architecture']} on {r['image']} images, batch {r['batch']}, "
        f"{r['device']}, {r['threads']} thread(s), best of {args.repeats} x {r['steps']} steps:"
    )
    print(f"  {'loop':<28}{'images/s':>10}")
    print(f"  {'bare PyTorch loop':<28}{r['bare']:>10.0f}")
    print(f"  {'benchmark.train.train':<28}{r['ours']:>10.0f}")
    print(f"  ratio ours/bare: {r['ratio']:.3f}")
    f = measure_fid(args.fid_sweep, args.fid_samples, Path(args.feature_nets), args.device)
    print(
        f"image-quality evaluation, {f['metric']} + KID, {f['n']} samples of an untrained "
        f"{f['architecture']} VAE vs {f['n']} test images ({f['dataset']}), {f['device']}:"
    )
    print(f"  {'evaluation':<40}{'seconds':>10}")
    print(f"  {'bare scipy FD (features + sqrtm)':<40}{f['bare']:>10.2f}")
    print(f"  {'benchmark: sampling + FD + KID':<40}{f['ours']:>10.2f}")


if __name__ == "__main__":
    main()
