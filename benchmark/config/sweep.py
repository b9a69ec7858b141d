"""Sweep expansion: a sweep file, a profile and `--override`s become a list of validated trials.

A sweep file is plain data:

    name: beta_tradeoff
    description: ...
    base: {variant: beta_vae, architecture: conv4, latent_dim: 10, dataset: {...}, train: {...}}
    grid: {beta: [0.5, 1, 2], seed: [0, 1]}      # dotted keys reach nested fields: train.lr
    profiles: {paper: {train: {steps: 300000}, grid: {seed: [0, 1, 2]}}}
    resources: {cpu: 1, gpu: 0}

The profile is merged into `base` (its `grid` replaces axes), then each override sets a base
key, a grid axis (`grid.<axis>=[...]`) or a resource; the grid's product gives one trial each,
validated by the schema (`benchmark.config.schema`). Every mistake becomes one `ConfigError`
line at its source (`benchmark.config.source`), raised before anything starts.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from benchmark.config.errors import ConfigError, did_you_mean
from benchmark.config.schema import Resources, SweepFile, TrialConfig
from benchmark.config.source import Source, line_of, parse_override, read_yaml, validation_error

__all__ = ["MAX_TRIALS", "NAMED_CHOICES", "Sweep", "Trial", "load_sweep", "overrides_hash"]

MAX_TRIALS = 500  # larger grids need --yes: a typo such as seed: [0..1000] should not run all night


def _point_label(value: Any) -> Any:
    # A likelihood given as a mapping reads as gaussian(sigma=0.1), not as a dict repr.
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        inner = ",".join(f"{k}={v}" for k, v in sorted(value.items()) if k != "name")
        return f"{value['name']}({inner})" if inner else value["name"]
    return value


@dataclass(frozen=True)
class Trial:
    """One trial of a sweep: its position, its validated config, and its grid point."""

    index: int
    config: TrialConfig
    point: dict[str, Any]  # the grid values of this trial, by axis

    @property
    def name(self) -> str:
        """`beta=4,seed=0`: the grid values that tell it from the sweep's other trials."""
        return ",".join(f"{k}={_point_label(v)}" for k, v in self.point.items()) or "base"


@dataclass(frozen=True)
class Sweep:
    """An expanded sweep: its trials in grid order, the grid axes, resources and `compare:`."""

    name: str
    file: str
    profile: str
    description: str
    axes: list[str]
    trials: list[Trial]
    resources: Resources
    compare: dict[str, Any] | None = None  # the `compare:` block (benchmark.compare)
    overrides: tuple[str, ...] = ()  # the `--override` texts, as given

    @property
    def results_name(self) -> str:
        """The name of its results folder and MLflow experiment: the sweep's, with `-<profile>`
        unless default, and `+<hash>` of its overrides when it has any (`smoke+3f2a9c1e`), so
        a run with overrides never replaces the outputs of the sweep as written."""
        name = self.name if self.profile == "default" else f"{self.name}-{self.profile}"
        return f"{name}+{overrides_hash(self.overrides)}" if self.overrides else name


def overrides_hash(overrides: list[str] | tuple[str, ...]) -> str:
    """8 hex digits naming a set of `--override`s by what they set, not how they are spelled.

    Values are compared parsed (`grid.beta=[ 2 ]` is `grid.beta=2`); the order is ignored
    unless two overrides touch the same key or one's key lies under the other's
    (`likelihood=...` and `likelihood.sigma=...`), where the later one wins. Raises
    `ConfigError` for an override that is not `key=value`.
    """
    parsed = []
    for text in overrides:
        key, value = parse_override(text)
        if key.startswith("grid.") and not isinstance(value, list):
            value = [value]  # load_sweep reads a scalar grid value as a one-value axis
        parsed.append((key, json.dumps(value, sort_keys=True, default=str)))
    keys = [k.removeprefix("grid.") for k, _ in parsed]
    overlap = any(a == b or b.startswith(f"{a}.") for i, a in enumerate(keys)
                  for j, b in enumerate(keys) if i != j)  # fmt: skip
    blob = json.dumps(parsed if overlap else sorted(parsed))
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


# Keys whose value is a name or a mapping {name: ..., <param>: ...}: setting one of their
# parameters (`likelihood.sigma=0.2`) keeps the name (`likelihood: gaussian`).
NAMED_CHOICES = {"likelihood"}


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    # Sets `value` at a dotted key, creating the mappings above it.
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


def load_sweep(
    path: str | Path,
    profile: str = "default",
    overrides: list[str] | tuple[str, ...] = (),
    allow_large: bool = False,
    check_files: bool = True,
) -> Sweep:
    """Read, validate and expand a sweep file into its trials.

    profile: "default" or a name under `profiles:`; overrides: `key=value` strings (YAML
    values) applied last; allow_large: allow more than MAX_TRIALS trials; check_files: False
    skips the existence of data files named by the config (`dataset.path`), for rebuilding the
    report of a sweep that already ran. Raises `ConfigError` (one line at the mistake's
    source) on any mistake.
    """
    path = Path(path)
    data, node = read_yaml(path)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(path, "", f"the top level must be a mapping of keys; the file is {kind}")
    try:
        sweep = SweepFile.model_validate(data)
    except pydantic.ValidationError as e:
        raise validation_error(e, SweepFile, path, node, "", {}) from None

    if profile != "default" and profile not in sweep.profiles:
        names = ["default", *sweep.profiles]
        raise ConfigError(path, "--profile", f"unknown profile {profile!r}; allowed: "
                          f"{', '.join(names)}{did_you_mean(profile, names)}")  # fmt: skip
    axes, trials, res = _expand(sweep, path, node, profile, overrides, allow_large, check_files)
    # Every other profile is checked too, so that a typo in `paper` shows on the laptop and not
    # on the cluster: one trial per grid value (not their product), data files unchecked (a
    # profile may name files that only its own machine has).
    for other in ["default", *sweep.profiles]:
        if other != profile:
            _expand(sweep, path, node, other, (), True, False, every_point=False)
    compare = sweep.compare.model_dump() if sweep.compare else None
    return Sweep(sweep.name, str(path), profile, sweep.description, axes, trials, res, compare,
                 tuple(overrides))  # fmt: skip


