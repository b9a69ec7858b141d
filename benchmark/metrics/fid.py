"""Fréchet distance and KID through torchmetrics: `fd_<dataset>` (our domain feature net) and
`fid_inception` (Inception-v3, only when its weights are on disk; never downloaded).

Conventions:
- Inputs are real and generated images, (N, C, H, W) floats in [0, 1], the same N for both
  (N is recorded). Grey images (C=1) are repeated to 3 channels, since torchmetrics requires 3;
  a grey domain net then reads back the first channel, so nothing is lost.
- `fd_<name>`: features of the domain net at the dataset's own resolution (resize: none).
  `fid_inception`: torchmetrics resizes to 299x299 (bilinear, antialiased; its default).
- Means, covariances and the matrix square root are float64. torchmetrics 1.9 keeps its FID sums
  in float64 but casts the final value back to the dtype of the features, so the adapter hands
  it float64 features; that also makes KID (computed on the stored features) float64.
- KID: the unbiased MMD^2 with the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3, averaged
  over `kid_subsets` random subsets of `kid_subset_size`; the subset draws are seeded, so the
  same inputs give the same KID.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import torch
from torch import nn

INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_WEIGHTS_FILE
)
INCEPTION_ENV = "VAEBENCH_INCEPTION_WEIGHTS"
INCEPTION_CONFIG_KEY = "eval.inception_weights"
INCEPTION_RESIZE = "299x299 bilinear antialiased (torchmetrics default)"
DOMAIN_RESIZE = "none"
DEFAULT_BATCH_SIZE = 500


class DomainFeatures(nn.Module):
    """Adapts a domain feature net to what torchmetrics passes a custom `feature` module.

    Input: (N, 3, H, W), uint8 in [0, 255] or floats in [0, 1] (with normalize=True).
    Output: (N, num_features) float64 features of `net` on float [0, 1] images with the net's
    own channel count (a 1-channel net gets the first channel: grey inputs were repeated).
    Uses `net.features(x)` when the net has it (FeatureNet), else `net(x)`. Always in eval mode
    and without gradients, like torchmetrics' own Inception wrapper.
    """

    def __init__(self, net: nn.Module, *, in_channels: int | None = None,
                 num_features: int | None = None):  # fmt: skip
        super().__init__()
        self.net = net
        self.in_channels = int(in_channels if in_channels is not None else net.in_channels)
        # torchmetrics reads this instead of probing the net with a 299x299 dummy image.
        self.num_features = int(num_features if num_features is not None else net.num_features)
        if self.in_channels not in (1, 3):
            raise ValueError(
                f"feature net in_channels: {self.in_channels} is not allowed; allowed: 1, 3"
            )
        self.eval()

    def train(self, mode: bool = True) -> DomainFeatures:
        """Always stays in eval mode (torchmetrics calls train(); the net is frozen)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        """Features (N, num_features) float64 for images (N, C, H, W).

        uint8 images are scaled to [0, 1]; only the first `in_channels` channels are used.
        """
        x = imgs.float() / 255 if imgs.dtype == torch.uint8 else imgs
        x = x[:, : self.in_channels].to(_param_dtype(self.net))
        extract = getattr(self.net, "features", self.net)
        return extract(x).reshape(len(x), -1).double()


def _param_dtype(net: nn.Module) -> torch.dtype:
    param = next(net.parameters(), None)
    return param.dtype if param is not None else torch.float32


def _check_pair(real: torch.Tensor, fake: torch.Tensor) -> None:
    for name, x in (("real", real), ("fake", fake)):
        if not torch.is_tensor(x) or x.dim() != 4 or x.shape[1] not in (1, 3):
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"{name} images: {shape} is not allowed; allowed: (N, 1 or 3, H, W)")
        if not x.is_floating_point():
            raise ValueError(f"{name} images: dtype {x.dtype} is not allowed; allowed: floats")
        if len(x) and (x.min() < 0 or x.max() > 1):
            raise ValueError(f"{name} images: values outside [0, 1]; allowed: floats in [0, 1]")
    if real.shape != fake.shape:
        raise ValueError(
            f"real/fake images: shapes {tuple(real.shape)} and {tuple(fake.shape)} differ; "
            "allowed: the same (N, C, H, W), i.e. as many generated samples as real images"
        )
    if len(real) < 2:
        raise ValueError(f"real/fake images: N={len(real)} is not allowed; allowed: N >= 2")


