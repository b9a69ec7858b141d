"""Tests of benchmark.data: the dSprites-like renderer, the real-npz loader, digits, splits."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.data import DATASETS, DataError, Dataset, load_dataset
from benchmark.data import dsprites as ds
from benchmark.data.splits import fingerprint, split_indices
from benchmark.paths import REPO

SMALL = {"resolution": 32, "n_train": 300, "n_test": 100}


@pytest.fixture(scope="module")
def small() -> Dataset:
    return load_dataset("dsprites", **SMALL)


def render_one(shape: int, scale: int, orient: int, pos_x: int, pos_y: int, res: int = 64):
    return ds.render(np.array([[shape, scale, orient, pos_x, pos_y]]), res)[0]


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(image)
    return float(rows.mean()), float(cols.mean())


# --- interface, shapes, determinism ---------------------------------------------------------


def test_dsprites_like_shapes_dtypes_values(small: Dataset) -> None:
    assert DATASETS == ("dsprites", "digits", "fashion_mnist", "mnist", "cifar10", "celeba")
    assert small.name == "dsprites_like"
    assert "not comparable with published dSprites" in small.description
    assert "300 train / 100 test" in small.description
    assert small.x_train.shape == (300, 1, 32, 32) and small.x_test.shape == (100, 1, 32, 32)
    assert small.image_shape == (1, 32, 32)
    for x in (small.x_train, small.x_test):
        assert x.dtype == torch.float32 and x.is_contiguous() and x.device.type == "cpu"
        assert set(torch.unique(x).tolist()) == {0.0, 1.0}
    assert small.y_train.dtype == torch.int64 and small.y_train.shape == (300,)
    assert small.num_classes == 3
    assert small.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert small.factor_sizes == (3, 6, 40, 32, 32)
    assert small.factors_test.shape == (100, 5) and small.factors_test.dtype == np.int64
    assert (small.factors_test < np.array(small.factor_sizes)).all()
    assert torch.equal(small.y_test, torch.from_numpy(small.factors_test[:, 0]))
    assert len(small.fingerprint) == 16 and int(small.fingerprint, 16) >= 0
    # Every image has a sprite in it.
    assert (small.x_train.sum(dim=(1, 2, 3)) > 0).all()


def test_test_images_match_a_direct_render_of_their_factors(small: Dataset) -> None:
    direct = ds.render(small.factors_test, 32)
    assert np.array_equal(small.x_test[:, 0].numpy().astype(np.uint8), direct)


def test_same_arguments_give_identical_data_and_fingerprint(small: Dataset) -> None:
    again = load_dataset("dsprites", **SMALL)
    assert torch.equal(again.x_train, small.x_train) and torch.equal(again.x_test, small.x_test)
    assert np.array_equal(again.factors_test, small.factors_test)
    assert again.fingerprint == small.fingerprint


def test_fingerprint_changes_with_seed_params_and_pixels(small: Dataset) -> None:
    assert load_dataset("dsprites", **SMALL, split_seed=1).fingerprint != small.fingerprint
    assert load_dataset("dsprites", **{**SMALL, "n_train": 299}).fingerprint != small.fingerprint
    assert load_dataset("dsprites", **{**SMALL, "resolution": 16}).fingerprint != small.fingerprint
    train, test = np.arange(4), np.arange(4, 6)
    x = np.zeros((6, 8, 8), np.uint8)
    base = fingerprint("d", {"a": 1}, train_idx=train, test_idx=test, x_train=x[:4], x_test=x[4:])
    flipped = x.copy()
    flipped[0, 3, 3] = 1
    assert base != fingerprint(
        "d", {"a": 1}, train_idx=train, test_idx=test, x_train=flipped[:4], x_test=x[4:]
    )
    # Binary float data hashes like the same data as uint8.
    assert base == fingerprint(
        "d",
        {"a": 1},
        train_idx=train,
        test_idx=test,
        x_train=x[:4].astype(np.float32),
        x_test=x[4:].astype(np.float32),
    )


def test_fingerprint_is_stable_across_processes(small: Dataset) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = ["--resolution", "32", "--n-train", "300", "--n-test", "100"]
    out = subprocess.run(
        [sys.executable, "-m", "benchmark.data", "dsprites", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=True,
    ).stdout
    assert out.splitlines() == [small.description, f"fingerprint: {small.fingerprint}"]


def test_cli_reports_bad_arguments_without_traceback() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark.data", "dsprites", "--resolution", "48"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert proc.returncode == 2
    assert "dataset.resolution: 48" in proc.stderr and "Traceback" not in proc.stderr


def test_dataset_pickles_with_its_sampler(small: Dataset) -> None:
    clone = pickle.loads(pickle.dumps(small))
    assert torch.equal(clone.x_test, small.x_test) and clone.fingerprint == small.fingerprint
    a = clone.sample_factors(5, np.random.default_rng(0))
    b = small.sample_factors(5, np.random.default_rng(0))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


# --- splits -----------------------------------------------------------------------------------


def test_splits_are_disjoint_deterministic_and_test_split_ignores_n_train() -> None:
    train, test = split_indices(ds.GRID_SIZE, 5000, 2000, 0, "dsprites")
    assert len(train) == 5000 and len(test) == 2000
    assert len(np.unique(np.concatenate([train, test]))) == 7000
    assert train.dtype == np.int64 and train.min() >= 0 and train.max() < ds.GRID_SIZE
    again = split_indices(ds.GRID_SIZE, 5000, 2000, 0, "dsprites")
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    # Runs with different training-set sizes are evaluated on the same test images.
    assert np.array_equal(split_indices(ds.GRID_SIZE, 100, 2000, 0, "dsprites")[1], test)
    assert not np.array_equal(split_indices(ds.GRID_SIZE, 5000, 2000, 1, "dsprites")[1], test)
    everything, test_all = split_indices(100, None, 10, 0, "x")
    assert sorted(np.concatenate([everything, test_all]).tolist()) == list(range(100))


def test_dataset_test_factors_are_the_test_split(small: Dataset) -> None:
    _, test = split_indices(ds.GRID_SIZE, 300, 100, 0, "dsprites")
    assert np.array_equal(small.factors_test, ds.index_to_classes(test))


# --- factor grid and renderer -----------------------------------------------------------------


def test_flat_index_order_is_dsprites_order_with_posy_fastest() -> None:
    c = ds.index_to_classes(np.arange(3))
    assert c[0].tolist() == [0, 0, 0, 0, 0]
    assert c[1].tolist() == [0, 0, 0, 0, 1]  # only posY changed
    assert ds.index_to_classes(32)[0].tolist() == [0, 0, 0, 1, 0]
    assert ds.index_to_classes(32 * 32)[0].tolist() == [0, 0, 1, 0, 0]
    assert ds.index_to_classes(ds.GRID_SIZE - 1)[0].tolist() == [2, 5, 39, 31, 31]
    idx = np.random.default_rng(0).integers(0, ds.GRID_SIZE, 1000)
    assert np.array_equal(ds.classes_to_index(ds.index_to_classes(idx)), idx)


def test_each_factor_changes_the_image() -> None:
    base = render_one(2, 3, 5, 10, 20)
    for changed in (
        (0, 3, 5, 10, 20),
        (1, 3, 5, 10, 20),
        (2, 4, 5, 10, 20),
        (2, 3, 6, 10, 20),
        (2, 3, 5, 11, 20),
        (2, 3, 5, 10, 21),
    ):
        assert not np.array_equal(render_one(*changed), base), changed
    # One orientation step (9.2 degrees) is not a symmetry of the square or the ellipse.
    for shape in range(3):
        assert not np.array_equal(render_one(shape, 5, 0, 16, 16), render_one(shape, 5, 1, 16, 16))


def test_larger_scale_gives_more_pixels() -> None:
    for shape in range(3):
        areas = [render_one(shape, s, 7, 16, 16).sum() for s in range(6)]
        assert all(a < b for a, b in zip(areas, areas[1:], strict=False)), (shape, areas)


def test_scale_one_sprite_spans_a_quarter_to_a_third_of_the_width() -> None:
    for shape in range(3):
        image = render_one(shape, 5, 0, 16, 16)
        width = np.ptp(np.flatnonzero(image.any(axis=0))) + 1
        assert 0.2 * 64 <= width <= 0.36 * 64, (shape, width)


def test_posx_moves_along_columns_and_posy_along_rows() -> None:
    for shape in range(3):
        r0, c0 = centre_of_mass(render_one(shape, 3, 9, 0, 16))
        r1, c1 = centre_of_mass(render_one(shape, 3, 9, 31, 16))
        assert c1 - c0 > 30 and abs(r1 - r0) < 1
        r0, c0 = centre_of_mass(render_one(shape, 3, 9, 16, 0))
        r1, c1 = centre_of_mass(render_one(shape, 3, 9, 16, 31))
        assert r1 - r0 > 30 and abs(c1 - c0) < 1


@pytest.mark.parametrize("res", ds.RESOLUTIONS)
def test_largest_sprites_never_touch_the_border(res: int) -> None:
    grid = np.array(
        [[s, 5, o, x, y] for s in range(3) for o in range(40) for x in (0, 31) for y in (0, 31)]
    )
    images = ds.render(grid, res)
    assert images.sum(axis=(1, 2)).min() > 0
    border = images[:, [0, -1], :].sum() + images[:, :, [0, -1]].sum()
    assert border == 0


def upper_half_mass(image: np.ndarray) -> float:
    """Fraction of on pixels above the middle row of the sprite's bounding box."""
    rows = np.nonzero(image)[0]
    return float((rows < (rows.min() + rows.max()) / 2).mean())


