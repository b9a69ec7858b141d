"""The in-memory dataset every variant and metric consumes, the error type of this package, and
`SPECS`: what each dataset allows (resolutions, channels, labels, factors, split sizes), which
sweep configs validate against without loading any data."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

# Draws n points (every factor class independently uniform) and returns their images and classes.
FactorSampler = Callable[[int, np.random.Generator], tuple[torch.Tensor, np.ndarray]]


class DataError(Exception):
    """A bad dataset argument or file; the message names the config key and the allowed values."""


# eq=False: the generated __eq__/__hash__ would compare tensors and arrays element-wise, which
# raises ("truth value of a tensor is ambiguous") instead of answering; identity is what callers
# want, and the fingerprint is the content identity.
@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    description: str
    x_train: torch.Tensor
    x_test: torch.Tensor
    y_train: torch.Tensor | None
    y_test: torch.Tensor | None
    num_classes: int | None
    factors_test: np.ndarray | None
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    fingerprint: str
    sample_factors: FactorSampler | None
    # Which factor is the class label (dSprites: the shape), so that label-conditioned variants
    # can encode images drawn by `sample_factors`; None when labels are not a factor.
    label_factor: int | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))

    def __repr__(self) -> str:
        # The default repr would print whole tensors; one line is what logs and tables need.
        return f"Dataset({self.name!r}, {self.description!r}, fingerprint={self.fingerprint})"


# --- what each dataset allows: the registry the config validates against ----------------------


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

    @property
    def pooled(self) -> bool:
        return self.test_size is None

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


_MNIST_LIKE = {
    "resolutions": (28, 32),
    "channels": 1,
    "labelled": True,
    "num_classes": 10,
    "has_factors": False,
    "train_size": 60_000,
    "test_size": 10_000,
    "accepts_path": False,
    "accepts_data_root": True,
}
_PADDING = "28x28 grey-scale; resolution 32 zero-pads 2 px on each side (for stride-2 conv nets)"

SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="dsprites",
            title="dSprites",
            description=(
                "binary 64x64 sprites on a 3x6x40x32x32 factor grid: the real npz given by "
                "dataset.path, else vaebench's dSprites-like renderer (not comparable with "
                "published numbers); 32 and 16 are 2x2 / 4x4 pooled"
            ),
            resolutions=(64, 32, 16),
            channels=1,
            labelled=True,  # the shape
            num_classes=3,
            has_factors=True,
            train_size=737_280,  # = dsprites.GRID_SIZE (not imported: dsprites imports base)
            test_size=None,
            accepts_path=True,
            accepts_data_root=False,
        ),
        DatasetSpec(
            name="digits",
            title="Digits (8x8)",
            description="scikit-learn's bundled 8x8 handwritten digits, pixel counts 0..16 / 16",
            resolutions=(8,),
            channels=1,
            labelled=True,
            num_classes=10,
            has_factors=False,
            train_size=1797,
            test_size=None,
            accepts_path=False,
            accepts_data_root=False,
        ),
        DatasetSpec(
            name="fashion_mnist",
            title="Fashion-MNIST",
            description=f"Zalando's Fashion-MNIST, official 60000/10000 split; {_PADDING}",
            **_MNIST_LIKE,
        ),
        DatasetSpec(
            name="mnist",
            title="MNIST",
            description=f"LeCun's MNIST digits, official 60000/10000 split; {_PADDING}",
            **_MNIST_LIKE,
        ),
        DatasetSpec(
            name="cifar10",
            title="CIFAR-10",
            description="CIFAR-10 32x32 RGB, official 50000/10000 split (python pickles)",
            resolutions=(32,),
            channels=3,
            labelled=True,
            num_classes=10,
            has_factors=False,
            train_size=50_000,
            test_size=10_000,
            accepts_path=False,
            accepts_data_root=True,
        ),
        DatasetSpec(
            name="celeba",
            title="CelebA",
            description=(
                "CelebA aligned faces (178x218 JPEGs), images only (no labels); the usual VAE "
                "protocol: centre crop 148x148, then bilinear antialiased resize to 64x64; "
                "official partition: 162770 train (0) / 19962 test (2), validation unused"
            ),
            resolutions=(64,),
            channels=3,
            labelled=False,  # attributes exist, but we use images only
            num_classes=None,
            has_factors=False,
            train_size=162_770,
            test_size=19_962,
            accepts_path=False,
            accepts_data_root=True,
        ),
    )
}
