"""What a result was produced with: code version, packages, machine and device."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

from benchmark.paths import REPO

PACKAGES = ("torch", "torchvision", "ray", "mlflow", "torchmetrics", "numpy", "pydantic")


def git_commit() -> str:
    """HEAD's short hash, with '-dirty' when tracked code (benchmark/, variants/, pyproject.toml)
    differs from it; 'unknown' outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True,
            text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            # Only the code: results/ files changed by a run do not make the code dirty.
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "benchmark",
             "variants", "pyproject.toml"], cwd=REPO,
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else `platform`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line, e.g. 'x86_64, 2 cores (AMD EPYC ...), 23 GiB, no GPU'."""
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        mem_txt = f", {mem:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        mem_txt = ""
    gpu = (
        f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
        if torch.cuda.is_available()
        else "no GPU"
    )
    return f"{platform.machine()}, {os.cpu_count()} cores ({cpu_model()}){mem_txt}, {gpu}"


def versions() -> dict[str, str]:
    """{package: version} of Python and the packages that shape results (or 'not installed')."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def manifest() -> dict[str, str]:
    """The run's provenance: commit (with -dirty), machine, UTC date and package versions."""
    return {
        "commit": git_commit(),
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        **{f"version.{k}": v for k, v in versions().items()},
    }


def pick_device(requested: str = "auto", check_available: bool = True) -> torch.device:
    """'auto' → CUDA when available, else CPU; anything else is used as given.

    Raises ValueError for a string that is not a torch device, or (with `check_available`) for
    a CUDA device on a machine without CUDA.
    """
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as e:
        raise ValueError(
            f"--device {requested}: not a torch device; allowed: auto, cpu, cuda, cuda:N ({e})"
        ) from None
    if check_available and device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {requested}: CUDA is not available on this machine")
    return device