def test_heart_is_upright_at_orientation_zero_and_flips_half_a_turn_later() -> None:
    heart = render_one(2, 5, 0, 16, 16)
    rows = np.flatnonzero(heart.any(axis=1))
    # Wide lobes on top, a narrow tip at the bottom...
    assert heart[rows[0] + 2].sum() > 3 * heart[rows[-1] - 1].sum()
    # ...with a notch between the lobes...
    top_row = np.flatnonzero(heart[rows[0] + 1])
    assert len(top_row) < np.ptp(top_row) + 1
    # ...and mirror symmetric (the centre at posX 16 is 0.6 px right of the image centre).
    cols = np.nonzero(heart)[1]
    assert abs(np.median(cols) - (0.2 + 0.6 * 16 / 31) * 64 + 0.5) <= 0.5
    # The mass sits in the lobes, away from the tip: on top at 0, at the bottom ~180 deg later.
    assert upper_half_mass(heart) > 0.55
    assert upper_half_mass(render_one(2, 5, 20, 16, 16)) < 0.45
    # Orientations 0 and 2*pi are the same angle, as in dSprites.
    assert np.array_equal(render_one(2, 5, 39, 16, 16), heart)


def test_render_is_pure_and_independent_of_batching() -> None:
    classes = ds.index_to_classes(np.arange(0, ds.GRID_SIZE, 4099))
    batch = ds.render(classes, 32)
    one_by_one = np.stack([ds.render(c[None], 32)[0] for c in classes[:40]])
    assert np.array_equal(batch[:40], one_by_one)
    assert batch.dtype == np.uint8 and set(np.unique(batch).tolist()) <= {0, 1}


