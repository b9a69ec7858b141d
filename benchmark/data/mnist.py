"""MNIST and Fashion-MNIST, read from their four idx files.

Search order for the files (each plain or .gz): data_root/<name>/, then torchvision's layout
data_root/<FashionMNIST|MNIST>/raw/, then (Fashion-MNIST only) Debian's package location
SYSTEM_FASHION_MNIST; failing all, torchvision downloads them into data_root and they are read
from there. Resolution 28 is the original; 32 zero-pads 2 px on each side, the usual trick so
that stride-2 conv nets halve the side down to 4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import official
from .base import DataError, Dataset, DatasetSpec, LoadRequest
from .idx import read_idx

# `apt-get install dataset-fashion-mnist` puts the real files here; a module constant so that
# tests can point it elsewhere.
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
ORIGINAL_SIDE = 28
_TORCHVISION_CLASS = {"fashion_mnist": "FashionMNIST", "mnist": "MNIST"}


def candidate_folders(name: str, root: Path) -> list[Path]:
    """Where the files of `name` ("mnist" or "fashion_mnist") are looked for, in order."""
    folders = [root / name, root / _TORCHVISION_CLASS[name] / "raw"]
    if name == "fashion_mnist":
        folders.append(SYSTEM_FASHION_MNIST)
    return folders


def find_files(folder: Path) -> dict[str, Path] | None:
    """The four files in `folder` (plain preferred: no decompression), or None if any is missing."""
    found = {}
    for key, base in FILES.items():
        plain, gz = folder / base, folder / f"{base}.gz"
        if plain.is_file():
            found[key] = plain
        elif gz.is_file():
            found[key] = gz
        else:
            return None
    return found


def _help(name: str, root: Path) -> str:
    files = ", ".join(f"{base}.gz" for base in FILES.values())
    text = f"put {files} (or un-gzipped) in {root / name}/"
    if name == "fashion_mnist":
        text += (
            f", or run `apt-get install dataset-fashion-mnist` (it installs them in "
            f"{SYSTEM_FASHION_MNIST})"
        )
    return text


def locate(name: str, root: Path) -> tuple[Path, dict[str, Path]]:
    """(folder, files) of the first complete set of files, downloading if none is found."""
    for folder in candidate_folders(name, root):
        files = find_files(folder)
        if files is not None:
            return folder, files
    title = _SPECS[name].title
    official.download(title, _TORCHVISION_CLASS[name], root, _help(name, root))
    folder = root / _TORCHVISION_CLASS[name] / "raw"
    files = find_files(folder)
    if files is None:
        raise DataError(
            f"dataset.data_root: the {title} download finished but {folder} lacks some of "
            f"its files; {_help(name, root)}"
        )
    return folder, files


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if images.shape[1:] != (ORIGINAL_SIDE, ORIGINAL_SIDE):
        raise DataError(
            f"dataset.data_root: {images_path} holds {images.shape[1]}x{images.shape[2]} "
            f"images; expected {ORIGINAL_SIDE}x{ORIGINAL_SIDE}"
        )
    if len(labels) != len(images):
        raise DataError(
            f"dataset.data_root: {labels_path} has {len(labels)} labels for the "
            f"{len(images)} images of {images_path}"
        )
    if len(labels) and labels.max() >= 10:
        raise DataError(f"dataset.data_root: {labels_path} has labels >= 10")
    return images, labels


def pad(images: np.ndarray, resolution: int) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 1, R, R): zero borders of (R - 28) / 2 px, the image centred."""
    p = (resolution - ORIGINAL_SIDE) // 2
    return np.pad(images, ((0, 0), (p, p), (p, p)))[:, None]


def load_mnist_like(
    name: str,
    resolution: int,
    n_train: int | None,
    n_test: int,
    split_seed: int,
    data_root: str | Path | None,
) -> Dataset:
    """MNIST or Fashion-MNIST ("mnist" / "fashion_mnist") at resolution 28 or 32."""
    spec = _SPECS[name]
    root = official.resolve_data_root(data_root)
    # Validate against the official sizes before searching or downloading anything.
    folder, files = locate(name, root)
    x_train, y_train = _read_pair(files["train_images"], files["train_labels"])
    x_test, y_test = _read_pair(files["test_images"], files["test_labels"])
    totals = (len(x_train), len(x_test))
    train_idx, test_idx = official.split(spec, totals, n_train, n_test, split_seed, str(folder))
    preprocessing = f"{ORIGINAL_SIDE}x{ORIGINAL_SIDE}"
    if resolution != ORIGINAL_SIDE:
        preprocessing += f" zero-padded to {resolution}x{resolution}"
    return official.make_dataset(
        spec,
        source=str(folder),
        preprocessing=preprocessing,
        params=official.params(resolution, n_train, n_test, split_seed),
        split=(train_idx, test_idx),
        totals=totals,
        images=(pad(x_train[train_idx], resolution), pad(x_test[test_idx], resolution)),
        labels=(y_train[train_idx], y_test[test_idx]),
    )


def _load(spec: DatasetSpec, request: LoadRequest) -> Dataset:
    r = request
    return load_mnist_like(spec.name, r.resolution, r.n_train, r.n_test, r.split_seed, r.data_root)


_PADDING = "28x28 grey-scale; resolution 32 zero-pads 2 px on each side (for stride-2 conv nets)"
_MNIST_LIKE: dict = {
    "resolutions": (28, 32),
    "channels": 1,
    "labelled": True,
    "num_classes": 10,
    "has_factors": False,
    "train_size": 60_000,
    "test_size": 10_000,
    "accepts_path": False,
    "accepts_data_root": True,
    "loader": _load,
}
FASHION_MNIST = DatasetSpec(
    name="fashion_mnist",
    title="Fashion-MNIST",
    description=f"Zalando's Fashion-MNIST, official 60000/10000 split; {_PADDING}",
    **_MNIST_LIKE,
)
MNIST = DatasetSpec(
    name="mnist",
    title="MNIST",
    description=f"LeCun's MNIST digits, official 60000/10000 split; {_PADDING}",
    **_MNIST_LIKE,
)
_SPECS = {s.name: s for s in (FASHION_MNIST, MNIST)}
