"""What a dataset is, known without loading it: `DatasetSpec` (sizes, resolutions, channels,
labels, factors, which sources it reads, and its loader), `LoadRequest` (the arguments a loader
receives) and `DataError`. Sweep configs validate against specs; `benchmark.data.registry` holds
them by name. Nothing here imports torch.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Dataset

__all__ = ["DataError", "DatasetSpec", "LoadRequest", "Loader", "split_problem"]


class DataError(Exception):
    """A bad dataset argument or file; the message names the config key and the allowed values."""


@dataclass(frozen=True)
class LoadRequest:
    """What `load_dataset` asks a loader for, already checked against the spec.

    resolution: the image side in pixels (the spec's default filled in); n_train: None for all
    (pooled: all not in the test split); n_test: test images; split_seed: the split's
    permutation seed; path: a file of the data (datasets with `accepts_path`); data_root: the
    folder downloadable datasets live in (None: the default); cache_dir: a cache for datasets
    that render their images (None: none).
    """

    resolution: int
    n_train: int | None
    n_test: int
    split_seed: int
    path: str | None = None
    data_root: str | Path | None = None
    cache_dir: str | Path | None = None


Loader = Callable[["DatasetSpec", LoadRequest], "Dataset"]


def split_problem(
    dataset: str,
    n_train: int | None,
    n_test: int,
    train_size: int,
    test_size: int | None,
    where: str = "",
) -> str | None:
    """Why (n_train, n_test) does not fit a dataset, or None when it does.

    test_size=None means a pooled dataset: both splits are drawn from one pool of train_size
    images, so n_train + n_test <= train_size (n_train=None: all the rest, at least one).
    Otherwise the splits come from the official train and test sets separately
    (n_train=None: the whole train set). `where` (e.g. " in /data/mnist") says which files the
    sizes were counted in, when they are not the official sizes.
    """
    for key, value in (("dataset.n_train", n_train), ("dataset.n_test", n_test)):
        if value is None and key == "dataset.n_train":
            continue
        # bool is an int subclass, but `n_test: true` in a YAML sweep is a typo, not 1.
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            return f"{key}: {value!r} is not allowed; allowed: an integer >= 1"
    if test_size is None:
        total = train_size
        if n_train is None and n_test >= total:
            return (
                f"dataset.n_test: {n_test} leaves no training images; {dataset} has {total} "
                f"images{where}, so dataset.n_test must be < {total}"
            )
        if n_train is not None and n_train + n_test > total:
            return (
                f"dataset.n_train + dataset.n_test: {n_train} + {n_test} = {n_train + n_test} "
                f"exceeds the {total} images of {dataset}{where}; allowed: a sum <= {total}"
            )
        return None
    if n_test > test_size:
        return (
            f"dataset.n_test: {n_test} exceeds the {test_size} test images of {dataset}{where}; "
            f"allowed: 1..{test_size}"
        )
    if n_train is not None and n_train > train_size:
        return (
            f"dataset.n_train: {n_train} exceeds the {train_size} training images of "
            f"{dataset}{where}; allowed: 1..{train_size}, or null for all"
        )
    return None


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset allows, known without reading it: the sweep config validates against this.

    Sizes are the official ones. Pooled datasets (test_size=None; dsprites, digits) have no
    official split: train_size is the pool both splits are drawn from. Loaders still check a
    split against the files actually on disk, which may hold fewer images (a test fixture).
    """

    name: str
    title: str  # human name, for tables
    description: str  # source and preprocessing, one sentence
    resolutions: tuple[int, ...]  # allowed image sides; the first is the default
    channels: int
    labelled: bool  # class labels available (label-conditioned variants need them)
    num_classes: int | None
    has_factors: bool  # ground-truth factors (MIG needs them)
    train_size: int
    test_size: int | None
    accepts_path: bool  # dataset.path: a file of the real data (dsprites' npz)
    accepts_data_root: bool  # dataset.data_root: the folder downloaded files live in
    # Builds the Dataset; declared next to it in benchmark/data/<name>.py.
    loader: Loader = field(repr=False, compare=False)
    # What dataset.path names, for datasets that accept one (e.g. "the real dSprites .npz").
    path_help: str = ""
    # Why dataset.path is refused, for datasets that do not accept one.
    no_path_reason: str = "use dataset.data_root"
    # load_dataset arguments of the domain feature net's training split (benchmark.feature_nets)
    # where the loader's defaults do not fit (e.g. a pool smaller than n_test=2000).
    feature_net_split: dict[str, int] = field(default_factory=dict)

    @property
    def pooled(self) -> bool:
        """True when both splits are drawn from one pool (no official test set)."""
        return self.test_size is None

    def load(self, request: LoadRequest) -> Dataset:
        """The dataset for a checked `request` (`benchmark.data.load_dataset` checks it).

        Raises DataError on missing or unreadable files, or a split the files cannot hold.
        """
        return self.loader(self, request)

    def check_sources(self, path: str | None, data_root: str | Path | None) -> str | None:
        """Why `path` / `data_root` are not allowed for this dataset (a `DataError` message
        naming the key), or None."""
        if path is not None and not self.accepts_path:
            return (
                f"dataset.path: {path!r} is not allowed for {self.name} ({self.no_path_reason}); "
                "allowed: null"
            )
        if data_root is not None and not self.accepts_data_root:
            from .registry import SPECS

            allowed = [n for n, s in SPECS.items() if s.accepts_data_root]
            return (
                f"dataset.data_root: {str(data_root)!r} is not allowed for {self.name}; allowed: "
                f"null (only {', '.join(allowed)} read files from a data root)"
            )
        return None

    def resolution_problem(self, resolution: object) -> str | None:
        """Why `resolution` (pixels; None: the default) is not allowed, or None."""
        if resolution is None or (
            not isinstance(resolution, bool) and resolution in self.resolutions
        ):
            return None
        allowed = ", ".join(map(str, sorted(self.resolutions)))
        return f"{resolution} is not allowed for {self.name}; allowed: {allowed}"

    def check_config(
        self,
        resolution: int | None,
        n_train: int | None,
        n_test: int,
        path: str | None,
        data_root: str | None,
        *,
        check_files: bool = True,
    ) -> str | None:
        """Why a sweep's `dataset:` block does not fit this dataset (one line), or None: the
        resolution, the split against the official sizes, and the sources (a given `path`
        must exist, unless check_files=False: a report rebuilt after the file moved)."""
        problem = self.resolution_problem(resolution)
        if problem:
            return problem
        problem = self.check_split(n_train, n_test)
        if problem:
            return problem
        from .registry import SPECS

        if path is not None and not self.accepts_path:
            allowed = ", ".join(f"{n} ({s.path_help})" for n, s in SPECS.items() if s.accepts_path)
            return f"path is only for {allowed}, not {self.name}"
        if check_files and path is not None and not Path(path).is_file():
            return f"path {path!r} does not exist ({self.path_help})"
        if data_root is not None and not self.accepts_data_root:
            allowed = ", ".join(n for n, s in SPECS.items() if s.accepts_data_root)
            return f"data_root is only for {allowed}, not {self.name}"
        return None

    def check_resolution(self, resolution: object) -> int:
        """The resolution to use (None: the default); a DataError if it is not allowed."""
        if resolution is None:
            return self.resolutions[0]
        # bool is an int subclass, and True would otherwise pass as resolution 1.
        if isinstance(resolution, bool) or resolution not in self.resolutions:
            allowed = ", ".join(map(str, sorted(self.resolutions)))
            raise DataError(
                f"dataset.resolution: {resolution!r} is not allowed for {self.name}; "
                f"allowed: {allowed}"
            )
        return int(resolution)  # type: ignore[call-overload]

    def image_shape(self, resolution: int | None = None) -> tuple[int, int, int]:
        """(C, H, W) of the images at `resolution` (None: the default)."""
        side = self.check_resolution(resolution)
        return (self.channels, side, side)

    def check_split(self, n_train: int | None, n_test: int) -> str | None:
        """Why the split does not fit the official sizes (naming the config keys), or None."""
        return split_problem(self.name, n_train, n_test, self.train_size, self.test_size)

    def train_images(self, n_train: int | None, n_test: int) -> int:
        """How many training images a valid split yields (n_train=None: all there are)."""
        if n_train is not None:
            return n_train
        return self.train_size - n_test if self.pooled else self.train_size
