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
import difflib
import hashlib
import itertools
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml

import variants
import variants.likelihoods
from benchmark.data import SPECS, DatasetSpec
from benchmark.metrics import registry as metric_registry
from benchmark.paths import absolute
from variants.architectures import ARCHITECTURES

MAX_TRIALS = 500  # larger grids need --yes: a typo such as seed: [0..1000] should not run all night


def did_you_mean(word: object, choices: list[str] | tuple[str, ...]) -> str:
    """`"; did you mean 'x'?"` for the closest of `choices` to a misspelt `word`, else ""."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


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
    binarize: Literal["none", "static", "dynamic"] = pydantic.Field(
        "none",
        description="none: grey pixels; static: one seeded Bernoulli draw of both splits at load; "
        "dynamic: a fresh draw of every training batch (the test split is drawn once)",
    )

    @pydantic.field_validator("name")
    @classmethod
    def _known_name(cls, v: str) -> str:
        if v not in SPECS:
            raise ValueError(
                f"unknown dataset {v!r}; allowed: {', '.join(SPECS)}{did_you_mean(v, list(SPECS))}"
            )
        return v

    @pydantic.field_validator("path", "data_root")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        # Made absolute here, in the driver: a trial runs in a working directory of its own.
        return None if v is None else absolute(v)

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
        if self.path is not None and not Path(self.path).is_file():
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


DEFAULT_METRICS = ("mse", "kl", "elbo", "active_units", "mig")
_log = logging.getLogger("vaebench")
_warned_renames: set[str] = set()


class _EvalBase(_Strict):
    """The knobs of `eval` shared by all metrics; each metric's own knobs are added from its
    declaration (`benchmark.metrics.registry`) by `_build_eval_config`."""

    batch_size: pydantic.PositiveInt = 500
    grid_images: pydantic.PositiveInt = 64
    fid_samples: pydantic.PositiveInt = pydantic.Field(
        2000,
        description="N: generated samples scored against N real test images (fd, prdc); the "
        "same for every trial of a sweep, since FD's bias depends on N",
    )

    @pydantic.field_validator("inception_weights", check_fields=False)
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        # Made absolute here, in the driver: a trial runs in a working directory of its own.
        return None if v is None else absolute(v)

    @pydantic.field_validator("metrics", mode="before", check_fields=False)
    @classmethod
    def _renamed_metrics(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        renamed = metric_registry.renamed()
        out = []
        for name in v:
            if isinstance(name, str) and name in renamed:
                if name not in _warned_renames:  # once per process, not once per trial
                    _warned_renames.add(name)
                    _log.warning(
                        "warning: eval.metrics: %r is deprecated; use %r (same results)",
                        name, renamed[name],
                    )  # fmt: skip
                name = renamed[name]
            if name not in out:
                out.append(name)
        return out

    @pydantic.model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # Knobs added after the registry only enter the dump (and the trial hash) when their
        # metric is listed or they are set: registering a metric keeps other trials' identity.
        data = handler(self)
        owner = metric_registry.knob_owner()
        fields = type(self).model_fields
        for key in list(data):
            metric = owner.get(key)
            if metric is None or key in metric_registry.LEGACY_KNOBS or metric in self.metrics:
                continue
            if getattr(self, key) == fields[key].default:
                del data[key]
        return data


def _build_eval_config() -> type[_EvalBase]:
    """EvalConfig from the registry: `metrics` allows the registered names, and every metric's
    params fields (with their pydantic constraints) become `eval.<field>` knobs."""
    names = tuple(metric_registry.names())
    fields: dict[str, Any] = {
        "metrics": (
            list[Literal[names]],  # type: ignore[valid-type]
            pydantic.Field(default_factory=lambda: list(DEFAULT_METRICS)),
        )
    }
    for metric in metric_registry.metrics():
        for key, info in metric.params.model_fields.items():
            fields[key] = (info.annotation, info)
    model = pydantic.create_model("EvalConfig", __base__=_EvalBase, __module__=__name__, **fields)
    model.__doc__ = (
        "`eval`: which metrics (eval.metrics, from the metric registry) and their knobs."
    )
    return model


def _rebuild_eval_config() -> None:
    """Called on every metric registration: a new EvalConfig, and TrialConfig pointing to it."""
    global EvalConfig
    EvalConfig = _build_eval_config()
    if "TrialConfig" in globals():
        field = TrialConfig.model_fields["eval"]
        field.annotation = EvalConfig
        field.default_factory = EvalConfig
        TrialConfig.model_rebuild(force=True)


EvalConfig = _build_eval_config()
metric_registry.on_change(_rebuild_eval_config)


class LikelihoodChoice(pydantic.BaseModel):
    """The decoder likelihood: `likelihood: gaussian` or `likelihood: {name: gaussian, sigma:
    0.1}`; the parameters are validated by the likelihood's own config (`variants.likelihoods`)."""

    model_config = pydantic.ConfigDict(extra="allow", frozen=True)

    name: str = variants.likelihoods.DEFAULT

    @pydantic.model_validator(mode="after")
    def _known(self) -> LikelihoodChoice:
        allowed = ", ".join(variants.likelihoods.LIKELIHOODS)
        if self.name not in variants.likelihoods.LIKELIHOODS:
            raise ValueError(f"unknown likelihood {self.name!r}; allowed: {allowed}")
        config_cls = variants.likelihoods.get(self.name).Config
        try:
            config_cls.model_validate(self.params)
        except pydantic.ValidationError as e:
            err = e.errors()[0]
            key = str(err["loc"][0]) if err["loc"] else ""
            keys = ", ".join(config_cls.model_fields) or "none"
            if err["type"] == "extra_forbidden":
                raise ValueError(f"{key}: not a parameter of likelihood {self.name!r} "
                                 f"(its parameters: {keys})") from None  # fmt: skip
            field = config_cls.model_fields.get(key)
            allowed = f"; allowed: {field.description}" if field and field.description else ""
            raise ValueError(f"{key}: {err.get('input')!r} is not allowed{allowed}") from None
        return self

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def label(self) -> str:
        """`gaussian` or `gaussian(sigma=learned)`: how tables and trial names show it."""
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}({inner})" if inner else self.name

    def build(self) -> variants.likelihoods.Likelihood:
        return variants.likelihoods.build(self.name, self.params)


