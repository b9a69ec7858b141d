"""Throughput benchmarks: `python -m benchmark.perf` (numbers for the README, not for tests)."""
