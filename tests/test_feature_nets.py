"""The domain feature net: trains above chance, is deterministic, caches and reloads, its CLI."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from benchmark.data import load_dataset
from benchmark.feature_nets import (
    FORMAT_VERSION,
    FeatureNet,
    FeatureNetError,
    cache_paths,
    load_or_train,
    main,
    train_feature_net,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_test=300)


def _quiet(lines: list[str] | None = None):
    return (lambda s: lines.append(s)) if lines is not None else (lambda s: None)


def test_features_are_128_d_for_any_side_from_8():
    net = FeatureNet(3, {"a": 4, "b": 2})
    for side in (8, 13, 32, 64):
        x = torch.rand(2, 3, side, side)
        assert net.features(x).shape == (2, 128)
        assert {k: v.shape for k, v in net(x).items()} == {"a": (2, 4), "b": (2, 2)}
    with pytest.raises(FeatureNetError, match="H, W >= 8"):
        net.features(torch.rand(2, 3, 4, 4))


def test_trains_on_digits_labels_well_above_chance(digits):
    lines: list[str] = []
    net, info = train_feature_net(digits, steps=150, batch_size=64, progress=_quiet(lines))
    assert info["targets"] == "labels" and info["heads"] == {"label": 10}
    assert info["test_accuracy"]["label"] > 0.6  # chance: 0.1
    assert "300 images" in info["test_set"]
    assert any("step 150/150" in line for line in lines)
    assert not net.training


def test_dsprites_gets_one_head_per_factor_trained_on_fresh_images():
    data = load_dataset("dsprites", resolution=32, n_train=100, n_test=100)
    net, info = train_feature_net(data, steps=150, batch_size=64, progress=_quiet())
    assert info["targets"] == "factors"
    assert list(info["heads"]) == ["shape", "scale", "orientation", "posX", "posY"]
    assert set(net.heads) == set(info["heads"])
    acc, chance = info["test_accuracy"], info["chance_accuracy"]
    assert acc["shape"] > 1.2 * chance["shape"]  # the hardest factor at 32 px early on
    for factor in ("scale", "posX", "posY"):
        assert acc[factor] > 2.5 * chance[factor]
    assert "freshly sampled" in info["test_set"]


def test_training_is_deterministic(digits):
    a, _ = train_feature_net(digits, steps=15, batch_size=32, seed=3, progress=_quiet())
    b, _ = train_feature_net(digits, steps=15, batch_size=32, seed=3, progress=_quiet())
    c, _ = train_feature_net(digits, steps=15, batch_size=32, seed=4, progress=_quiet())
    x = digits.x_test[:50]
    assert torch.equal(a.features(x), b.features(x))
    assert not torch.equal(a.features(x), c.features(x))


def test_dataset_without_labels_or_factors_is_refused(digits):
    unlabelled = dataclasses.replace(
        digits, name="celeba", y_train=None, y_test=None, num_classes=None
    )
    with pytest.raises(FeatureNetError, match="fd_celeba: celeba has no labels or factors; use"):
        train_feature_net(unlabelled, steps=1, progress=_quiet())
    with pytest.raises(FeatureNetError, match="steps: 0 is not allowed; allowed: an integer >= 1"):
        train_feature_net(digits, steps=0, progress=_quiet())


def test_cache_round_trip_loads_without_retraining(tmp_path, digits):
    lines: list[str] = []
    net, meta = load_or_train("digits", 8, tmp_path, steps=60, progress=_quiet(lines))
    pt, js = cache_paths("digits", 8, tmp_path)
    assert pt.name == "fd_digits_8px.pt" and pt.exists() and js.exists()
    assert any("training" in line for line in lines)
    recorded = json.loads(js.read_text())
    assert recorded == meta
    assert recorded["metric"] == "fd_digits" and recorded["format_version"] == FORMAT_VERSION
    assert 0.3 < recorded["test_accuracy"]["label"] <= 1
    assert recorded["dataset_fingerprint"] and recorded["steps"] == 60
    assert recorded["parameters"] == sum(p.numel() for p in net.parameters())
    assert recorded["torch_version"] == torch.__version__ and recorded["date"]
    stamps = (pt.stat().st_mtime_ns, js.stat().st_mtime_ns)

    lines.clear()
    again, meta2 = load_or_train("digits", 8, tmp_path, steps=60, progress=_quiet(lines))
    assert lines == [f"fd_digits: loaded cached feature net {pt}"]
    assert (pt.stat().st_mtime_ns, js.stat().st_mtime_ns) == stamps
    assert meta2 == meta
    x = digits.x_test[:64]
    assert torch.equal(net.features(x), again.features(x))
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files behind


def test_stale_or_missing_cache_is_retrained_or_rejected(tmp_path):
    with pytest.raises(FeatureNetError, match="no cached feature net.*python -m benchmark"):
        load_or_train("digits", 8, tmp_path, train_if_missing=False, progress=_quiet())
    load_or_train("digits", 8, tmp_path, steps=5, progress=_quiet())
    pt, js = cache_paths("digits", 8, tmp_path)
    meta = json.loads(js.read_text())
    js.write_text(json.dumps({**meta, "format_version": FORMAT_VERSION - 1}))
    with pytest.raises(FeatureNetError, match=f"format version.*needs {FORMAT_VERSION}"):
        load_or_train("digits", 8, tmp_path, train_if_missing=False, progress=_quiet())
    _, fresh = load_or_train("digits", 8, tmp_path, steps=5, progress=_quiet())
    assert fresh["format_version"] == FORMAT_VERSION
    # Weights that do not match their sidecar (e.g. a crash between the two writes).
    pt.write_bytes(pt.read_bytes() + b"\0")
    with pytest.raises(FeatureNetError, match="does not match its sidecar"):
        load_or_train("digits", 8, tmp_path, train_if_missing=False, progress=_quiet())


def test_cli_trains_then_reports_the_cached_net(tmp_path, capsys):
    args = ["--dataset", "digits", "--resolution", "8", "--cache-root", str(tmp_path)]
    assert main([*args, "--steps", "10"]) == 0
    first = capsys.readouterr().out.strip().splitlines()
    assert first[-1].startswith("fd_digits (8 px, 10 steps): test accuracy label ")
    assert main(args) == 0  # cached: reported, not retrained with the default steps
    assert capsys.readouterr().out.strip().splitlines()[-1] == first[-1]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--dataset", "digits"], "--resolution"),
        (["--dataset", "digits", "--resolution", "8", "--steps", "0"], "--steps: 0"),
        (["--dataset", "digits", "--resolution", "8", "--bogus"], "--bogus"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, needle):
    try:
        code = main([*args, "--cache-root", str(tmp_path)])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert not list(tmp_path.iterdir())


def test_cli_unknown_dataset_exits_2_with_one_line_in_a_real_process(cli, tmp_path):
    result = cli("benchmark.feature_nets", "--dataset", "nope", "--resolution", "32",
                 "--cache-root", str(tmp_path))  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "'nope'" in lines[0]
