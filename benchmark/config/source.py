"""Reading a sweep file and mapping every mistake to its source: one `ConfigError` line naming
the file and YAML line (or the `--override KEY=VALUE` that set the value, or the grid axis it
came from), the key, and what is allowed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pydantic
import yaml

from benchmark.config.errors import ConfigError, did_you_mean

__all__ = ["Source", "line_of", "parse_override", "read_yaml", "validation_error"]


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


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """The parsed document and its node tree (for line numbers) of the sweep file `path`.

    Raises ConfigError for a missing file (listing the sweep files beside it) or invalid YAML
    (at its line), duplicate keys included.
    """
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


def line_of(node: yaml.Node | None, keys: list[str | int]) -> int | None:
    """The YAML line of the deepest key of `keys` that exists in the document; an int key is
    an item of a list (its own line when the list is written one item a line)."""
    line = None
    for key in keys:
        if isinstance(key, int):
            if not isinstance(node, yaml.SequenceNode) or not 0 <= key < len(node.value):
                break
            node = node.value[key]
            line = node.start_mark.line + 1
            continue
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


def _first_error(e: pydantic.ValidationError) -> dict:
    # An unknown key first: `latent_dims: 16` is one typo, not a missing `latent_dim`.
    errors = e.errors()
    return next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])


def validation_error(
    e: pydantic.ValidationError,
    model: type[pydantic.BaseModel],
    path: Path,
    node: yaml.Node | None,
    prefix: str,
    grid_axes: dict[str, str],
    overrides: dict[str, str] | None = None,
) -> ConfigError:
    """The ConfigError of pydantic's first error in `e` (an unknown key before the others),
    placed at its source: the override that set the key, else the grid axis (and item) it came
    from, else the key under `prefix` in the file.
    """
    return Source(path, node, prefix, grid_axes, overrides).validation_error(e, model)


def override_of(dotted: str, overrides: dict[str, str]) -> str | None:
    """The `--override KEY=VALUE` text that set `dotted` (or a key above it), if any."""
    for key, text in overrides.items():
        if dotted == key or dotted.startswith(key + "."):
            return text
    return None


def _related(dotted: str, key: str) -> bool:
    # `key` set `dotted`, a value inside it, or a part of the mapping `dotted` names.
    return dotted == key or dotted.startswith(key + ".") or key.startswith(dotted + ".")


class Source:
    """Where a trial's values came from, so that any key can be blamed on its true source: the
    sweep file (and its node tree, for lines), the grid axes (axis -> "grid" or
    "profiles.<p>.grid" or "--override grid") and the item of each axis this trial took
    (`grid_index`), where the selected profile's keys are in the file ("profiles.<p>") and the
    dotted keys it set (`profile_keys`), and the
    overrides (dotted key -> the `--override` text).
    """

    def __init__(
        self,
        path: Path,
        node: yaml.Node | None,
        prefix: str,
        grid_source: dict[str, str],
        overrides: dict[str, str] | None = None,
        profile: str | None = None,
        profile_keys: list[str] | tuple[str, ...] = (),
        grid_index: dict[str, int] | None = None,
    ) -> None:
        self.path, self.node, self.prefix = path, node, prefix
        self.grid_source, self.overrides = grid_source, overrides or {}
        self.profile, self.profile_keys = profile, list(profile_keys)
        self.grid_index = grid_index or {}

    def at(self, grid_index: dict[str, int]) -> Source:
        """This source for the trial that took item `grid_index[axis]` of each grid axis."""
        return Source(self.path, self.node, self.prefix, self.grid_source, self.overrides,
                      self.profile, self.profile_keys, grid_index)  # fmt: skip

    def blame(self, dotted: str, loc: tuple = ()) -> tuple[str, str, int | None]:
        """(file or "--override KEY=VALUE", full dotted key, YAML line) of the value at the
        trial-config key `dotted`; `loc`: the list indices below it, for an item's line."""
        source = override_of(dotted, self.overrides)
        if source is not None:
            return f"--override {source}", dotted, None
        # A value that came from the grid (or a profile's grid) is reported at its axis item.
        for axis, where in self.grid_source.items():
            if dotted == axis or dotted.startswith(axis + "."):
                keys: list[str | int] = [*where.split("."), axis]
                if axis in self.grid_index:
                    keys.append(self.grid_index[axis])
                return str(self.path), f"{where}.{axis}", line_of(self.node, keys)
        if self.profile and any(_related(dotted, k) for k in self.profile_keys):
            where = self.profile.split(".")
        else:
            where = self.prefix.split(".") if self.prefix else []
        key = ".".join([*where, dotted]) if dotted else ".".join(where)
        parts = [*where, *dotted.split(".")] if dotted else where
        return str(self.path), key, line_of(self.node, [*parts, *loc])

    def error(self, key: str, problem: str) -> ConfigError:
        """The ConfigError of `problem` at the trial-config key `key` (e.g. "train.free_bits")."""
        file, full, line = self.blame(key)
        return ConfigError(file, full, problem, line)

    def validation_error(
        self, e: pydantic.ValidationError, model: type[pydantic.BaseModel]
    ) -> ConfigError:
        """The ConfigError of a failed validation of `model` from this source."""
        err = _first_error(e)
        loc, tail = list(err["loc"]), []
        while loc and isinstance(loc[-1], int):  # a list item: placed at the item's line
            tail.insert(0, loc.pop())
        parts = [str(p) for p in loc if not isinstance(p, int)]
        file, key, line = self.blame(".".join(parts), tuple(tail))
        return ConfigError(file, key, _describe(err, model), line)
