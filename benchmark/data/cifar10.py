"""CIFAR-10 from its python pickles: data_root/cifar-10-batches-py/{data_batch_1..5, test_batch},
else downloaded there by torchvision.

The pickles are read here rather than through torchvision, whose md5 checks only the original
files pass. Unpickling runs code named by the file, so only the numpy globals the real batches
use are allowed.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from . import official
from .base import DataError, Dataset, DatasetSpec, LoadRequest

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
SIDE = 32

_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),  # how protocol 2 stores bytes
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),  # the original files (numpy 1 names)
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"),  # protocol 5
    ("numpy.core.numeric", "_frombuffer"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (N, 3, 32, 32), int64 labels (N,)) of one batch file."""
    try:
        with path.open("rb") as fh:
            batch = _BatchUnpickler(fh, encoding="bytes").load()
        data, labels = batch[b"data"], batch[b"labels"]
    except (OSError, EOFError, pickle.UnpicklingError, TypeError, KeyError, ValueError) as err:
        raise DataError(
            f"dataset.data_root: corrupt CIFAR-10 batch {path} ({official.short_reason(err)}); "
            "replace it with the original"
        ) from err
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
        raise DataError(
            f"dataset.data_root: {path}: data must be uint8 (N, 3072); got {data.dtype} "
            f"{data.shape}"
        )
    if labels.shape != (len(data),) or (len(labels) and (labels.min() < 0 or labels.max() > 9)):
        raise DataError(f"dataset.data_root: {path}: expected {len(data)} labels in 0..9")
    # Each row is the red plane, then green, then blue, each row-major: exactly (3, 32, 32).
    return data.reshape(-1, 3, SIDE, SIDE), labels


def _present(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH))


def locate(root: Path) -> Path:
    """The folder of the batches under root, downloading them if any is missing."""
    folder = root / FOLDER
    if not _present(folder):
        files = ", ".join((*TRAIN_BATCHES, TEST_BATCH))
        help_text = f"put {files} (the python version, cifar-10-python.tar.gz) in {folder}/"
        official.download(SPEC.title, "CIFAR10", root, help_text)
        if not _present(folder):
            raise DataError(f"dataset.data_root: the CIFAR-10 download did not fill; {help_text}")
    return folder


def load_cifar10(
    n_train: int | None, n_test: int, split_seed: int, data_root: str | Path | None
) -> Dataset:
    """CIFAR-10, 32x32 RGB, 10 classes."""
    spec = SPEC
    folder = locate(official.resolve_data_root(data_root))
    batches = [_read_batch(folder / name) for name in TRAIN_BATCHES]
    x_train = np.concatenate([images for images, _ in batches])
    y_train = np.concatenate([labels for _, labels in batches])
    x_test, y_test = _read_batch(folder / TEST_BATCH)
    totals = (len(x_train), len(x_test))
    train_idx, test_idx = official.split(spec, totals, n_train, n_test, split_seed, str(folder))
    return official.make_dataset(
        spec,
        source=str(folder),
        preprocessing=f"{SIDE}x{SIDE} RGB",
        params=official.params(SIDE, n_train, n_test, split_seed),
        split=(train_idx, test_idx),
        totals=totals,
        images=(x_train[train_idx], x_test[test_idx]),
        labels=(y_train[train_idx], y_test[test_idx]),
    )


def _load(spec: DatasetSpec, request: LoadRequest) -> Dataset:
    return load_cifar10(request.n_train, request.n_test, request.split_seed, request.data_root)


SPEC = DatasetSpec(
    name="cifar10",
    title="CIFAR-10",
    description="CIFAR-10 32x32 RGB, official 50000/10000 split (python pickles)",
    resolutions=(SIDE,),
    channels=3,
    labelled=True,
    num_classes=10,
    has_factors=False,
    train_size=50_000,
    test_size=10_000,
    accepts_path=False,
    accepts_data_root=True,
    loader=_load,
)
