"""Decoder likelihoods p(x|z), one module each behind `Likelihood` (see `base`).

A new likelihood is one module and one line in `LIKELIHOODS`. A trial picks one with the
top-level config key `likelihood: <name>` or `likelihood: {name: <name>, <param>: ...}`.
"""

from __future__ import annotations

from typing import Any

from variants.likelihoods.base import Likelihood, LikelihoodConfig
from variants.likelihoods.bernoulli import Bernoulli
from variants.likelihoods.continuous_bernoulli import ContinuousBernoulli
from variants.likelihoods.discretized_logistic import DiscretizedLogistic
from variants.likelihoods.gaussian import Gaussian

LIKELIHOODS: dict[str, type[Likelihood]] = {
    "bernoulli": Bernoulli,
    "gaussian": Gaussian,
    "continuous_bernoulli": ContinuousBernoulli,
    "discretized_logistic": DiscretizedLogistic,
}
DEFAULT = "bernoulli"


def get(name: str) -> type[Likelihood]:
    """The likelihood class named `name`; KeyError lists the allowed names."""
    try:
        return LIKELIHOODS[name]
    except KeyError:
        from benchmark.config.errors import did_you_mean

        raise KeyError(
            f"unknown likelihood {name!r}; allowed: {', '.join(LIKELIHOODS)}"
            + did_you_mean(name, list(LIKELIHOODS))
        ) from None


def build(name: str = DEFAULT, params: dict[str, Any] | None = None) -> Likelihood:
    """A likelihood from its name and parameters (validated; pydantic.ValidationError)."""
    cls = get(name)
    return cls(cls.Config.model_validate(params or {}))


__all__ = ["LIKELIHOODS", "Bernoulli", "Likelihood", "LikelihoodConfig", "build", "get"]
