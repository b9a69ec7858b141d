"""The metric registry: each metric is one declaration, and everything else is derived from it.

A metric is one file under `benchmark/metrics/` holding one `Metric(...)` declaration:

    class Params(pydantic.BaseModel):          # its own knobs: eval.<field> in a sweep file
        my_points: pydantic.PositiveInt = 1000

    METRIC = Metric(
        name="my_metric", description="one line for --list-metrics",
        columns=(Column("my_metric", "My metric", ".3f", better="higher"),),
        needs=Needs(factors=True, continuous_latents=True, points="my_points", min_points=10),
        params=Params, test_params={"my_points": 100},
        compute=compute,                        # compute(ctx, params) -> (values, notes)
    )

plus one `register(METRIC)` line (built-ins: in `_load_builtins` below; plugins: in their own
module, named by `benchmark.run --plugin`). From these declarations come:

- `benchmark.config.EvalConfig`: the allowed `eval.metrics` names and every `eval.<knob>`, with
  the pydantic constraints of the params models, rebuilt whenever a metric is registered;
- the checks at validation (`check_trial`): needs that can be known before training (latent
  dims, number of points, feature dimension) reject the sweep with one line naming the key;
- `benchmark.evaluate`'s dispatch, in registration order; a metric that cannot be computed
  after training is recorded as "not computed: <reason>" and the trial keeps its other metrics;
- `benchmark.report`'s columns, headers, formats and provenance lines;
- `python -m benchmark.run --list-metrics`.

`compute(ctx, params)` receives a `benchmark.evaluate.EvalContext` (the model, the data, the
test-split pass, the generated samples, factor-sampled codes: each computed once and shared)
and the metric's validated params; it returns `(values, notes)`: numbers to log (keys: the
columns and records) and one-line notes saying how they were obtained. It raises `Unavailable`
(or any exception) when it cannot be computed; the reason is then recorded in its place.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic

Better = Literal["lower", "higher"] | None
Values = dict[str, float]
Notes = dict[str, str]

# The eval knobs that existed before the registry (commit 8e3ef8d). They always enter a trial's
# config dump, and so its hash; knobs added since enter it only when their metric is selected or
# they differ from the default, so registering a metric does not change the identity (MLflow
# run, checkpoint, resume) of trials that do not use it.
LEGACY_KNOBS = frozenset(
    {"mig_points", "mig_bins", "nll_k", "nll_points", "kid_subset_size", "inception_weights"}
)


class Unavailable(Exception):
    """Raised by a metric's compute function: it cannot be computed here; `str()` is why."""


class NoParams(pydantic.BaseModel):
    """Params model of a metric without knobs."""

    model_config = pydantic.ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Column:
    """One table column of a metric.

    `key` is the logged result key; "{dataset}" in it stands for the config's dataset name
    (scores in different feature nets never share a column). `header` may use "{key}" and
    "{size}" (", N=<n>" for the image-quality N, or ""). `better` is the direction in which the
    number improves (None: neither, e.g. a KL). `spread`: show ± std over seeds.
    """

    key: str
    header: str
    fmt: str
    better: Better = None
    unit: str = ""
    spread: bool = True

    def matches(self, key: str) -> bool:
        """Whether result key `key` is this column's (`{dataset}` matches any dataset name)."""
        if "{dataset}" not in self.key:
            return key == self.key
        pattern = re.escape(self.key).replace(re.escape("{dataset}"), r"\w+")
        return re.fullmatch(pattern, key) is not None and not key.endswith("_std")

    def header_for(self, key: str, n: int | None = None, net: str = "") -> str:
        """The header of result key `key`; `n`: the image-quality N; `net`: the feature net."""
        size = (f", net {net}" if net else "") + (f", N={n}" if n else "")
        return self.header.format(key=key, size=size)


@dataclass(frozen=True)
class Needs:
    """What a metric needs from the trial.

    factors: ground-truth factors (a `sample_factors` on the dataset); continuous_latents:
    a posterior mean (not a VQ code); labels: a labelled dataset; feature_net: the dataset's
    domain feature net (fd_<dataset>) and N = eval.fid_samples generated/real images;
    min_latent_dim: the smallest latent_dim it is defined for; points/min_points: the knob
    holding its number of points and the smallest value allowed.
    """

    factors: bool = False
    continuous_latents: bool = False
    labels: bool = False
    feature_net: bool = False
    min_latent_dim: int = 1
    points: str | None = None
    min_points: int = 1

    def describe(self) -> str:
        """The needs in words, for `benchmark.run --list-metrics` ('none' when there are none)."""
        parts = [
            name
            for name, on in (
                ("ground-truth factors", self.factors),
                ("continuous latents", self.continuous_latents),
                ("labels", self.labels),
                (
                    "a domain feature net, and eval.fid_samples above its feature dimension",
                    self.feature_net,
                ),
            )
            if on
        ]
        if self.min_latent_dim > 1:
            parts.append(f"latent_dim >= {self.min_latent_dim}")
        if self.points:
            parts.append(f"eval.{self.points} >= {self.min_points}")
        return ", ".join(parts) or "nothing"


