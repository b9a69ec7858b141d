"""Sweep configs: YAML file → validated schema → profile and overrides → grid expansion → trials.

One concept per module:

- `benchmark.config.schema`: the pydantic models of a trial and a sweep file, the trial hash,
  and `TrialConfig.problem` (the checks spanning parts, each asked of its owner's declaration);
- `benchmark.config.source`: reading the YAML and mapping every error to file:line, the grid
  axis or the `--override` that set the value;
- `benchmark.config.sweep`: `load_sweep`, the expansion of grid, profiles and overrides;
- `benchmark.config.errors`: `ConfigError` (one line) and `did_you_mean`.

The names other modules use are re-exported here. Parsing a sweep imports no model code
(`variants.<model>`): variants, datasets and architectures are validated from their
declarations.
"""

from __future__ import annotations

from typing import Any

from benchmark.config import schema
from benchmark.config.errors import ConfigError, did_you_mean
from benchmark.config.schema import (
    DEFAULT_METRICS,
    HASH_NEUTRAL_DEFAULTS,
    CompareSpec,
    DatasetConfig,
    LikelihoodChoice,
    Resources,
    SweepFile,
    TrainConfig,
    TrialConfig,
    _warned_renames,
)
from benchmark.config.source import parse_override
from benchmark.config.sweep import (
    MAX_TRIALS,
    NAMED_CHOICES,
    Sweep,
    Trial,
    load_sweep,
    overrides_hash,
)

__all__ = [
    "DEFAULT_METRICS",
    "HASH_NEUTRAL_DEFAULTS",
    "MAX_TRIALS",
    "NAMED_CHOICES",
    "CompareSpec",
    "ConfigError",
    "DatasetConfig",
    "EvalConfig",
    "LikelihoodChoice",
    "Resources",
    "Sweep",
    "SweepFile",
    "TrainConfig",
    "Trial",
    "TrialConfig",
    "_warned_renames",
    "did_you_mean",
    "load_sweep",
    "overrides_hash",
    "parse_override",
]


def __getattr__(name: str) -> Any:
    # EvalConfig is rebuilt whenever a metric registers: always hand out the current one.
    if name == "EvalConfig":
        return schema.EvalConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
