"""dSprites: our own numpy "dSprites-like" renderer, and a loader for the real dSprites npz.

Both follow the dSprites factor grid (shape 3 x scale 6 x orientation 40 x posX 32 x posY 32,
flat index = np.ravel_multi_index(classes, FACTOR_SIZES), posY fastest) and produce the same
`Dataset` interface. The renderer is NOT the original dSprites data: its numbers must never be
compared with published dSprites results, which is why every description says so.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark.atomic import atomic_path
from benchmark.readback import set_aside

from .base import DataError, Dataset, DatasetSpec, LoadRequest
from .splits import check_int, fingerprint, split_indices

FACTOR_NAMES: tuple[str, ...] = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES: tuple[int, ...] = (3, 6, 40, 32, 32)
GRID_SIZE = math.prod(FACTOR_SIZES)  # 737,280
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1, 6)
ORIENTATIONS = np.linspace(0, 2 * np.pi, 40)  # radians; like dSprites, 0 and 2*pi both occur
POSITIONS = np.linspace(0, 1, 32)
RESOLUTIONS = (16, 32, 64)
NPZ_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"

# Bump whenever the rendered pixels change: it keys the cache and enters the fingerprint.
RENDERER_VERSION = 1

# Geometry, in units of the image width, so every resolution samples the same continuous scene.
# The centre moves over [0.2, 0.8]; the farthest point of any sprite at scale 1 is _MAX_RADIUS
# from its centre at every orientation, which leaves a 0.035 margin: more than half a pixel even
# at 16x16, so no sprite ever touches the border.
_CENTRE_MIN, _CENTRE_SPAN = 0.2, 0.6
_MAX_RADIUS = 0.165
_SQUARE_HALF = _MAX_RADIUS / math.sqrt(2)  # corners reach _MAX_RADIUS; side 0.233 ~ 1/4 width
_ELLIPSE_A, _ELLIPSE_B = _MAX_RADIUS, _MAX_RADIUS / 2  # 2:1 oval, long axis ~1/3 width
# Heart (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 spans x in [-1.14, 1.14], y in [-1, 1.24]. About
# (0, 0.25) its farthest points (tip and lobes) are all at distance 1.25, so rotating about that
# point keeps it the most compact; _HEART_UNIT maps that 1.25 to _MAX_RADIUS.
_HEART_Y_SHIFT = 0.25
_HEART_UNIT = _MAX_RADIUS / 1.25

# np.cos/np.sin may use different SIMD kernels on different CPUs and differ in the last ulp;
# rounding first makes the tables (and therefore every boundary pixel) identical everywhere.
_COS = np.round(np.cos(ORIENTATIONS), 12).astype(np.float32)
_SIN = np.round(np.sin(ORIENTATIONS), 12).astype(np.float32)
_INV_SCALES = (1.0 / SCALES).astype(np.float32)
_CENTRES = (_CENTRE_MIN + _CENTRE_SPAN * POSITIONS).astype(np.float32)

# Pixels (images x H x W) per vectorised chunk: bounds each float32 temporary to 8 MB.
_CHUNK_PIXELS = 2**21
# Bytes of the real file decompressed per read: bounds memory while streaming 3 GB of imgs.
_NPZ_BLOCK_BYTES = 2**25
_PROGRESS_THRESHOLD = 100_000


def index_to_classes(index: np.ndarray | int) -> np.ndarray:
    """Flat grid indices -> (n, 5) int64 factor classes (posY varies fastest)."""
    flat = np.atleast_1d(np.asarray(index, dtype=np.int64))
    return np.stack(np.unravel_index(flat, FACTOR_SIZES), axis=1).astype(np.int64)


def classes_to_index(classes: np.ndarray) -> np.ndarray:
    """(n, 5) factor classes -> flat grid indices (the inverse of index_to_classes)."""
    classes = _check_classes(classes, FACTOR_SIZES)
    return np.ravel_multi_index(tuple(classes.T), FACTOR_SIZES).astype(np.int64)


def _check_classes(classes: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    classes = np.asarray(classes)
    if classes.ndim != 2 or classes.shape[1] != len(sizes) or classes.dtype.kind not in "iu":
        raise DataError(f"factor classes must be an integer array of shape (n, {len(sizes)})")
    if len(classes) and ((classes < 0).any() or (classes >= np.asarray(sizes)).any()):
        raise DataError(f"factor classes out of range; sizes are {sizes}")
    return classes.astype(np.int64, copy=False)


def _inside_square(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(x), np.abs(y)) <= _SQUARE_HALF


def _inside_ellipse(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x * x * (1 / _ELLIPSE_A**2) + y * y * (1 / _ELLIPSE_B**2) <= 1


def _inside_heart(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x * (1 / _HEART_UNIT)
    y = y * (1 / _HEART_UNIT) + _HEART_Y_SHIFT
    r = x * x + y * y - 1
    return r * r * r - x * x * y * y * y <= 0


_INSIDE = (_inside_square, _inside_ellipse, _inside_heart)


def render(classes: np.ndarray, resolution: int, *, progress: bool = False) -> np.ndarray:
    """Render (n, 5) factor classes to binary uint8 images of shape (n, resolution, resolution).

    A pure function of the classes and the resolution: pixel (row i, column j) is on iff its
    centre ((j + 0.5) / R, (i + 0.5) / R) lies inside the analytic shape, rotated about the
    sprite centre. posX moves the sprite along columns, posY along rows (downwards).
    """
    classes = _check_classes(classes, FACTOR_SIZES)
    check_resolution(resolution)
    n = len(classes)
    out = np.zeros((n, resolution, resolution), dtype=np.uint8)
    coords = ((np.arange(resolution) + 0.5) / resolution).astype(np.float32)
    cols, rows = coords[None, None, :], coords[None, :, None]
    chunk = max(1, _CHUNK_PIXELS // (resolution * resolution))
    done, next_report = 0, 0
    for shape, inside in enumerate(_INSIDE):
        members = np.flatnonzero(classes[:, 0] == shape)
        for start in range(0, len(members), chunk):
            sel = members[start : start + chunk]
            c = classes[sel]
            inv_scale = _INV_SCALES[c[:, 1]][:, None, None]
            cos, sin = _COS[c[:, 2]][:, None, None], _SIN[c[:, 2]][:, None, None]
            # Shape-frame coordinates with y pointing up, so a heart at orientation 0 is upright;
            # dx is (m, 1, R) and dy (m, R, 1), and the rotation broadcasts them to (m, R, R).
            dx = (cols - _CENTRES[c[:, 3]][:, None, None]) * inv_scale
            dy = (_CENTRES[c[:, 4]][:, None, None] - rows) * inv_scale
            out[sel] = inside(cos * dx + sin * dy, cos * dy - sin * dx)
            done += len(sel)
            if progress and done >= next_report:
                print(f"dSprites-like: rendered {done}/{n} images", file=sys.stderr, flush=True)
                next_report = done + max(n // 20, 1)
    return out


def check_resolution(resolution: object) -> int:
    """`resolution` (pixels) as an int if it is one of RESOLUTIONS, else DataError."""
    if isinstance(resolution, bool) or resolution not in RESOLUTIONS:
        allowed = ", ".join(map(str, RESOLUTIONS))
        raise DataError(
            f"dataset.resolution: {resolution!r} is not allowed for dsprites; allowed: {allowed}"
        )
    return int(resolution)


def sample_uniform_classes(n: int, rng: np.random.Generator, sizes: tuple[int, ...]) -> np.ndarray:
    """n rows of factor classes, each factor independently uniform (disentanglement_lib's MIG)."""
    n = check_int("n", n, minimum=0)
    return np.stack([rng.integers(0, s, size=n) for s in sizes], axis=1).astype(np.int64)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    # uint8 (n, H, W) -> float32 (n, 1, H, W); .to() allocates a fresh contiguous tensor.
    return torch.from_numpy(images[:, None]).to(torch.float32).contiguous()


# Samplers are small classes rather than closures so a Dataset pickles with the standard
# pickle module (e.g. when shipped to a worker process).
@dataclass(frozen=True)
class RendererSampler:
    """sample_factors of the dSprites-like renderer at `resolution` pixels."""

    resolution: int

    def __call__(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
        """n images (n, 1, R, R) float in {0, 1} and their classes (n, 5), uniform per factor."""
        classes = sample_uniform_classes(n, rng, FACTOR_SIZES)
        return _to_tensor(render(classes, self.resolution)), classes

    def factor_grid(self):  # -> benchmark.metrics.ground_truth.FactorGrid
        """The renderer as the factor grid the sampled scores (FactorVAE, BetaVAE) draw from."""
        from benchmark.metrics.ground_truth import dsprites_like

        return dsprites_like(self.resolution)


def _make_dataset(
    name: str,
    description: str,
    params: dict[str, object],
    split: tuple[np.ndarray, np.ndarray],
    images: tuple[np.ndarray, np.ndarray],
    factors: tuple[np.ndarray, np.ndarray],
    factor_sizes: tuple[int, ...],
    sampler: RendererSampler | NpzSampler,
) -> Dataset:
    (train_idx, test_idx), (x_train, x_test), (f_train, f_test) = split, images, factors
    fp = fingerprint(
        name, params, train_idx=train_idx, test_idx=test_idx, x_train=x_train, x_test=x_test
    )
    return Dataset(
        name=name,
        description=description,
        x_train=_to_tensor(x_train),
        x_test=_to_tensor(x_test),
        y_train=torch.from_numpy(np.ascontiguousarray(f_train[:, 0], dtype=np.int64)),
        y_test=torch.from_numpy(np.ascontiguousarray(f_test[:, 0], dtype=np.int64)),
        num_classes=factor_sizes[0],
        factors_test=np.ascontiguousarray(f_test, dtype=np.int64),
        factor_names=FACTOR_NAMES,
        factor_sizes=factor_sizes,
        fingerprint=fp,
        sample_factors=sampler,
        label_factor=0,
    )


# --- the dSprites-like renderer as a dataset --------------------------------------------------


def _cache_file(cache_dir: str | Path, params: dict[str, object]) -> Path:
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"dsprites_like_{key}.npz"


_CACHE_KEYS = ("x_train", "x_test", "factors_train", "factors_test", "train_idx", "test_idx")


def _read_cache(path: Path, train_idx: np.ndarray, test_idx: np.ndarray) -> dict | None:
    """The cached arrays, or None if the file is unreadable or was made with another split."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in _CACHE_KEYS}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, AttributeError, zipfile.BadZipFile, EOFError) as e:
        set_aside(path, f"dSprites-like cache: {type(e).__name__}: {e}")
        return None
    # A numpy upgrade could change the permutation for the same seed; the key would not notice.
    if not (
        np.array_equal(arrays["train_idx"], train_idx)
        and np.array_equal(arrays["test_idx"], test_idx)
    ):
        return None
    return arrays


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # Write to a temp file in the same directory, then rename: concurrent readers (parallel
    # trials) see either no file or a complete one, never a half-written npz.
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def load_dsprites_like(
    resolution: int,
    n_train: int | None,
    n_test: int,
    split_seed: int,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """The dSprites-like dataset rendered by `render`, optionally cached under cache_dir."""
    params = {
        "renderer_version": RENDERER_VERSION,
        "resolution": resolution,
        "n_train": n_train,
        "n_test": n_test,
        "split_seed": split_seed,
    }
    train_idx, test_idx = split_indices(GRID_SIZE, n_train, n_test, split_seed, "dsprites")
    cache = _cache_file(cache_dir, params) if cache_dir is not None else None
    arrays = _read_cache(cache, train_idx, test_idx) if cache and cache.exists() else None
    if arrays is None:
        f_train, f_test = index_to_classes(train_idx), index_to_classes(test_idx)
        n_all = len(train_idx) + len(test_idx)
        # One call, so a big render reports one progress count rather than two.
        images = render(
            np.concatenate([f_test, f_train]), resolution, progress=n_all > _PROGRESS_THRESHOLD
        )
        arrays = {
            "x_train": images[len(test_idx) :],
            "x_test": images[: len(test_idx)],
            "factors_train": f_train,
            "factors_test": f_test,
            "train_idx": train_idx,
            "test_idx": test_idx,
        }
        if cache is not None:
            _write_cache(cache, arrays)
    description = (
        "dSprites-like (vaebench renderer; not comparable with published dSprites numbers), "
        f"{resolution}x{resolution}, {len(train_idx)} train / {len(test_idx)} test"
    )
    return _make_dataset(
        "dsprites_like",
        description,
        params,
        (train_idx, test_idx),
        (arrays["x_train"], arrays["x_test"]),
        (arrays["factors_train"], arrays["factors_test"]),
        FACTOR_SIZES,
        RendererSampler(resolution),
    )


# --- the real dSprites npz -------------------------------------------------------------------


def pool_binary(images: np.ndarray, k: int) -> np.ndarray:
    """k x k average pool of binary images, thresholded at 0.5 (>= 0.5 is on); uint8 output."""
    n, h, w = images.shape
    if k == 1:
        return (images > 0).astype(np.uint8)
    # Integer counts instead of a float mean: exact, so the threshold is the same everywhere.
    counts = (images > 0).reshape(n, h // k, k, w // k, k).sum(axis=(2, 4), dtype=np.int32)
    return (2 * counts >= k * k).astype(np.uint8)


def _read_npz_rows(path: Path, key: str, rows: np.ndarray) -> np.ndarray:
    """Rows `rows` of array `key` of an npz, streamed block by block.

    np.load would materialise the whole array (3 GB for dSprites' imgs) just to keep a few
    thousand rows; streaming keeps memory at one _NPZ_BLOCK_BYTES block plus the result.
    """
    order = np.argsort(rows, kind="stable")
    wanted = rows[order]
    try:
        with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise DataError(f"dataset.path: {path}: unsupported .npy version {version}")
            if fortran or dtype.hasobject or len(shape) < 1:
                raise DataError(f"dataset.path: {path}: {key} must be a C-ordered numeric array")
            if len(wanted) and (wanted[0] < 0 or wanted[-1] >= shape[0]):
                raise DataError(f"dataset.path: {path}: row index out of range for {key}")
            row_shape = tuple(shape[1:])
            row_bytes = dtype.itemsize * math.prod(row_shape)
            out = np.empty((len(rows), *row_shape), dtype=dtype)
            block = max(1, _NPZ_BLOCK_BYTES // max(row_bytes, 1))
            pos = 0
            for start in range(0, shape[0], block):
                if pos == len(wanted):
                    break  # everything needed is read; skip decompressing the rest
                stop = min(start + block, shape[0])
                buf = fh.read((stop - start) * row_bytes)
                if len(buf) != (stop - start) * row_bytes:
                    raise DataError(f"dataset.path: {path}: {key} is truncated")
                data = np.frombuffer(buf, dtype=dtype).reshape(stop - start, *row_shape)
                end = int(np.searchsorted(wanted, stop))
                out[order[pos:end]] = data[wanted[pos:end] - start]
                pos = end
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as err:
        raise DataError(f"dataset.path: cannot read {key} from {path}: {err}") from err
    return out


def _read_grid(path: Path) -> tuple[np.ndarray, tuple[int, ...], np.ndarray]:
    """(latents (N, 5) without color, factor sizes, lookup flat-class-index -> row)."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"dataset.path: cannot read {path} as an npz: {err}") from err
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"dataset.path: {path} is a single array, not the npz {NPZ_FILENAME}")
    with npz:
        if "imgs" not in npz.files or "latents_classes" not in npz.files:
            raise DataError(
                f"dataset.path: {path} has keys {npz.files}; expected imgs and "
                f"latents_classes (the real {NPZ_FILENAME})"
            )
        try:
            latents = np.asarray(npz["latents_classes"])
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            raise DataError(f"dataset.path: cannot read latents_classes of {path}: {err}") from err
    if latents.ndim != 2 or latents.shape[1] != 6 or latents.dtype.kind not in "iu":
        raise DataError(
            f"dataset.path: {path}: latents_classes must be an integer (N, 6) array "
            f"(color, shape, scale, orientation, posX, posY); got {latents.shape}"
        )
    latents = latents[:, 1:].astype(np.int64)  # color is constant in dSprites
    if len(latents) == 0 or latents.min() < 0:
        raise DataError(f"dataset.path: {path}: latents_classes is empty or negative")
    # Sizes come from the file (the real one gives FACTOR_SIZES); it must be a complete grid so
    # that any uniformly sampled combination of classes exists.
    sizes = tuple(int(m) + 1 for m in latents.max(axis=0))
    lookup = np.full(math.prod(sizes), -1, dtype=np.int64)
    lookup[np.ravel_multi_index(tuple(latents.T), sizes)] = np.arange(len(latents))
    if len(latents) != len(lookup) or (lookup < 0).any():
        raise DataError(
            f"dataset.path: {path}: latents_classes is not a complete factor grid of sizes {sizes}"
        )
    return latents, sizes, lookup


def _read_images(path: Path, rows: np.ndarray, resolution: int) -> np.ndarray:
    images = _read_npz_rows(path, "imgs", rows)
    if images.ndim != 3 or images.shape[1:] != (64, 64):
        raise DataError(f"dataset.path: {path}: imgs must be (N, 64, 64); got {images.shape}")
    return pool_binary(images, 64 // resolution)


@dataclass(frozen=True, eq=False)  # eq on the lookup array would be ambiguous
class NpzSampler:
    """sample_factors for the real file; each call streams through the file once."""

    path: Path
    resolution: int
    factor_sizes: tuple[int, ...]
    lookup: np.ndarray

    def __call__(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, np.ndarray]:
        """n images (n, 1, R, R) float in {0, 1} and their classes, uniform per factor."""
        classes = sample_uniform_classes(n, rng, self.factor_sizes)
        return self.observe(classes), classes

    def observe(self, classes: np.ndarray) -> torch.Tensor:
        """The file's images (n, 1, R, R) of the factor classes `classes` (n, F)."""
        rows = self.lookup[np.ravel_multi_index(tuple(np.asarray(classes).T), self.factor_sizes)]
        return _to_tensor(_read_images(self.path, rows, self.resolution))

    def factor_grid(self):  # -> benchmark.metrics.ground_truth.FactorGrid
        """The file as the factor grid the sampled scores (FactorVAE, BetaVAE) draw from."""
        from benchmark.metrics.ground_truth import FactorGrid

        return FactorGrid(tuple(self.factor_sizes), self.observe)


def load_dsprites_npz(
    path: str | Path, resolution: int, n_train: int | None, n_test: int, split_seed: int
) -> Dataset:
    """The real dSprites file, subsampled by row with the same split rule as the renderer."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"dataset.path: {str(path)!r} does not exist; allowed: the path of the real "
            f"dSprites file {NPZ_FILENAME}, or null for the dSprites-like renderer"
        )
    latents, sizes, lookup = _read_grid(path)
    train_idx, test_idx = split_indices(len(latents), n_train, n_test, split_seed, "dsprites")
    images = _read_images(path, np.concatenate([test_idx, train_idx]), resolution)
    x_test, x_train = images[: len(test_idx)], images[len(test_idx) :]
    pooled = "" if resolution == 64 else f" ({64 // resolution}x{64 // resolution} pooled)"
    description = (
        f"dSprites ({path.name}), {resolution}x{resolution}{pooled}, "
        f"{len(train_idx)} train / {len(test_idx)} test"
    )
    params = {
        "source": "dsprites_npz",
        "resolution": resolution,
        "n_train": n_train,
        "n_test": n_test,
        "split_seed": split_seed,
    }
    return _make_dataset(
        "dsprites",
        description,
        params,
        (train_idx, test_idx),
        (x_train, x_test),
        (latents[train_idx], latents[test_idx]),
        sizes,
        NpzSampler(path, resolution, sizes, lookup),
    )


def _load(spec: DatasetSpec, request: LoadRequest) -> Dataset:
    r = request
    if r.path is None:
        return load_dsprites_like(r.resolution, r.n_train, r.n_test, r.split_seed, r.cache_dir)
    return load_dsprites_npz(r.path, r.resolution, r.n_train, r.n_test, r.split_seed)


SPEC = DatasetSpec(
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
    num_classes=FACTOR_SIZES[0],
    has_factors=True,
    train_size=GRID_SIZE,
    test_size=None,
    accepts_path=True,
    accepts_data_root=False,
    loader=_load,
    path_help="the real dSprites .npz",
    # Factor datasets train the feature net on sampled images: the stored split can be small.
    feature_net_split={"n_train": 1000, "n_test": 1000},
)
