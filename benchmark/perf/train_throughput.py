"""Training throughput of `benchmark.train.train` against a bare PyTorch loop, per variant and
architecture, and the share of the machine's matmul peak it reaches.

Both loops train copies of one model (same initial weights) on the same device-resident data
with the same batch size, optimiser (`make_optimizer`: fused Adam) and loss (`model.loss`);
the bare loop is the minimal hand-written version (index-sliced batches, no logging, no
divergence checks, no schedule). Their ratio is the overhead of our loop. Loops alternate
(ours, bare, ours, ...) so that drift in the machine's load hits both alike; the ratio is the
median of the per-round ratios.
"""

from __future__ import annotations

import copy
import logging
import math
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

import variants
from benchmark.config import TrainConfig
from benchmark.train import make_optimizer, train
from variants.architectures import ARCHITECTURES
from variants.base import Variant


def bare_loop(
    model: Variant, x: torch.Tensor, y: torch.Tensor | None, steps: int, batch: int, lr: float,
    precision: str = "fp32",
) -> None:  # fmt: skip
    """`steps` Adam steps on `model.loss` over index-sliced batches: the reference loop."""
    opt = make_optimizer(model.parameters(), lr)
    order = torch.randperm(x.shape[0], device=x.device)
    per_epoch = x.shape[0] // batch
    for step in range(steps):
        idx = order[(step % per_epoch) * batch : (step % per_epoch + 1) * batch]
        with torch.autocast(x.device.type, torch.bfloat16, enabled=precision == "bf16"):
            out = model.loss(x[idx], None if y is None else y[idx])
        opt.zero_grad(set_to_none=True)
        out.total.backward()
        opt.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# The clock of CPU timings: wall time, or this process's CPU time (`use_cpu_clock`). With one
# torch thread the CPU time is the work done, without the time the scheduler gave to other
# processes: on a shared machine it is what a quiet machine's wall time would be.
_clock: Callable[[], float] = time.perf_counter


def use_cpu_clock(on: bool) -> None:
    """Time CPU runs by the process's CPU time (True) or by the wall clock (False)."""
    global _clock
    _clock = time.process_time if on else time.perf_counter


