"""The drift guard: the code's numerics equal the pinned probes, and every committed sweep was
made under those pins. When this fails after an intended change, run
`python -m benchmark.numerics --update` and regenerate the sweeps it lists as stale."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmark import numerics

PINS = numerics.load_pins()


def test_every_probe_is_pinned():
    missing = sorted(set(numerics.all_probes()) - set(PINS))
    assert not missing, f"unpinned probes {missing}: run python -m benchmark.numerics --update"


@pytest.mark.parametrize("name", numerics.all_probes())
def test_probe_matches_its_pins(name):
    if name.startswith("dataset:"):
        from benchmark.data import DataError

        try:
            now = numerics.run_probe(name)
        except DataError as e:  # the real dataset is not installed on this machine
            pytest.skip(f"{name}: {e}")
    else:
        now = numerics.run_probe(name)
    diff = numerics.compare(PINS[name], now)
    assert not diff, (
        f"numerics of probe {name} changed: {'; '.join(diff)}. If intended: "
        "python -m benchmark.numerics --update, then regenerate the stale sweeps"
    )


def test_committed_sweeps_match_the_pins_or_say_they_are_stale():
    """A committed sweep is either made under the current pins, or labelled stale where a reader
    sees it (sweep.json and a banner on its table) while its regeneration is pending."""
    silent = numerics.unlabelled_stale(pins=PINS)
    assert not silent, (
        "committed results made under other numerics, not labelled stale: regenerate them "
        f"(python -m benchmark.run sweeps/<name>.yaml --fresh): {silent}"
    )


def test_a_stale_label_is_needed(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "sweep.json").write_text(json.dumps({"numerics": {"core": "0000000000"}}))
    (tmp_path / "s" / "table.md").write_text("| a |\n")
    assert numerics.unlabelled_stale(tmp_path, PINS) == ["s"]
    numerics.mark_stale(tmp_path / "s", ["core"])
    assert numerics.unlabelled_stale(tmp_path, PINS) == []
    assert (tmp_path / "s" / "table.md").read_text().startswith("> **STALE**")


def test_compare_tolerates_float_noise_but_not_a_changed_value():
    pinned = {"mse": 0.0123456, "kl": 4.5}
    assert numerics.compare(pinned, {"mse": 0.0123456 * (1 + 1e-7), "kl": 4.5}) == []
    assert numerics.compare(pinned, {"mse": 0.0124, "kl": 4.5}) != []
    assert numerics.compare(pinned, {"mse": 0.0123456}) != []  # a metric vanished


def test_a_changed_rng_stream_trips_the_core_probe(monkeypatch):
    """Drawing the batch order from another seed changes the pinned core metrics."""
    import torch

    real = torch.randperm

    def shifted(n, *args, generator=None, **kw):
        if generator is not None:
            generator.manual_seed(generator.initial_seed() + 1)
        return real(n, *args, generator=generator, **kw)

    monkeypatch.setattr(torch, "randperm", shifted)
    assert numerics.compare(PINS["core"], numerics.run_probe("core"))


def test_stale_sweep_is_detected(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "sweep.json").write_text(json.dumps({"numerics": {"core": "0000000000"}}))
    assert numerics.stale_sweeps(tmp_path, PINS) == {"s": ["core"]}
    good = {"core": numerics.digest(PINS["core"])}
    (tmp_path / "s" / "sweep.json").write_text(json.dumps({"numerics": good}))
    assert numerics.stale_sweeps(tmp_path, PINS) == {}


def test_every_likelihood_metric_and_option_of_a_trial_has_its_probe():
    """A component without a probe could change its numbers unnoticed (and the trial cache,
    keyed on the probes' digests, would reuse stale runs)."""
    from benchmark.metrics import registry
    from variants.likelihoods import LIKELIHOODS

    base = json.loads(json.dumps(numerics.probe_configs()["core"]))
    base["likelihood"] = {"name": "bernoulli"}
    known = set(numerics.all_probes())
    for name in LIKELIHOODS:
        if name != "bernoulli":
            cfg = {**base, "likelihood": {"name": name}}
            assert f"likelihood:{name}" in numerics.probes_for([cfg]), name
    learned = {**base, "likelihood": {"name": "gaussian", "sigma": "learned"}}
    assert "likelihood:gaussian(sigma=learned)" in numerics.probes_for([learned])
    for metric in registry.metrics():
        cfg = {**base, "eval": {**base["eval"], "metrics": [metric.name]}}
        probes = numerics.probes_for([cfg])
        assert f"metric:{metric.name}" in probes or metric.name in numerics._CORE_METRICS
    for key, value, probe in [("grad_clip", 1.0, "train:grad_clip"),
                              ("lr_schedule", "cosine", "train:lr_schedule=cosine"),
                              ("lr_schedule", "plateau", "train:lr_schedule=plateau"),
                              ("spectral_norm_decoder", True, "train:spectral_norm_decoder"),
                              ("channels_last", True, "train:channels_last")]:  # fmt: skip
        cfg = {**base, "train": {**base["train"], key: value}}
        assert probe in numerics.probes_for([cfg]) and probe in known, key
    cfg = {**base, "dataset": {**base["dataset"], "binarize": "dynamic"}}
    assert "binarize:dynamic" in numerics.probes_for([cfg])


def test_a_probe_added_after_a_sweep_ran_must_be_recorded(tmp_path):
    core = json.loads(json.dumps(numerics.probe_configs()["core"]))
    folder = tmp_path / "s"
    folder.mkdir()
    cfg = {**core, "eval": {**core["eval"], "metrics": ["mse", "dci"]}}
    pd.DataFrame([{"trial": "t", "config": json.dumps(cfg)}]).to_csv(folder / "runs.csv")
    (folder / "sweep.json").write_text(
        json.dumps({"numerics": {"core": numerics.digest(PINS["core"])}})
    )
    assert numerics.stale_sweeps(tmp_path, PINS) == {"s": ["metric:dci (not recorded)"]}
    assert numerics.record_new(folder, PINS) == ["metric:dci"]
    assert numerics.stale_sweeps(tmp_path, PINS) == {}
    record = json.loads((folder / "sweep.json").read_text())
    assert record["numerics_added_later"] == ["metric:dci"]
