"""The registries as the structure of the code: a dataset is one module plus its registration,
and parsing a sweep or rebuilding a report imports no model code (variants.<model>)."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys

import pytest

from benchmark.config import ConfigError, load_sweep
from benchmark.data import SPECS, registry
from benchmark.manifest import manifest
from benchmark.tracking import Tracker, default_tracking_uri
from benchmark.trial import run_trial
from tests.conftest import REPO, run_cli

# The torch model code: none of it may be imported to validate a sweep or rebuild a report.
MODEL_MODULES = {
    "variants.base",
    "variants.vae",
    "variants.cvae",
    "variants.iwae",
    "variants.vqvae",
    "variants.vq_prior",
    "variants.hierarchical",
    "variants.architectures",
}
TINY = [
    "dataset.name=tiny_stripes", "dataset.resolution=8", "dataset.n_train=64",
    "dataset.n_test=32", "train.steps=20", "train.log_every=10",
]  # fmt: skip

_PROBE = """
import json, sys
{body}
print(json.dumps({{"rc": rc, "modules": sorted(sys.modules)}}))
"""


def _modules_after(body: str) -> tuple[int, set[str]]:
    """Run `body` (which sets `rc`) in a fresh interpreter; its exit code and loaded modules."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(body=body)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["rc"], set(data["modules"])


@pytest.fixture
def tiny_dataset():
    """The test plugin `tests.plugins.tiny_dataset`, registered for one test."""
    module = importlib.import_module("tests.plugins.tiny_dataset")
    registry.register(module.SPEC)  # again, in case an earlier test unregistered it
    yield module.SPEC
    registry.unregister(module.SPEC.name)


def test_parsing_every_variant_and_a_dry_run_import_no_model_code():
    body = (
        "from benchmark.config import load_sweep\n"
        "from benchmark.run import main\n"
        "for f in ('sweeps/variants.yaml', 'sweeps/architecture.yaml', 'sweeps/smoke.yaml'):\n"
        "    load_sweep(f)\n"
        "rc = main(['sweeps/beta_tradeoff.yaml', '--dry-run'])\n"
    )
    rc, modules = _modules_after(body)
    assert rc == 0
    assert not modules & MODEL_MODULES, sorted(modules & MODEL_MODULES)
    # The parse did use the declarations.
    assert {"variants.catalog", "variants.shapes", "benchmark.data.registry"} <= modules


def test_a_report_is_rebuilt_without_model_code_after_the_data_file_moved(tmp_path):
    # A sweep whose real dSprites file has since moved: parsing it for the report must not fail.
    text = (REPO / "sweeps/smoke.yaml").read_text()
    text = text.replace("resolution: 16,", f"resolution: 16, path: {tmp_path / 'gone.npz'},")
    sweep_file = tmp_path / "smoke.yaml"
    sweep_file.write_text(text)
    with pytest.raises(ConfigError, match=r"gone\.npz' does not exist"):
        load_sweep(sweep_file)
    sweep = load_sweep(sweep_file, overrides=["grid.beta=[1]"], check_files=False)
    results = tmp_path / "results"
    tracker = Tracker(default_tracking_uri(results), results, sweep.results_name)
    tracker.start_sweep(sweep, manifest())
    run_id = tracker.start_trial(sweep.trials[0], 1)
    tracker.client.log_metric(run_id, "mse", 0.25)
    tracker.finish_trial(run_id, {"status": "finished"}, None)
    tracker.finish_sweep({"finished": 1})

    body = (
        "from benchmark.report import main\n"
        f"rc = main([{str(sweep_file)!r}, '--results-dir', {str(results)!r}, "
        "'--override', 'grid.beta=[1]', '--only', 'tables'])\n"
    )
    rc, modules = _modules_after(body)
    assert rc == 0
    assert not modules & MODEL_MODULES, sorted(modules & MODEL_MODULES)
    assert "0.2500" in (results / sweep.results_name / "table.md").read_text()


def test_a_new_dataset_is_one_module_plus_its_registration(tiny_dataset, tmp_path):
    # The CLI: validation and the dry run know it from its spec alone (--plugin imports it).
    plugin = ["--plugin", "tests.plugins.tiny_dataset"]
    overrides = [a for o in TINY for a in ("--override", o)]
    out = run_cli("benchmark.run", "sweeps/smoke.yaml", *plugin, *overrides, "--dry-run")
    assert out.returncode == 0, out.stderr
    bad = run_cli("benchmark.run", "sweeps/smoke.yaml", *plugin, *overrides,
                  "--override", "dataset.resolution=16", "--dry-run")  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --override dataset.resolution=16: dataset.resolution: 16 is not allowed for "
        "tiny_stripes; allowed: 8"
    ]
    # Its spec drives the checks: 64 + 64 images exceed its pool of 96.
    with pytest.raises(ConfigError, match=r"64 \+ 64 = 128 exceeds the 96 images of tiny_stripes"):
        load_sweep("sweeps/smoke.yaml", overrides=[*TINY, "dataset.n_test=64"])
    # And a real trial trains, evaluates and notes what does not apply, with no other edit.
    config = load_sweep("sweeps/smoke.yaml", overrides=TINY).trials[0].config
    assert config.dataset.image_shape() == (1, 8, 8)
    result = run_trial(config, tmp_path / "t")
    assert result["status"] == "finished", result.get("reason")
    assert math.isfinite(result["mse"]) and math.isfinite(result["elbo"])
    assert result["notes"]["mig"].startswith("not applicable")
    assert SPECS["tiny_stripes"] is tiny_dataset