def test_renderer_pixels_are_pinned() -> None:
    # If this fails you changed the rendered pixels: bump RENDERER_VERSION (it keys the cache and
    # the fingerprint), then update the digest.
    classes = ds.index_to_classes(np.arange(0, ds.GRID_SIZE, 997))
    digest = hashlib.sha256(ds.render(classes, 32).tobytes()).hexdigest()[:16]
    assert (ds.RENDERER_VERSION, digest) == (1, PINNED_DIGEST)


PINNED_DIGEST = "5879bd16b0104e0b"


def test_low_resolution_matches_pooled_high_resolution() -> None:
    classes = ds.sample_uniform_classes(1000, np.random.default_rng(3), ds.FACTOR_SIZES)
    for res, k in ((32, 2), (16, 4)):
        low = ds.render(classes, res)
        pooled = ds.pool_binary(ds.render(classes, 64), k)
        iou = (low & pooled).sum() / (low | pooled).sum()
        assert iou > 0.88, (res, iou)


# --- sample_factors -------------------------------------------------------------------------


def test_sample_factors_uniform_and_consistent_with_render(small: Dataset) -> None:
    images, classes = small.sample_factors(6000, np.random.default_rng(7))
    assert images.shape == (6000, 1, 32, 32) and images.dtype == torch.float32
    assert classes.shape == (6000, 5) and classes.dtype == np.int64
    for f, size in enumerate(small.factor_sizes):
        counts = np.bincount(classes[:, f], minlength=size)
        assert len(counts) == size
        # Binomial std of a count is < sqrt(6000 / size); allow 5 of them.
        assert np.abs(counts - 6000 / size).max() < 5 * np.sqrt(6000 / size), (f, counts)
    # Factors are drawn independently: no correlation between any pair.
    corr = np.corrcoef(classes.T.astype(float))
    assert np.abs(corr - np.eye(5)).max() < 0.06
    assert np.array_equal(images[:500, 0].numpy().astype(np.uint8), ds.render(classes[:500], 32))
    again = small.sample_factors(6000, np.random.default_rng(7))
    assert np.array_equal(again[1], classes)


