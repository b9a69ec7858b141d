"""Ray's cost per trial: a real sweep of N short trials through `run_sweep_with_ray` (Ray Tune,
MLflow in a scratch store), timed from the trials' own records.

- a trial's own time runs from `run_trial`'s start (`attempts.jsonl`) to its `result.json`;
- overhead per trial = (wall × slots − Σ own) / N: the core-seconds no trial used, per trial;
- gap = a trial's start − the latest end of another trial before it (consecutive trials);
- parallel efficiency = Σ own / (wall × slots); first start = from the call to the first start;
  steady-state efficiency: the same from the first start to the last end (Ray's start-up and the
  workers' first imports are a once-per-sweep cost, reported on their own);
- Tune's floor (`benchmark.perf.tune_floor`): first start and gap of trivial trials that
  import nothing, on the same Ray: what Ray and Tune cost without any of our code;
- worker import: seconds to import the trainable's module (`benchmark.tune`) in a fresh process,
  the part of the first start a worker spends before it can run a trial;
- projected efficiency of a committed sweep: its trials' own times (runs.csv: data + train +
  eval seconds) list-scheduled in grid order on the slots, the first starting after the
  measured first-start latency and each next one a measured median gap after a slot frees.
"""

from __future__ import annotations

import csv
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmark.config import load_sweep


def measure_sweep(
    n_trials: int = 6, steps: int = 60, sweep_file: str = "sweeps/smoke.yaml", num_cpus: int = 2
) -> dict[str, Any]:
    """Run `n_trials` smoke trials (distinct β) on a local Ray of `num_cpus` CPUs.

    Returns wall seconds, slots, each trial's own seconds, the gaps, the overhead per trial, the
    parallel efficiency, the first-start latency and how many worker processes served the trials.
    """
    from benchmark.manifest import manifest
    from benchmark.tracking import Tracker
    from benchmark.tune import init_ray, run_sweep_with_ray

    betas = [round(1 + 0.5 * i, 2) for i in range(n_trials)]
    sweep = load_sweep(sweep_file, overrides=[f"grid.beta={betas}", f"train.steps={steps}"])
    with tempfile.TemporaryDirectory(prefix="vaebench-perf-") as tmp:
        root = Path(tmp)
        tracker = Tracker(f"sqlite:///{root / 'mlflow.db'}", root, "perf")
        tracker.start_sweep(sweep, manifest())
        t_init = time.time()
        init_ray(None, num_cpus)
        from benchmark.perf.tune_floor import tune_floor

        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
        floor = tune_floor(n_trials)
        t0 = time.time()
        statuses = run_sweep_with_ray(
            sweep, tracker, storage_path=root / "ray", experiment_name="perf", device="cpu",
            cache_dir=root / "cache", feature_nets=root / "feature_nets",
        )  # fmt: skip
        wall = time.time() - t0
        trials = []
        for state in (root / "ray" / "perf" / "trials").iterdir():
            first = json.loads((state / "attempts.jsonl").read_text().splitlines()[0])
            result = state / "out" / "result.json"
            end = result.stat().st_mtime
            trials.append(
                {
                    "start": first["time"],
                    "end": end,
                    "pid": first["pid"],
                    "data_seconds": json.loads(result.read_text())["data_seconds"],
                }
            )
    slots = max(1, min(n_trials, int(num_cpus // sweep.resources.cpu)))
    trials.sort(key=lambda t: t["start"])
    # Consecutive trials: from the latest end before a trial's start to that start.
    gaps = [
        t["start"] - max(ends)
        for t in trials[1:]
        if (ends := [u["end"] for u in trials if u["end"] <= t["start"]])
    ]
    own = [t["end"] - t["start"] for t in trials]
    busy = max(t["end"] for t in trials) - trials[0]["start"]
    return {
        "n": n_trials,
        "finished": sum(s == "finished" for s in statuses.values()),
        "slots": slots,
        "ray_init_seconds": t0 - t_init,
        "wall_seconds": wall,
        "own_seconds_mean": statistics.mean(own),
        "first_start_seconds": trials[0]["start"] - t0,
        "gap_seconds_median": statistics.median(gaps) if gaps else float("nan"),
        "gap_seconds_max": max(gaps) if gaps else float("nan"),
        "overhead_per_trial_seconds": (wall * slots - sum(own)) / n_trials,
        "parallel_efficiency": sum(own) / (wall * slots),
        "steady_efficiency": sum(own) / (busy * slots),
        "worker_import_seconds": worker_import_seconds(),
        "floor_first_start_seconds": floor["first_start_seconds"],
        "floor_gap_seconds_median": floor["gap_seconds_median"],
        "worker_processes": len({t["pid"] for t in trials}),
        "data_seconds_mean": statistics.mean(t["data_seconds"] for t in trials),
    }


def worker_import_seconds() -> float:
    """Seconds a fresh Python process takes to import `benchmark.tune` (what a Ray worker
    imports to unpickle the trainable), timed inside that process."""
    code = ("import time; t = time.perf_counter(); import benchmark.tune; "
            "print(time.perf_counter() - t)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def projected_efficiency(
    runs_csv: str | Path, slots: int, first_start: float, gap: float
) -> tuple[float, int, float]:
    """(efficiency, trials, Σ own seconds) of the committed sweep whose `runs.csv` is given,
    scheduled as Tune does (grid order, next trial on the first free slot) with the measured
    `first_start` latency and `gap` between a trial's end and the next start on its slot.
    Raises OSError/KeyError for a missing file or column."""
    with open(runs_csv, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["index"]))
    own = [sum(float(r[k] or 0) for k in ("data_seconds", "train_seconds", "eval_seconds"))
           for r in rows]  # fmt: skip
    free = [first_start] * slots
    for k, seconds in enumerate(own):
        i = min(range(slots), key=free.__getitem__)
        free[i] += seconds + (gap if k >= slots else 0.0)
    return sum(own) / (max(free) * slots), len(own), sum(own)


def measured_efficiency(sweep_dir: str | Path, slots: int) -> tuple[float, int, float]:
    """(efficiency, trials, wall minutes) of a committed sweep as it ran: the trials' own
    seconds (runs.csv) over its recorded wall time (sweep.json `minutes`) × `slots`.
    Raises OSError/KeyError for a missing file or field."""
    sweep_dir = Path(sweep_dir)
    minutes = float(json.loads((sweep_dir / "sweep.json").read_text())["minutes"])
    with open(sweep_dir / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    own = sum(float(r[k] or 0) for r in rows
              for k in ("data_seconds", "train_seconds", "eval_seconds"))  # fmt: skip
    return own / (minutes * 60 * slots), len(rows), minutes


if __name__ == "__main__":
    print(json.dumps(measure_sweep(), indent=2))
