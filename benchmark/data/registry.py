"""The dataset registry: one `DatasetSpec` per dataset, by name.

Each dataset declares its spec next to its loader (`SPEC` in `benchmark/data/<name>.py`); the
built-ins join with one `register(...)` line each in `benchmark/data/__init__.py`, a plugin or a
test with one `register(...)` call in its own module (named by `benchmark.run --plugin`). Sweep
validation, `load_dataset`, the feature nets and the report read what they need from the spec,
never from the dataset's name.
"""

from __future__ import annotations

from .spec import DatasetSpec

__all__ = ["SPECS", "names", "register", "unregister"]

# name -> spec, in registration order (the built-ins first).
SPECS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add `spec` under `spec.name`; raises ValueError when another spec has that name."""
    other = SPECS.get(spec.name)
    if other is not None and other is not spec:
        raise ValueError(f"dataset {spec.name!r} is already registered ({other.title})")
    SPECS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a dataset (tests and plugins that register temporarily)."""
    SPECS.pop(name, None)


def names() -> list[str]:
    """The registered dataset names, in registration order."""
    return list(SPECS)
