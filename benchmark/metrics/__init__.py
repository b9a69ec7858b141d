"""Evaluation metrics of the benchmark."""

from benchmark.metrics.active_units import active_units
from benchmark.metrics.mig import MIGResult, mig, mig_details

__all__ = [
    "MIGResult",
    "active_units",
    "mig",
    "mig_details",
]
