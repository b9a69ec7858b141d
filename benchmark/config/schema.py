"""The schema of a sweep: pydantic models of one trial's config (`TrialConfig` and its parts)
and of a sweep file (`SweepFile`), with the trial hash (its identity across reruns).

What each part allows comes from the thing it configures: dataset names, resolutions, splits
and sources from the `DatasetSpec` (`benchmark.data`), variant parameters and needs from the
`VariantSpec` (`variants.catalog`), image shapes from `variants.shapes`, eval knobs from the
metric declarations (`benchmark.metrics.registry`). `TrialConfig.problem` gathers the checks
that span parts. No model code is imported: validating a sweep needs no `variants.<model>`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Literal

import pydantic

import variants
import variants.likelihoods
from benchmark.config.errors import did_you_mean, unknown_name
from benchmark.data import SPECS, DatasetSpec
from benchmark.metrics import registry as metric_registry
from benchmark.paths import absolute
from variants.declaration import VariantConfig
from variants.shapes import CHECKS as ARCHITECTURE_CHECKS

__all__ = [
    "DEFAULT_METRICS",
    "HASH_NEUTRAL_DEFAULTS",
    "CompareSpec",
    "DatasetConfig",
    "EvalConfig",
    "LikelihoodChoice",
    "Resources",
    "SweepFile",
    "TrainConfig",
    "TrialConfig",
]

Problem = tuple[str, str]  # (dotted key relative to the trial config, what is wrong and allowed)


class _Strict(pydantic.BaseModel):
    """A config model that rejects unknown keys (a typo is an error, not a silent default)."""

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
            raise ValueError(unknown_name("dataset", v, list(SPECS)))
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
        problem = spec.resolution_problem(v) if spec is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @pydantic.model_validator(mode="after")
    def _fits_the_dataset(self, info: pydantic.ValidationInfo) -> DatasetConfig:
        # context {"check_files": False}: the trials of a sweep that already ran (a report).
        check_files = (info.context or {}).get("check_files", True)
        problem = self.spec.check_config(
            None, self.n_train, self.n_test, self.path, self.data_root, check_files=check_files
        )
        if problem:
            raise ValueError(problem)
        return self

    @property
    def spec(self) -> DatasetSpec:
        """The dataset's declaration (`benchmark.data.SPECS`)."""
        return SPECS[self.name]

    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images, at `resolution` or the dataset's default."""
        return self.spec.image_shape(self.resolution)

    def has_labels(self) -> bool:
        """Whether the dataset has class labels."""
        return self.spec.labelled

    def train_size(self) -> int | None:
        """How many training images the split yields."""
        return self.spec.train_images(self.n_train, self.n_test)


