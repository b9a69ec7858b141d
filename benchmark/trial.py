"""One trial: build data, build the variant, train, evaluate, write images; no Ray, no MLflow.

`run_trial` is a plain function so that tests (and `benchmark.run --no-ray`) call it directly;
the Ray Tune trainable in `benchmark.tune` is a thin wrapper around it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import save_image

import variants
from benchmark.checkpoint import load_checkpoint, save_checkpoint
from benchmark.config import TrialConfig
from benchmark.data import Dataset, load_dataset
from benchmark.evaluate import evaluate
from benchmark.feature_nets import FeatureNetError, load_or_train
from benchmark.manifest import pick_device, versions
from benchmark.train import Diverged, train

Report = Callable[[dict[str, Any]], None]
DEFAULT_FEATURE_NETS = Path(__file__).resolve().parent.parent / "results" / "feature_nets"


# The last split this process loaded, by its dataset config: a Ray worker reused for the next
# trial of a sweep (same data, another β or seed) skips the load. Nothing writes into a split.
_LOADED: dict[str, Dataset] = {}


def load_trial_data(config: TrialConfig, cache_dir: str | Path | None = None) -> Dataset:
    """The trial's train/test split (`benchmark.data.load_dataset`), cached per process."""
    d = config.dataset
    key = json.dumps([d.model_dump(mode="json"), str(cache_dir)], sort_keys=True)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_dataset(
            d.name, resolution=d.resolution, n_train=d.n_train, n_test=d.n_test,
            split_seed=d.split_seed, path=d.path, data_root=d.data_root, cache_dir=cache_dir,
        )  # fmt: skip
    return _LOADED[key]


def build_model(config: TrialConfig, data: Dataset) -> variants.base.Variant:
    cls = variants.get(config.variant)
    return cls(
        config.variant_config(),
        image_shape=data.image_shape,
        latent_dim=config.latent_dim,
        architecture=config.architecture,
        num_classes=data.num_classes,
    )


