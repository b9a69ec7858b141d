"""The variant registry: built-ins are a declarative table, plugins join with one decorator.

Built-in variants are the `VariantSpec` rows of `variants.catalog.BUILTINS` (name, "module:Class",
hyper-parameters, flags); their classes are imported on first use, so validating a sweep needs
no model code. A built-in's model file marks its class with the same decorator as a plugin,
``@register("<name>")``, which then binds the declared attributes to the class.

Variants outside this repo register with the decorator alone (their spec is read off the class):

    @register("my_vae")
    class MyVAE(Variant): ...

and are found in one of two ways:

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
from typing import TYPE_CHECKING, TypeVar

from variants.catalog import BUILTINS
from variants.declaration import VariantSpec

if TYPE_CHECKING:
    from variants.base import Variant

V = TypeVar("V", bound="type[Variant]")

ENTRY_POINT_GROUP = "vaebench.variants"
_BUILTIN: dict[str, VariantSpec] = {s.name: s for s in BUILTINS}
_SPECS: dict[str, VariantSpec] = dict(_BUILTIN)
_CLASSES: dict[str, type[Variant]] = {}
_plugins_loaded = False


def register(name: str) -> Callable[[V], V]:
    """Class decorator adding a variant under `name`.

    For a name declared in `variants.catalog.BUILTINS` it binds the declared Config and flags
    to the class; for any other name (a plugin) the spec is read from the class attributes.
    Raises ValueError when `name` is taken by another class, or when a declared name decorates
    a class other than the declared one.
    """

    def add(cls: V) -> V:
        if name in _CLASSES and _CLASSES[name] is not cls:
            raise ValueError(f"variant {name!r} is already registered by {_CLASSES[name]!r}")
        if name in _BUILTIN:
            _BUILTIN[name].bind(cls)
        else:
            cls.name = name
            _SPECS[name] = VariantSpec.of_class(name, cls)
        _CLASSES[name] = cls
        return cls

    return add


def spec(name: str) -> VariantSpec:
    """The declaration of variant `name`, without importing its model code (plugins are
    imported, as that is how they declare themselves). Raises KeyError listing the names."""
    if name not in _SPECS:
        _load_entry_points()
    try:
        return _SPECS[name]
    except KeyError:
        raise KeyError(f"unknown variant {name!r}; known: {', '.join(names())}") from None


def get(name: str) -> type[Variant]:
    """The variant class registered under `name`, imported on first use.

    Raises KeyError listing the known names; ImportError/AttributeError when a declared
    built-in's module or class is missing (`VariantSpec.load`).
    """
    declared = spec(name)
    if name not in _CLASSES:
        loaded = declared.load()  # its @register line binds and records it
        if _CLASSES.get(name) is not loaded:
            raise ValueError(
                f"variant {name!r}: {declared.target} is not decorated with @register({name!r})"
            )
    return _CLASSES[name]


def names() -> list[str]:
    """Registered variant names (built-ins and installed plugins), sorted."""
    _load_entry_points()
    return sorted(_SPECS)


def _load_entry_points() -> None:
    """Import the modules of installed packages that declare `vaebench.variants` entry points.

    Raises ImportError naming the plugin and its entry point when one fails to import.
    """
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
