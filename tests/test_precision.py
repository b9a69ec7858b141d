"""benchmark.perf.precision: a sweep under two settings, paired trial by trial."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from benchmark.perf import precision


def _runs(path, shift: float = 0.0, precision_: str = "fp32", lr: float = 1e-3):
    rng = np.random.default_rng(0)
    rows = []
    for beta in (1, 2, 4, 8):
        for seed in (0, 1, 2):
            config = {"beta": beta, "seed": seed, "train": {"precision": precision_, "lr": lr}}
            rows.append({"trial": f"beta={beta},seed={seed}", "status": "finished",
                         "config": json.dumps(config), "n_params": 10,
                         "mse": 0.01 * beta + 1e-3 * rng.standard_normal()
                         + shift * (1 + 0.1 * seed),
                         "kl": 10.0 / beta + 0.1 * seed})  # fmt: skip
    path.mkdir()
    pd.DataFrame(rows).to_csv(path / "runs.csv", index=False)
    return path


def test_a_systematic_shift_is_found_and_noise_is_not(tmp_path):
    ref = _runs(tmp_path / "fp32")
    same = _runs(tmp_path / "bf16", precision_="bf16")
    shifted = _runs(tmp_path / "shifted", shift=0.01, precision_="bf16")
    assert precision.main([str(ref), str(same), "--out", str(tmp_path / "a")]) == 0
    table = pd.read_csv(tmp_path / "a.csv")
    paired = table[table["kind"] == "paired"].set_index("metric")
    assert set(paired.index) == {"mse", "kl"}  # n_params is constant: not judged
    assert paired.loc["mse", "diff"] == 0 and paired.loc["mse", "verdict"] == "tie"
    assert precision.main([str(ref), str(shifted), "--out", str(tmp_path / "b")]) == 0
    table = pd.read_csv(tmp_path / "b.csv")
    paired = table[table["kind"] == "paired"].set_index("metric")
    assert paired.loc["mse", "diff"] == pytest.approx(0.011)
    assert paired.loc["mse", "p_holm"] < 0.05 and paired.loc["mse", "verdict"] == "loss"
    cells = table[(table["kind"] == "grid point") & (table["metric"] == "mse")]
    assert not cells["within"].astype(bool).all()  # the shift is 10 seed stds


def test_within_spread_is_the_t_interval_of_a_mean_of_new_seeds():
    ref, other = np.array([1.0, 1.3, 0.8, 1.1]), np.array([1.2, 0.9])
    scale = 0.2 * math.sqrt(1 / 2 + 1 / 4)
    assert precision.within_spread(ref, other, (0.2, 7)) == pytest.approx(
        sps.t.interval(0.95, 7, loc=ref.mean(), scale=scale), rel=1e-12
    )


def test_labels_come_from_the_keys_that_differ(tmp_path):
    ref = _runs(tmp_path / "fp32")
    other = _runs(tmp_path / "bf16", precision_="bf16")
    assert precision.main([str(ref), str(other), "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a.md").read_text().startswith("# bf16 against fp32")
    assert precision.main([str(ref), str(ref), "--differ", "", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b.md").read_text().startswith("# other against reference")


def test_configs_that_differ_elsewhere_are_refused_in_one_line(tmp_path, capsys):
    ref = _runs(tmp_path / "fp32")
    other = _runs(tmp_path / "bf16", precision_="bf16", lr=2e-3)
    assert precision.main([str(ref), str(other), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config key train.lr is 0.001 in one sweep and 0.002" in err
    assert not (tmp_path / "x.md").exists()
    assert precision.main([str(tmp_path / "nope"), str(other)]) == 2
    assert "no runs.csv" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "runs.csv").write_text("trial,status\n")
    assert precision.main([str(tmp_path / "empty"), str(other)]) == 2
    assert "no `config` column" in capsys.readouterr().err
    assert precision.main([str(ref), str(ref), "--differ", "", "--out", "/proc/x/y"]) == 2
    assert capsys.readouterr().err.startswith("error: --out /proc/x/y: cannot write there")
