"""VAE variants and the registry they join. See `variants.base.Variant` for the contract and
`variants.catalog` for the built-in declarations; docs/design.md, "How to add a variant"."""

from variants.registry import get, names, register, spec

__all__ = ["get", "names", "register", "spec"]
