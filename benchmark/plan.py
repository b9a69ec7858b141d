"""What `benchmark.run` says before it runs anything: `--list-variants` and `--dry-run`.

The time estimate of a dry run divides the images a sweep trains on by a measured training
throughput (images/s, one trial on one CPU thread): the median `train_images_per_second` of
finished trials of the same architecture and image size in the committed `results/*/runs.csv`,
scaled by pixel count when only the architecture matches, else `ROUGH_IMAGES_PER_SECOND`.
It covers training only (evaluation adds seconds to minutes per trial) and says which it used.
"""

from __future__ import annotations

import csv
import math
import os
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmark.config import Sweep

ROUGH_IMAGES_PER_SECOND = 1000.0  # a CPU thread on a small model: a guess, labelled as one
BIG_SWEEP_HOURS = 2.0  # above this estimate a dry run (and a real run) warns


def variant_listing() -> str:
    """One block per registered variant: name, one-line description, parameters = defaults."""
    import variants

    blocks = []
    for name in variants.names():
        cls = variants.get(name)
        # The class's own description: a plugin subclass must not show its base's.
        doc = (cls.__dict__.get("__doc__") or sys.modules[cls.__module__].__doc__ or "").strip()
        line = cls.__dict__.get("description") or (doc.splitlines()[0] if doc else "")
        params = []
        for field, info in cls.Config.model_fields.items():
            default = info.get_default(call_default_factory=True)
            text = f"    {field} = {default!r}"
            if info.description:
                text = f"{text:<36}  {info.description}"
            params.append(text)
        blocks.append("\n".join([f"{name}: {line}", *(params or ["    (no parameters)"])]))
    return "\n".join(blocks)


@dataclass(frozen=True)
class Estimate:
    """A trial's predicted wall time (s), the throughput (images/s) it assumes, and its source."""

    seconds: float
    images_per_second: float
    source: str  # where the throughput comes from


def _side(description: str) -> int | None:
    m = re.search(r"(\d+)x\d+", description)
    return int(m.group(1)) if m else None


def measured_throughputs(results: Path) -> list[tuple[str, int | None, float]]:
    """(architecture, image side, images/s) of every finished trial in results/*/runs.csv."""
    out = []
    for path in sorted(results.glob("*/runs.csv")):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    rate = float(row.get("train_images_per_second") or "nan")
                except ValueError:
                    continue
                if row.get("status") == "finished" and math.isfinite(rate) and rate > 0:
                    side = _side(row.get("dataset", ""))
                    out.append((row.get("architecture", ""), side, rate))
    return out


def throughput(
    arch: str, side: int, measured: list[tuple[str, int | None, float]]
) -> tuple[float, str]:
    """(images/s, where it comes from) for one trial of `arch` on `side`-pixel images."""
    same = [r for a, s, r in measured if a == arch and s == side]
    if same:
        return statistics.median(same), f"measured: {arch} at {side}px in results/*/runs.csv"
    scaled = [r * (s / side) ** 2 for a, s, r in measured if a == arch and s]
    if scaled:
        return statistics.median(scaled), f"measured: {arch} at another size, scaled by pixels"
    return ROUGH_IMAGES_PER_SECOND, "a rough constant: no measured trial of this architecture"


