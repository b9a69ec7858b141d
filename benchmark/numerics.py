"""The numerics fingerprint: a drift guard between the code and the committed results.

A committed table is only worth something if the current code still produces it. Rerunning
every sweep in the test suite is far too slow, so the suite reruns *probes* instead: tiny,
deterministic trials (a few seconds each on one CPU thread) whose metrics are pinned in
`results/numerics.json`. Each probe covers one component:

- ``core``: β-VAE, mlp2, the dSprites-like renderer, Adam, the training loop, MSE/KL/ELBO,
  active units and MIG;
- ``variant:<name>``, ``architecture:<name>``: one probe per other variant and family;
- ``metric:nll``, ``metric:fd``: the importance-sampled NLL and FD/KID on the committed net;
- ``dataset:<name>``: the fingerprint of a real dataset's split (pixels, not metrics).

Each committed sweep records, in `results/<sweep>/sweep.json`, the digest of every pinned probe
it depends on (`sweep_digests`). `tests/test_numerics.py` then fails when

1. a probe's metrics no longer match their pins (the code's numerics changed: a new RNG draw
   order, initialisation, optimiser, loss or metric), or
2. a committed sweep's recorded digests differ from the current pins (its results came from
   older numerics and must be regenerated).

After an intended change: ``python -m benchmark.numerics --update`` re-pins the probes and
lists the committed sweeps that are now stale; regenerate those (``python -m benchmark.run
sweeps/<name>.yaml --fresh``) and the suite passes again.

The comparison tolerates float noise between CPUs (relative 1e-4) but not a changed stream.
See docs/design.md, "Trust: drift guard, verify, cache".
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmark.atomic import write_text_atomic
from benchmark.cli import Parser
from benchmark.paths import REPO, RESULTS

PINS = RESULTS / "numerics.json"
RTOL = 1e-4
# Only what a model computes is pinned: never wall time, throughput or paths.
VOLATILE = ("seconds", "images_per_second", "versions", "device", "dataset", "notes", "threads")

_TINY = {
    "variant": "beta_vae",
    "beta": 2.0,
    "architecture": "mlp2",
    "latent_dim": 4,
    "seed": 3,
    "dataset": {"name": "dsprites", "resolution": 16, "n_train": 256, "n_test": 64},
    "train": {"steps": 12, "batch_size": 32, "lr": 1e-3, "log_every": 4},
    "eval": {"metrics": ["mse", "kl", "elbo", "active_units", "mig"], "mig_points": 400,
             "grid_images": 8, "batch_size": 64},
}  # fmt: skip
_VARIANT_PARAMS = {"vqvae": {"prior_steps": 4}, "iwae": {"k": 3}}
# The committed FD net is for 32 px; N must exceed its 128 feature dimensions.
_FD = {"dataset": {"resolution": 32, "n_train": 256, "n_test": 160},
       "eval": {"metrics": ["mse", "fd"], "fid_samples": 150, "kid_subset_size": 50}}  # fmt: skip
_DATASETS = {"fashion_mnist": {"name": "fashion_mnist", "resolution": 32, "n_train": None,
                               "n_test": 2000}}  # fmt: skip


_CORE_METRICS = {"mse", "kl", "elbo", "active_units", "mig"}
# Smaller than the metric's test setting where that takes more than a few seconds.
_METRIC_PROBE_PARAMS = {"dci": {"dci_num_train": 200, "dci_num_test": 100}}
_LIKELIHOOD_PROBES = {
    "gaussian": {"name": "gaussian", "sigma": 1.0},
    "gaussian(sigma=learned)": {"name": "gaussian", "sigma": "learned"},
    "continuous_bernoulli": {"name": "continuous_bernoulli"},
    "discretized_logistic": {"name": "discretized_logistic"},
}
# option probe → the config it runs; `_option_probes_of` says which trials depend on which.
# Not probed: train.precision bf16 (emulated on CPUs without native bf16, so not one set of
# bits across the machines the pins are checked on) and train.compile (off on the CPU).
_OPTION_PROBES = {
    "train:grad_clip": {"train": {"grad_clip": 0.5}},
    "train:lr_schedule=cosine": {"train": {"lr_schedule": "cosine", "lr_warmup_steps": 4}},
    "train:lr_schedule=plateau": {"train": {"lr_schedule": "plateau", "lr_plateau_patience": 0}},
    "train:spectral_norm_decoder": {"train": {"spectral_norm_decoder": True}},
    "train:channels_last": {"architecture": "conv4", "dataset": {"resolution": 32},
                            "train": {"channels_last": True}},
    "binarize:static": {"dataset": {"binarize": "static"}},
    "binarize:dynamic": {"dataset": {"binarize": "dynamic"}},
}  # fmt: skip


def _merge(base: dict, update: dict) -> dict:
    out = json.loads(json.dumps(base))
    for k, v in update.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def probe_configs() -> dict[str, dict[str, Any]]:
    """Probe name → raw trial config (a dict that `TrialConfig` validates)."""
    import variants
    from variants.architectures import ARCHITECTURES

    probes = {"core": _TINY}
    builtins = [n for n in variants.names() if variants.get(n).__module__.startswith("variants.")]
    for name in builtins:
        if name == _TINY["variant"]:
            continue
        cfg = _merge(_TINY, {"variant": name, "params": _VARIANT_PARAMS.get(name, {})})
        cls = variants.get(name)
        if not cls.Config.model_fields.get("beta"):
            cfg.pop("beta")
        if not cls.continuous_latents:
            cfg["eval"]["metrics"] = ["mse", "kl", "elbo"]
        probes[f"variant:{name}"] = cfg
    for arch in ARCHITECTURES:
        if arch != _TINY["architecture"]:
            probes[f"architecture:{arch}"] = _merge(
                _TINY, {"architecture": arch, "dataset": {"resolution": 32}}
            )
    probes["metric:nll"] = _merge(_TINY, {"eval": {"metrics": ["nll"], "nll_k": 8,
                                                   "nll_points": 16}})  # fmt: skip
    probes["metric:fd"] = _merge(_TINY, _FD)
    # Every other registered built-in metric, at its declared test setting.
    from benchmark.metrics import registry

    for metric in registry.metrics():
        if (
            metric.name in _CORE_METRICS
            or metric.name in ("nll", "fd")
            or not (getattr(metric.compute, "__module__", "") or "").startswith("benchmark.")
        ):
            continue
        base = _merge(_TINY, _FD) if metric.needs.feature_net else _TINY
        params = {**metric.test_params, **_METRIC_PROBE_PARAMS.get(metric.name, {})}
        probes[f"metric:{metric.name}"] = _merge(
            base, {"eval": {"metrics": ["mse", metric.name], **params}}
        )
    # Every decoder likelihood but the default (the core probe's), through the NLL too.
    for name, choice in _LIKELIHOOD_PROBES.items():
        probes[f"likelihood:{name}"] = _merge(
            _TINY, {"likelihood": choice, "eval": {"metrics": ["mse", "kl", "elbo", "nll"],
                                                    "nll_k": 4, "nll_points": 8}}
        )  # fmt: skip
    # Every training and data option off its default (each default is the core probe's).
    for name, update in _OPTION_PROBES.items():
        probes[name] = _merge(_TINY, update)
    return probes


def _is_pinned_key(key: str, value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not any(v in key for v in VOLATILE)
    )


def run_probe(name: str) -> dict[str, float]:
    """Run one probe on the CPU with one thread; returns its pinned quantities.

    Raises KeyError for an unknown probe name.
    """
    import torch

    from benchmark.config import TrialConfig
    from benchmark.trial import run_trial

    if name.startswith("dataset:"):
        return _dataset_probe(name.split(":", 1)[1])
    config = TrialConfig.model_validate(probe_configs()[name])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = run_trial(config, tmp, device="cpu")
    finally:
        torch.set_num_threads(threads)
    out: dict[str, Any] = {k: float(v) for k, v in result.items() if _is_pinned_key(k, v)}
    out["finished"] = float(result.get("status") == "finished")
    out["model_sha256"] = result.get("model_sha256", "")
    return dict(sorted(out.items()))


def _dataset_probe(name: str) -> dict[str, float]:
    from benchmark.data import load_dataset

    d = _DATASETS[name]
    data = load_dataset(d["name"], resolution=d["resolution"], n_train=d["n_train"],
                        n_test=d["n_test"])  # fmt: skip
    # The fingerprint is a hex digest: pin it as a number so one comparison rule serves all.
    return {"fingerprint": float(int(data.fingerprint[:12], 16))}


def all_probes() -> list[str]:
    """The names of every probe: the trial probes, then one `dataset:<name>` per real dataset."""
    return [*probe_configs(), *(f"dataset:{d}" for d in _DATASETS)]


def environment() -> dict[str, str]:
    """What bitwise equality of trained weights depends on: the CPU and the torch build."""
    import torch

    from benchmark.manifest import cpu_model

    return {"cpu": cpu_model(), "isa": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__}  # fmt: skip


def trial_environment(device: Any = None) -> str:
    """`environment()` as one JSON string, plus the GPU's name when `device` is CUDA.

    Recorded with every trial (runs.csv column `environment`), so `benchmark.verify` knows
    whether a rerun can be bitwise equal or only a fresh draw of the CPU's float noise.
    """
    import torch

    env = environment()
    if device is not None and torch.device(device).type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return json.dumps(env, sort_keys=True)


def load_pins(path: Path = PINS) -> dict[str, dict[str, Any]]:
    """{probe: pinned values} from `path`; empty if the file does not exist."""
    if not path.is_file():
        return {}
    return json.loads(path.read_text())["probes"]


def pinned_environment(path: Path = PINS) -> dict[str, str]:
    """The CPU and torch build the pins were made on; empty if there are no pins."""
    return json.loads(path.read_text()).get("environment", {}) if path.is_file() else {}


def digest(values: dict[str, float]) -> str:
    """A short stable id of a probe's pinned values (the pins as written, not recomputed)."""
    blob = json.dumps(values, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def compare(
    pinned: dict[str, Any], now: dict[str, Any], rtol: float = RTOL, bitwise: bool | None = None
) -> list[str]:
    """The differences between a probe's pins and a rerun, one line each (empty: match).

    Metrics must agree to `rtol`. The trained weights' digest (`model_sha256`) must be equal
    when `bitwise` (default: when this machine's CPU and torch build are the pins'), which
    catches last-bit changes that a short probe's metrics do not show; on another CPU it is
    float noise and is not compared.
    """
    if bitwise is None:
        bitwise = pinned_environment() == environment()
    out = []
    for key in sorted(set(pinned) | set(now)):
        a, b = pinned.get(key), now.get(key)
        if isinstance(a, str) or isinstance(b, str):
            if bitwise and a != b:
                out.append(f"{key}: pinned {a}, now {b} (same CPU and torch: bits changed)")
        elif a is None or b is None:
            out.append(f"{key}: pinned {a}, now {b}")
        elif not (math.isclose(a, b, rel_tol=rtol, abs_tol=1e-9) or (a != a and b != b)):
            out.append(f"{key}: pinned {a!r}, now {b!r}")
    return out


# --- which probes a sweep depends on -------------------------------------------------------


def probes_for(configs: Iterable[Any]) -> list[str]:
    """The probes whose numerics a set of trial configs depends on (sorted).

    `configs`: `TrialConfig`s or their JSON dumps (runs.csv's `config` column, which needs no
    plugin to be importable)."""
    names = {"core"}
    known = set(all_probes())
    for c in configs:
        c = c.model_dump(mode="json") if hasattr(c, "model_dump") else c
        names.add(f"variant:{c['variant']}")
        names.add(f"architecture:{c['architecture']}")
        metrics = {"fd" if m == "fid" else m for m in c["eval"]["metrics"]}
        names.update(f"metric:{m}" for m in metrics)
        names.add(f"dataset:{c['dataset']['name']}")
        names.update(_likelihood_probes_of(c.get("likelihood")))
        names.update(_option_probes_of(c))
    return sorted(n for n in names if n in known)


def _likelihood_probes_of(choice: Any) -> list[str]:
    if not choice:
        return []
    if isinstance(choice, str):
        return [f"likelihood:{choice}"]
    name = choice.get("name")
    params = {k: v for k, v in choice.items() if k not in ("name", "params")}
    params.update(choice.get("params") or {})
    learned = any(v == "learned" for v in params.values())
    return [f"likelihood:{name}(sigma=learned)" if learned else f"likelihood:{name}"]


def _option_probes_of(c: dict) -> list[str]:
    train, data = c.get("train") or {}, c.get("dataset") or {}
    out = []
    if train.get("grad_clip") is not None:
        out.append("train:grad_clip")
    if train.get("lr_schedule", "constant") != "constant":
        out.append(f"train:lr_schedule={train['lr_schedule']}")
    for flag in ("spectral_norm_decoder", "channels_last"):
        if train.get(flag):
            out.append(f"train:{flag}")
    if data.get("binarize", "none") != "none":
        out.append(f"binarize:{data['binarize']}")
    return out


def sweep_digests(configs: Iterable[Any], pins: dict | None = None) -> dict[str, str]:
    """Probe name → digest of its current pins, for the probes `configs` depend on."""
    pins = load_pins() if pins is None else pins
    return {n: digest(pins[n]) if n in pins else "unpinned" for n in probes_for(configs)}


def stale_sweeps(results: Path = RESULTS, pins: dict | None = None) -> dict[str, list]:
    """Committed sweep folder → the probes whose recorded digest differs from the pins."""
    pins = load_pins() if pins is None else pins
    out = {}
    for path in sorted(results.glob("*/sweep.json")):
        recorded = json.loads(path.read_text()).get("numerics")
        if recorded is None:
            out[path.parent.name] = ["(no numerics recorded: made before the drift guard)"]
            continue
        bad = [n for n, d in recorded.items() if n not in pins or digest(pins[n]) != d]
        # A probe added after the sweep ran guards it only once its digest is recorded
        # (`--record-new`, after `benchmark.verify` has shown the code still gives its numbers).
        bad += [f"{n} (not recorded)" for n in unrecorded_probes(path.parent) if n not in bad]
        if bad:
            out[path.parent.name] = bad
    return out


def unrecorded_probes(folder: Path) -> list[str]:
    """Probes a committed sweep depends on (by the configs in its runs.csv) whose digest its
    sweep.json does not record."""
    import csv

    recorded = json.loads((folder / "sweep.json").read_text()).get("numerics") or {}
    runs = folder / "runs.csv"
    if not runs.is_file():
        return []
    csv.field_size_limit(1 << 24)
    with open(runs, newline="") as f:
        configs = [json.loads(r["config"]) for r in csv.DictReader(f) if r.get("config")]
    return [n for n in probes_for(configs) if n not in recorded] if configs else []


def record_new(folder: Path, pins: dict | None = None) -> list[str]:
    """Record in `folder`/sweep.json the digests of the probes it depends on but lacks (probes
    added after it ran); returns their names. Recorded digests are never changed here."""
    pins = load_pins() if pins is None else pins
    new = [n for n in unrecorded_probes(folder) if n in pins]
    if new:
        sj = folder / "sweep.json"
        record = json.loads(sj.read_text())
        record["numerics"] = {**record.get("numerics", {}), **{n: digest(pins[n]) for n in new}}
        record.setdefault("numerics_added_later", []).extend(new)
        write_text_atomic(sj, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return new


STALE_BANNER = "> **STALE**"


def mark_stale(folder: Path, probes: list[str]) -> None:
    """Label a committed sweep whose numerics are not the pins' as stale, where a reader sees it:
    `"stale"` in its sweep.json and a banner on top of table.md (and a comment in table.tex).

    The drift test accepts a stale sweep only when it carries these labels, so no committed
    table presents numbers the current code does not produce as if it did.
    """
    name = folder.name.split("-")[0]
    reason = (f"made under numerics that differ from results/numerics.json (probes: "
              f"{', '.join(probes)}); the current code gives other numbers. Regenerate: "
              f"python -m benchmark.run sweeps/{name}.yaml --fresh")  # fmt: skip
    sj = folder / "sweep.json"
    record = json.loads(sj.read_text()) if sj.is_file() else {}
    record["stale"] = reason
    write_text_atomic(sj, json.dumps(record, indent=2, sort_keys=True) + "\n")
    md = folder / "table.md"
    if md.is_file() and not md.read_text().startswith(STALE_BANNER):
        write_text_atomic(md, f"{STALE_BANNER}: {reason}\n\n" + md.read_text())
    tex = folder / "table.tex"
    if tex.is_file() and "STALE" not in tex.read_text():
        write_text_atomic(tex, f"% STALE: {reason}\n" + tex.read_text())


def unlabelled_stale(results: Path = RESULTS, pins: dict | None = None) -> list[str]:
    """Stale committed sweeps that do not say so (see `mark_stale`)."""
    out = []
    for name in stale_sweeps(results, pins):
        record = json.loads((results / name / "sweep.json").read_text())
        md = results / name / "table.md"
        labelled = "stale" in record and (not md.is_file() or
                                          md.read_text().startswith(STALE_BANNER))  # fmt: skip
        if not labelled:
            out.append(name)
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmark.numerics`: run the probes and compare them with the pins.

    Exit codes: 0 all probes equal (or re-pinned with --update); 1 a probe changed; 2 an unknown
    --probe.
    """
    p = Parser(
        prog="python -m benchmark.numerics",
        description="Check the code's numerics against the pinned probes (results/numerics.json)"
        " and list committed sweeps made under other numerics.",
    )
    p.add_argument("--update", action="store_true", help="re-pin the probes from this code")
    p.add_argument("--probe", action="append", default=[], help="only this probe (repeatable)")
    p.add_argument(
        "--mark-stale",
        action="store_true",
        help="label every stale committed sweep as stale (sweep.json, table banner)",
    )
    p.add_argument(
        "--record-new",
        metavar="FOLDER",
        action="append",
        default=[],
        help="record in FOLDER/sweep.json the digests of probes added after the sweep ran (run "
        "benchmark.verify on it first: this asserts the code still gives its numbers)",
    )
    args = p.parse_args(argv)
    if args.record_new:
        for folder in args.record_new:
            if not (Path(folder) / "sweep.json").is_file():
                print(f"error: --record-new {folder}: no sweep.json there; allowed: a committed "
                      "sweep folder such as results/beta_tradeoff", file=sys.stderr)  # fmt: skip
                return 2
            new = record_new(Path(folder))
            print(f"{folder}: recorded {', '.join(new) if new else 'nothing (none missing)'}")
        return 0
    names = args.probe or all_probes()
    unknown = sorted(set(names) - set(all_probes()))
    if unknown:
        from benchmark.config.errors import did_you_mean

        print(f"error: --probe {unknown[0]}: unknown; allowed: {', '.join(all_probes())}"
              + did_you_mean(unknown[0], list(all_probes())), file=sys.stderr)  # fmt: skip
        return 2
    pins = load_pins()
    changed = []
    for name in names:
        try:
            now = run_probe(name)
        except Exception as e:  # noqa: BLE001 - a probe that cannot run (no data) is reported
            print(f"{name:28s} skipped: {type(e).__name__}: {str(e).splitlines()[0]}")
            continue
        diff = compare(pins.get(name, {}), now)
        print(f"{name:28s} {'ok' if not diff else 'CHANGED: ' + '; '.join(diff[:3])}")
        if diff:
            changed.append(name)
            pins[name] = now
    if args.update and changed:
        record = {"rtol": RTOL, "environment": environment(), "probes": dict(sorted(pins.items()))}
        write_text_atomic(PINS, json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"re-pinned {len(changed)} probes in {PINS.relative_to(REPO)}")
    stale = stale_sweeps(pins=pins)
    if args.mark_stale:
        for sweep, probes in stale.items():
            mark_stale(RESULTS / sweep, probes)
    for sweep, probes in stale.items():
        print(f"stale: results/{sweep} (probes {', '.join(probes)}): rerun "
              f"python -m benchmark.run sweeps/{sweep.split('-')[0]}.yaml --fresh")  # fmt: skip
    if changed and not args.update:
        print("numerics changed: if intended, rerun with --update and regenerate the stale sweeps")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
