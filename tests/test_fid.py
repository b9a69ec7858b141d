"""FD/KID through torchmetrics against independent float64 references, and the Inception skip."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
from scipy import linalg
from torch import nn

from benchmark.metrics import fid as fidmod
from benchmark.metrics.fid import (
    INCEPTION_ENV,
    INCEPTION_WEIGHTS_FILE,
    DomainFeatures,
    frechet_distance_and_kid,
    inception_fid,
    inception_skip_reason,
    inception_weights,
)

torch.set_num_threads(1)

N, SIDE = 200, 8


class RandomFeatures(nn.Module):
    """A fixed random feature module with the attributes the adapter reads."""

    def __init__(self, in_channels: int = 3, num_features: int = 16, seed: int = 0):
        super().__init__()
        self.in_channels, self.num_features = in_channels, num_features
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.body = nn.Sequential(
                nn.Conv2d(in_channels, 8, 3, stride=2, padding=1),
                nn.Tanh(),
                nn.Flatten(),
                nn.Linear(8 * (SIDE // 2) ** 2, num_features),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _images(seed: int, channels: int = 3, n: int = N) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, SIDE, SIDE, generator=g)


def _shifted(x: torch.Tensor, amount: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(x.shape, generator=g)
    return ((1 - amount) * x + amount * noise**0.3).clamp(0, 1)


def _features(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    return DomainFeatures(net)(x.expand(-1, 3, -1, -1)).numpy()


def _scipy_fd(f1: np.ndarray, f2: np.ndarray) -> float:
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _numpy_kid(fr: np.ndarray, ff: np.ndarray) -> float:
    d, m = fr.shape[1], len(fr)

    def k(a, b):
        return (a @ b.T / d + 1.0) ** 3

    kxx, kyy, kxy = k(fr, fr), k(ff, ff), k(fr, ff)
    off = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(off - 2 * kxy.mean())


def _fd_kid(real, fake, net, **kw):
    kw.setdefault("kid_subset_size", 100)
    kw.setdefault("kid_subsets", 20)
    return frechet_distance_and_kid(real, fake, net, **kw)


def test_self_distance_is_zero_and_shift_increases_it():
    net = RandomFeatures()
    real = _images(0)
    scale = float(np.trace(np.cov(_features(net, real), rowvar=False)))
    same = _fd_kid(real, real, net)
    assert abs(same["fd"]) < 1e-6 * scale
    small, large = (_fd_kid(real, _shifted(real, a), net) for a in (0.2, 0.6))
    assert small["fd"] > 1e-2 * scale
    assert large["fd"] > 2 * small["fd"]
    # KID is unbiased, so a set against itself scatters around 0 (its subsets differ).
    assert large["kid_mean"] > small["kid_mean"]
    assert large["kid_mean"] > 3 * abs(same["kid_mean"])
    assert same["n"] == N and same["kid_subset_size"] == 100 and same["kid_subsets"] == 20


def test_fd_matches_scipy_sqrtm_in_float64():
    net = RandomFeatures()
    real, fake = _images(0), _shifted(_images(0), 0.3)
    ours = _fd_kid(real, fake, net, batch_size=64)  # batches that do not divide N
    ref = _scipy_fd(_features(net, real), _features(net, fake))
    assert ref > 0
    assert ours["fd"] == pytest.approx(ref, rel=1e-3)


def test_kid_matches_numpy_unbiased_mmd_on_the_same_subsets():
    net = RandomFeatures()
    real, fake = _images(0), _shifted(_images(0), 0.3)
    fr, ff = _features(net, real), _features(net, fake)
    # One subset of all N: no subset draw involved.
    whole = _fd_kid(real, fake, net, kid_subset_size=N, kid_subsets=1)
    assert whole["kid_mean"] == pytest.approx(_numpy_kid(fr, ff), rel=1e-6)
    assert whole["kid_std"] == 0
    # Several subsets: torchmetrics draws randperm(real), randperm(fake) per subset from the
    # global RNG, which we seed with `seed` right before compute.
    ours = _fd_kid(real, fake, net, kid_subset_size=40, kid_subsets=4, seed=7)
    torch.manual_seed(7)
    scores = []
    for _ in range(4):
        pr, pf = torch.randperm(N)[:40].numpy(), torch.randperm(N)[:40].numpy()
        scores.append(_numpy_kid(fr[pr], ff[pf]))
    assert ours["kid_mean"] == pytest.approx(np.mean(scores), rel=1e-6)
    assert ours["kid_std"] == pytest.approx(np.std(scores), rel=1e-6)


def test_kid_is_deterministic_and_leaves_the_global_rng_alone():
    net = RandomFeatures()
    real, fake = _images(0), _shifted(_images(0), 0.3)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = _fd_kid(real, fake, net, seed=3)
    assert torch.rand(1) == expected_next
    b = _fd_kid(real, fake, net, seed=3)
    c = _fd_kid(real, fake, net, seed=4)
    assert a == b
    assert a["kid_mean"] != c["kid_mean"]


def test_grey_images_equal_their_three_channel_repeat():
    real, fake = _images(0, channels=1), _shifted(_images(0, channels=1), 0.3)
    rgb = (real.repeat(1, 3, 1, 1), fake.repeat(1, 3, 1, 1))
    for net in (RandomFeatures(in_channels=1), RandomFeatures(in_channels=3)):
        grey = _fd_kid(real, fake, net)
        assert grey["fd"] > 0
        if net.in_channels == 3:
            assert _fd_kid(*rgb, net) == grey
    # A grey net would silently drop two real colour channels: refused.
    with pytest.raises(ValueError, match="grey feature net"):
        _fd_kid(*rgb, RandomFeatures(in_channels=1))


def test_uint8_input_to_the_adapter_matches_floats():
    net = DomainFeatures(RandomFeatures())
    x = (_images(0) * 255).round().to(torch.uint8)
    assert torch.equal(net(x), net(x.float() / 255))
    assert net(x).dtype == torch.float64 and net(x).shape == (N, 16)


@pytest.mark.parametrize(
    ("real", "fake", "kw", "match"),
    [
        (_images(0, n=10), _images(1, n=12), {}, "differ"),
        (_images(0, n=10), _images(1, n=10) * 2, {}, r"outside \[0, 1\]"),
        (_images(0, n=10), _images(1, n=10), {"kid_subset_size": 11}, "kid_subset_size"),
        (_images(0, n=10), _images(1, n=10), {"kid_subsets": 0}, "kid_subsets"),
    ],
)
def test_bad_input_raises_naming_the_problem(real, fake, kw, match):
    kw.setdefault("kid_subset_size", 5)
    with pytest.raises(ValueError, match=match):
        frechet_distance_and_kid(real, fake, RandomFeatures(), **kw)


# --- Inception: skipped offline, never downloaded ---------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty TORCH_HOME, no env override, and any network connection raises."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(INCEPTION_ENV, raising=False)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return tmp_path


def test_missing_inception_weights_give_one_line_reason_without_network(offline):
    reason = inception_skip_reason(None)
    assert reason is not None and "\n" not in reason
    assert INCEPTION_WEIGHTS_FILE in reason
    assert INCEPTION_ENV in reason and "eval.inception_weights" in reason
    assert str(offline / "torch" / "hub" / "checkpoints") in reason
    assert inception_weights(None) is None
    with pytest.raises(FileNotFoundError, match="eval.inception_weights"):
        inception_fid(_images(0, n=4), _images(1, n=4), offline / INCEPTION_WEIGHTS_FILE)


def test_inception_weights_lookup_order(offline, monkeypatch):
    cached = offline / "torch" / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert inception_weights(None) == cached
    env_file = offline / "env.pth"
    env_file.write_bytes(b"")
    monkeypatch.setenv(INCEPTION_ENV, str(env_file))
    assert inception_weights(None) == env_file
    config_file = offline / "config.pth"
    config_file.write_bytes(b"")
    assert inception_weights(str(config_file)) == config_file
    # An explicit path that does not exist is reported, not silently replaced by another file.
    missing = offline / "typo.pth"
    assert inception_weights(str(missing)) is None
    assert str(missing) in inception_skip_reason(str(missing))


def test_skip_reason_is_none_when_weights_and_torch_fidelity_are_there(offline, monkeypatch):
    cached = offline / "torch" / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    monkeypatch.setattr(fidmod, "torch_fidelity_available", lambda: True)
    assert inception_skip_reason(None) is None
    monkeypatch.setattr(fidmod, "torch_fidelity_available", lambda: False)
    reason = inception_skip_reason(None)
    assert "pip install torch-fidelity" in reason and INCEPTION_WEIGHTS_FILE not in reason