def estimate(
    sweep: Sweep, results: Path, num_cpus: int | None, device: str = "auto"
) -> Estimate | None:
    """Wall-clock training time of the whole sweep, or None on a GPU (no CPU numbers apply)."""
    if device.startswith("cuda"):
        return None
    measured = measured_throughputs(results)
    slots = max(1, int((num_cpus or os.cpu_count() or 1) // max(sweep.resources.cpu, 1e-9)))
    per_trial, rates, sources = [], [], set()
    for t in sweep.trials:
        side = t.config.dataset.image_shape()[-1]
        rate, source = throughput(t.config.architecture, side, measured)
        rates.append(rate)
        sources.add(source)
        per_trial.append(t.config.train.steps * t.config.train.batch_size / rate)
    # Trials run `slots` at a time; the longest one bounds the sweep from below.
    seconds = max(sum(per_trial) / min(slots, len(per_trial)), max(per_trial))
    return Estimate(seconds, statistics.median(rates), "; ".join(sorted(sources)))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def base_config(sweep: Sweep) -> dict[str, Any]:
    """The first trial's full config with each grid axis shown as its list of values."""
    config = sweep.trials[0].config
    tree = config.model_dump(mode="json")
    # The likelihood's parameters at their defaults too: `gaussian` runs with sigma 1.0.
    tree["likelihood"] = config.likelihood.resolved()
    for axis in sweep.axes:
        values = []  # grid values in order, once each (a value may be a mapping: unhashable)
        for t in sweep.trials:
            if t.point[axis] not in values:
                values.append(t.point[axis])
        *parents, leaf = axis.split(".")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = f"grid: {values}"
    return tree


def dry_run_text(
    sweep: Sweep, results_dir: str | Path, tracking_uri: str | None, num_cpus: int | None,
    device: str = "auto",
) -> str:  # fmt: skip
    """The plan of a sweep: base config, trials, total steps, where results go, time estimate."""
    results = Path(results_dir).resolve()
    steps = [t.config.train.steps for t in sweep.trials]
    images = sum(t.config.train.steps * t.config.train.batch_size for t in sweep.trials)
    lines = ["base config (every trial; grid axes vary):"]
    dumped = yaml.safe_dump(base_config(sweep), sort_keys=False, default_flow_style=None)
    lines += [f"  {line}" for line in dumped.rstrip().splitlines()]
    lines.append("trials ([hash] is the MLflow tag vaebench.trial_hash and the checkpoint folder):")
    lines += [f"  {t.index + 1:3d}. {t.name}  [{t.config.hash()}]" for t in sweep.trials]
    lines.append(
        f"total: {len(sweep.trials)} trials, {sum(steps):,} training steps "
        f"({images:,} images); each trial {min(steps):,}"
        + (f"..{max(steps):,}" if max(steps) != min(steps) else "")
        + " steps"
    )
    uri = tracking_uri or f"sqlite:///{results / 'mlflow.db'}"
    lines.append(
        f"results: {results / sweep.results_name}/ (tables, figure); MLflow {uri}, experiment "
        f"{sweep.results_name}; trial checkpoints under {results / 'ray'}/"
    )
    est = estimate(sweep, results, num_cpus, device)
    if est is None:
        lines.append("estimated time: no CPU throughput applies to a GPU run")
        return "\n".join(lines)
    lines.append(
        f"estimated time: ~{_duration(est.seconds)} of training (an estimate: "
        f"{est.images_per_second:,.0f} images/s per trial, {est.source}; evaluation comes on top)"
    )
    warnings = [big_sweep_warning(sweep, results, num_cpus, device),
                precision_warning(sweep, device)]  # fmt: skip
    warnings = [w for w in warnings if w]
    return "\n".join([*lines, *warnings])


def native_bf16_on_cpu() -> bool:
    """Whether this CPU runs bf16 matmuls and convolutions natively (oneDNN's own check:
    AVX-512 with bf16, or AMX); without it bf16 is emulated, far slower than fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: no fast bf16 either
        return False


def precision_warning(sweep: Sweep, device: str = "auto", address: str | None = None) -> str:
    """A one-line warning when trials train in bf16 on this machine's CPU and the CPU has no
    native bf16, else "". Not on a cluster (`address`): its workers' devices are not known here.
    """
    if address or not any(t.config.train.precision == "bf16" for t in sweep.trials):
        return ""
    import torch

    on_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    if not on_cpu or native_bf16_on_cpu():
        return ""
    return (
        "warning: train.precision bf16 on a CPU without native bf16 (no AVX-512 bf16 or AMX): "
        "bf16 is emulated here, about 90x slower than fp32 (the time estimate assumes fp32); "
        "use fp32 here, or bf16 on a GPU or a CPU that has it"
    )


def big_sweep_warning(
    sweep: Sweep, results_dir: Path, num_cpus: int | None, device: str = "auto"
) -> str:
    """A one-line warning when the estimate is over `BIG_SWEEP_HOURS`, else ""."""
    est = estimate(sweep, Path(results_dir).resolve(), num_cpus, device)
    if est is None or est.seconds <= BIG_SWEEP_HOURS * 3600:
        return ""
    steps = max(t.config.train.steps for t in sweep.trials)
    return (
        f"warning: profile {sweep.profile!r} is a big sweep: {len(sweep.trials)} trials x up to "
        f"{steps:,} steps, ~{_duration(est.seconds)} of training here (an estimate); for a first "
        "look use the default profile or --override train.steps=..."
    )