def run_trial(
    config: TrialConfig,
    workdir: str | Path,
    report: Report | None = None,
    *,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    state_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    feature_nets: str | Path = DEFAULT_FEATURE_NETS,
) -> dict[str, Any]:
    """Train and evaluate one trial; images and `result.json` go to `workdir`.

    Returns a flat dict: `status` ('finished' or 'diverged'), the metrics, `params` (model size),
    timings, the dataset fingerprint and text notes. `report` receives the training curve as it
    is produced. A diverging loss is a result, not an exception; any other error propagates.

    With `state_dir`, training checkpoints go to `state_dir/state.pt` every `checkpoint_every`
    steps, a rerun continues from the last one, and every start is appended to
    `state_dir/attempts.jsonl` (the step it started from), so a resume is visible afterwards.
    `feature_nets` is the cache of domain feature nets (`fd_<dataset>`); a trial never trains
    one itself (`benchmark.run` prepares them before the trials start).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dev = pick_device(device)
    trial_hash = config.hash()
    resume = save = None
    if state_dir is not None:
        state_path = Path(state_dir) / "state.pt"
        resume = load_checkpoint(state_path, trial_hash)

        def save(state: dict[str, Any]) -> None:
            save_checkpoint(state_path, {**state, "trial_hash": trial_hash})

        _append_attempt(Path(state_dir), 0 if resume is None else int(resume["step"]))
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(dev.type == "cpu")

    t0 = time.perf_counter()
    data = load_trial_data(config, cache_dir)
    model = build_model(config, data).to(dev)
    x_train = data.x_train.to(dev)
    y_train = None if data.y_train is None else data.y_train.to(dev)
    result: dict[str, Any] = {
        "trial_hash": trial_hash,
        "n_params": float(model.num_parameters()),
        "dataset": data.description,
        "dataset_fingerprint": data.fingerprint,
        "device": str(dev),
        "threads": float(torch.get_num_threads()),
        # The worker's own packages: on a cluster they need not match the driver's.
        "versions": json.dumps(versions(), sort_keys=True),
        "data_seconds": time.perf_counter() - t0,
        # CPU results can depend on the thread count (reduction order): verify reuses it.
        "threads": float(torch.get_num_threads()),
    }

    def on_log(step: int, record: dict[str, float]) -> None:
        if report is not None:
            report({**record, "total_steps": config.train.steps})

    try:
        fit = train(
            model, x_train, config.train, seed=config.seed, y=y_train, on_log=on_log,
            resume=resume, save=save, checkpoint_every=checkpoint_every,
        )  # fmt: skip
    except Diverged as e:
        result.update(status="diverged", diverged_step=e.step, reason=str(e))
        _write_json(workdir / "result.json", result)
        _drop_checkpoint(state_dir)
        return result
    result.update(train_seconds=fit.seconds, train_images_per_second=fit.images_per_second)
    result["model_sha256"] = model_digest(model)
    if fit.resumed_from:
        result["resumed_from_step"] = fit.resumed_from
    t_after = time.perf_counter()
    after = model.after_training(x_train, y_train, seed=config.seed)
    if after:
        result.update(after)
        result["after_training_seconds"] = time.perf_counter() - t_after

    t1 = time.perf_counter()
    name = config.dataset.name  # the config's name: data.name may say "dsprites_like"
    feature_net = None
    if "fid" in config.eval.metrics:
        feature_net = _feature_net(name, data.image_shape[1], feature_nets)
    metrics, notes = evaluate(
        model, data, config.eval, device=dev, seed=config.seed, feature_net=feature_net,
        dataset_name=name,
    )  # fmt: skip
    result.update(metrics)
    result["eval_seconds"] = time.perf_counter() - t1
    result["notes"] = notes
    _write_images(model, data, config, workdir, dev)
    result["status"] = "finished"
    _write_json(workdir / "result.json", result)
    _drop_checkpoint(state_dir)
    return result


def model_digest(model: torch.nn.Module) -> str:
    """sha256 (16 hex) of the trained parameters' bytes: equal only for bitwise-equal models.

    A last-bit change in the numerics (another optimiser kernel, another reduction order) may
    not show in the metrics of a short run, but always shows here (`benchmark.numerics`).
    """
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _feature_net(
    dataset: str, resolution: int, cache_root: str | Path
) -> tuple[torch.nn.Module, dict] | str:
    """The dataset's cached domain feature net, or why there is none (recorded as a note)."""
    try:
        return load_or_train(dataset, resolution, cache_root, train_if_missing=False,
                             progress=lambda _: None)  # fmt: skip
    except FeatureNetError as e:
        return str(e)


@torch.no_grad()
def _write_images(
    model: variants.base.Variant, data: Dataset, config: TrialConfig, workdir: Path,
    dev: torch.device,
) -> None:  # fmt: skip
    n = max(8, min(config.eval.grid_images, data.x_test.shape[0]) // 8 * 8)
    x = data.x_test[:n].to(dev)
    y = None if data.y_test is None else data.y_test[:n].to(dev)
    recon = model.reconstruct(x, y)
    # Rows of 8 originals over their 8 reconstructions.
    pairs = torch.stack([x.view(-1, 8, *x.shape[1:]), recon.view(-1, 8, *x.shape[1:])], 1)
    save_image(pairs.flatten(0, 2).cpu(), workdir / "reconstructions.png", nrow=8, pad_value=0.5)
    gen = torch.Generator(device=dev).manual_seed(config.seed)
    samples = model.sample(n, y, generator=gen)
    save_image(samples.cpu(), workdir / "samples.png", nrow=8, pad_value=0.5)


def _drop_checkpoint(state_dir: str | Path | None) -> None:
    # The result is written: the training state is no longer needed and is the bulk of the disk.
    if state_dir is not None:
        (Path(state_dir) / "state.pt").unlink(missing_ok=True)


def _append_attempt(state_dir: Path, start_step: int) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    line = {"start_step": start_step, "pid": os.getpid(), "time": time.time()}
    with open(state_dir / "attempts.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)
