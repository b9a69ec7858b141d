"""Tests of the dataset registry (SPECS) and the file-based datasets: Fashion-MNIST, MNIST,
CIFAR-10, CelebA. Every test writes tiny fake files in the real formats; one reads the real
Fashion-MNIST of Debian's dataset-fashion-mnist package when it is installed."""

from __future__ import annotations

import gzip
import pickle
import socket
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.data import DATASETS, SPECS, DataError, load_dataset, mnist, official
from benchmark.data import dsprites as ds
from benchmark.data.idx import read_idx

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = mnist.FILES


@pytest.fixture(autouse=True)
def _no_system_files_or_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may read the machine's real files or the network unless it asks to."""
    monkeypatch.setattr(mnist, "SYSTEM_FASHION_MNIST", tmp_path / "no-system-files")

    def offline(class_name: str, root: Path, **kwargs: object) -> None:
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(official, "torchvision_download", offline)
    monkeypatch.delenv(official.DATA_ROOT_ENV, raising=False)


# --- fake files -------------------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray) -> None:
    """An idx file (gzipped if the name ends in .gz) holding a uint8 array."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    blob = header + np.ascontiguousarray(array, np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(blob) if path.suffix == ".gz" else blob)


def marked_images(n: int, test: bool, seed: int) -> np.ndarray:
    """Random 28x28 images whose pixel (0, 0) is their index and (0, 1) says which set."""
    images = np.random.default_rng(seed).integers(1, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)
    images[:, 0, 1] = 255 if test else 0
    return images


def write_mnist(folder: Path, n_train: int = 30, n_test: int = 12, gz: bool = True, seed: int = 0):
    """The four idx files; labels are index % 10. Returns (train images, test images)."""
    suffix = ".gz" if gz else ""
    x_train, x_test = marked_images(n_train, False, seed), marked_images(n_test, True, seed + 1)
    write_idx(folder / f"{IDX_FILES['train_images']}{suffix}", x_train)
    write_idx(folder / f"{IDX_FILES['train_labels']}{suffix}", np.arange(n_train) % 10)
    write_idx(folder / f"{IDX_FILES['test_images']}{suffix}", x_test)
    write_idx(folder / f"{IDX_FILES['test_labels']}{suffix}", np.arange(n_test) % 10)
    return x_train, x_test


def indices(x: torch.Tensor) -> np.ndarray:
    """The index each loaded image (resolution 28) carries in its pixel (0, 0)."""
    return (x[:, 0, 0, 0] * 255).round().long().numpy()


# --- the registry -----------------------------------------------------------------------------


def test_specs_cover_every_dataset_with_its_shape_labels_and_sizes() -> None:
    assert DATASETS == ("dsprites", "digits", "fashion_mnist", "mnist", "cifar10", "celeba")
    assert tuple(SPECS) == DATASETS and all(SPECS[n].name == n for n in DATASETS)
    assert SPECS["dsprites"].resolutions == (64, 32, 16)
    assert SPECS["fashion_mnist"].resolutions == (28, 32) == SPECS["mnist"].resolutions
    assert SPECS["fashion_mnist"].title == "Fashion-MNIST"
    assert SPECS["dsprites"].image_shape(None) == (1, 64, 64)
    assert SPECS["digits"].image_shape(None) == (1, 8, 8)
    assert SPECS["mnist"].image_shape(32) == (1, 32, 32)
    assert SPECS["cifar10"].image_shape(None) == (3, 32, 32)
    assert SPECS["celeba"].image_shape(64) == (3, 64, 64)
    assert [n for n in DATASETS if SPECS[n].has_factors] == ["dsprites"]
    assert [n for n in DATASETS if not SPECS[n].labelled] == ["celeba"]
    assert SPECS["celeba"].num_classes is None and SPECS["cifar10"].num_classes == 10
    assert [n for n in DATASETS if SPECS[n].accepts_path] == ["dsprites"]
    assert [n for n in DATASETS if SPECS[n].accepts_data_root] == [
        "fashion_mnist", "mnist", "cifar10", "celeba"
    ]  # fmt: skip
    sizes = {n: (SPECS[n].train_size, SPECS[n].test_size) for n in DATASETS}
    assert sizes == {
        "dsprites": (ds.GRID_SIZE, None),
        "digits": (1797, None),
        "fashion_mnist": (60_000, 10_000),
        "mnist": (60_000, 10_000),
        "cifar10": (50_000, 10_000),
        "celeba": (162_770, 19_962),
    }
    assert "148" in SPECS["celeba"].description and "64" in SPECS["celeba"].description
    with pytest.raises(DataError, match=r"^dataset\.resolution: 64 is not allowed for mnist; "):
        SPECS["mnist"].image_shape(64)
    with pytest.raises(DataError, match=r"^dataset\.resolution: 48 .*; allowed: 16, 32, 64$"):
        SPECS["dsprites"].check_resolution(48)
    with pytest.raises(DataError, match=r"^dataset\.resolution: True "):
        SPECS["digits"].check_resolution(True)


def test_check_split_names_the_keys_and_the_limits() -> None:
    digits, mnist_spec = SPECS["digits"], SPECS["mnist"]
    assert digits.check_split(1500, 297) is None
    no_train = digits.check_split(None, 2000)
    assert no_train.startswith("dataset.n_test: 2000 leaves no training images")
    assert "must be < 1797" in no_train
    assert "dataset.n_train + dataset.n_test" in digits.check_split(1600, 297)
    assert "sum <= 1797" in digits.check_split(1600, 297)
    assert mnist_spec.check_split(None, 10_000) is None
    assert mnist_spec.check_split(60_000, 1) is None
    too_many = mnist_spec.check_split(60_001, 10)
    assert too_many.startswith("dataset.n_train: 60001") and "1..60000" in too_many
    assert mnist_spec.check_split(10, 10_001).startswith("dataset.n_test: 10001")
    assert "1..10000" in mnist_spec.check_split(10, 10_001)
    assert mnist_spec.check_split(0, 10).startswith("dataset.n_train: 0 is not allowed")
    assert mnist_spec.check_split(5, True).startswith("dataset.n_test: True is not allowed")
    assert mnist_spec.train_images(None, 2000) == 60_000
    assert digits.train_images(None, 297) == 1500 and digits.train_images(7, 297) == 7


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"name": "svhn"}, r"^dataset\.name: 'svhn'.*dsprites, digits, fashion_mnist, .*celeba$"),
        ({"name": "mnist", "resolution": 64}, r"dataset\.resolution: 64 .*allowed: 28, 32$"),
        ({"name": "cifar10", "path": "x.npz"}, r"^dataset\.path: 'x\.npz' is not allowed for"),
        ({"name": "digits", "data_root": "/d", "n_test": 297}, r"^dataset\.data_root: '/d'"),
        ({"name": "mnist", "n_train": 60_001}, r"^dataset\.n_train: 60001 exceeds"),
        ({"name": "cifar10", "n_test": 10_001}, r"^dataset\.n_test: 10001 exceeds"),
    ],
)
def test_bad_arguments_fail_before_any_file_is_needed(kwargs: dict, pattern: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(DataError, match=pattern):
        load_dataset(name, **kwargs)


# --- MNIST / Fashion-MNIST --------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_images_labels_and_split(tmp_path: Path, gz: bool) -> None:
    x_train, x_test = write_mnist(tmp_path / "mnist", gz=gz)
    data = load_dataset("mnist", resolution=28, n_train=20, n_test=5, data_root=tmp_path)
    assert data.name == "mnist" and data.image_shape == (1, 28, 28)
    assert data.x_train.shape == (20, 1, 28, 28) and data.x_test.shape == (5, 1, 28, 28)
    for x in (data.x_train, data.x_test):
        assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert data.y_train.dtype == torch.int64 and data.num_classes == 10
    assert data.factors_test is None and data.sample_factors is None
    # Each split comes from its own official file, images intact and labels aligned.
    assert (data.x_test[:, 0, 0, 1] == 1).all() and (data.x_train[:, 0, 0, 1] == 0).all()
    train_i, test_i = indices(data.x_train), indices(data.x_test)
    assert len(set(train_i)) == 20 and len(set(test_i)) == 5
    assert np.array_equal((data.x_train[:, 0] * 255).round().byte().numpy(), x_train[train_i])
    assert np.array_equal((data.x_test[:, 0] * 255).round().byte().numpy(), x_test[test_i])
    assert np.array_equal(data.y_train.numpy(), train_i % 10)
    assert np.array_equal(data.y_test.numpy(), test_i % 10)
    assert str(tmp_path / "mnist") in data.description
    assert "20 train / 5 test of the 30 train / 12 test on disk" in data.description


def test_resolution_32_zero_pads_the_28x28_image(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist")
    small = load_dataset("mnist", n_train=10, n_test=4, data_root=tmp_path)  # default: 28
    padded = load_dataset("mnist", resolution=32, n_train=10, n_test=4, data_root=tmp_path)
    assert small.x_train.shape == (10, 1, 28, 28) and "zero-padded" not in small.description
    assert padded.x_train.shape == (10, 1, 32, 32)
    for p, s in ((padded.x_train, small.x_train), (padded.x_test, small.x_test)):
        assert torch.equal(p[:, :, 2:30, 2:30], s)
        border = p.clone()
        border[:, :, 2:30, 2:30] = 0
        assert border.abs().sum() == 0
    assert "28x28 zero-padded to 32x32" in padded.description
    assert padded.fingerprint != small.fingerprint


def test_split_is_seeded_and_the_test_split_ignores_n_train(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist")
    kwargs = {"resolution": 28, "data_root": tmp_path}
    a = load_dataset("mnist", n_train=8, n_test=6, **kwargs)
    b = load_dataset("mnist", n_train=8, n_test=6, **kwargs)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 16
    everything = load_dataset("mnist", n_train=None, n_test=6, **kwargs)
    assert torch.equal(everything.x_test, a.x_test) and len(everything.x_train) == 30
    assert everything.fingerprint != a.fingerprint
    other = load_dataset("mnist", n_train=8, n_test=6, split_seed=1, **kwargs)
    assert other.fingerprint != a.fingerprint
    assert not np.array_equal(indices(other.x_test), indices(a.x_test))
    # n_test = the whole test set: every test image once, in a seeded (not the file's) order.
    full = load_dataset("mnist", n_train=8, n_test=12, **kwargs)
    assert sorted(indices(full.x_test)) == list(range(12))
    assert list(indices(full.x_test)) != list(range(12))


def test_split_larger_than_the_files_names_the_key_and_the_folder(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist", n_train=30, n_test=12)
    with pytest.raises(DataError, match=r"^dataset\.n_train: 31 exceeds the 30 training") as err:
        load_dataset("mnist", n_train=31, n_test=5, data_root=tmp_path)
    assert str(tmp_path / "mnist") in str(err.value) and "1..30" in str(err.value)
    with pytest.raises(DataError, match=r"^dataset\.n_test: 13 exceeds the 12 test"):
        load_dataset("mnist", n_test=13, data_root=tmp_path)


def test_search_order_data_root_then_torchvision_layout_then_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system, root = tmp_path / "system", tmp_path / "root"
    write_mnist(system, seed=10)
    monkeypatch.setattr(mnist, "SYSTEM_FASHION_MNIST", system)
    kwargs = {"resolution": 28, "n_train": 5, "n_test": 3}
    from_system = load_dataset("fashion_mnist", data_root=root, **kwargs)
    assert f"Fashion-MNIST ({system})" in from_system.description

    write_mnist(root / "FashionMNIST" / "raw", gz=False, seed=20)
    from_torchvision = load_dataset("fashion_mnist", data_root=root, **kwargs)
    assert str(root / "FashionMNIST" / "raw") in from_torchvision.description
    assert from_torchvision.fingerprint != from_system.fingerprint

    write_mnist(root / "fashion_mnist", seed=30)
    ours = load_dataset("fashion_mnist", data_root=root, **kwargs)
    assert str(root / "fashion_mnist") in ours.description
    assert len({ours.fingerprint, from_torchvision.fingerprint, from_system.fingerprint}) == 3
    # An incomplete folder is skipped rather than half-read.
    (root / "fashion_mnist" / f"{IDX_FILES['test_labels']}.gz").unlink()
    assert load_dataset("fashion_mnist", data_root=root, **kwargs).fingerprint == (
        from_torchvision.fingerprint
    )


def test_data_root_defaults_to_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_mnist(tmp_path / "env" / "mnist")
    monkeypatch.setenv(official.DATA_ROOT_ENV, str(tmp_path / "env"))
    assert str(tmp_path / "env" / "mnist") in load_dataset("mnist", n_test=4).description
    monkeypatch.delenv(official.DATA_ROOT_ENV)
    assert official.resolve_data_root(None) == Path.home() / ".cache/vaebench/datasets"


def test_download_is_read_from_torchvisions_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_download(class_name: str, root: Path, **kwargs: object) -> None:
        calls.append((class_name, root, socket.getdefaulttimeout()))
        write_mnist(root / class_name / "raw", gz=False)

    monkeypatch.setattr(official, "torchvision_download", fake_download)
    before = socket.getdefaulttimeout()
    data = load_dataset("fashion_mnist", n_train=4, n_test=4, data_root=tmp_path)
    assert calls == [("FashionMNIST", tmp_path, official.DOWNLOAD_TIMEOUT_S)]
    assert socket.getdefaulttimeout() == before
    assert str(tmp_path / "FashionMNIST" / "raw") in data.description
    load_dataset("fashion_mnist", n_train=4, n_test=4, data_root=tmp_path)
    assert len(calls) == 1  # found on disk the second time


@pytest.mark.parametrize(
    ("name", "folder", "hint"),
    [
        ("fashion_mnist", "fashion_mnist", "apt-get install dataset-fashion-mnist"),
        ("mnist", "mnist", "train-images-idx3-ubyte.gz"),
        ("cifar10", "cifar-10-batches-py", "data_batch_1"),
        ("celeba", "celeba/img_align_celeba", "list_eval_partition.txt"),
    ],
)
def test_offline_error_says_what_failed_and_where_to_put_the_files(
    tmp_path: Path, name: str, folder: str, hint: str
) -> None:
    before = socket.getdefaulttimeout()
    with pytest.raises(DataError) as err:
        load_dataset(name, n_train=2, n_test=2, data_root=tmp_path)
    message = str(err.value)
    assert message.startswith("dataset.data_root: ") and "\n" not in message
    assert SPECS[name].title in message and "download" in message and "offline (test)" in message
    assert str(tmp_path / folder) in message and hint in message
    assert isinstance(err.value.__cause__, urllib.error.URLError)
    assert socket.getdefaulttimeout() == before


def test_corrupt_idx_files_are_errors_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    write_mnist(folder, gz=False)
    images = folder / IDX_FILES["train_images"]
    good = images.read_bytes()
    for bad, why in (
        (b"\x00\x00\x08\x01" + good[4:], "magic 00000801"),  # a labels header on images
        (good[:-7], "data bytes"),  # truncated
        (b"PK\x03\x04" + good[4:], "magic"),
    ):
        images.write_bytes(bad)
        with pytest.raises(DataError, match=f"corrupt idx file {images}.*{why}"):
            load_dataset("mnist", n_test=4, data_root=tmp_path)
    gz = tmp_path / "x.gz"
    gz.write_bytes(gzip.compress(good)[:-20])
    with pytest.raises(DataError, match=f"corrupt idx file {gz}"):
        read_idx(gz, 3)


# --- CIFAR-10 ---------------------------------------------------------------------------------


def write_cifar_batch(path: Path, start: int, n: int) -> None:
    """Image i: red plane = i, green = 100, blue = 200 + (i % 50); label i % 10."""
    ids = np.arange(start, start + n)
    data = np.empty((n, 3, 1024), dtype=np.uint8)
    data[:, 0], data[:, 1], data[:, 2] = ids[:, None], 100, (200 + ids % 50)[:, None]
    batch = {b"batch_label": b"fake", b"labels": [int(i % 10) for i in ids],
             b"data": data.reshape(n, 3072), b"filenames": [b"x.png"] * n}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(batch, protocol=2))  # the original files' protocol


def write_cifar(root: Path, per_batch: int = 6, n_test: int = 8) -> Path:
    folder = root / "cifar-10-batches-py"
    for b in range(5):
        write_cifar_batch(folder / f"data_batch_{b + 1}", b * per_batch, per_batch)
    write_cifar_batch(folder / "test_batch", 100, n_test)
    return folder


def test_cifar10_pickles_give_rgb_images_in_channel_order(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path)
    data = load_dataset("cifar10", n_train=None, n_test=5, data_root=tmp_path)
    assert data.x_train.shape == (30, 3, 32, 32) and data.x_test.shape == (5, 3, 32, 32)
    assert data.image_shape == (3, 32, 32) and data.num_classes == 10
    x = torch.cat([data.x_train, data.x_test])
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    ids = (x[:, 0] * 255).round().long()
    assert (ids == ids[:, :1, :1]).all()  # each plane is constant: the reshape is (3, 32, 32)
    ids = ids[:, 0, 0]
    assert sorted(ids[:30].tolist()) == list(range(30))  # all five batches, each image once
    assert set(ids[30:].tolist()) <= set(range(100, 108))
    assert torch.equal((x[:, 1, 0, 0] * 255).round(), torch.full((35,), 100.0))
    assert torch.equal((x[:, 2, 0, 0] * 255).round().long(), 200 + ids % 50)
    assert torch.equal(torch.cat([data.y_train, data.y_test]), ids % 10)
    assert str(folder) in data.description and "30 train / 5 test" in data.description
    again = load_dataset("cifar10", n_train=None, n_test=5, data_root=tmp_path)
    assert again.fingerprint == data.fingerprint


def test_cifar10_rejects_a_pickle_that_would_run_code(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataError, match=r"corrupt CIFAR-10 batch .*test_batch.*builtins\.print"):
        load_dataset("cifar10", n_test=2, data_root=tmp_path)


# --- CelebA -----------------------------------------------------------------------------------

# 178x218 like the aligned CelebA images: the centre 148x148 crop is rows 35..182, cols 15..162.
CROP_TOP, CROP_LEFT = 35, 15
COLOURS = [(0, 0, 255), (0, 200, 0), (255, 255, 0), (0, 255, 255), (128, 0, 128), (40, 40, 40)]


def write_celeba(root: Path) -> Path:
    """Six red images with a different colour in the crop; partition 0,0,0,1,2,2.

    Image 4 (validation) is not a JPEG at all: nothing outside the split may be decoded.
    """
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    parts = [0, 0, 0, 1, 2, 2]
    for i, (colour, part) in enumerate(zip(COLOURS, parts, strict=True)):
        path = folder / "img_align_celeba" / f"{i + 1:06d}.jpg"
        if part == 1:
            path.write_bytes(b"not a jpeg")
            continue
        pixels = np.full((218, 178, 3), (255, 0, 0), dtype=np.uint8)
        pixels[CROP_TOP : CROP_TOP + 148, CROP_LEFT : CROP_LEFT + 148] = colour
        # 4:4:4, so that JPEG's chroma subsampling does not smear the red frame into the crop.
        Image.fromarray(pixels).save(path, quality=95, subsampling=0)
    lines = [f"{i + 1:06d}.jpg {p}" for i, p in enumerate(parts)]
    (folder / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return folder


def colour_index(image: torch.Tensor) -> int:
    """Which of COLOURS a (3, H, W) image is, up to JPEG error."""
    mean = (image.mean(dim=(1, 2)) * 255).numpy()
    errors = [np.abs(mean - np.array(c)).max() for c in COLOURS]
    assert min(errors) <= 6, mean
    return int(np.argmin(errors))


def test_celeba_crops_the_centre_148_and_resizes_to_64(tmp_path: Path) -> None:
    folder = write_celeba(tmp_path)
    data = load_dataset("celeba", n_train=None, n_test=2, data_root=tmp_path)
    assert data.x_train.shape == (3, 3, 64, 64) and data.x_test.shape == (2, 3, 64, 64)
    assert data.y_train is None and data.y_test is None and data.num_classes is None
    # Every output pixel is the crop's colour: the red frame around the crop never leaks in.
    for image in torch.cat([data.x_train, data.x_test]):
        spread = (image - image.mean(dim=(1, 2), keepdim=True)).abs().amax() * 255
        assert spread < 12  # JPEG ringing only; a leaking red border would be ~255 off
    assert sorted(colour_index(x) for x in data.x_train) == [0, 1, 2]  # partition 0
    assert sorted(colour_index(x) for x in data.x_test) == [4, 5]  # partition 2
    # Exactly PIL's crop of the same decoded JPEG, then the bilinear resize.
    with Image.open(folder / "img_align_celeba" / "000005.jpg") as im:
        box = (CROP_LEFT, CROP_TOP, CROP_LEFT + 148, CROP_TOP + 148)
        ref = np.asarray(im.convert("RGB").crop(box).resize((64, 64), Image.Resampling.BILINEAR))
    test_u8 = (data.x_test * 255).round().byte().numpy().transpose(0, 2, 3, 1)
    assert any(np.array_equal(ref, x) for x in test_u8)
    assert "centre crop 148x148 resized to 64x64" in data.description
    assert "3 train / 2 test on disk (official: 162770 train / 19962 test)" in data.description
    again = load_dataset("celeba", n_train=None, n_test=2, data_root=tmp_path)
    assert again.fingerprint == data.fingerprint and torch.equal(again.x_train, data.x_train)


def test_celeba_split_is_checked_against_the_partition_on_disk(tmp_path: Path) -> None:
    folder = write_celeba(tmp_path)
    with pytest.raises(DataError, match=r"^dataset\.n_train: 4 exceeds the 3 training") as err:
        load_dataset("celeba", n_train=4, n_test=1, data_root=tmp_path)
    assert str(folder) in str(err.value)
    with pytest.raises(DataError, match=r"^dataset\.n_test: 3 exceeds the 2 test"):
        load_dataset("celeba", n_test=3, data_root=tmp_path)
    (folder / "list_eval_partition.txt").write_text("000001.jpg 7\n")
    with pytest.raises(DataError, match=r"list_eval_partition\.txt:1: expected"):
        load_dataset("celeba", n_test=1, data_root=tmp_path)


# --- the real Fashion-MNIST -------------------------------------------------------------------


@pytest.mark.skipif(
    not (REAL_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_real_fashion_mnist_from_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mnist, "SYSTEM_FASHION_MNIST", REAL_FASHION)
    spec = SPECS["fashion_mnist"]
    assert (spec.train_size, spec.test_size) == (60_000, 10_000)
    kwargs = {"n_train": 600, "n_test": 200, "data_root": tmp_path / "empty"}
    data = load_dataset("fashion_mnist", resolution=32, **kwargs)
    assert data.x_train.shape == (600, 1, 32, 32) and data.x_test.shape == (200, 1, 32, 32)
    assert f"Fashion-MNIST ({REAL_FASHION})" in data.description
    assert "of the official 60000 train / 10000 test" in data.description
    assert set(data.y_train.tolist()) == set(range(10))
    assert data.x_train.max() == 1 and data.x_train.min() == 0
    assert load_dataset("fashion_mnist", resolution=32, **kwargs).fingerprint == data.fingerprint
