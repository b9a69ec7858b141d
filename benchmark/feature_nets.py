"""The domain feature network behind `fd_<dataset>`: a small classifier, trained once and cached.

`fd_<name>` is a Fréchet distance in the 128-d penultimate features of a conv classifier trained
on the dataset itself (at the resolution the VAEs see, so no resize), instead of Inception-v3
features of 299x299 upsampled images. Targets: the class labels of a labelled dataset; for a
dataset with ground-truth factors (dSprites), one head per factor, trained on freshly sampled
images, so the features also see scale, orientation and position, not only the shape.

The trained net is cached as `<cache_root>/fd_<name>_<resolution>px.pt` (its state_dict and
architecture, read back with `torch.load(..., weights_only=True)`) plus a `.json` sidecar that
records what it was trained on and how well it classifies. The same file names at the same
FORMAT_VERSION always mean the same training recipe, so numbers from different runs that use one
cached net are comparable.

    python -m benchmark.feature_nets --dataset fashion_mnist --resolution 32
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock
from torch import nn

from benchmark.atomic import write_bytes_atomic
from benchmark.cli import Parser
from benchmark.data import SPECS, DataError, Dataset, load_dataset
from benchmark.paths import FEATURE_NETS
from benchmark.readback import set_aside

# Bump whenever the architecture, the targets or the training recipe change: a cache written
# under another version is never silently reused.
FORMAT_VERSION = 1
FEATURE_DIM = 128
WIDTHS = (32, 64, 128)  # conv channels per block: ~0.06 s per 128-image step at 32 px, one core
POOL_SIDE = 4  # adaptive pooling keeps a coarse 4x4 map: dSprites' position factors need it
MIN_SIDE = 8

# Defaults, measured on Fashion-MNIST at 32 px on one core: 89.4% test accuracy in ~2.5 min
# (1000 steps: 88.0%). dSprites-like at 32 px: shape 0.73, scale 0.84, position 0.98.
DEFAULT_STEPS = 1500
DEFAULT_BATCH_SIZE = 128
DEFAULT_LR = 2e-3
# Factor datasets draw one pool of fresh images (stored as uint8, exact for 8-bit and binary
# images) instead of calling sample_factors every step: the real dSprites sampler streams
# through its 3 GB file on every call.
FACTOR_POOL_MAX = 50_000
FACTOR_TEST_SIZE = 5_000
_EVAL_BATCH = 1000

Progress = Callable[[str], object]


class FeatureNetError(ValueError):
    """A dataset, argument or cache the feature network cannot use; one line saying why."""


class UnreadableCache(FeatureNetError):
    """The cached files exist but cannot be read or do not match each other (damaged)."""


def metric_name(dataset: str) -> str:
    """The metric column a net trained on `dataset` produces, e.g. fd_fashion_mnist."""
    return f"fd_{dataset}"


class FeatureNet(nn.Module):
    """Three ReLU conv blocks (no BatchNorm), a 4x4 adaptive average pool, a 128-d feature layer,
    then one linear head per target.

    Input: float images in [0, 1], shape (N, in_channels, H, W) with H, W >= 8. `forward`
    returns a dict of logits per head; `features` the 128-d post-ReLU feature layer, which
    `fd_<name>` compares.
    """

    def __init__(self, in_channels: int, heads: Mapping[str, int]):
        super().__init__()
        if not heads:
            raise FeatureNetError("FeatureNet needs at least one head")
        self.in_channels = int(in_channels)
        self.num_features = FEATURE_DIM
        self.heads_spec = {str(k): int(v) for k, v in heads.items()}
        a, b, c = WIDTHS
        # Stride-2 convs rather than conv + max-pool: at the same cost per step they allow twice
        # the width (Fashion-MNIST, 1500 steps: 89.1% vs 87.9% test accuracy).
        self.body = nn.Sequential(
            nn.Conv2d(self.in_channels, a, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(a, b, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(b, c, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(POOL_SIDE),
            nn.Flatten(),
            nn.Linear(c * POOL_SIDE * POOL_SIDE, FEATURE_DIM),
            nn.ReLU(),
        )
        self.heads = nn.ModuleDict(
            {name: nn.Linear(FEATURE_DIM, size) for name, size in self.heads_spec.items()}
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) floats in [0, 1] -> (N, 128) penultimate activations."""
        if x.dim() != 4 or x.shape[1] != self.in_channels or min(x.shape[2:]) < MIN_SIDE:
            raise FeatureNetError(
                f"FeatureNet expects (N, {self.in_channels}, H, W) with H, W >= {MIN_SIDE}; "
                f"got {tuple(x.shape)}"
            )
        return self.body(x)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per head: {head name: (N, classes)} for images (N, C, H, W) in [0, 1]."""
        h = self.features(x)
        return {name: head(h) for name, head in self.heads.items()}

    def architecture(self) -> dict:
        """What the constructor needs: saved next to the weights."""
        return {
            "in_channels": self.in_channels,
            "heads": [[k, v] for k, v in self.heads_spec.items()],
        }


def parameter_count(net: nn.Module) -> int:
    """The number of scalar parameters of `net`."""
    return sum(p.numel() for p in net.parameters())


# --- targets ------------------------------------------------------------------------------------


def targets(data: Dataset) -> tuple[str, dict[str, int]]:
    """("factors" | "labels", {head name: classes}) for `data`; factors win when both exist."""
    if data.sample_factors is not None and data.factor_sizes:
        return "factors", dict(zip(data.factor_names, data.factor_sizes, strict=True))
    if data.y_train is not None and data.y_test is not None and data.num_classes:
        return "labels", {"label": int(data.num_classes)}
    raise FeatureNetError(
        f"{metric_name(data.name)}: {data.name} has no labels or factors; use fid_inception"
    )


def _check_images(data: Dataset) -> None:
    side = min(data.image_shape[1:])
    if side < MIN_SIDE:
        raise FeatureNetError(
            f"{metric_name(data.name)}: images are {side} px; the feature net needs >= {MIN_SIDE}"
        )


class _Batches:
    """Training batches: (images float [0,1], {head: int64 classes}), deterministic per seed."""

    def __init__(self, data: Dataset, kind: str, *, seed: int, steps: int, batch_size: int):
        self.batch_size = batch_size
        self.gen = torch.Generator().manual_seed(seed)
        if kind == "labels":
            self.images = data.x_train
            self.classes = {"label": data.y_train}
        else:
            n = min(steps * batch_size, FACTOR_POOL_MAX)
            x, factor_classes = data.sample_factors(n, np.random.default_rng([seed, 0]))
            self.images = _to_uint8(x)
            cls = torch.from_numpy(np.asarray(factor_classes, dtype=np.int64))
            self.classes = {name: cls[:, i] for i, name in enumerate(data.factor_names)}
        self.order = torch.empty(0, dtype=torch.int64)

    def next(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # Epoch-wise permutations: every image is seen once per pass.
        if len(self.order) < self.batch_size:
            perm = torch.randperm(len(self.images), generator=self.gen)
            self.order = torch.cat([self.order, perm])
        idx, self.order = self.order[: self.batch_size], self.order[self.batch_size :]
        return _to_float(self.images[idx]), {k: v[idx] for k, v in self.classes.items()}


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def _to_float(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float32) / 255 if x.dtype == torch.uint8 else x


# --- training and accuracy ----------------------------------------------------------------------


def _check_int(key: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise FeatureNetError(f"{key}: {value!r} is not allowed; allowed: an integer >= {minimum}")
    return value


def train_feature_net(
    data: Dataset,
    *,
    seed: int = 0,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    progress: Progress = print,
    metric: str | None = None,
) -> tuple[FeatureNet, dict]:
    """Train the feature net on `data` (Adam, cosine-decayed lr, summed cross-entropy over heads).

    Deterministic on CPU for a given seed. Returns the net (in eval mode) and an info dict with
    the test accuracy per head: on the test split for labels, on FACTOR_TEST_SIZE freshly
    sampled images (a seed stream separate from training) for factors. `metric` labels the
    progress lines (default fd_<data.name>).
    """
    steps = _check_int("steps", steps)
    batch_size = _check_int("batch_size", batch_size)
    seed = _check_int("seed", seed, minimum=0)
    kind, heads = targets(data)
    _check_images(data)
    name = metric or metric_name(data.name)
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
        torch.manual_seed(seed)
        net = FeatureNet(data.image_shape[0], heads)
    batches = _Batches(data, kind, seed=seed, steps=steps, batch_size=batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    progress(f"{name}: training a {parameter_count(net)}-parameter feature net on {kind} "
             f"{list(heads)} for {steps} steps of {batch_size}")  # fmt: skip
    t0 = time.monotonic()
    every = max(1, steps // 10)
    net.train()
    for step in range(1, steps + 1):
        x, y = batches.next()
        logits = net(x)
        loss = sum(F.cross_entropy(logits[k], y[k]) for k in heads)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % every == 0 or step == steps:
            progress(f"{name}: step {step}/{steps} loss {loss.item():.3f} "
                     f"({time.monotonic() - t0:.0f}s)")  # fmt: skip
    net.eval()
    # A net with NaN or infinite weights would score every trial's FD as NaN: never cache one.
    if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
        raise FeatureNetError(
            f"{name}: training diverged (non-finite weights after {steps} steps); nothing cached"
        )
    accuracy, test_set = accuracy_per_head(net, data, kind, seed=seed)
    progress(f"{name}: test accuracy " + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()))
    info = {
        "targets": kind,
        "heads": heads,
        "test_accuracy": accuracy,
        "chance_accuracy": {k: 1.0 / v for k, v in heads.items()},
        "test_set": test_set,
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "parameters": parameter_count(net),
        "train_seconds": round(time.monotonic() - t0, 1),
    }
    return net, info


@torch.no_grad()
def accuracy_per_head(
    net: FeatureNet, data: Dataset, kind: str, *, seed: int = 0
) -> tuple[dict[str, float], str]:
    """Accuracy per head and a description of the images it was measured on."""
    if kind == "labels":
        x, classes = data.x_test, {"label": data.y_test}
        where = f"the test split ({len(x)} images)"
    else:
        x, factor_classes = data.sample_factors(FACTOR_TEST_SIZE, np.random.default_rng([seed, 1]))
        cls = torch.from_numpy(np.asarray(factor_classes, dtype=np.int64))
        classes = {name: cls[:, i] for i, name in enumerate(data.factor_names)}
        where = f"{FACTOR_TEST_SIZE} freshly sampled images (rng [seed, 1])"
    correct = dict.fromkeys(classes, 0)
    for start in range(0, len(x), _EVAL_BATCH):
        logits = net(_to_float(x[start : start + _EVAL_BATCH]))
        for k, y in classes.items():
            pred = logits[k].argmax(dim=1)
            correct[k] += int((pred == y[start : start + _EVAL_BATCH]).sum())
    return {k: round(c / len(x), 4) for k, c in correct.items()}, where


# --- the cache ----------------------------------------------------------------------------------


def cache_paths(name: str, resolution: int, cache_root: str | Path) -> tuple[Path, Path]:
    """(weights .pt, sidecar .json) of the cached net for `name` at `resolution`."""
    stem = f"{metric_name(name)}_{resolution}px"
    root = Path(cache_root)
    return root / f"{stem}.pt", root / f"{stem}.json"


def save_cache(net: FeatureNet, meta: dict, pt: Path, js: Path) -> dict:
    """Write weights then sidecar (each atomically); the sidecar carries the weights' sha256,
    so a crash between the two writes is detected on load. Returns the sidecar dict."""
    buf = io.BytesIO()
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save(
        {"format_version": FORMAT_VERSION, "architecture": net.architecture(), "state_dict": state},
        buf,
    )
    weights = buf.getvalue()
    meta = {**meta, "format_version": FORMAT_VERSION,
            "weights_sha256": hashlib.sha256(weights).hexdigest()}  # fmt: skip
    write_bytes_atomic(pt, weights)
    write_bytes_atomic(js, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    return meta


def read_cache(pt: Path, js: Path) -> tuple[FeatureNet, dict]:
    """Load a cached net; FeatureNetError naming the problem if it is missing or unusable."""
    if not pt.exists() or not js.exists():
        raise FeatureNetError(f"no cached feature net at {pt}")
    try:
        meta = json.loads(js.read_text())
        weights = pt.read_bytes()
        blob = torch.load(io.BytesIO(weights), weights_only=True, map_location="cpu")
        if not (isinstance(meta, dict) and isinstance(blob, dict)):
            raise ValueError("not a mapping")
    # Broad: a damaged zip fails in torch as RuntimeError, EOFError, UnpicklingError, ...
    except Exception as err:  # noqa: BLE001
        first = (str(err).splitlines() or [""])[0]
        raise UnreadableCache(f"unreadable cached feature net {pt}: {first}") from err
    versions = {meta.get("format_version"), blob.get("format_version")}
    if versions != {FORMAT_VERSION}:
        found = ", ".join(sorted(map(str, versions)))
        raise FeatureNetError(
            f"cached feature net {pt} has format version {found}; this code needs {FORMAT_VERSION}"
        )
    if meta.get("weights_sha256") != hashlib.sha256(weights).hexdigest():
        raise UnreadableCache(f"cached feature net {pt} does not match its sidecar {js.name}")
    arch = blob["architecture"]
    net = FeatureNet(arch["in_channels"], dict((k, v) for k, v in arch["heads"]))
    net.load_state_dict(blob["state_dict"])
    net.eval()
    return net, meta


def load_training_data(name: str, resolution: int, data_root: str | Path | None = None) -> Dataset:
    """The dataset split the cached net for (name, resolution) is always trained on."""
    # The spec's split where the loader's defaults do not fit (factor datasets train on sampled
    # images, so their stored split can be small); an official split: its whole test set.
    spec = SPECS.get(name)
    kwargs: dict[str, object] = dict(spec.feature_net_split) if spec is not None else {}
    if spec is not None and spec.test_size is not None:
        kwargs.setdefault("n_test", spec.test_size)  # official split: its whole test set
    # Only passed when given, so loaders that take no data_root keep working.
    if data_root is not None:
        kwargs["data_root"] = str(data_root)
    return load_dataset(name, resolution=resolution, **kwargs)


def load_or_train(
    name: str,
    resolution: int,
    cache_root: str | Path,
    *,
    data_root: str | Path | None = None,
    train_if_missing: bool = True,
    force: bool = False,
    seed: int = 0,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress = print,
) -> tuple[FeatureNet, dict]:
    """The cached feature net for `fd_<name>` at `resolution`, training (and caching) it if the
    cache is missing, stale (another FORMAT_VERSION) or broken, or if `force`.

    A usable cache is returned as it is, whatever `steps` says (use `force` to retrain).
    train_if_missing=False raises FeatureNetError instead of training. Returns (net in eval
    mode, the sidecar dict).
    """
    pt, js = cache_paths(name, resolution, cache_root)
    if not train_if_missing:  # read only: trials load the net concurrently, nobody writes
        return _load_or_train(name, resolution, pt, js, data_root, False, force, seed, steps,
                              batch_size, progress)  # fmt: skip
    # Two drivers (or a driver and the CLI) must not both train it and interleave the weights
    # of one with the sidecar of the other: the second waits, then finds the first one's net.
    # The lock lives outside the cache folder: DVC hashes that folder as a dependency.
    key = hashlib.sha256(str(pt.resolve()).encode()).hexdigest()[:16]
    with FileLock(os.path.join(tempfile.gettempdir(), f"vaebench-fd-{key}.lock"), timeout=3600):
        return _load_or_train(name, resolution, pt, js, data_root, True, force, seed, steps,
                              batch_size, progress)  # fmt: skip


def _load_or_train(
    name: str, resolution: int, pt: Path, js: Path, data_root: str | Path | None,
    train_if_missing: bool, force: bool, seed: int, steps: int, batch_size: int,
    progress: Progress,
) -> tuple[FeatureNet, dict]:  # fmt: skip
    metric = metric_name(name)
    if not force:
        try:
            net, meta = read_cache(pt, js)
        except FeatureNetError as err:
            if not train_if_missing:
                raise FeatureNetError(
                    f"{metric}: {err}; train it with `python -m benchmark.feature_nets "
                    f"--dataset {name} --resolution {resolution} --cache-root {pt.parent}`"
                ) from None
            if isinstance(err, UnreadableCache):  # kept for a post-mortem, then recomputed
                for path in (pt, js):
                    if path.exists():
                        set_aside(path, str(err))
            progress(f"{metric}: {err}; training one")
        else:
            progress(f"{metric}: loaded cached feature net {pt}")
            return net, meta
    data = load_training_data(name, resolution, data_root)
    net, info = train_feature_net(
        data, seed=seed, steps=steps, batch_size=batch_size, progress=progress, metric=metric
    )
    meta = {
        "metric": metric,
        "dataset": name,
        "resolution": resolution,
        "dataset_description": data.description,
        "dataset_fingerprint": data.fingerprint,
        "feature_dim": FEATURE_DIM,
        "resize": "none (trained at the dataset's resolution)",
        **info,
        "torch_version": torch.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    meta = save_cache(net, meta, pt, js)
    progress(f"{metric}: cached at {pt}")
    return net, meta


# --- CLI ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmark.feature_nets`: train (or load) and cache one domain feature net.

    Exit codes: 0 done; 2 a bad argument, dataset or cache (one line, no traceback).
    """
    parser = Parser(prog="python -m benchmark.feature_nets", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="dataset name, e.g. fashion_mnist")
    parser.add_argument("--resolution", type=int, required=True, help="image side in pixels")
    parser.add_argument(
        "--cache-root", default=str(FEATURE_NETS),
        help="cache folder (default: the repository's results/feature_nets, as benchmark.run)",
    )  # fmt: skip
    parser.add_argument("--data-root", default=None, help="folder of downloaded dataset files")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="retrain even if cached")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        _check_int("--steps", args.steps)
        _check_int("--resolution", args.resolution)
        _check_int("--seed", args.seed, minimum=0)
        _, meta = load_or_train(
            args.dataset, args.resolution, args.cache_root, data_root=args.data_root,
            force=args.force, seed=args.seed, steps=args.steps,
        )  # fmt: skip
    except (FeatureNetError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    acc = ", ".join(f"{k} {v:.3f}" for k, v in meta["test_accuracy"].items())
    print(f"{meta['metric']} ({meta['resolution']} px, {meta['steps']} steps): test accuracy {acc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
