"""CelebA (aligned and cropped faces), images only: data_root/celeba/img_align_celeba/*.jpg plus
data_root/celeba/list_eval_partition.txt, else torchvision's download into the same layout.

The partition file's lines are "000001.jpg 0" (0 train, 1 validation, 2 test); we use 0 as the
train set and 2 as the test set. Each image is centre-cropped to 148x148 (offsets rounded as
torchvision's CenterCrop does) and resized to 64x64, bilinear with antialiasing (PIL's resize):
the usual VAE protocol. Only the images the split selects are decoded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import official
from .base import DataError, Dataset, DatasetSpec, LoadRequest

FOLDER = "celeba"
IMAGES = "img_align_celeba"
PARTITION = "list_eval_partition.txt"
CROP = 148
SIDE = 64
TRAIN_PART, TEST_PART = "0", "2"


def _help(folder: Path) -> str:
    return (
        f"put the aligned JPEGs in {folder / IMAGES}/ and {PARTITION} in {folder}/ "
        "(from img_align_celeba.zip and Eval/list_eval_partition.txt of the official release)"
    )


def _present(folder: Path) -> bool:
    return (folder / PARTITION).is_file() and (folder / IMAGES).is_dir()


def locate(root: Path) -> Path:
    """The celeba folder under root, downloading it if it is missing."""
    folder = root / FOLDER
    if not _present(folder):
        # torchvision fetches from Google Drive, which often refuses; the message says what to do.
        official.download(SPEC.title, "CelebA", root, _help(folder), split="all")
        if not _present(folder):
            raise DataError(f"dataset.data_root: the CelebA download did not fill; {_help(folder)}")
    return folder


def read_partition(path: Path) -> tuple[list[str], list[str]]:
    """(train file names, test file names) in the file's order."""
    parts: dict[str, list[str]] = {TRAIN_PART: [], "1": [], TEST_PART: []}
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"dataset.data_root: cannot read {path}: {err}") from err
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in parts:
            raise DataError(
                f"dataset.data_root: {path}:{number}: expected '<image>.jpg <0|1|2>', got {line!r}"
            )
        parts[fields[1]].append(fields[0])
    return parts[TRAIN_PART], parts[TEST_PART]


def crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The centred CROP x CROP box, offsets rounded like torchvision's CenterCrop."""
    left = int(round((width - CROP) / 2.0))
    top = int(round((height - CROP) / 2.0))
    return (left, top, left + CROP, top + CROP)


def decode(path: Path) -> np.ndarray:
    """One image: RGB, centre crop, resize; uint8 (3, 64, 64)."""
    # Imported here: only CelebA needs PIL.
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(f"dataset.data_root: cannot read CelebA image {path}: {err}") from err
    width, height = rgb.size
    if width < CROP or height < CROP:
        raise DataError(
            f"dataset.data_root: {path} is {width}x{height}; the centre crop needs at least "
            f"{CROP}x{CROP} (aligned CelebA images are 178x218)"
        )
    # Crop first, then resize (not resize(box=...), whose filter would also read pixels
    # outside the box). PIL's bilinear filter widens its support when downscaling: antialiasing.
    cropped = rgb.crop(crop_box(width, height))
    small = cropped.resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.uint8).transpose(2, 0, 1)


def _decode_all(folder: Path, names: list[str]) -> np.ndarray:
    out = np.empty((len(names), 3, SIDE, SIDE), dtype=np.uint8)
    for i, name in enumerate(names):
        out[i] = decode(folder / name)
    return out


def load_celeba(
    n_train: int | None, n_test: int, split_seed: int, data_root: str | Path | None
) -> Dataset:
    """CelebA 64x64 RGB without labels; sizes from the partition file actually on disk."""
    spec = SPEC
    folder = locate(official.resolve_data_root(data_root))
    train_names, test_names = read_partition(folder / PARTITION)
    totals = (len(train_names), len(test_names))
    train_idx, test_idx = official.split(spec, totals, n_train, n_test, split_seed, str(folder))
    images = folder / IMAGES
    return official.make_dataset(
        spec,
        source=str(folder),
        preprocessing=f"centre crop {CROP}x{CROP} resized to {SIDE}x{SIDE} (bilinear, antialiased)",
        params=official.params(SIDE, n_train, n_test, split_seed),
        split=(train_idx, test_idx),
        totals=totals,
        images=(
            _decode_all(images, [train_names[i] for i in train_idx]),
            _decode_all(images, [test_names[i] for i in test_idx]),
        ),
        labels=None,
    )


def _load(spec: DatasetSpec, request: LoadRequest) -> Dataset:
    return load_celeba(request.n_train, request.n_test, request.split_seed, request.data_root)


SPEC = DatasetSpec(
    name="celeba",
    title="CelebA",
    description=(
        "CelebA aligned faces (178x218 JPEGs), images only (no labels); the usual VAE "
        "protocol: centre crop 148x148, then bilinear antialiased resize to 64x64; "
        "official partition: 162770 train (0) / 19962 test (2), validation unused"
    ),
    resolutions=(SIDE,),
    channels=3,
    labelled=False,  # attributes exist, but we use images only
    num_classes=None,
    has_factors=False,
    train_size=162_770,
    test_size=19_962,
    accepts_path=False,
    accepts_data_root=True,
    loader=_load,
)
