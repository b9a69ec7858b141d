"""The trial cache: a trial whose identity already has a finished run is not trained again.

A trial's *identity* covers everything that changes its result:

- its config hash (variant, params, β, architecture, latent dim, seed, data split, budget, eval);
- the numerics of the code it runs (`benchmark.numerics`): the digests of the probes it depends
  on. In a git checkout whose `benchmark/`, `variants/` and `pyproject.toml` are unmodified,
  these are the pinned digests, which the test suite proves equal to what the code computes;
  otherwise the probes are **run now** and their measured values are hashed, so edited code can
  never match a run made before the edit;
- the source of a plugin variant's module (`--plugin` or the `vaebench.variants` entry point);
- the bytes of a user-given data file (`dataset.path`).

`benchmark.run` looks each trial's identity up in the experiment's finished trial runs (any
sweep run) and copies a hit into the new sweep run, tagged `vaebench.cached_from`; `--rerun`
retrains instead. See docs/design.md, "Trust: drift guard, verify, cache".
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import subprocess
from functools import cache
from pathlib import Path

from benchmark import numerics
from benchmark.paths import REPO

CODE = ("benchmark", "variants", "pyproject.toml")


def code_is_pinned() -> bool:
    """True in a git checkout whose numerics-bearing code has no local modifications."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE],
            cwd=REPO, capture_output=True, text=True, timeout=20, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return out.strip() == ""


@cache
def _measured(probe: str) -> str:
    return numerics.digest(numerics.run_probe(probe))


def numerics_digests(config, pinned: bool | None = None) -> dict[str, str]:
    """Probe → digest for one trial config: the pins if the code is pinned, else measured."""
    pinned = code_is_pinned() if pinned is None else pinned
    if pinned:
        return numerics.sweep_digests([config])
    return {p: _measured(p) for p in numerics.probes_for([config])}


@cache
def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _plugin_digest(variant: str) -> str | None:
    import variants

    cls = variants.get(variant)
    if cls.__module__.split(".")[0] == "variants":
        return None
    module = importlib.import_module(cls.__module__)
    return hashlib.sha256(inspect.getsource(module).encode()).hexdigest()[:16]


def identity(config, pinned: bool | None = None) -> str:
    """The trial's cache identity (hex, 16 chars); see the module docstring for what it covers."""
    parts = {
        "config": config.hash(),
        "numerics": numerics_digests(config, pinned),
        "plugin": _plugin_digest(config.variant),
        "data_file": _file_digest(str(Path(config.dataset.path).expanduser()))
        if config.dataset.path
        else None,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def identities(sweep) -> dict[int, str]:
    """Trial index → identity, for every trial of `sweep`."""
    pinned = code_is_pinned()
    return {t.index: identity(t.config, pinned) for t in sweep.trials}


def sweep_numerics(configs) -> dict[str, str]:
    """Probe → digest for a sweep's configs, as `sweep.json` records them: the pins in a clean
    checkout, else the digests measured now (so a sweep made by edited code can never pass for
    one made under the pins)."""
    configs = list(configs)
    if code_is_pinned():
        return numerics.sweep_digests(configs)
    return {p: _measured(p) for p in numerics.probes_for(configs)}