class TrainConfig(_Strict):
    """`train`: the optimisation of one trial (steps, batch size, learning rate and its
    schedule, KL warm-up and free bits, precision, clipping)."""

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
    channels_last: pydantic.StrictBool = pydantic.Field(
        False, description="conv nets in channels_last memory format (not bitwise fp32's NCHW)"
    )

    def problem(self) -> Problem | None:
        """(key, problem) when the schedule knobs contradict each other, or None."""
        if self.lr_warmup_steps and self.lr_schedule != "cosine":
            return "train.lr_warmup_steps", (
                f"only for lr_schedule 'cosine', not {self.lr_schedule!r}; allowed: 0"
            )
        if self.lr_warmup_steps >= self.steps:
            return "train.lr_warmup_steps", (
                f"{self.lr_warmup_steps} leaves no cosine steps; allowed: 0 .. train.steps - 1 "
                f"({self.steps - 1})"
            )
        return None


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
        names = list(variants.likelihoods.LIKELIHOODS)
        if self.name not in names:
            raise ValueError(unknown_name("likelihood", self.name, names))
        config_cls = variants.likelihoods.get(self.name).Config
        try:
            config_cls.model_validate(self.params)
        except pydantic.ValidationError as e:
            err = e.errors()[0]
            key = str(err["loc"][0]) if err["loc"] else ""
            keys = ", ".join(config_cls.model_fields) or "none"
            if err["type"] == "extra_forbidden":
                close = did_you_mean(key, list(config_cls.model_fields))
                raise ValueError(f"{key}: not a parameter of likelihood {self.name!r} "
                                 f"(its parameters: {keys}){close}") from None  # fmt: skip
            field = config_cls.model_fields.get(key)
            allowed = f"; allowed: {field.description}" if field and field.description else ""
            raise ValueError(f"{key}: {err.get('input')!r} is not allowed{allowed}") from None
        return self

    @property
    def params(self) -> dict[str, Any]:
        """The likelihood's parameters (everything but `name`)."""
        return dict(self.model_extra or {})

    def resolved(self) -> dict[str, Any]:
        """`{name: ..., <param>: ...}` with every parameter, defaults included (what the
        likelihood will use; the trial hash keeps the mapping as written)."""
        config = variants.likelihoods.get(self.name).Config.model_validate(self.params)
        return {"name": self.name, **config.model_dump(mode="json")}

    @property
    def label(self) -> str:
        """`gaussian` or `gaussian(sigma=learned)`: how tables and trial names show it."""
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}({inner})" if inner else self.name

    def build(self) -> variants.likelihoods.Likelihood:
        """The likelihood object p(x|z) the variant decodes into."""
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
    "train.channels_last": False,
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
        names = variants.names()
        if v not in names:
            raise ValueError(unknown_name("variant", v, names))
        return v

    @pydantic.field_validator("architecture")
    @classmethod
    def _known_architecture(cls, v: str) -> str:
        if v not in ARCHITECTURE_CHECKS:
            raise ValueError(unknown_name("architecture", v, list(ARCHITECTURE_CHECKS)))
        return v

    def variant_config(self) -> VariantConfig:
        """The variant's own validated config: `params`, plus `beta` where given. Raises
        pydantic.ValidationError on a parameter the variant does not have."""
        return variants.spec(self.variant).config(self.params, self.beta)

    def problem(self) -> Problem | None:
        """The first (key, problem) that makes this trial impossible, or None.

        The checks that span parts of the config, each asked of the declaration that owns it:
        the variant's parameters and needs (`VariantSpec`), the schedule (`TrainConfig`), the
        architecture's image shapes (`variants.shapes`), the metrics' needs (the metric
        registry), and the batch against the train split (`DatasetSpec`). The key is relative
        to the trial config. Nothing is raised.
        """
        spec = variants.spec(self.variant)
        dataset = self.dataset.spec
        problem = (
            spec.check_params(self.params, self.beta)
            or self.train.problem()
            or spec.check_setting(
                free_bits=self.train.free_bits, dataset=self.dataset.name, labelled=dataset.labelled
            )
        )
        if problem:
            return problem
        why = ARCHITECTURE_CHECKS[self.architecture](self.dataset.image_shape())
        if why:
            return "architecture", why
        problem = metric_registry.check_trial(self.eval, self._metric_setting())
        if problem:
            return problem
        train_size = self.dataset.train_size()
        if train_size is not None and self.train.batch_size > train_size:
            return "train.batch_size", (
                f"{self.train.batch_size} is larger than the train split ({train_size} images)"
            )
        return None

    def _metric_setting(self) -> metric_registry.Setting:
        from benchmark.feature_nets import FEATURE_DIM

        spec = self.dataset.spec
        return metric_registry.Setting(
            latent_dim=self.latent_dim,
            n_test=self.dataset.n_test,
            dataset=self.dataset.name,
            has_factors=spec.has_factors,
            labelled=spec.labelled,
            continuous_latents=variants.spec(self.variant).continuous_latents,
            feature_dim=FEATURE_DIM,
        )

    def hash(self) -> str:
        """The trial's identity: 12 hex digits of the SHA-256 of its JSON dump, keys added since
        results were committed left out at their defaults (`HASH_NEUTRAL_DEFAULTS`)."""
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
    """`resources`: what Ray reserves for each trial (CPUs, GPUs, fractions allowed)."""

    cpu: pydantic.PositiveFloat = 1.0
    gpu: pydantic.NonNegativeFloat = 0.0


class CompareSpec(_Strict):
    """A sweep's `compare:` block, read by `python -m benchmark.compare`."""

    candidate: str
    baselines: list[str] = pydantic.Field(min_length=1)
    metrics: list[str] | None = None


class SweepFile(_Strict):
    """A sweep file as written: `base` (one trial's config), `grid` (dotted key -> values),
    `profiles` (name -> overrides of base, grid and resources), `resources` and `compare`.
    The trial configs themselves are validated after expansion (`benchmark.config.sweep`)."""

    name: str = pydantic.Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    base: dict[str, Any]
    grid: dict[str, list[Any]] = pydantic.Field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = pydantic.Field(default_factory=dict)
    resources: Resources = pydantic.Field(default_factory=Resources)
    compare: CompareSpec | None = None
