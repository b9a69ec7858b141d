"""Paths the user gives, made absolute once, in the driver, before any trial starts.

Ray Tune runs each trial in its own working directory, so a path relative to the user's
directory (`dataset.path=dsprites.npz`, `VAEBENCH_DATA_ROOT=data`) would name another file, or
none, inside a trial. Config keys are made absolute when the config is validated (see
`benchmark.config`); the environment variables below are made absolute in the driver's
environment, which local Ray workers inherit.
"""

from __future__ import annotations

import os
from pathlib import Path

# The repository's root (the folder holding benchmark/ and variants/): the one place it is computed.
REPO = Path(__file__).resolve().parent.parent
# The committed results, one folder per sweep.
RESULTS = REPO / "results"
# The frozen domain feature nets behind `fd_<dataset>` (committed, never trained by a trial).
FEATURE_NETS = RESULTS / "feature_nets"

# Environment variables that hold a path some trial reads (data, weights, caches).
PATH_ENV_VARS = ("VAEBENCH_DATA_ROOT", "VAEBENCH_INCEPTION_WEIGHTS", "TORCH_HOME", "XDG_CACHE_HOME")


def absolute(path: str | Path) -> str:
    """`path` with `~` expanded and made absolute against the current directory.

    Symlinks are kept as the user wrote them (no `resolve()`), so the recorded path is the one
    they know. Idempotent: an absolute path comes back unchanged (normalised).
    """
    return os.path.abspath(os.path.expanduser(str(path)))


def absolutize_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Make every set variable of PATH_ENV_VARS absolute in `environ` (default: os.environ).

    Returns {name: absolute path} of the variables that are set, for a remote cluster's
    runtime environment.
    """
    env = os.environ if environ is None else environ
    out = {}
    for name in PATH_ENV_VARS:
        if env.get(name):
            env[name] = out[name] = absolute(env[name])
    return out


def absolute_tracking_uri(uri: str) -> str:
    """A tracking URI whose local file part is absolute: `sqlite:///mlflow.db` and a bare path
    name a file relative to the current directory. Server URIs come back unchanged."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + absolute(uri[len("sqlite:///") :])
    if "://" not in uri and not uri.startswith("file:"):
        return absolute(uri)
    return uri


def import_root(module: str) -> str | None:
    """The directory that must be on sys.path to import `module` (an imported module's
    top-level package or file), or None for a namespace package or a built-in."""
    import importlib.util

    spec = importlib.util.find_spec(module.split(".")[0])
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return None
    origin = Path(spec.origin)
    # A package's origin is its __init__.py: the root is the folder above the package.
    root = origin.parent.parent if spec.submodule_search_locations else origin.parent
    return absolute(root)


def export_import_roots(modules: list[str], environ: dict[str, str] | None = None) -> None:
    """Put the import roots of `modules` (the --plugin modules, imported in the driver) on
    $PYTHONPATH, which local Ray workers inherit: a plugin found in the user's directory must
    also be found by a trial, which runs in a directory of its own."""
    import sysconfig

    env = os.environ if environ is None else environ
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    installed = {absolute(p) for p in sysconfig.get_paths().values()}
    for module in modules:
        root = import_root(module)
        if root and root not in installed and root not in {absolute(p) for p in parts}:
            parts.insert(0, root)
    if parts:
        env["PYTHONPATH"] = os.pathsep.join(parts)
