"""The dSprites-like renderer, the real-dSprites loader (on a tiny fake file) and digits."""

import numpy as np
import pytest
import torch

from benchmark.data import DataError, load_dataset
from benchmark.data.dsprites import (
    FACTOR_SIZES,
    NPZ_FILENAME,
    classes_to_index,
    index_to_classes,
    pool_binary,
    render,
)
from benchmark.data.splits import split_indices


def _small(**kw):
    args = {"resolution": 32, "n_train": 300, "n_test": 100, "split_seed": 0, **kw}
    return load_dataset("dsprites", **args)


def test_deterministic_with_a_fingerprint_that_tracks_the_split():
    a, b = _small(), _small()
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 16
    assert _small(split_seed=1).fingerprint != a.fingerprint
    assert _small(n_train=299).fingerprint != a.fingerprint


def test_shapes_values_labels_and_factors():
    d = _small()
    assert d.name == "dsprites_like" and "dSprites-like" in d.description
    assert "not comparable" in d.description
    assert d.x_train.shape == (300, 1, 32, 32) and d.x_train.dtype == torch.float32
    assert set(torch.unique(d.x_train).tolist()) == {0.0, 1.0}
    assert d.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert d.factor_sizes == (3, 6, 40, 32, 32)
    assert d.factors_test.shape == (100, 5)
    # The label is the shape factor.
    assert torch.equal(d.y_test, torch.from_numpy(d.factors_test[:, 0]))
    assert d.num_classes == 3


def test_train_and_test_are_disjoint_and_the_test_split_ignores_n_train():
    train, test = split_indices(737_280, 2000, 500, 0, "dsprites")
    assert len(set(train.tolist())) == 2000 and len(set(test.tolist())) == 500
    assert not set(train.tolist()) & set(test.tolist())
    _, test_bigger = split_indices(737_280, 5000, 500, 0, "dsprites")
    assert np.array_equal(test, test_bigger)  # runs varying n_train share one test set
    d = _small(n_train=2000, n_test=500)
    assert np.array_equal(classes_to_index(d.factors_test), test)


def test_flat_index_order_has_pos_y_fastest():
    c = index_to_classes(np.arange(3))
    assert c[0].tolist() == [0, 0, 0, 0, 0]
    assert c[1].tolist() == [0, 0, 0, 0, 1]
    assert index_to_classes(737_279)[0].tolist() == [s - 1 for s in FACTOR_SIZES]
    assert np.array_equal(classes_to_index(index_to_classes(np.arange(0, 737_280, 997))),
                          np.arange(0, 737_280, 997))  # fmt: skip


