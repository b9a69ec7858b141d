"""What a variant is, known without its model code: `VariantSpec` and the `VariantConfig` base.

A sweep file is validated against specs alone (torch is not needed to check a variant's name,
its parameters, whether it needs labels or takes free bits); the model class is imported only
when a trial is built (`VariantSpec.load`). Built-in specs are declared in `variants.catalog`;
a plugin's spec is read off its class by `variants.registry.register`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydantic

if TYPE_CHECKING:
    from variants.base import Variant

__all__ = ["VariantConfig", "VariantSpec"]


class VariantConfig(pydantic.BaseModel):
    """Base for each variant's hyper-parameters; unknown keys are errors, not silently ignored."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class VariantSpec:
    """One variant's declaration: its name, its class, and what validation needs to know.

    target: "module:Class", imported on first use (`load`). Config: its hyper-parameters (a
    `VariantConfig` subclass importable without torch). needs_labels: training reads class
    labels (unlabelled datasets are rejected). continuous_latents: False when the code is
    discrete (MIG, active units and IS-NLL are then recorded as not applicable).
    supports_free_bits: False rejects `train.free_bits > 0`. param_hints: a parameter name ->
    an extra sentence for the error when that (unknown) parameter is given.
    """

    name: str
    target: str
    Config: type[VariantConfig]
    needs_labels: bool = False
    continuous_latents: bool = True
    supports_free_bits: bool = True
    param_hints: dict[str, str] = field(default_factory=dict)

    # The class attributes a spec sets on (built-ins) or reads from (plugins) its class.
    BOUND = ("Config", "needs_labels", "continuous_latents", "supports_free_bits")

    @classmethod
    def of_class(cls, name: str, variant_cls: type[Variant]) -> VariantSpec:
        """The spec of a plugin class registered under `name`, read from its class attributes."""
        attrs = {a: getattr(variant_cls, a) for a in cls.BOUND}
        return cls(name, f"{variant_cls.__module__}:{variant_cls.__qualname__}", **attrs)

    def load(self) -> type[Variant]:
        """Import and return the variant class. Raises ImportError naming the target when the
        module fails to import, AttributeError when it lacks the class."""
        module, _, qualname = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj

    def bind(self, variant_cls: type[Variant]) -> None:
        """Set the declared attributes (name, Config, flags) on the class the spec names.

        Raises ValueError if `variant_cls` is not the class of `target`.
        """
        where = f"{variant_cls.__module__}:{variant_cls.__qualname__}"
        if where != self.target:
            raise ValueError(f"variant {self.name!r} is declared as {self.target}, not {where}")
        variant_cls.name = self.name
        for attr in self.BOUND:
            setattr(variant_cls, attr, getattr(self, attr))

    def config(self, params: dict[str, Any], beta: float | None = None) -> VariantConfig:
        """The validated hyper-parameters: `params`, plus `beta` where given (a trial's
        top-level `beta`). Raises pydantic.ValidationError on an unknown key or a bad value."""
        extra = {} if beta is None else {"beta": beta}
        return self.Config.model_validate({**params, **extra})

    def check_params(self, params: dict[str, Any], beta: float | None) -> tuple[str, str] | None:
        """(key, problem) when `params` (and `beta`) are not this variant's parameters, or None.

        The key is relative to the trial config ("params.k" or "beta"); the problem names the
        allowed parameters, with a did-you-mean. Nothing is raised.
        """
        from benchmark.config.errors import did_you_mean

        try:
            self.config(params, beta)
        except pydantic.ValidationError as e:
            err = e.errors()[0]
            name = str(err["loc"][0]) if err["loc"] else ""
            allowed = list(self.Config.model_fields)
            if err["type"] != "extra_forbidden":
                return f"params.{name}", err["msg"]
            key = "beta" if name == "beta" and beta is not None else f"params.{name}"
            problem = (
                f"not a parameter of variant {self.name!r} (its parameters: "
                f"{', '.join(allowed) if allowed else 'none'})" + did_you_mean(name, allowed)
            )
            if name in self.param_hints:
                problem += "; " + self.param_hints[name]
            return key, problem
        return None

    def check_setting(
        self, *, free_bits: float, dataset: str, labelled: bool
    ) -> tuple[str, str] | None:
        """(key, problem) when the trial's training or data does not suit this variant, or None:
        free bits (nats per latent dim) on a variant without them, labels it needs but the
        dataset lacks. Nothing is raised."""
        if free_bits > 0 and not self.supports_free_bits:
            return "train.free_bits", (
                f"variant {self.name!r} does not support free bits; allowed: 0"
            )
        if self.needs_labels and not labelled:
            return "variant", f"{self.name!r} needs labels; dataset {dataset!r} has none"
        return None
