"""Throughput benchmarks: `python -m benchmark.perf` (numbers for the README, not for tests)."""

import argparse


def require_counts(parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str) -> None:
    """Exit 2 with one line when any of the integer options `names` is below 1: at once, before
    minutes of timing, as every vaebench command says a bad value."""
    for key in names:
        value = getattr(args, key)
        if value < 1:
            parser.exit(2, f"error: --{key}: {value} is not allowed; allowed: an integer >= 1\n")