@dataclass(frozen=True)
class Setting:
    """What validation knows about a trial before training, for `Metric.check`."""

    latent_dim: int
    n_test: int
    dataset: str
    has_factors: bool
    labelled: bool
    continuous_latents: bool
    feature_dim: int  # of the domain feature nets (fd_<dataset>)


Check = Callable[[Any, Any, Setting], "tuple[str, str] | None"]
Compute = Callable[[Any, Any], "tuple[Values, Notes]"]


@dataclass(frozen=True)
class Metric:
    """One metric's declaration; see the module docstring.

    records: other keys it logs (parameters, secondary numbers), not table columns.
    note: the key of its main note (the table's provenance line reads it).
    provenance: (label, note key, text when absent or None to omit) lines for the table.
    shared: knobs of `EvalConfig` it reads but does not own (e.g. fid_samples).
    always: computed for every trial whether listed or not (the test-split pass).
    check: `check(params, eval_config, setting) -> (key, problem) | None` for cross-checks
    beyond `needs`; the key is relative to the trial config (e.g. "eval.fid_samples").
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    compute: Compute
    params: type[pydantic.BaseModel] = NoParams
    test_params: dict[str, Any] = field(default_factory=dict)
    needs: Needs = Needs()
    records: tuple[str, ...] = ()
    note: str = ""
    provenance: tuple[tuple[str, str, str | None], ...] = ()
    shared: tuple[str, ...] = ()
    always: bool = False
    deprecated_names: tuple[str, ...] = ()
    check: Check | None = None

    @property
    def note_key(self) -> str:
        """The key of the metric's note in the trial's notes (`note`, else the metric's name)."""
        return self.note or self.name

    def params_of(self, eval_config: Any) -> pydantic.BaseModel:
        """This metric's validated params, read from an `EvalConfig`."""
        return self.params.model_validate(
            {k: getattr(eval_config, k) for k in self.params.model_fields}
        )


_REGISTRY: dict[str, Metric] = {}
_LISTENERS: list[Callable[[], None]] = []
_loaded = False
_loading = False


def register(metric: Metric) -> Metric:
    """Add `metric`; raises ValueError on a name, alias or knob that another metric owns."""
    if not _loading:
        _load_builtins()  # built-ins first, so that plugins' columns come after them
    taken = {n: m.name for m in _REGISTRY.values() for n in (m.name, *m.deprecated_names)}
    for n in (metric.name, *metric.deprecated_names):
        if n in taken and taken[n] != metric.name:
            raise ValueError(f"metric name {n!r} is already registered by {taken[n]!r}")
    knobs = {
        k: m.name
        for m in _REGISTRY.values()
        if m.name != metric.name
        for k in m.params.model_fields
    }
    for k in metric.params.model_fields:
        if k in knobs or k in BASE_KNOBS:
            raise ValueError(
                f"metric {metric.name!r}: knob eval.{k} is already owned by "
                f"{knobs.get(k, 'EvalConfig')!r}"
            )
    _REGISTRY[metric.name] = metric
    _changed()
    return metric


def unregister(name: str) -> None:
    """Remove a metric (tests and plugins that register temporarily)."""
    if _REGISTRY.pop(name, None) is not None:
        _changed()


def on_change(callback: Callable[[], None]) -> None:
    """Call `callback` after every registration (benchmark.config rebuilds EvalConfig)."""
    _LISTENERS.append(callback)


def _changed() -> None:
    if _loading:
        return  # the built-ins announce themselves once, when all are in
    for callback in _LISTENERS:
        callback()


def get(name: str) -> Metric:
    """The metric registered under `name` (or a deprecated name); KeyError lists the names."""
    _load_builtins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    for m in _REGISTRY.values():
        if name in m.deprecated_names:
            return m
    raise KeyError(f"unknown metric {name!r}; known: {', '.join(_REGISTRY)}")


def metrics() -> list[Metric]:
    """Every registered metric, in registration order (the table's and evaluation's order)."""
    _load_builtins()
    return list(_REGISTRY.values())


def names() -> list[str]:
    """The registered metric names, built-ins first, in registration order."""
    return [m.name for m in metrics()]


def renamed() -> dict[str, str]:
    """Deprecated metric name -> current name."""
    return {old: m.name for m in metrics() for old in m.deprecated_names}


def knob_owner() -> dict[str, str]:
    """eval knob -> the metric owning it."""
    return {k: m.name for m in metrics() for k in m.params.model_fields}


def column_of(key: str) -> tuple[Metric, Column] | None:
    """The metric and column a logged result key belongs to, if it is a table column."""
    for m in metrics():
        for c in m.columns:
            if c.matches(key):
                return m, c
    return None


def selected(eval_config: Any) -> list[Metric]:
    """The metrics a trial computes: the listed ones and the `always` ones, in order."""
    chosen = set(eval_config.metrics)
    return [m for m in metrics() if m.always or m.name in chosen]


def needs_feature_net(eval_config: Any) -> bool:
    """Whether any listed metric scores images in the dataset's domain feature net."""
    return any(m.needs.feature_net for m in selected(eval_config))


def check_trial(eval_config: Any, setting: Setting) -> tuple[str, str] | None:
    """The first (key, problem) that makes a listed metric impossible for this trial, or None.

    Only what is known before training: latent dims, numbers of points, feature dimension,
    and each metric's own `check`. Datasets without factors or labels and discrete-latent
    variants are not errors: those metrics are recorded as not applicable.
    """
    chosen = set(eval_config.metrics)
    for m in metrics():
        if m.name not in chosen:
            continue
        needs = m.needs
        if needs.min_latent_dim > setting.latent_dim and (
            setting.continuous_latents or not needs.continuous_latents
        ):
            return "latent_dim", (
                f"{setting.latent_dim} is too small for metric {m.name!r} in eval.metrics; "
                f"allowed: >= {needs.min_latent_dim}, or drop {m.name!r} from eval.metrics"
            )
        if needs.points:
            value = getattr(eval_config, needs.points)
            if value < needs.min_points:
                return f"eval.{needs.points}", (
                    f"{value} is too few points for metric {m.name!r}; allowed: >= "
                    f"{needs.min_points}"
                )
        if m.check is not None:
            problem = m.check(m.params_of(eval_config), eval_config, setting)
            if problem:
                return problem
    return None


def test_overrides(names_: list[str] | None = None) -> list[str]:
    """`--override` strings giving every (or the named) metric its fast test setting."""
    out = []
    for m in metrics():
        if names_ is None or m.name in names_:
            out += [f"eval.{k}={v}" for k, v in m.test_params.items()]
    return out


def describe(metric: Metric, defaults: dict[str, Any] | None = None) -> str:
    """The `--list-metrics` entry of a metric: description, needs, parameters, columns."""
    params = (
        ", ".join(f"{k}={f.default!r}" for k, f in metric.params.model_fields.items()) or "none"
    )
    if metric.shared:
        shared = ", ".join(f"{k}={(defaults or {}).get(k)!r}" for k in metric.shared)
        params += f"; shared: {shared}"
    if metric.test_params:
        params += "; test: " + ", ".join(f"{k}={v!r}" for k, v in metric.test_params.items())
    cols = ", ".join(
        c.key + (f" ({c.better} is better)" if c.better else "") for c in metric.columns
    )
    always = " (always computed)" if metric.always else ""
    old = f" (formerly: {', '.join(metric.deprecated_names)})" if metric.deprecated_names else ""
    return (
        f"{metric.name}{old}: {metric.description}{always}\n"
        f"    needs: {metric.needs.describe()}\n"
        f"    parameters: {params}\n"
        f"    columns: {cols}"
    )


# Knobs of EvalConfig itself, shared by several metrics (benchmark.config).
BASE_KNOBS = frozenset({"metrics", "batch_size", "grid_images", "fid_samples"})


def _load_builtins() -> None:
    # Imported lazily so that the metric modules may import this one. One line per metric; the
    # order is the table's column order and the evaluation order.
    global _loaded, _loading
    if _loaded:
        return
    _loaded = _loading = True
    try:
        register(_declared("mse"))
        register(_declared("kl"))
        register(_declared("elbo"))
        register(_declared("nll"))
        register(_declared("mig"))
        register(_declared("fd"))
        register(_declared("prdc"))
        register(_declared("active_units"))
        register(_declared("disentanglement", "DCI"))
        register(_declared("disentanglement", "SAP"))
        register(_declared("disentanglement", "FACTOR_VAE"))
        register(_declared("disentanglement", "BETA_VAE"))
        register(_declared("disentanglement", "MODULARITY"))
    finally:
        _loading = False
    _changed()


def _declared(module: str, name: str = "METRIC") -> Metric:
    # By module path: `benchmark.metrics` re-exports functions named like some modules (mig).
    return getattr(importlib.import_module(f"benchmark.metrics.{module}"), name)
