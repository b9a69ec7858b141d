"""What bounds the mlp2 VAE's training step: an op-by-op profile and the GEMMs in isolation.

    python -m benchmark.perf.profile_step [--batch 128] [--steps 50]

The model is the harness's headline (`vae`, mlp2, latent 10, 28×28 binary images, batch 128,
fused Adam, 1 thread); times are the process's CPU time, so other load on the machine does not
count. Printed:

- the step's self-CPU time by op (`torch.profiler`), grouped as matmul (`mm`, `addmm`), the
  optimiser, and everything else (elementwise ops, the loss, autograd bookkeeping);
- the step's forward (with the loss), backward and optimiser step, each timed apart;
- every GEMM the step runs (forward `x W^T + b`, backward `dY W` and `dY^T X` for each Linear;
  no input gradient for the first layer), timed alone at its shape, against the 1024×1024
  matmul peak measured the same way in the same run: the ceiling the step could reach if
  nothing but its GEMMs took time;
- the time budget that 65% of the peak leaves for everything but the GEMMs, against the time
  that everything else takes now.
"""

from __future__ import annotations

import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

import variants
from benchmark.cli import Parser
from benchmark.perf import require_counts
from benchmark.train import make_optimizer

GROUPS = {"aten::mm": "matmul", "aten::addmm": "matmul", "aten::_fused_adam_": "optimiser"}


def gemm_shapes(model: torch.nn.Module, batch: int) -> list[tuple[str, int, int, int]]:
    """(label, M, K, N) of every GEMM of one training step of the Linear layers of `model`."""
    out = []
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    for i, layer in enumerate(linears):
        k_in, n_out = layer.in_features, layer.out_features
        out.append((f"fwd {k_in}->{n_out}", batch, k_in, n_out))
        if i != 0:  # the images need no gradient: the first layer has no dX
            out.append((f"dX {n_out}->{k_in}", batch, n_out, k_in))
        out.append((f"dW {n_out}x{k_in}", n_out, batch, k_in))
    return out


def time_gemm(m: int, k: int, n: int, seconds: float = 0.2) -> float:
    """CPU seconds of one (m×k)@(k×n) fp32 product, best of repeated bursts of 10."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.process_time()
        for _ in range(10):
            a @ b
        best = min(best, (time.process_time() - t0) / 10)
    return best


def main(argv: list[str] | None = None) -> None:
    p = Parser(prog="python -m benchmark.perf.profile_step", description=__doc__)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=50)
    args = p.parse_args(argv)
    require_counts(p, args, "batch", "steps")
    torch.set_num_threads(1)
    cls = variants.get("vae")
    torch.manual_seed(0)
    model = cls(cls.Config(), image_shape=(1, 28, 28), latent_dim=10, architecture="mlp2")
    x = torch.bernoulli(torch.rand(args.batch * 20, 1, 28, 28))
    opt = make_optimizer(model.parameters(), 1e-3)

    def step(i: int) -> None:
        xb = x[(i % 20) * args.batch : (i % 20 + 1) * args.batch]
        out = model.loss(xb)
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        opt.step()

    for i in range(10):
        step(i)
    t0 = time.process_time()  # 1 thread: the work done, whatever else the machine runs
    for i in range(args.steps):
        step(i)
    per_step = (time.process_time() - t0) / args.steps
    phases = dict.fromkeys(("forward + loss", "backward", "optimiser"), 0.0)
    for i in range(args.steps):  # the same step, its phases timed apart
        xb = x[(i % 20) * args.batch : (i % 20 + 1) * args.batch]
        t0 = time.process_time()
        out = model.loss(xb)
        t1 = time.process_time()
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        t2 = time.process_time()
        opt.step()
        t3 = time.process_time()
        for k, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            phases[k] += dt / args.steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(args.steps):
            step(i)
    groups: dict[str, float] = defaultdict(float)
    others, calls = [], 0
    for e in prof.key_averages():
        groups[GROUPS.get(e.key, "other")] += e.self_cpu_time_total
        if e.key.startswith("aten::"):
            calls += e.count
        if GROUPS.get(e.key, "other") == "other":
            others.append((e.self_cpu_time_total, e.key))
    total = sum(groups.values())
    # The peak the same way as the GEMMs (best of short bursts): on a shared machine the best
    # burst is the one least disturbed, for both alike.
    peak = 2 * 1024**3 / time_gemm(1024, 1024, 1024, seconds=1.0) / 1e9
    print(f"step {1e3 * per_step:.2f} ms ({args.batch / per_step:.0f} img/s); fp32 matmul peak "
          f"(1024^3) {peak:.1f} GFLOP/s")  # fmt: skip
    print("  by phase (timed apart, no profiler): " + ", ".join(
        f"{k} {1e3 * v:.2f} ms" for k, v in phases.items()))  # fmt: skip
    for g in ("matmul", "optimiser", "other"):
        print(f"  {g:<10} {100 * groups[g] / total:5.1f}% of the step's self-CPU time")
    print(f"  {calls / args.steps:.0f} aten op calls per step; the largest 'other' ones:")
    for t, key in sorted(others, reverse=True)[:8]:
        print(f"    {key:<40} {100 * t / total:5.1f}%")
    flops = seconds = 0.0
    print("GEMMs alone at their shapes (M x K x N):")
    for label, m, k, n in gemm_shapes(model, args.batch):
        dt = time_gemm(m, k, n)
        flops, seconds = flops + 2 * m * k * n, seconds + dt
        print(f"  {label:<14} {m:>5} x {k:>5} x {n:>5}  {2 * m * k * n / dt / 1e9:6.1f} GFLOP/s "
              f"({100 * 2 * m * k * n / dt / 1e9 / peak:3.0f}% of peak)")  # fmt: skip
    gemm_rate = flops / seconds / 1e9
    print(f"all GEMMs together: {gemm_rate:.1f} GFLOP/s = {100 * gemm_rate / peak:.0f}% of the "
          f"peak; the step's ceiling if only its GEMMs took time")  # fmt: skip
    print(f"the step: {flops / args.batch / 1e6:.2f} MFLOP/img of GEMMs at "
          f"{args.batch / per_step:.0f} img/s = {flops / per_step / 1e9:.1f} GFLOP/s "
          f"({100 * flops / per_step / 1e9 / peak:.0f}% of peak)")  # fmt: skip
    # The budget: 65% of the peak leaves (1/0.65 - 1/gemm share) of the GEMM time for the rest.
    target = flops / (0.65 * peak * 1e9)
    print(f"65% of the peak needs a step of {1e3 * target:.2f} ms: the GEMMs alone take "
          f"{1e3 * seconds:.2f} ms, leaving {1e3 * (target - seconds):.2f} ms for everything "
          f"else, which takes {1e3 * (per_step - seconds):.2f} ms now")  # fmt: skip


if __name__ == "__main__":
    main()