def _three_channels(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _feed(metrics: list, real: torch.Tensor, fake: torch.Tensor, batch_size: int) -> None:
    for images, is_real in ((real, True), (fake, False)):
        for start in range(0, len(images), batch_size):
            batch = _three_channels(images[start : start + batch_size]).float()
            for metric in metrics:
                metric.update(batch, real=is_real)


def frechet_distance_and_kid(
    real: torch.Tensor,
    fake: torch.Tensor,
    feature: nn.Module,
    *,
    kid_subset_size: int,
    kid_subsets: int = 100,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict:
    """FD and KID of `fake` against `real` in the features of a domain net (no resize).

    `feature` is the domain net (anything with `in_channels`, `num_features` and `features()`
    or a forward returning (N, num_features)) or a DomainFeatures around it. Returns
    {"fd", "kid_mean", "kid_std", "n", "kid_subset_size", "kid_subsets"}; see the module
    docstring for the conventions.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    _check_pair(real, fake)
    n = len(real)
    if (
        isinstance(kid_subset_size, bool)
        or not isinstance(kid_subset_size, int)
        or not (2 <= kid_subset_size <= n)
    ):
        raise ValueError(
            f"kid_subset_size: {kid_subset_size!r} is not allowed; allowed: an integer in 2..{n}"
        )
    if isinstance(kid_subsets, bool) or not isinstance(kid_subsets, int) or kid_subsets < 1:
        raise ValueError(f"kid_subsets: {kid_subsets!r} is not allowed; allowed: an integer >= 1")
    adapter = feature if isinstance(feature, DomainFeatures) else DomainFeatures(feature)
    if adapter.in_channels == 1 and real.shape[1] == 3:
        raise ValueError(
            "real/fake images: 3 channels is not allowed for a grey feature net; allowed: 1"
        )
    fid = FrechetInceptionDistance(feature=adapter, normalize=True)
    with warnings.catch_warnings():
        # "KID will save all extracted features in buffer": known, and N is bounded by the caller.
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(
            feature=adapter, subsets=kid_subsets, subset_size=kid_subset_size, normalize=True
        )
    _feed([fid, kid], real, fake, batch_size)
    fd = fid.compute()
    # KID draws its subsets with the global torch RNG: seed it, and restore the caller's state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    return {
        "fd": _non_negative(float(fd)),
        "kid_mean": float(kid_mean),
        "kid_std": float(kid_std),
        "n": n,
        "kid_subset_size": kid_subset_size,
        "kid_subsets": kid_subsets,
    }


def domain_fd_note(metric: str, n: int, net_info: dict | None = None) -> str:
    """One line for the results notes: which features, how many samples, no resize."""
    acc = ""
    if net_info and net_info.get("test_accuracy"):
        acc = (
            " (test accuracy "
            + ", ".join(f"{k} {v:.3f}" for k, v in net_info["test_accuracy"].items())
            + ")"
        )
    net = ""
    if net_info and net_info.get("weights_sha256"):
        net = f" net {net_info['weights_sha256'][:8]},"
    return (
        f"{metric}: Fréchet distance in the 128-d features of vaebench's {metric[3:]} classifier"
        f"{acc};{net} {n} generated vs {n} real test images; resize: {DOMAIN_RESIZE}; float64"
    )


# --- Inception-v3 (fid_inception) ---------------------------------------------------------------


def _default_weights_path() -> Path:
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch"
    )
    return Path(torch_home).expanduser() / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILE


def _weights_candidate(config_path: str | None) -> tuple[str, Path]:
    """(where it came from, the path): the first of config, env, TORCH_HOME that is SET.

    An explicitly given path is authoritative: a typo in it must not silently fall back to
    another file.
    """
    if config_path:
        return INCEPTION_CONFIG_KEY, Path(config_path).expanduser()
    if os.environ.get(INCEPTION_ENV):
        return INCEPTION_ENV, Path(os.environ[INCEPTION_ENV]).expanduser()
    return "TORCH_HOME", _default_weights_path()


def inception_weights(config_path: str | None) -> Path | None:
    """The Inception weights file to use, or None when it is not on disk.

    Looks at `config_path` (eval.inception_weights), then $VAEBENCH_INCEPTION_WEIGHTS, then
    $TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth (TORCH_HOME defaults
    to ~/.cache/torch, where torch-fidelity itself would cache it). Never downloads.
    """
    _, path = _weights_candidate(config_path)
    return path if path.is_file() else None


def torch_fidelity_available() -> bool:
    """Whether torch-fidelity (torchmetrics' Inception FID backend) is importable."""
    return importlib.util.find_spec("torch_fidelity") is not None


def inception_skip_reason(config_path: str | None) -> str | None:
    """None when fid_inception can run offline; else one line: what is missing and how to
    provide it. Only looks at the file system: no metric is built, nothing is downloaded."""
    problems = []
    if inception_weights(config_path) is None:
        source, path = _weights_candidate(config_path)
        where = f"{path} (from {source})" if source != "TORCH_HOME" else str(path)
        problems.append(
            f"Inception weights {INCEPTION_WEIGHTS_FILE} not found at {where}; download it "
            f"from {INCEPTION_WEIGHTS_URL} on a machine with internet and put it there, or set "
            f"{INCEPTION_ENV} or {INCEPTION_CONFIG_KEY} to its path"
        )
    if not torch_fidelity_available():
        problems.append("torch-fidelity is not installed (pip install torch-fidelity)")
    if not problems:
        return None
    return "fid_inception skipped: " + "; ".join(problems)


def inception_fid(
    real: torch.Tensor, fake: torch.Tensor, weights: Path, *, batch_size: int = 50
) -> dict:
    """FID in Inception-v3 pool3 (2048-d) features from a local weights file.

    torchmetrics converts the [0, 1] floats to uint8 and resizes to 299x299 itself. Returns
    {"fd", "n"}. Check `inception_skip_reason` first: this never downloads, and refuses a
    missing file before torchmetrics could try.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(
            f"{INCEPTION_CONFIG_KEY}: {weights} does not exist; allowed: the path of "
            f"{INCEPTION_WEIGHTS_FILE}"
        )
    _check_pair(real, fake)
    fid = FrechetInceptionDistance(
        feature=2048, feature_extractor_weights_path=str(weights), normalize=True
    )
    _feed([fid], real, fake, batch_size)
    return {"fd": _non_negative(float(fid.compute())), "n": len(real)}


def _non_negative(fd: float) -> float:
    # A Fréchet distance is >= 0; the matrix square root's round-off can make it slightly
    # negative for near-identical sets (about -1e-3 at N = 2..10 in 128-d features).
    return max(fd, 0.0)


def inception_note(n: int) -> str:
    """The note recorded with fid_inception for N = `n` generated and real images."""
    return (
        f"fid_inception: torchmetrics FID, Inception-v3 pool3 (2048-d, {INCEPTION_WEIGHTS_FILE}); "
        f"{n} generated vs {n} real test images; resize: {INCEPTION_RESIZE}"
    )
