"""The installable plugin example (β-TCVAE) and the candidate-vs-baseline comparison.

The package in examples/plugin_variant/ is pip-installed into this venv (no dependencies), so
its `vaebench.variants` entry point registers `beta_tcvae` without any --plugin flag."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.config import overrides_hash
from tests.conftest import REPO, run_cli

EXAMPLE = REPO / "examples" / "plugin_variant"
SWEEP = str(EXAMPLE / "compare_btcvae.yaml")
TINY = [
    "--override", "architecture=mlp2", "--override", "latent_dim=4",
    "--override", "dataset={name: dsprites, resolution: 16, n_train: 512, n_test: 128}",
    "--override", "train.steps=40", "--override", "train.log_every=20",
    "--override", "eval.mig_points=300", "--override", "eval.grid_images=16",
    "--override", "grid.seed=[0, 1, 2]", "--checkpoint-every", "0",
]  # fmt: skip


@pytest.fixture(scope="module")
def installed():
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "-e", str(EXAMPLE)], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    yield
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "vaebench-btcvae"],
                   capture_output=True, timeout=300)  # fmt: skip


def _python_prints_ok(code: str) -> None:
    """Run `code` in a fresh interpreter (registering beta_tcvae must not leak into the other
    tests) and require it to print `ok`."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def _trainings(results: Path) -> int:
    """Training attempts, as the trials log them (one line per start, in attempts.jsonl)."""
    return sum(
        len(p.read_text().splitlines()) for p in results.glob("ray/*/trials/*/attempts.jsonl")
    )


def test_entry_point_registers_the_variant(installed):
    out = subprocess.run([sys.executable, "-c", "import variants; print(variants.names())"],
                         capture_output=True, text=True, cwd="/")  # fmt: skip
    assert "beta_tcvae" in out.stdout, out.stderr


def test_candidate_against_cached_baseline_trains_only_the_candidate(installed, tmp_path):
    results = tmp_path / "results"
    common = [*TINY, "--results-dir", str(results)]
    base = run_cli("benchmark.run", SWEEP, "--override", "grid.variant=[beta_vae]", *common)
    assert base.returncode == 0, base.stdout + base.stderr
    assert _trainings(results) == 3

    out = run_cli("benchmark.compare", SWEEP, *common)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "cache: 3 trials" in out.stdout
    assert _trainings(results) == 6  # the 3 β-TCVAE trials only
    # the folder of the sweep as run with TINY's overrides (Sweep.results_name)
    folder = results / f"compare_btcvae+{overrides_hash(TINY[1:-2:2])}"
    md = (folder / "compare.md").read_text()
    assert "## vs beta_vae" in md and "paired t" in md and "p (Holm)" in md
    assert "Summary:" in md
    for name in ("compare.csv", "compare.tex", "compare.png", "compare.pdf", "table.md"):
        assert (folder / name).is_file(), name
    assert "beta_tcvae" in (folder / "table.md").read_text()

    again = run_cli("benchmark.compare", SWEEP, *common)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _trainings(results) == 6  # a second run trains nothing
    assert "cache: 6 trials" in again.stdout


def test_mws_weights_each_example_by_one_over_n(installed):
    """Far-apart, sharp posteriors: only q(z_i|x_i) counts in the sum over the batch, so the
    MWS estimate (eq. 5 / appendix C.1 of arXiv 1802.04942) is
    log q(z_i) = log q(z_i|x_i) - log(N·M), and likewise per dim: the MI term is log(N·M) and
    the TC term (d - 1)·log(N·M) for d latent dims and a batch of M. Run in a subprocess:
    importing the plugin registers beta_tcvae, which must not leak into the other tests."""
    code = f"""
import math, sys, torch
sys.path.insert(0, {str(EXAMPLE)!r})
from vaebench_btcvae import mws_decomposition
from variants.base import Posterior
mean = torch.arange(8.0).unsqueeze(1).repeat(1, 3) * 100
post = Posterior(mean, torch.full_like(mean, -8.0))
mi, tc, dim_kl = mws_decomposition(mean.clone(), post, dataset_size=1000)
log_nm = math.log(1000 * 8)
assert torch.allclose(mi, torch.full_like(mi, log_nm), atol=1e-3), mi
assert torch.allclose(tc, torch.full_like(tc, 2 * log_nm), atol=1e-3), tc
try:
    mws_decomposition(mean, post, dataset_size=4)
except ValueError as e:
    assert "dataset_size" in str(e)
else:
    raise AssertionError("dataset_size < batch accepted")
print("ok")
"""
    _python_prints_ok(code)


def test_beta_tcvae_loss_is_the_vae_loss_with_its_own_regulariser():
    """β-TCVAE reuses VAE.loss (one reparameterised draw, the decoder's NLL) and replaces only
    β·KL by α·MI + β·TC + γ·dim-KL; free bits, which would clamp a KL it does not optimise,
    are refused. In a subprocess, so that registering beta_tcvae does not leak."""
    code = f"""
import sys, torch
sys.path.insert(0, {str(EXAMPLE)!r})
from vaebench_btcvae import BetaTCVAE, BetaTCVAEConfig, mws_decomposition
from variants.losses import gaussian_kl, reparameterise
assert BetaTCVAE.supports_free_bits is False and "1802.04942" in BetaTCVAE.description
torch.manual_seed(0)
cfg = BetaTCVAEConfig(beta=3.0, alpha=0.5, gamma=2.0)
m = BetaTCVAE(cfg, image_shape=(1, 8, 8), latent_dim=3, architecture="mlp2", dataset_size=500)
x = torch.rand(16, 1, 8, 8).round()
torch.manual_seed(1)
out = m.loss(x, kl_weight=0.25)
torch.manual_seed(1)
post = m.encode(x)
z = reparameterise(post.mean, post.logvar)
recon = m.likelihood.nll(m.decoder(z), x)
mi, tc, dim_kl = mws_decomposition(z, post, 500)
total = recon + 0.25 * (0.5 * mi + 3.0 * tc + 2.0 * dim_kl)
assert torch.equal(out.total, total.mean()), (out.total, total.mean())
assert torch.equal(out.kl, gaussian_kl(post.mean, post.logvar).sum(-1).mean())
assert torch.equal(out.extras["tc"], tc.mean().detach())
try:
    m.loss(x, free_bits=0.5)
except ValueError as e:
    assert "free bits" in str(e)
else:
    raise AssertionError("free_bits accepted")
print("ok")
"""
    _python_prints_ok(code)
