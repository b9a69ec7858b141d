"""Ray Tune's own cost per sweep: a sweep of trivial trials (this module imports nothing but Ray,
so a worker starts them as fast as Ray can), for `benchmark.perf.sweep_overhead`.

What a real sweep's first start adds on top of this floor is ours: the worker importing
`benchmark.tune` (torch, torchvision, the variants), loading the split, building the model.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from ray import tune


def _trivial(config: dict) -> None:
    tune.report({"start": time.time(), "pid": os.getpid()})


def tune_floor(n_trials: int = 4) -> dict[str, float]:
    """Run `n_trials` trivial one-report trials (1 CPU each, actors reused) on the running Ray;
    returns `first_start_seconds` (from the Tuner's start), `gap_seconds_median` (a trial's
    start after the start of the trial whose slot it took, `slots` starts earlier: a trivial
    trial ends as it starts; nan with fewer trials than slots) and `worker_processes`."""
    import ray

    slots = max(1, int(ray.available_resources().get("CPU", 1)))
    with tempfile.TemporaryDirectory(prefix="vaebench-floor-") as tmp:
        t0 = time.time()
        tuner = tune.Tuner(
            tune.with_resources(_trivial, {"cpu": 1}),
            param_space={"i": tune.grid_search(list(range(n_trials)))},
            tune_config=tune.TuneConfig(reuse_actors=True),
            run_config=tune.RunConfig(storage_path=tmp, verbose=0),
        )
        results = [r.metrics for r in tuner.fit()]
    starts = sorted((m["start"], m["pid"]) for m in results)
    # Not by worker pid: Tune may start a new actor instead of reusing one.
    gaps = [starts[i][0] - starts[i - slots][0] for i in range(slots, len(starts))]
    return {
        "first_start_seconds": starts[0][0] - t0,
        "gap_seconds_median": statistics.median(gaps) if gaps else float("nan"),
        "worker_processes": float(len({p for _, p in starts})),
    }