def _leaves(tree: dict, prefix: str = "") -> list[str]:
    # The dotted keys of the values a mapping sets: {train: {steps: 1}} -> ["train.steps"].
    out = []
    for k, v in tree.items():
        key = f"{prefix}{k}"
        out += _leaves(v, key + ".") if isinstance(v, dict) and v else [key]
    return out


def _points(sizes: list[int], every_point: bool) -> list[tuple[int, ...]]:
    # Item indices of each trial: the grid's product, or one trial per grid value.
    if every_point:
        return list(itertools.product(*(range(n) for n in sizes)))
    points = [tuple(0 for _ in sizes)]
    for a, n in enumerate(sizes):
        points += [tuple(i if b == a else 0 for b in range(len(sizes))) for i in range(1, n)]
    return points


def _expand(
    sweep: SweepFile,
    path: Path,
    node: Any,
    profile: str,
    overrides: list[str] | tuple[str, ...],
    allow_large: bool,
    check_files: bool,
    every_point: bool = True,
) -> tuple[list[str], list[Trial], Resources]:
    """The grid axes, trials and resources of `profile` with `overrides`; every_point=False
    validates one trial per grid value only (no trial limit, no duplicate check)."""
    base, grid, resources = sweep.base, dict(sweep.grid), sweep.resources.model_dump()
    grid_source = {axis: "grid" for axis in grid}
    prof_keys: list[str] = []
    res_keys: list[str] = []
    if profile != "default":
        prof = dict(sweep.profiles[profile])
        where = f"profiles.{profile}"
        for part in ("grid", "resources"):
            if not isinstance(prof.get(part) or {}, dict):
                raise ConfigError(path, f"{where}.{part}", "must be a mapping of keys",
                                  line_of(node, ["profiles", profile, part]))  # fmt: skip
        for axis, values in (prof.pop("grid", None) or {}).items():
            grid[axis] = values
            grid_source[axis] = f"{where}.grid"
        prof_res = prof.pop("resources", None) or {}
        resources.update(prof_res)
        res_keys = list(prof_res)
        prof_keys = _leaves(prof)
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
                              line_of(node, [*where.split("."), axis]))  # fmt: skip
        if not values:
            raise ConfigError(path, f"{where}.{axis}", "a grid axis needs at least one value",
                              line_of(node, [*where.split("."), axis]))  # fmt: skip
    try:
        res = Resources.model_validate(resources)
    except pydantic.ValidationError as e:
        at = f"profiles.{profile}.resources" if res_keys else None
        source = Source(path, node, "resources", {}, res_override, at, res_keys)
        raise source.validation_error(e, Resources) from None

    n = 1
    for values in grid.values():
        n *= len(values)
    if every_point and n > MAX_TRIALS and not allow_large:
        raise ConfigError(
            path, "grid", f"{n} trials is over the sanity limit of {MAX_TRIALS}; pass --yes to run"
        )

    trials = []
    axes = list(grid)
    at = f"profiles.{profile}" if profile != "default" else None
    source = Source(path, node, "base", grid_source, from_override, at, prof_keys)
    for index, items in enumerate(_points([len(v) for v in grid.values()], every_point)):
        point = {axis: grid[axis][i] for axis, i in zip(axes, items, strict=True)}
        raw = copy.deepcopy(base)
        for axis, value in point.items():
            _set_path(raw, axis, value)
        config = _validate_trial(raw, source.at(dict(zip(axes, items, strict=True))), check_files)
        trials.append(Trial(index, config, point))
    if every_point:
        # A trial is identified by its config hash (MLflow runs, checkpoints, resume): two
        # trials with one config would be one trial run twice.
        first: dict[str, Trial] = {}
        for t in trials:
            other = first.setdefault(t.config.hash(), t)
            if other is not t:
                raise ConfigError(path, "grid", f"trials {other.index + 1} ({other.name}) and "
                                  f"{t.index + 1} ({t.name}) have the same config; allowed: "
                                  "distinct grid values")  # fmt: skip
    return axes, trials, res


def _validate_trial(raw: dict, source: Source, check_files: bool) -> TrialConfig:
    """One trial's config from its raw mapping, or the ConfigError of its first problem."""
    try:
        config = TrialConfig.model_validate(raw, context={"check_files": check_files})
    except pydantic.ValidationError as e:
        raise source.validation_error(e, TrialConfig) from None
    problem = config.problem()
    if problem:
        raise source.error(*problem)
    return config
