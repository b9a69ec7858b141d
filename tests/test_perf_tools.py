"""The perf harness's bookkeeping: the sweep-efficiency projection, the GPU-estimate rows and
the points a metric's cost is divided by (the timings themselves are benchmarks, not tests)."""

import csv

import pytest
import yaml

from benchmark.config import EvalConfig
from benchmark.metrics import registry
from benchmark.perf.eval_cost import points
from benchmark.perf.gpu_hours import SWEEPS, paper_profiles
from benchmark.perf.sweep_overhead import measured_efficiency, projected_efficiency


def _runs(path, seconds):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, ["index", "data_seconds", "train_seconds", "eval_seconds"])
        w.writeheader()
        for i, s in enumerate(seconds):
            w.writerow({"index": i, "data_seconds": 0, "train_seconds": s, "eval_seconds": ""})
    return path


def test_projection_schedules_trials_on_the_first_free_slot(tmp_path):
    runs = _runs(tmp_path / "runs.csv", [10, 10, 10, 10])
    eff, n, own = projected_efficiency(runs, slots=2, first_start=1.0, gap=0.5)
    # two rounds per slot: 1 + 10 + 0.5 + 10 = 21.5 s of wall for 40 trial-seconds on 2 slots
    assert (n, own) == (4, 40.0) and eff == pytest.approx(40 / (2 * 21.5))
    odd = _runs(tmp_path / "odd.csv", [10, 10, 10])  # the last round leaves a slot idle
    assert projected_efficiency(odd, 2, 0.0, 0.0)[0] == pytest.approx(30 / 40)


def test_measured_efficiency_is_own_time_over_recorded_wall_time(tmp_path):
    _runs(tmp_path / "runs.csv", [50, 40, 30])
    (tmp_path / "sweep.json").write_text('{"minutes": 1.0}')
    eff, n, minutes = measured_efficiency(tmp_path, slots=2)
    assert (n, minutes) == (3, 1.0) and eff == pytest.approx(120 / (60 * 2))
    (tmp_path / "sweep.json").write_text("{}")  # made before sweeps recorded their time
    with pytest.raises(KeyError):
        measured_efficiency(tmp_path, slots=2)


def test_every_paper_profile_of_every_sweep_gets_an_estimate_row():
    rows = paper_profiles()
    for path in sorted(SWEEPS.glob("*.yaml")):
        profiles = (yaml.safe_load(path.read_text()) or {}).get("profiles") or {}
        for name in profiles:
            assert (f"sweeps/{path.name}:{name}" in rows) == name.startswith("paper")
    assert "sweeps/likelihood.yaml:paper" in rows


def test_a_metrics_points_are_its_sizes_at_the_test_settings():
    dci = registry.get("dci")
    cfg = EvalConfig(metrics=["dci"], **dci.test_params)
    assert points(dci, dci.params_of(cfg), cfg) == sum(dci.test_params.values())
    fd = registry.get("fd")
    cfg = EvalConfig(metrics=["fd"], fid_samples=300)
    assert points(fd, fd.params_of(cfg), cfg) == 300


def test_a_timed_round_is_raised_to_its_minimum_length():
    from benchmark.perf.train_throughput import steps_for

    assert steps_for(0.01, 10, 0.25) == 25  # 10 steps of 10 ms: too short, raised to 0.25 s
    assert steps_for(0.1, 10, 0.25) == 10  # already 1 s: kept
    assert steps_for(0.0, 10, 0.25) == 10  # an unmeasurable warm-up never divides by zero
    assert steps_for(float("nan"), 7, 1.0) == 7


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--repeats", "0"], "--repeats 0: must be >= 1"),
        (["--steps", "-1"], "--steps -1: must be >= 1"),
        (["--sweep-trials", "-1"], "--sweep-trials -1: must be >= 0"),
        (["--device", "tpu"], "--device tpu: not a torch device; allowed: auto, cpu, cuda"),
        (["--out", "/proc/vaebench-perf"], "--out /proc/vaebench-perf: cannot write there"),
    ],
)
def test_bad_harness_options_fail_at_once_in_one_line(argv, message, capsys):
    from benchmark.perf.__main__ import parse_args

    with pytest.raises(SystemExit) as e:
        parse_args(["--quick", *argv])  # before any timing, not after minutes of it
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "module, argv",
    [("benchmark.perf.profile_step", ["--batch", "0"]),
     ("benchmark.perf.pythae_compare", ["--threads", "0"])],
)  # fmt: skip
def test_the_perf_scripts_refuse_a_zero_count_at_once(module, argv, capsys):
    import importlib

    with pytest.raises(SystemExit) as e:
        importlib.import_module(module).main(argv)
    assert e.value.code == 2
    assert (
        capsys.readouterr().err == f"error: {argv[0]}: 0 is not allowed; allowed: an integer >= 1\n"
    )
