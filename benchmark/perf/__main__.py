"""python -m benchmark.perf [--threads N] [--steps N]: throughput, ours beside a bare loop."""

from __future__ import annotations

import argparse

import torch

from benchmark.manifest import git_commit, machine
from benchmark.perf.train_throughput import measure


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmark.perf", description=__doc__)
    p.add_argument("--sweep", default="sweeps/beta_tradeoff.yaml", help="model and data to time")
    p.add_argument("--steps", type=int, default=400, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 = what each trial of a local sweep gets)")  # fmt: skip
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
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


if __name__ == "__main__":
    main()
