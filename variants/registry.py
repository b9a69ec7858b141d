"""The variant registry: a new variant joins with one decorator line.

    @register("my_vae")
    class MyVAE(Variant): ...

Variants outside this repo register the same way, and are found in one of two ways:

- an installed package declares an entry point in the group ``vaebench.variants`` (its
  pyproject: ``[project.entry-points."vaebench.variants"] my_vae = "my_pkg.my_vae"``); the
  registry imports every such module the first time it is asked for a name;
- `benchmark.run --plugin module` imports a module (only when named explicitly) before the sweep
  file is validated.

`examples/plugin_variant/` is a complete installable example (β-TCVAE).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TypeVar

from variants.base import Variant

V = TypeVar("V", bound=type[Variant])

_REGISTRY: dict[str, type[Variant]] = {}
ENTRY_POINT_GROUP = "vaebench.variants"
_plugins_loaded = False


def register(name: str) -> Callable[[V], V]:
    """Class decorator adding a variant under `name`."""

    def add(cls: V) -> V:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"variant {name!r} is already registered by {_REGISTRY[name]!r}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


def get(name: str) -> type[Variant]:
    """The variant class registered under `name`; KeyError lists the known names."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown variant {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    """Registered variant names, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def _load_builtins() -> None:
    # Imported lazily so that `variants.registry` has no import cycle with the variant modules.
    import variants.cvae  # noqa: F401
    import variants.hierarchical  # noqa: F401
    import variants.iwae  # noqa: F401
    import variants.vae  # noqa: F401
    import variants.vqvae  # noqa: F401

    _load_entry_points()


def _load_entry_points() -> None:
    """Import the modules of installed packages that declare `vaebench.variants` entry points."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plugin must say which one it is
            raise ImportError(
                f"variant plugin {ep.name!r} ({ep.value}, entry point group "
                f"{ENTRY_POINT_GROUP!r}) failed to import: {type(e).__name__}: {e}"
            ) from e