def _centre(img: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(img)
    return rows.mean(), cols.mean()


def test_each_factor_changes_the_image_the_right_way():
    base = np.array([[1, 3, 5, 16, 16]])
    img = render(base, 64)[0]

    def with_(i, v):
        c = base.copy()
        c[0, i] = v
        return render(c, 64)[0]

    assert not np.array_equal(with_(0, 0), img)  # shape
    assert with_(1, 5).sum() > with_(1, 0).sum()  # larger scale, more pixels
    assert not np.array_equal(with_(2, 15), img)  # orientation
    r0, c0 = _centre(with_(3, 2))
    r1, c1 = _centre(with_(3, 29))
    assert c1 - c0 > 20 and abs(r1 - r0) < 1  # posX moves along columns
    r0, c0 = _centre(with_(4, 2))
    r1, c1 = _centre(with_(4, 29))
    assert r1 - r0 > 20 and abs(c1 - c0) < 1  # posY moves along rows


def test_largest_sprites_never_touch_the_border():
    sh, sc, ori, px, py = np.meshgrid(range(3), [5], range(40), [0, 31], [0, 31], indexing="ij")
    classes = np.stack([a.ravel() for a in (sh, sc, ori, px, py)], 1)
    for res in (16, 64):
        imgs = render(classes, res)
        assert imgs.sum(axis=(1, 2)).min() > 0
        edges = (imgs[:, 0, :], imgs[:, -1, :], imgs[:, :, 0], imgs[:, :, -1])
        assert sum(int(e.sum()) for e in edges) == 0


def test_low_resolution_is_the_pooled_high_resolution():
    rng = np.random.default_rng(0)
    classes = np.stack([rng.integers(0, s, 200) for s in FACTOR_SIZES], 1)
    small, pooled = render(classes, 32), pool_binary(render(classes, 64), 2)
    inter = np.logical_and(small, pooled).sum()
    union = np.logical_or(small, pooled).sum()
    assert inter / union > 0.8


def test_cache_round_trip(tmp_path):
    a = _small(cache_dir=tmp_path)
    files = list(tmp_path.glob("dsprites_like_*.npz"))
    assert len(files) == 1
    b = _small(cache_dir=tmp_path)
    assert torch.equal(a.x_train, b.x_train) and a.fingerprint == b.fingerprint


def test_sample_factors_is_uniform_and_matches_a_direct_render():
    d = _small()
    imgs, classes = d.sample_factors(3000, np.random.default_rng(1))
    assert imgs.shape == (3000, 1, 32, 32) and classes.shape == (3000, 5)
    counts = np.bincount(classes[:, 0], minlength=3)
    assert counts.min() > 900  # ~1000 each
    assert np.array_equal(imgs[:50, 0].numpy().astype(np.uint8), render(classes[:50], 32))


def _fake_npz(tmp_path, sizes=(3, 2, 3, 4, 4), drop_last=False):
    """A complete small factor grid with the real file's keys and column layout."""
    classes = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), 1)
    if drop_last:
        classes = classes[:-1]
    latents = np.concatenate([np.zeros((len(classes), 1), np.int64), classes], 1)
    path = tmp_path / NPZ_FILENAME
    imgs = render(classes, 64).astype(np.uint8)
    np.savez(path, imgs=imgs, latents_classes=latents, latents_values=latents.astype(float))
    return path


def test_real_npz_loader_on_a_fake_file(tmp_path):
    path = _fake_npz(tmp_path)
    d = load_dataset("dsprites", path=str(path), resolution=32, n_train=200, n_test=50)
    assert d.name == "dsprites" and "dSprites-like" not in d.description
    assert d.x_train.shape == (200, 1, 32, 32) and d.x_test.shape == (50, 1, 32, 32)
    assert d.factor_sizes == (3, 2, 3, 4, 4)
    # Each test image is the pooled file image of its factor classes.
    expected = pool_binary(render(d.factors_test, 64), 2)
    assert np.array_equal(d.x_test[:, 0].numpy().astype(np.uint8), expected)
    imgs, classes = d.sample_factors(64, np.random.default_rng(0))
    assert np.array_equal(imgs[:, 0].numpy().astype(np.uint8), pool_binary(render(classes, 64), 2))


def test_incomplete_grid_is_rejected(tmp_path):
    path = _fake_npz(tmp_path, drop_last=True)
    with pytest.raises(DataError, match="not a complete factor grid"):
        load_dataset("dsprites", path=str(path), n_train=100, n_test=50)


def test_missing_real_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(DataError, match="dataset.path") as info:
        load_dataset("dsprites", path=str(missing), n_train=10, n_test=5)
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("res", [8, 48, 128])
def test_bad_resolution_names_the_key_and_the_allowed_values(res):
    with pytest.raises(DataError, match=r"dataset\.resolution.*16, 32, 64"):
        load_dataset("dsprites", resolution=res, n_train=10, n_test=5)


def test_digits():
    d = load_dataset("digits", n_test=297)
    assert d.x_train.shape == (1500, 1, 8, 8) and d.x_test.shape == (297, 1, 8, 8)
    assert float(d.x_train.min()) >= 0 and float(d.x_train.max()) == 1.0
    assert sorted(torch.unique(d.y_train).tolist()) == list(range(10))
    assert d.sample_factors is None and d.factors_test is None
    with pytest.raises(DataError, match="dataset.n_test"):
        load_dataset("digits", n_train=1700, n_test=297)
    with pytest.raises(DataError, match="dataset.name"):
        load_dataset("mnist")