# --- cache -----------------------------------------------------------------------------------


def test_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset("dsprites", **SMALL, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("dsprites_like_")
    assert files[0].suffix == ".npz"

    def no_render(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendered although a cache file exists")

    monkeypatch.setattr(ds, "render", no_render)
    second = load_dataset("dsprites", **SMALL, cache_dir=tmp_path)
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.x_test, second.x_test)
    assert np.array_equal(first.factors_test, second.factors_test)
    assert first.fingerprint == second.fingerprint
    with pytest.raises(AssertionError, match="rendered although"):
        load_dataset("dsprites", **{**SMALL, "split_seed": 5}, cache_dir=tmp_path)


def test_corrupt_cache_is_rerendered(tmp_path: Path) -> None:
    first = load_dataset("dsprites", **SMALL, cache_dir=tmp_path)
    (cache,) = tmp_path.iterdir()
    cache.write_bytes(b"not an npz")
    second = load_dataset("dsprites", **SMALL, cache_dir=tmp_path)
    assert second.fingerprint == first.fingerprint
    # Rewritten; the unreadable file is set aside (kept for a post-mortem); no temp files left.
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == cache.name and len(names) == 2
    assert names[1].startswith(f"{cache.name}.corrupt-")
    assert (tmp_path / names[1]).read_bytes() == b"not an npz"


# --- the real dSprites npz (a tiny fake with the real keys and layout) -----------------------

FAKE_SIZES = (3, 2, 3, 4, 4)  # complete grid of 288 rows


@pytest.fixture(scope="module")
def fake_npz(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    grid = np.stack(np.unravel_index(np.arange(np.prod(FAKE_SIZES)), FAKE_SIZES), axis=1)
    # Spread the small grid over the real one, so the images differ between rows.
    classes = grid * np.array([1, 5, 13, 10, 10]) + np.array([0, 0, 0, 1, 1])
    rows = np.random.default_rng(0).permutation(len(grid))  # not in grid order on purpose
    latents = np.concatenate([np.zeros((len(grid), 1), np.int64), grid], axis=1)[rows]
    imgs = ds.render(classes[rows], 64)
    path = tmp_path_factory.mktemp("npz") / ds.NPZ_FILENAME
    np.savez_compressed(
        path, imgs=imgs, latents_classes=latents, latents_values=latents.astype(np.float64)
    )
    lookup = {tuple(g): c for g, c in zip(grid.tolist(), classes, strict=True)}
    return path, lookup


def _expected(lookup: dict, factors: np.ndarray, k: int) -> np.ndarray:
    return ds.pool_binary(ds.render(np.array([lookup[tuple(f)] for f in factors.tolist()]), 64), k)


@pytest.mark.parametrize("res", [64, 32])
def test_real_npz_loader(fake_npz: tuple[Path, dict], res: int) -> None:
    path, lookup = fake_npz
    data = load_dataset("dsprites", path=str(path), resolution=res, n_train=200, n_test=50)
    assert data.name == "dsprites" and "not comparable" not in data.description
    assert data.x_train.shape == (200, 1, res, res) and data.x_test.shape == (50, 1, res, res)
    assert data.factor_sizes == FAKE_SIZES and data.factors_test.shape == (50, 5)
    k = 64 // res
    assert np.array_equal(data.x_test[:, 0].numpy(), _expected(lookup, data.factors_test, k))
    assert torch.equal(data.y_test, torch.from_numpy(data.factors_test[:, 0]))
    images, classes = data.sample_factors(40, np.random.default_rng(1))
    assert images.shape == (40, 1, res, res) and classes.shape == (40, 5)
    assert np.array_equal(images[:, 0].numpy(), _expected(lookup, classes, k))
    again = load_dataset("dsprites", path=str(path), resolution=res, n_train=200, n_test=50)
    assert again.fingerprint == data.fingerprint and torch.equal(again.x_train, data.x_train)


def test_real_npz_rows_are_streamed_across_blocks(
    fake_npz: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = fake_npz[0]
    with np.load(path) as npz:
        imgs = npz["imgs"]
    rows = np.array([287, 3, 150, 3, 0, 64, 65, 200])  # unsorted, repeated, block edges
    monkeypatch.setattr(ds, "_NPZ_BLOCK_BYTES", 64 * 64 * 7)  # 7 rows per block
    assert np.array_equal(ds._read_npz_rows(path, "imgs", rows), imgs[rows])
    plain = path.with_name("uncompressed.npz")  # np.savez (stored, not deflated) works too
    np.savez(plain, imgs=imgs)
    assert np.array_equal(ds._read_npz_rows(plain, "imgs", rows), imgs[rows])


def test_real_npz_everything_not_in_test(fake_npz: tuple[Path, dict]) -> None:
    data = load_dataset("dsprites", path=str(fake_npz[0]), n_test=88)
    assert len(data.x_train) == 200 and len(data.x_test) == 88


def test_real_npz_missing_or_malformed(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / ds.NPZ_FILENAME
    with pytest.raises(DataError, match="dataset.path") as err:
        load_dataset("dsprites", path=str(missing))
    assert str(missing) in str(err.value)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, images=np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(DataError, match="latents_classes"):
        load_dataset("dsprites", path=str(wrong))
    holes = tmp_path / "holes.npz"
    np.savez(
        holes,
        imgs=np.zeros((2, 64, 64), np.uint8),
        latents_classes=np.array([[0, 0, 0, 0, 0, 0], [0, 1, 1, 1, 1, 1]]),
    )
    with pytest.raises(DataError, match="complete factor grid"):
        load_dataset("dsprites", path=str(holes))


# --- digits ---------------------------------------------------------------------------------


def test_digits() -> None:
    data = load_dataset("digits", n_train=1500, n_test=297)
    assert data.name == "digits" and data.image_shape == (1, 8, 8)
    assert data.x_train.shape == (1500, 1, 8, 8) and data.x_test.shape == (297, 1, 8, 8)
    x = torch.cat([data.x_train, data.x_test])
    assert x.dtype == torch.float32 and x.min() == 0 and x.max() == 1
    assert torch.equal(x * 16, torch.round(x * 16))  # exactly the integer counts / 16
    assert set(torch.cat([data.y_train, data.y_test]).tolist()) == set(range(10))
    assert data.num_classes == 10 and data.sample_factors is None and data.factors_test is None
    assert data.factor_names == () and data.factor_sizes == ()
    again = load_dataset("digits", n_train=1500, n_test=297, resolution=8)
    assert again.fingerprint == data.fingerprint and torch.equal(again.x_test, data.x_test)
    other = load_dataset("digits", n_train=1500, n_test=297, split_seed=1)
    assert other.fingerprint != data.fingerprint
    assert len(load_dataset("digits", n_test=297).x_train) == 1500


def test_digits_oversized_split_is_an_error_not_a_clamp() -> None:
    with pytest.raises(DataError, match="1797"):
        load_dataset("digits", n_train=1600, n_test=297)
    with pytest.raises(DataError, match="dataset.n_test.*1797"):
        load_dataset("digits")  # default n_test=2000 leaves nothing to train on


# --- argument errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (
            {"name": "dsprites", "resolution": 48},
            r"^dataset\.resolution: 48 is not allowed for dsprites; allowed: 16, 32, 64$",
        ),
        ({"name": "dsprites", "resolution": 128}, r"dataset\.resolution.*16, 32, 64"),
        ({"name": "digits", "resolution": 16, "n_test": 297}, r"dataset\.resolution.*allowed: 8"),
        ({"name": "svhn"}, r"dataset\.name: 'svhn'.*dsprites, digits"),
        ({"name": "dsprites", "n_train": 0}, r"dataset\.n_train"),
        ({"name": "dsprites", "n_train": True}, r"dataset\.n_train"),
        ({"name": "dsprites", "n_test": 0}, r"dataset\.n_test"),
        ({"name": "dsprites", "n_train": 737280}, r"exceeds the 737280 images"),
        ({"name": "digits", "path": "x.npz", "n_test": 297}, r"dataset\.path"),
    ],
)
def test_bad_arguments_raise_data_error(kwargs: dict, pattern: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(DataError, match=pattern):
        load_dataset(name, **kwargs)
