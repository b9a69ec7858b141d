"""One trial: build data, build the variant, train, evaluate, write images; no Ray, no MLflow.

`run_trial` is a plain function so that tests, `benchmark.verify` and the numerics probes call
it directly; the Ray Tune trainable in `benchmark.tune` is a thin wrapper around it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import save_image

import variants
from benchmark.atomic import write_text_atomic
from benchmark.checkpoint import load_checkpoint, save_checkpoint
from benchmark.config import TrialConfig
from benchmark.data import Dataset, load_dataset
from benchmark.data.binarize import binarize_batch, binarize_dataset
from benchmark.evaluate import evaluate
from benchmark.feature_nets import FeatureNetError, load_or_train
from benchmark.image_grids import labelled_grid
from benchmark.manifest import pick_device, versions
from benchmark.metrics import registry as metric_registry
from benchmark.numerics import trial_environment
from benchmark.paths import FEATURE_NETS
from benchmark.train import Diverged, kl_weight, train

Report = Callable[[dict[str, Any]], None]
# Subfolder of a trial's workdir with the labelled image grids that go to `mlflow.log_image`.
LABELLED_DIR = "labelled"


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
    return binarize_dataset(_LOADED[key], d.binarize, d.split_seed)


def build_model(config: TrialConfig, data: Dataset) -> variants.base.Variant:
    """The trial's variant with its likelihood; ValueError if the likelihood cannot model the
    data (e.g. discretized_logistic on pixels that are not 8-bit)."""
    likelihood = config.likelihood.build()
    check = getattr(likelihood, "data_problem", None)
    problem = check(data.x_train) if check is not None else None
    if problem:
        raise ValueError(f"likelihood: {problem} ({data.description})")
    cls = variants.get(config.variant)
    return cls(
        config.variant_config(),
        image_shape=data.image_shape,
        latent_dim=config.latent_dim,
        architecture=config.architecture,
        num_classes=data.num_classes,
        likelihood=likelihood,
        dataset_size=data.x_train.shape[0],
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
    feature_nets: str | Path = FEATURE_NETS,
    placement: dict[str, str] | None = None,
    on_checkpoint: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Train and evaluate one trial; images and `result.json` go to `workdir`.

    Returns a flat dict: `status` ('finished' or 'diverged'), the metrics, `params` (model size),
    timings, the dataset fingerprint and text notes. `report` receives the training curve as it
    is produced. A diverging loss is a result, not an exception; any other error propagates.
    'finished' means every parameter after the last update and every metric is finite; else the
    trial is 'diverged', with `diverged_step` and a `reason` naming what is not finite.

    With `state_dir`, training checkpoints go to `state_dir/state.pt` every `checkpoint_every`
    steps, a rerun continues from the last one, and every start is appended to
    `state_dir/attempts.jsonl` (the step it started from), so a resume is visible afterwards.
    `feature_nets` is the cache of domain feature nets (`fd_<dataset>`); a trial never trains
    one itself (`benchmark.run` prepares them before the trials start).
    `placement` (e.g. the Ray node id and host name) goes into the result and each attempt line;
    `on_checkpoint` runs after the attempt line and after each checkpoint is written (it copies
    them to remote storage, `benchmark.storage`).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dev = pick_device(device)
    trial_hash = config.hash()
    resume = save = None
    problems: list[str] = []  # files set aside as unreadable: each becomes a note
    if state_dir is not None:
        state_path = Path(state_dir) / "state.pt"
        resume = load_checkpoint(state_path, trial_hash, problems)

        def save(state: dict[str, Any]) -> None:
            save_checkpoint(state_path, {**state, "trial_hash": trial_hash})
            if on_checkpoint is not None:
                on_checkpoint()

        _append_attempt(Path(state_dir), 0 if resume is None else int(resume["step"]), placement)
        if on_checkpoint is not None:
            on_checkpoint()
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(dev.type == "cpu")

    t0 = time.perf_counter()
    data = load_trial_data(config, cache_dir)
    model = build_model(config, data).to(dev)
    x_train = data.x_train.to(dev)
    y_train = None if data.y_train is None else data.y_train.to(dev)
    result: dict[str, Any] = {
        "trial_hash": trial_hash,
        **(placement or {}),
        "n_params": float(model.num_parameters()),
        "dataset": data.description,
        "dataset_fingerprint": data.fingerprint,
        "device": str(dev),
        # The worker's own packages: on a cluster they need not match the driver's.
        "versions": json.dumps(versions(), sort_keys=True),
        "data_seconds": time.perf_counter() - t0,
        # CPU results can depend on the thread count (reduction order): verify reuses it.
        "threads": float(torch.get_num_threads()),
    }

    extra_notes = {f"checkpoint_{i}" if i else "checkpoint": p for i, p in enumerate(problems)}
    warmup_note = _warmup_note(config, model)
    if warmup_note:
        extra_notes["kl_warmup"] = warmup_note

    def on_log(step: int, record: dict[str, float]) -> None:
        if report is not None:
            report({**record, "total_steps": config.train.steps})

    try:
        fit = train(
            model, x_train, config.train, seed=config.seed, y=y_train, on_log=on_log,
            resume=resume, save=save, checkpoint_every=checkpoint_every,
            batch_transform=binarize_batch if config.dataset.binarize == "dynamic" else None,
        )  # fmt: skip
    except Diverged as e:
        return _diverged(result, e.step, str(e), extra_notes, workdir, state_dir)
    # The loss is checked before each update, so only this sees what the last update did.
    bad = _non_finite_parameters(model)
    if bad:
        why = f"parameters are not finite after the last update ({', '.join(bad)})"
        return _diverged(result, config.train.steps, why, extra_notes, workdir, state_dir)
    result.update(train_seconds=fit.seconds, train_images_per_second=fit.images_per_second)
    result["model_sha256"] = model_digest(model)
    result["environment"] = trial_environment(dev)
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
    if metric_registry.needs_feature_net(config.eval):
        feature_net = _feature_net(name, data.image_shape[1], feature_nets)
    metrics, notes = evaluate(
        model, data, config.eval, device=dev, seed=config.seed, feature_net=feature_net,
        dataset_name=name,
    )  # fmt: skip
    result.update(metrics)
    result["eval_seconds"] = time.perf_counter() - t1
    result["notes"] = {**notes, **extra_notes}
    bad = {k: v for k, v in result.items() if _is_number(v) and not math.isfinite(v)}
    if bad:
        for k in bad:  # no table or store may show inf, NaN or MLflow's 1.8e308 for them
            del result[k]
        why = "metrics are not finite: " + ", ".join(f"{k} = {v}" for k, v in sorted(bad.items()))
        return _diverged(result, config.train.steps, why, extra_notes, workdir, state_dir)
    _write_images(model, data, config, workdir, dev)
    write_traversals(model, data, workdir / "traversals.png", dev)
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
        # reshape(-1): a 0-dim tensor (the Gaussian likelihood's learned log σ) cannot be
        # viewed as bytes; the bytes of every other tensor, and so the digest, are unchanged.
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _diverged(
    result: dict[str, Any], step: int, why: str, notes: dict[str, str], workdir: Path,
    state_dir: str | Path | None,
) -> dict[str, Any]:  # fmt: skip
    result.update(status="diverged", diverged_step=step, reason=why)
    result["notes"] = {**result.get("notes", {}), **notes}
    _write_json(workdir / "result.json", result)
    _drop_checkpoint(state_dir)
    return result


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _non_finite_parameters(model: torch.nn.Module) -> list[str]:
    """Names of the parameters and buffers holding a NaN or an infinity (at most 3 named)."""
    bad = [
        name for name, t in [*model.named_parameters(), *model.named_buffers()]
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]  # fmt: skip
    return bad[:3] + ([f"{len(bad) - 3} more"] if len(bad) > 3 else [])


def _warmup_note(config: TrialConfig, model: variants.base.Variant) -> str | None:
    """A note when training ends before the KL warm-up does: the model was fit with a KL
    weight below 1, so its KL and ELBO are not those of a fully weighted objective."""
    warmup = config.train.kl_warmup_steps
    if warmup is None:
        warmup = model.default_kl_warmup_steps
    steps = config.train.steps
    if warmup <= steps:
        return None
    return (
        f"training ended at step {steps}, inside the {warmup}-step KL warm-up (final KL weight "
        f"{kl_weight(steps - 1, warmup):.2f}, not 1)"
    )


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
    # Labelled, upscaled copies for MLflow's image view (`Tracker.finish_trial` logs them).
    labelled = workdir / LABELLED_DIR
    labelled.mkdir(exist_ok=True)
    labelled_grid(pairs.flatten(0, 2).cpu(), ["input", "reconstruction"],
                  "test images: input row, then its reconstruction").save(
        labelled / "reconstructions.png")  # fmt: skip
    labelled_grid(samples.cpu(), ["sample"], "samples from the prior").save(
        labelled / "samples.png"
    )


TRAVERSAL_STEPS = 9
TRAVERSAL_RANGE = 3.0


@torch.no_grad()
def write_traversals(model: variants.base.Variant, data: Dataset, path: Path,
                     dev: torch.device) -> bool:  # fmt: skip
    """Latent traversals: row j decodes the first test image's posterior mean with latent j
    moved over ±3σ_j, σ_j the spread of latent j's posterior means over 500 test images (the
    aggregate posterior's std: about 1 for a used latent, about 0 for a collapsed one); 9
    steps, at most 16 latents.

    Writes `path` and returns True; False for variants without continuous latents or `decode`.
    """
    if not model.continuous_latents or data.y_test is not None and model.needs_labels:
        return False
    model.eval()
    x = data.x_test[:500].to(dev)
    means = model.encode(x).mean
    mean, std = means[0], means.std(0)
    steps = torch.linspace(-TRAVERSAL_RANGE, TRAVERSAL_RANGE, TRAVERSAL_STEPS, device=dev)
    rows = []
    for j in range(min(mean.shape[0], 16)):
        z = mean.repeat(TRAVERSAL_STEPS, 1)
        z[:, j] = mean[j] + steps * std[j]
        try:
            rows.append(model.decode(z))
        except NotImplementedError:
            return False
    save_image(torch.cat(rows).cpu(), path, nrow=TRAVERSAL_STEPS, pad_value=0.5)
    return True


def _drop_checkpoint(state_dir: str | Path | None) -> None:
    # The result is written: the training state is no longer needed and is the bulk of the disk.
    if state_dir is not None:
        (Path(state_dir) / "state.pt").unlink(missing_ok=True)


def _append_attempt(
    state_dir: Path, start_step: int, placement: dict[str, str] | None = None
) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    line = {"start_step": start_step, "pid": os.getpid(), "time": time.time(), **(placement or {})}
    with open(state_dir / "attempts.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True))
