"""VAE variants and the registry they join. See `variants.base.Variant` for the contract."""

from variants.registry import get, names, register

__all__ = ["get", "names", "register"]
