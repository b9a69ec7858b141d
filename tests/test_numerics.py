"""The drift guard: the code's numerics equal the pinned probes, and every committed sweep was
made under those pins. When this fails after an intended change, run
`python -m benchmark.numerics --update` and regenerate the sweeps it lists as stale."""

from __future__ import annotations

import json

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