# Keys added after results were committed, with their defaults: left out of the trial hash
# while at the default, so that existing trials keep their identity (MLflow runs, resume).
HASH_NEUTRAL_DEFAULTS: dict[str, Any] = {
    "likelihood": {"name": variants.likelihoods.DEFAULT},
    "dataset.binarize": "none",
    "train.precision": "fp32",
    "train.grad_clip": None,
    "train.lr_schedule": "constant",
    "train.lr_warmup_steps": 0,
    "train.lr_plateau_factor": 0.5,
    "train.lr_plateau_patience": 2,
    "train.spectral_norm_decoder": False,
    "train.compile": False,
}


class TrialConfig(_Strict):
    """Everything that defines one trial. Its hash identifies the trial across reruns."""

    variant: str
    architecture: str
    likelihood: LikelihoodChoice = pydantic.Field(default_factory=LikelihoodChoice)
    latent_dim: pydantic.PositiveInt
    seed: pydantic.NonNegativeInt = 0
    beta: pydantic.PositiveFloat | None = None
    params: dict[str, Any] = pydantic.Field(default_factory=dict)
    dataset: DatasetConfig
    train: TrainConfig = pydantic.Field(default_factory=TrainConfig)
    eval: EvalConfig = pydantic.Field(default_factory=EvalConfig)

    @pydantic.field_validator("likelihood", mode="before")
    @classmethod
    def _name_or_mapping(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @pydantic.field_validator("variant")
    @classmethod
    def _known_variant(cls, v: str) -> str:
        if v not in variants.names():
            names = variants.names()
            raise ValueError(
                f"unknown variant {v!r}; allowed: {', '.join(names)}{did_you_mean(v, names)}"
            )
        return v

    @pydantic.field_validator("architecture")
    @classmethod
    def _known_architecture(cls, v: str) -> str:
        if v not in ARCHITECTURES:
            raise ValueError(
                f"unknown architecture {v!r}; allowed: {', '.join(ARCHITECTURES)}"
                + did_you_mean(v, list(ARCHITECTURES))
            )
        return v

    def variant_config(self) -> variants.base.VariantConfig:
        """The variant's own validated config: `params`, plus `beta` where given."""
        extra = {} if self.beta is None else {"beta": self.beta}
        return variants.get(self.variant).Config.model_validate({**self.params, **extra})

    def hash(self) -> str:
        tree = self.model_dump(mode="json")
        for dotted, default in HASH_NEUTRAL_DEFAULTS.items():
            *parents, leaf = dotted.split(".")
            node = tree
            for p in parents:
                node = node[p]
            if node.get(leaf) == default:
                del node[leaf]
        blob = json.dumps(tree, sort_keys=True)
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


def _point_label(value: Any) -> Any:
    # A likelihood given as a mapping reads as gaussian(sigma=0.1), not as a dict repr.
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        inner = ",".join(f"{k}={v}" for k, v in sorted(value.items()) if k != "name")
        return f"{value['name']}({inner})" if inner else value["name"]
    return value


@dataclass(frozen=True)
class Trial:
    index: int
    config: TrialConfig
    point: dict[str, Any]  # the grid values of this trial, by axis

    @property
    def name(self) -> str:
        return ",".join(f"{k}={_point_label(v)}" for k, v in self.point.items()) or "base"


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


# Keys whose value is a name or a mapping {name: ..., <param>: ...}: setting one of their
# parameters (`likelihood.sigma=0.2`) keeps the name (`likelihood: gaussian`).
NAMED_CHOICES = {"likelihood"}


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        child = tree.get(p)
        if isinstance(child, str) and p in NAMED_CHOICES:
            child = tree[p] = {"name": child}
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
        if not allowed:
            return "unknown key"
        return f"unknown key; allowed: {', '.join(allowed)}" + did_you_mean(
            error["loc"][-1], allowed
        )
    if error["type"] == "missing":
        return "required key is missing"
    msg = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    if error["type"] not in ("value_error",) and not isinstance(got, dict | list):
        msg += f" (got {got!r})"
    if error["type"] == "literal_error":
        msg += did_you_mean(got, re.findall(r"'([^']*)'", error["ctx"]["expected"]))
    return msg


def _validation_error(
    e: pydantic.ValidationError,
    model: type[pydantic.BaseModel],
    path: Path,
    node: yaml.Node | None,
    prefix: str,
    grid_axes: dict[str, str],
    overrides: dict[str, str] | None = None,
) -> ConfigError:
    err = e.errors()[0]
    loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
    dotted = ".".join(loc)
    source = _override_of(dotted, overrides or {})
    if source is not None:
        return ConfigError(f"--override {source}", dotted, _describe(err, model))
    # A value that came from the grid (or a profile's grid) is reported at that grid axis.
    for axis, where in grid_axes.items():
        if dotted == axis or dotted.startswith(axis + "."):
            key = f"{where}.{axis}"
            return ConfigError(path, key, _describe(err, model), _line_of(node, where.split(".")))
    key = f"{prefix}.{dotted}" if prefix and dotted else (prefix or dotted)
    return ConfigError(path, key, _describe(err, model), _line_of(node, key.split(".")))


def _override_of(dotted: str, overrides: dict[str, str]) -> str | None:
    """The `--override KEY=VALUE` text that set `dotted` (or a key above it), if any."""
    for key, text in overrides.items():
        if dotted == key or dotted.startswith(key + "."):
            return text
    return None


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
            names = ["default", *sweep.profiles]
            raise ConfigError(path, "--profile", f"unknown profile {profile!r}; allowed: "
                              f"{', '.join(names)}{did_you_mean(profile, names)}")  # fmt: skip
        prof = dict(sweep.profiles[profile])
        for axis, values in (prof.pop("grid", None) or {}).items():
            grid[axis] = values
            grid_source[axis] = f"profiles.{profile}.grid"
        resources.update(prof.pop("resources", None) or {})
        base = _deep_merge(base, prof)
    from_override: dict[str, str] = {}  # base key → the --override text that set it
    res_override: dict[str, str] = {}
    for text in overrides:
        key, value = parse_override(text)
        if key.startswith("grid."):
            grid[key[5:]] = value if isinstance(value, list) else [value]
            grid_source[key[5:]] = "--override grid"
            from_override[key[5:]] = text
        elif key.startswith("resources."):
            resources[key[10:]] = value
            res_override[key[10:]] = text
        else:
            from_override[key] = text
            base = copy.deepcopy(base)
            _set_path(base, key, value)
            # An override replaces the axis it names, so `--override seed=3` runs one seed.
            if key in grid:
                del grid[key]

    for axis, values in grid.items():
        where = grid_source[axis]
        if axis in from_override and where == "--override grid":
            if not values:
                raise ConfigError(f"--override {from_override[axis]}", f"grid.{axis}",
                                  "a grid axis needs at least one value")  # fmt: skip
            continue
        if not isinstance(values, list):
            raise ConfigError(path, f"{where}.{axis}", "a grid axis must be a list of values",
                              _line_of(node, [*where.split("."), axis]))  # fmt: skip
        if not values:
            raise ConfigError(path, f"{where}.{axis}", "a grid axis needs at least one value",
                              _line_of(node, [*where.split("."), axis]))  # fmt: skip
    try:
        res = Resources.model_validate(resources)
    except pydantic.ValidationError as e:
        raise _validation_error(e, Resources, path, node, "resources", {}, res_override) from None

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
        config = _validate_trial(raw, path, node, "base", grid_source, from_override)
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
    raw: dict,
    path: Path,
    node: yaml.Node | None,
    prefix: str,
    grid_source: dict[str, str],
    overrides: dict[str, str] | None = None,
) -> TrialConfig:
    overrides = overrides or {}
    try:
        config = TrialConfig.model_validate(raw)
    except pydantic.ValidationError as e:
        raise _validation_error(
            e, TrialConfig, path, node, prefix, grid_source, overrides
        ) from None

    def fail(key: str, problem: str) -> ConfigError:
        source = _override_of(key, overrides)
        if source is not None:
            return ConfigError(f"--override {source}", key, problem)
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
                + did_you_mean(field, allowed)
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
    problem = metric_registry.check_trial(config.eval, _metric_setting(config))
    if problem:
        raise fail(*problem)
    train_size = config.dataset.train_size()
    if train_size is not None and config.train.batch_size > train_size:
        raise fail(
            "train.batch_size",
            f"{config.train.batch_size} is larger than the train split ({train_size} images)",
        )
    return config


def _metric_setting(config: TrialConfig) -> metric_registry.Setting:
    from benchmark.feature_nets import FEATURE_DIM

    spec = config.dataset.spec
    return metric_registry.Setting(
        latent_dim=config.latent_dim,
        n_test=config.dataset.n_test,
        dataset=config.dataset.name,
        has_factors=spec.has_factors,
        labelled=spec.labelled,
        continuous_latents=variants.get(config.variant).continuous_latents,
        feature_dim=FEATURE_DIM,
    )
