"""Sweep files: YAML → validated config → profile and overrides → grid expansion → trials.

A sweep file is plain data:

    name: beta_tradeoff
    description: ...
    base: {variant: beta_vae, architecture: conv4, latent_dim: 10, dataset: {...}, train: {...}}
    grid: {beta: [0.5, 1, 2], seed: [0, 1]}      # dotted keys reach nested fields: train.lr
    profiles: {paper: {train: {steps: 300000}, grid: {seed: [0, 1, 2]}}}
    resources: {cpu: 1, gpu: 0}

Every mistake becomes one `ConfigError` line naming the file (and YAML line where known), the key
and what is allowed, raised before anything starts.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml

import variants
from benchmark.data import SPECS, DatasetSpec
from variants.architectures import ARCHITECTURES

MAX_TRIALS = 500  # larger grids need --yes: a typo such as seed: [0..1000] should not run all night
METRICS = ("mse", "kl", "elbo", "active_units", "mig", "nll", "fid")


class ConfigError(Exception):
    """A bad sweep file or command-line value; `str()` is the one line shown to the user."""

    def __init__(self, file: str | Path, key: str, problem: str, line: int | None = None):
        self.file, self.key, self.problem, self.line = str(file), key, problem, line
        where = f"{file}:{line}" if line else f"{file}"
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class DatasetConfig(_Strict):
    """Which data and which split; what each dataset allows comes from `benchmark.data.SPECS`."""

    name: str
    resolution: int | None = pydantic.Field(None, description="image side; None: the default")
    n_train: pydantic.PositiveInt | None = pydantic.Field(None, description="None: all the rest")
    n_test: pydantic.PositiveInt = 2000
    split_seed: pydantic.NonNegativeInt = 0
    path: str | None = pydantic.Field(None, description="the real dSprites .npz, if you have it")
    data_root: str | None = pydantic.Field(
        None,
        description="folder of downloadable datasets (default: $VAEBENCH_DATA_ROOT, else "
        "~/.cache/vaebench/datasets); Fashion-MNIST is also found in /usr/share/datasets",
    )

    @pydantic.field_validator("name")
    @classmethod
    def _known_name(cls, v: str) -> str:
        if v not in SPECS:
            raise ValueError(f"unknown dataset {v!r}; allowed: {', '.join(SPECS)}")
        return v

    @pydantic.field_validator("resolution")
    @classmethod
    def _known_resolution(cls, v: int | None, info: pydantic.ValidationInfo) -> int | None:
        spec = SPECS.get(info.data.get("name", ""))
        if v is not None and spec is not None and v not in spec.resolutions:
            raise ValueError(
                f"{v} is not allowed for {spec.name}; allowed: "
                + ", ".join(map(str, sorted(spec.resolutions)))
            )
        return v

    @pydantic.model_validator(mode="after")
    def _split_fits(self) -> DatasetConfig:
        spec = self.spec
        problem = spec.check_split(self.n_train, self.n_test)
        if problem:
            raise ValueError(problem)
        if self.path is not None and not spec.accepts_path:
            raise ValueError(f"path is only for dsprites (the real .npz), not {self.name}")
        if self.path is not None and not Path(self.path).expanduser().is_file():
            raise ValueError(f"path {self.path!r} does not exist (the real dSprites .npz)")
        if self.data_root is not None and not spec.accepts_data_root:
            allowed = ", ".join(n for n, s in SPECS.items() if s.accepts_data_root)
            raise ValueError(f"data_root is only for {allowed}, not {self.name}")
        return self

    @property
    def spec(self) -> DatasetSpec:
        return SPECS[self.name]

    def image_shape(self) -> tuple[int, int, int]:
        return self.spec.image_shape(self.resolution)

    def has_labels(self) -> bool:
        return self.spec.labelled

    def train_size(self) -> int | None:
        return self.spec.train_images(self.n_train, self.n_test)


class TrainConfig(_Strict):
    steps: pydantic.PositiveInt = 3000
    batch_size: pydantic.PositiveInt = 64
    lr: pydantic.PositiveFloat = 1e-3
    kl_warmup_steps: pydantic.NonNegativeInt | None = pydantic.Field(
        None,
        description="linear KL warm-up from 0 to 1 over this many steps (0: off; unset: the "
        "variant's default, 0 for most)",
    )
    free_bits: pydantic.NonNegativeFloat = pydantic.Field(
        0.0, description="nats per latent dim below which the KL is not penalised (0: off)"
    )
    log_every: pydantic.PositiveInt = 100
    precision: Literal["fp32", "bf16"] = pydantic.Field(
        "fp32", description="bf16: forward pass under torch.autocast (bfloat16); eval stays fp32"
    )
    grad_clip: pydantic.PositiveFloat | None = pydantic.Field(
        None, description="max global L2 norm of the gradient (clip_grad_norm_); null: off"
    )
    lr_schedule: Literal["constant", "cosine", "plateau"] = pydantic.Field(
        "constant",
        description="cosine: linear warm-up over lr_warmup_steps, then cosine to 0 at the last "
        "step; plateau: ReduceLROnPlateau on the logged train loss (one check per log_every)",
    )
    lr_warmup_steps: pydantic.NonNegativeInt = pydantic.Field(
        0, description="linear LR warm-up steps of the cosine schedule"
    )
    lr_plateau_factor: float = pydantic.Field(
        0.5, gt=0, lt=1, description="plateau: LR multiplier on each reduction"
    )
    lr_plateau_patience: pydantic.NonNegativeInt = pydantic.Field(
        2, description="plateau: log windows without improvement before a reduction"
    )
    spectral_norm_decoder: pydantic.StrictBool = pydantic.Field(
        False, description="spectral normalisation of the decoder's Linear/Conv layers"
    )
    compile: pydantic.StrictBool = pydantic.Field(
        False, description="torch.compile the loss (pays only on long trials; see benchmark.perf)"
    )


class EvalConfig(_Strict):
    metrics: list[Literal["mse", "kl", "elbo", "active_units", "mig", "nll", "fid"]] = [
        "mse", "kl", "elbo", "active_units", "mig"
    ]  # fmt: skip
    batch_size: pydantic.PositiveInt = 500
    mig_points: pydantic.PositiveInt = 10_000
    mig_bins: int = pydantic.Field(20, ge=2)
    nll_k: pydantic.PositiveInt = 100
    nll_points: pydantic.PositiveInt = 500
    grid_images: pydantic.PositiveInt = 64
    fid_samples: pydantic.PositiveInt = pydantic.Field(
        2000, description="N: generated samples scored against N real test images (FD, KID, FID)"
    )
    kid_subset_size: pydantic.PositiveInt = pydantic.Field(
        1000, description="KID subset size (torchmetrics default 1000); at most fid_samples"
    )
    inception_weights: str | None = pydantic.Field(
        None,
        description="weights-inception-2015-12-05-6726825d.pth for fid_inception (default: "
        "$VAEBENCH_INCEPTION_WEIGHTS, then $TORCH_HOME/hub/checkpoints/)",
    )


class TrialConfig(_Strict):
    """Everything that defines one trial. Its hash identifies the trial across reruns."""

    variant: str
    architecture: str
    latent_dim: pydantic.PositiveInt
    seed: pydantic.NonNegativeInt = 0
    beta: pydantic.PositiveFloat | None = None
    params: dict[str, Any] = pydantic.Field(default_factory=dict)
    dataset: DatasetConfig
    train: TrainConfig = pydantic.Field(default_factory=TrainConfig)
    eval: EvalConfig = pydantic.Field(default_factory=EvalConfig)

    @pydantic.field_validator("variant")
    @classmethod
    def _known_variant(cls, v: str) -> str:
        if v not in variants.names():
            raise ValueError(f"unknown variant {v!r}; allowed: {', '.join(variants.names())}")
        return v

    @pydantic.field_validator("architecture")
    @classmethod
    def _known_architecture(cls, v: str) -> str:
        if v not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {v!r}; allowed: {', '.join(ARCHITECTURES)}")
        return v

    def variant_config(self) -> variants.base.VariantConfig:
        """The variant's own validated config: `params`, plus `beta` where given."""
        extra = {} if self.beta is None else {"beta": self.beta}
        return variants.get(self.variant).Config.model_validate({**self.params, **extra})

    def hash(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


class Resources(_Strict):
    cpu: pydantic.PositiveFloat = 1.0
    gpu: pydantic.NonNegativeFloat = 0.0


class CompareSpec(_Strict):
    """A sweep's `compare:` block, read by `python -m benchmark.compare`."""

    candidate: str
    baselines: list[str] = pydantic.Field(min_length=1)
    metrics: list[str] | None = None


class SweepFile(_Strict):
    name: str = pydantic.Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    base: dict[str, Any]
    grid: dict[str, list[Any]] = pydantic.Field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = pydantic.Field(default_factory=dict)
    resources: Resources = pydantic.Field(default_factory=Resources)
    compare: CompareSpec | None = None


@dataclass(frozen=True)
class Trial:
    index: int
    config: TrialConfig
    point: dict[str, Any]  # the grid values of this trial, by axis

    @property
    def name(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.point.items()) or "base"


@dataclass(frozen=True)
class Sweep:
    name: str
    file: str
    profile: str
    description: str
    axes: list[str]
    trials: list[Trial]
    resources: Resources
    compare: dict[str, Any] | None = None  # the `compare:` block (benchmark.compare)

    @property
    def results_name(self) -> str:
        return self.name if self.profile == "default" else f"{self.name}-{self.profile}"


# --- loading -------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that rejects duplicate keys, which plain YAML silently resolves to the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    if not path.is_file():
        raise ConfigError(path, "", "no such sweep file" + _sweep_hint(path))
    text = path.read_text()
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(
            path, "", f"invalid YAML: {problem}", mark.line + 1 if mark else None
        ) from None
    return data, node


def _sweep_hint(path: Path) -> str:
    sweeps = (
        sorted(p.name for p in Path(path).parent.glob("*.yaml")) if path.parent.is_dir() else []
    )
    return f"; sweep files there: {', '.join(sweeps)}" if sweeps else ""


def _line_of(node: yaml.Node | None, keys: list[str]) -> int | None:
    """The YAML line of the deepest key of `keys` that exists in the document."""
    line = None
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            break
        for k, v in node.value:
            if k.value == key:
                line, node = k.start_mark.line + 1, v
                break
        else:
            break
    return line


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        child = tree.get(p)
        if not isinstance(child, dict):
            child = tree[p] = {}
        tree = child
    tree[leaf] = value


def _deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` with a YAML value: `train.steps=500`, `grid.seed=[0,1]`, `variant=vae`."""
    key, sep, raw = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise ConfigError(
            "--override", text, "expected key=value with a dotted key, e.g. train.steps=500"
        )
    try:
        return key, yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError("--override", key, f"cannot parse value {raw!r} as YAML") from None


def _allowed_keys(model: type[pydantic.BaseModel], loc: tuple) -> list[str] | None:
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, pydantic.BaseModel)):
            return None
        model = ann
    return list(model.model_fields)


def _describe(error: dict, model: type[pydantic.BaseModel]) -> str:
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"])
        return "unknown key" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    if error["type"] == "missing":
        return "required key is missing"
    msg = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    if error["type"] not in ("value_error",) and not isinstance(got, dict | list):
        msg += f" (got {got!r})"
    return msg


def _validation_error(
    e: pydantic.ValidationError,
    model: type[pydantic.BaseModel],
    path: Path,
    node: yaml.Node | None,
    prefix: str,
    grid_axes: dict[str, str],
) -> ConfigError:
    err = e.errors()[0]
    loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
    dotted = ".".join(loc)
    # A value that came from the grid (or a profile's grid) is reported at that grid axis.
    for axis, where in grid_axes.items():
        if dotted == axis or dotted.startswith(axis + "."):
            key = f"{where}.{axis}"
            return ConfigError(path, key, _describe(err, model), _line_of(node, where.split(".")))
    key = f"{prefix}.{dotted}" if prefix and dotted else (prefix or dotted)
    return ConfigError(path, key, _describe(err, model), _line_of(node, key.split(".")))


def load_sweep(
    path: str | Path,
    profile: str = "default",
    overrides: list[str] | tuple[str, ...] = (),
    allow_large: bool = False,
) -> Sweep:
    """Read, validate and expand a sweep file. Raises `ConfigError` on any mistake."""
    path = Path(path)
    data, node = _read_yaml(path)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(path, "", f"the top level must be a mapping of keys; the file is {kind}")
    try:
        sweep = SweepFile.model_validate(data)
    except pydantic.ValidationError as e:
        raise _validation_error(e, SweepFile, path, node, "", {}) from None

    base, grid, resources = sweep.base, dict(sweep.grid), sweep.resources.model_dump()
    grid_source = {axis: "grid" for axis in grid}
    if profile != "default":
        if profile not in sweep.profiles:
            allowed = ", ".join(["default", *sweep.profiles])
            raise ConfigError(path, "--profile", f"unknown profile {profile!r}; allowed: {allowed}")
        prof = dict(sweep.profiles[profile])
        for axis, values in (prof.pop("grid", None) or {}).items():
            grid[axis] = values
            grid_source[axis] = f"profiles.{profile}.grid"
        resources.update(prof.pop("resources", None) or {})
        base = _deep_merge(base, prof)
    for text in overrides:
        key, value = parse_override(text)
        if key.startswith("grid."):
            grid[key[5:]] = value if isinstance(value, list) else [value]
            grid_source[key[5:]] = "--override grid"
        elif key.startswith("resources."):
            resources[key[10:]] = value
        else:
            base = copy.deepcopy(base)
            _set_path(base, key, value)
            # An override replaces the axis it names, so `--override seed=3` runs one seed.
            if key in grid:
                del grid[key]

    for axis, values in grid.items():
        where = grid_source[axis]
        if not isinstance(values, list):
            raise ConfigError(path, f"{where}.{axis}", "a grid axis must be a list of values",
                              _line_of(node, [*where.split("."), axis]))  # fmt: skip
        if not values:
            raise ConfigError(path, f"{where}.{axis}", "a grid axis needs at least one value",
                              _line_of(node, [*where.split("."), axis]))  # fmt: skip
    try:
        res = Resources.model_validate(resources)
    except pydantic.ValidationError as e:
        raise _validation_error(e, Resources, path, node, "resources", {}) from None

    n = 1
    for values in grid.values():
        n *= len(values)
    if n > MAX_TRIALS and not allow_large:
        raise ConfigError(
            path, "grid", f"{n} trials is over the sanity limit of {MAX_TRIALS}; pass --yes to run"
        )

    trials = []
    axes = list(grid)
    for index, values in enumerate(itertools.product(*grid.values())):
        point = dict(zip(axes, values, strict=True))
        raw = copy.deepcopy(base)
        for axis, value in point.items():
            _set_path(raw, axis, value)
        config = _validate_trial(raw, path, node, "base", grid_source)
        trials.append(Trial(index, config, point))
    # A trial is identified by its config hash (MLflow runs, checkpoints, resume): two trials
    # with one config would be one trial run twice.
    first: dict[str, Trial] = {}
    for t in trials:
        other = first.setdefault(t.config.hash(), t)
        if other is not t:
            raise ConfigError(path, "grid", f"trials {other.index + 1} ({other.name}) and "
                              f"{t.index + 1} ({t.name}) have the same config; allowed: distinct "
                              "grid values")  # fmt: skip
    compare = sweep.compare.model_dump() if sweep.compare else None
    return Sweep(sweep.name, str(path), profile, sweep.description, axes, trials, res, compare)


def _validate_trial(
    raw: dict, path: Path, node: yaml.Node | None, prefix: str, grid_source: dict[str, str]
) -> TrialConfig:
    try:
        config = TrialConfig.model_validate(raw)
    except pydantic.ValidationError as e:
        raise _validation_error(e, TrialConfig, path, node, prefix, grid_source) from None

    def fail(key: str, problem: str) -> ConfigError:
        where = grid_source.get(key)
        full = f"{where}.{key}" if where else f"{prefix}.{key}"
        return ConfigError(path, full, problem, _line_of(node, full.split(".")))

    try:
        config.variant_config()
    except pydantic.ValidationError as e:
        err = e.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        allowed = list(variants.get(config.variant).Config.model_fields)
        allowed_txt = ", ".join(allowed) if allowed else "none"
        if err["type"] == "extra_forbidden":
            key = "beta" if field == "beta" and config.beta is not None else f"params.{field}"
            problem = (
                f"not a parameter of variant {config.variant!r} (its parameters: {allowed_txt})"
            )
            if field == "beta" and config.variant == "vae":
                problem += "; β is 1 for 'vae' by definition, use 'beta_vae' to vary it"
            raise fail(key, problem) from None
        raise fail(f"params.{field}", err["msg"]) from None

    tr = config.train
    if tr.lr_warmup_steps and tr.lr_schedule != "cosine":
        raise fail("train.lr_warmup_steps", f"only for lr_schedule 'cosine', not "
                   f"{tr.lr_schedule!r}; allowed: 0")  # fmt: skip
    if tr.lr_warmup_steps >= tr.steps:
        raise fail("train.lr_warmup_steps", f"{tr.lr_warmup_steps} leaves no cosine steps; "
                   f"allowed: 0 .. train.steps - 1 ({tr.steps - 1})")  # fmt: skip
    cls = variants.get(config.variant)
    if config.train.free_bits > 0 and not cls.supports_free_bits:
        raise fail("train.free_bits", f"variant {config.variant!r} does not support free bits; "
                                      "allowed: 0")  # fmt: skip
    if cls.needs_labels and not config.dataset.has_labels():
        raise fail("variant", f"{config.variant!r} needs labels; dataset "
                              f"{config.dataset.name!r} has none")  # fmt: skip
    shape = config.dataset.image_shape()
    why = ARCHITECTURES[config.architecture].check(shape)
    if why:
        raise fail("architecture", why)
    ev = config.eval
    if "fid" in ev.metrics and ev.fid_samples > config.dataset.n_test:
        raise fail("eval.fid_samples", f"{ev.fid_samples} is more than the test split "
                   f"(dataset.n_test = {config.dataset.n_test}); allowed: <= n_test")  # fmt: skip
    if "fid" in ev.metrics and not 2 <= ev.kid_subset_size <= ev.fid_samples:
        raise fail("eval.kid_subset_size", f"{ev.kid_subset_size} is not allowed; allowed: "
                   f"2 .. eval.fid_samples ({ev.fid_samples})")  # fmt: skip
    if "fid" in ev.metrics and ev.inception_weights is not None:
        if not Path(ev.inception_weights).expanduser().is_file():
            raise fail("eval.inception_weights", f"{ev.inception_weights!r} does not exist; "
                       "allowed: the path of weights-inception-2015-12-05-6726825d.pth, or "
                       "null")  # fmt: skip
    train_size = config.dataset.train_size()
    if train_size is not None and config.train.batch_size > train_size:
        raise fail(
            "train.batch_size",
            f"{config.train.batch_size} is larger than the train split ({train_size} images)",
        )
    return config
