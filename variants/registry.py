"""The variant registry: a new variant joins with one decorator line.

    @register("my_vae")
    class MyVAE(Variant): ...

Variants outside this repo register the same way; `benchmark.run --plugin module` imports
their module (only when named explicitly) before the sweep file is validated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from variants.base import Variant

V = TypeVar("V", bound=type[Variant])

_REGISTRY: dict[str, type[Variant]] = {}


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