def clock() -> float:
    """Seconds on the harness's clock (see `use_cpu_clock`)."""
    return _clock()


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    clock = _clock if device.type == "cpu" else time.perf_counter
    _sync(device)
    t0 = clock()
    fn()
    _sync(device)
    return clock() - t0


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 1024, seconds: float = 1.0
                ) -> float:  # fmt: skip
    """Measured matmul throughput in GFLOP/s (2n³ per n×n product), best of repeated bursts."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b  # warm-up (oneDNN/cuBLAS kernel selection)
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        dt = _timed(lambda: [a @ b for _ in range(4)], device)
        best = max(best, 4 * 2 * n**3 / dt / 1e9)
    return best


def flops_per_image(model: Variant, x: torch.Tensor, y: torch.Tensor | None) -> float:
    """FLOPs of one training step (forward + backward, `FlopCounterMode`) per image of `x`."""
    m = copy.deepcopy(model)
    with FlopCounterMode(display=False) as counter:
        m.loss(x, y).total.backward()
    return counter.get_total_flops() / x.shape[0]


def build(variant: str, architecture: str, shape: tuple[int, int, int], latent_dim: int,
          num_classes: int | None) -> Variant | str:  # fmt: skip
    """The variant with its default config on `architecture`, or why the pair cannot be built."""
    why = ARCHITECTURES[architecture].check(shape)
    if why:
        return why
    cls = variants.get(variant)
    torch.manual_seed(0)
    return cls(cls.Config(), image_shape=shape, latent_dim=latent_dim,
               architecture=architecture, num_classes=num_classes)  # fmt: skip


def steps_for(seconds_per_step: float, steps: int, min_seconds: float) -> int:
    """At least `steps`, and enough steps that a timed round lasts `min_seconds`: a round of a
    few milliseconds is at the mercy of one page fault or timer tick (timeit's autorange)."""
    if seconds_per_step <= 0 or not math.isfinite(seconds_per_step):
        return steps
    return max(steps, math.ceil(min_seconds / seconds_per_step))


def measure_pair(
    model: Variant, x: torch.Tensor, y: torch.Tensor | None, *, steps: int, repeats: int,
    batch: int, lr: float = 1e-3, precision: str = "fp32", min_seconds: float = 0.0,
) -> dict[str, float]:  # fmt: skip
    """Images/s of ours and of the bare loop (medians), their ratio (median of per-round
    ratios), the FLOPs per image of a training step and the steps timed per round (`steps`,
    raised so that a round of the bare loop lasts at least `min_seconds`)."""
    dev = x.device
    warm = TrainConfig(steps=3, batch_size=batch, lr=lr, log_every=1, precision=precision)
    train(copy.deepcopy(model), x, warm, seed=0, y=y)
    m = copy.deepcopy(model)
    t_warm = _timed(lambda: bare_loop(m, x, y, 3, batch, lr, precision), dev)
    steps = steps_for(t_warm / 3, steps, min_seconds)
    cfg = TrainConfig(steps=steps, batch_size=batch, lr=lr, log_every=max(1, steps // 2),
                      precision=precision)  # fmt: skip
    ours, bare = [], []
    for r in range(repeats):
        m = copy.deepcopy(model)
        ours.append(steps * batch / _timed(lambda m=m, r=r: train(m, x, cfg, seed=r, y=y), dev))
        m = copy.deepcopy(model)
        t = _timed(lambda m=m: bare_loop(m, x, y, steps, batch, lr, precision), dev)
        bare.append(steps * batch / t)
    return {
        "ours": statistics.median(ours),
        "bare": statistics.median(bare),
        "ratio": statistics.median(a / b for a, b in zip(ours, bare, strict=True)),
        "flops_per_image": flops_per_image(model, x[:batch], None if y is None else y[:batch]),
        "steps": steps,
    }


def measure_option(
    model: Variant, x: torch.Tensor, *, steps: int, repeats: int, batch: int,
    min_seconds: float = 0.0, **option: Any,
) -> dict[str, float]:  # fmt: skip
    """Speed-up of `benchmark.train.train` with the TrainConfig `option` (e.g.
    channels_last=True) over the default config on copies of `model`: the median of the
    per-round ratios of interleaved runs, and both medians in images/s. Rounds are `steps`
    steps, or more so that a default round lasts `min_seconds`."""
    dev = x.device
    warm = TrainConfig(steps=3, batch_size=batch, log_every=1)
    train(copy.deepcopy(model), x, warm.model_copy(update=option), seed=0)  # kernel selection
    m = copy.deepcopy(model)
    t_warm = _timed(lambda: train(m, x, warm, seed=0), dev)  # the default's round sets the length
    steps = steps_for(t_warm / 3, steps, min_seconds)
    base = TrainConfig(steps=steps, batch_size=batch, log_every=max(1, steps // 2))
    on = base.model_copy(update=option)
    plain, with_option = [], []
    for r in range(repeats):
        for cfg, out in ((base, plain), (on, with_option)):
            m = copy.deepcopy(model)
            out.append(steps * batch / _timed(lambda m=m, c=cfg, r=r: train(m, x, c, seed=r), dev))
    return {
        "default": statistics.median(plain),
        "option": statistics.median(with_option),
        "speedup": statistics.median(a / b for a, b in zip(with_option, plain, strict=True)),
    }


def measure_compile(
    model: Variant, x: torch.Tensor, *, steps: int, repeats: int, batch: int
) -> dict[str, float]:
    """What `train.compile` costs and gains: `compile_seconds` (the first 3 compiled steps less
    3 eager ones, wall clock, after `torch._dynamo.reset()` and without inductor's on-disk
    caches), eager and compiled seconds per step (medians of `steps`-step runs on the already
    compiled model, timed like the other rows) and `break_even_steps` (compile time ÷ per-step
    gain; inf when compiled steps are not faster).
    """
    import torch._dynamo
    import torch._inductor.config as inductor

    dev = x.device
    eager = TrainConfig(steps=steps, batch_size=batch, log_every=steps)
    compiled = eager.model_copy(update={"compile": True})
    first = eager.model_copy(update={"steps": 3, "log_every": 3})
    m_eager, m_compiled = copy.deepcopy(model), copy.deepcopy(model)
    torch._dynamo.reset()  # a cold start, as in a fresh trial process on a fresh machine:
    # Wall clock: inductor compiles C++ in subprocesses, which this process's CPU time misses.
    t0 = time.perf_counter()
    cpp_log = logging.getLogger("torch.utils.cpp_extension")  # "No CUDA runtime is found"
    level = cpp_log.level
    with (
        inductor.patch(force_disable_caches=True),  # no on-disk kernels from an earlier run
        warnings.catch_warnings(),  # "dynamo_pgo force disabled": what the line above asks for
    ):
        warnings.simplefilter("ignore", UserWarning)
        cpp_log.setLevel(logging.ERROR)
        try:
            train(m_compiled, x, first.model_copy(update={"compile": True}), seed=0)
        finally:
            cpp_log.setLevel(level)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    train(m_eager, x, first, seed=0)
    t_eager_first = time.perf_counter() - t0
    # The same model objects again: dynamo's in-process cache holds the compiled step, so these
    # runs time steps only (a trial compiles once and then runs all its steps).
    per_step: dict[str, list[float]] = {"eager": [], "compiled": []}
    for r in range(repeats):
        for name, m, cfg in (("eager", m_eager, eager), ("compiled", m_compiled, compiled)):
            per_step[name].append(_timed(lambda m=m, c=cfg, r=r: train(m, x, c, seed=r), dev)
                                  / steps)  # fmt: skip
    e, c = statistics.median(per_step["eager"]), statistics.median(per_step["compiled"])
    compile_seconds = max(0.0, t_first - t_eager_first)
    return {
        "compile_seconds": compile_seconds,
        "eager_step_seconds": e,
        "compiled_step_seconds": c,
        "break_even_steps": compile_seconds / (e - c) if e > c else float("inf"),
    }
