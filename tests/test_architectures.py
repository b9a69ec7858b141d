"""The encoder/decoder families: shapes, the shape checks, every variant on every family, and a
short training run of the two deeper families (mlp4, resnet) on dSprites-like images."""

import pytest
import torch
from torch import nn

import variants
from benchmark.config import ConfigError, load_sweep
from benchmark.data import load_dataset
from variants.architectures import ARCHITECTURES, get_architecture, resnet_downsamplings
from variants.base import Variant

VARIANTS = ["beta_vae", "cvae", "hierarchical", "iwae", "vae", "vqvae"]
FAMILIES = ["mlp2", "conv4", "mlp4", "resnet"]
SHAPES = [(1, 16, 16), (1, 28, 28), (1, 32, 32), (3, 32, 32), (1, 64, 64), (3, 64, 64)]
NUM_CLASSES = 3


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_the_four_families_are_registered():
    assert list(ARCHITECTURES) == FAMILIES
    assert get_architecture("resnet") is ARCHITECTURES["resnet"]
    with pytest.raises(KeyError, match="known: conv4, mlp2, mlp4, resnet"):
        get_architecture("resnet50")


def build(variant: str, architecture: str, shape, latent_dim: int = 4) -> Variant:
    cls = variants.get(variant)
    return cls(
        cls.Config(),
        image_shape=shape,
        latent_dim=latent_dim,
        architecture=architecture,
        num_classes=NUM_CLASSES if cls.needs_labels else None,
    )


def binary_batch(shape, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    x = (torch.rand(n, *shape) > 0.7).float()
    return x, torch.arange(n) % NUM_CLASSES


def first_and_last_weights(module: nn.Module) -> list[torch.Tensor]:
    layers = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    weights = [m.weight for m in module.modules() if isinstance(m, layers)]
    return [weights[0], weights[-1]]


CASES = [(v, a, (1, 32, 32)) for v in VARIANTS for a in FAMILIES]
CASES += [(v, "resnet", s) for v in VARIANTS for s in [(3, 32, 32), (1, 64, 64)]]


@pytest.mark.parametrize(("variant", "architecture", "shape"), CASES)
def test_every_variant_builds_and_backprops(variant, architecture, shape):
    torch.manual_seed(0)
    model = build(variant, architecture, shape)
    x, y = binary_batch(shape)
    out = model.loss(x, y)
    assert torch.isfinite(out.total) and out.recon > 0
    out.total.backward()
    # The gradient reaches both ends of the architecture: the pixels' first and last layers.
    for w in first_and_last_weights(model.encoder) + first_and_last_weights(model.decoder):
        assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
    assert model.reconstruct(x, y).shape == x.shape


SUPPORTED = [(a, s) for a in FAMILIES for s in SHAPES if ARCHITECTURES[a].check(s) is None]


def test_the_required_shapes_are_supported():
    for shape in [(1, 16, 16), (1, 32, 32), (3, 32, 32), (1, 64, 64), (3, 64, 64)]:
        assert all(ARCHITECTURES[a].check(shape) is None for a in FAMILIES), shape
    assert ARCHITECTURES["mlp4"].check((1, 8, 8)) is None
    assert ARCHITECTURES["resnet"].check((1, 28, 28)) is None  # 28 -> 14 -> 7


@pytest.mark.parametrize(("architecture", "shape"), SUPPORTED)
def test_encoder_and_decoder_output_shapes(architecture, shape):
    arch = ARCHITECTURES[architecture]
    x, _ = binary_batch(shape, n=2)
    assert arch.encoder(shape, 7)(x).shape == (2, 7)
    assert arch.decoder(5, shape)(torch.randn(2, 5)).shape == (2, *shape)


@pytest.mark.parametrize(
    ("side", "stages", "map_side"), [(16, 2, 4), (28, 2, 7), (32, 2, 8), (64, 3, 8), (128, 4, 8)]
)
def test_resnet_downsamples_at_least_twice_and_to_at_most_8_px(side, stages, map_side):
    assert resnet_downsamplings(side) == stages
    encoder = ARCHITECTURES["resnet"].encoder((1, side, side), 3)
    assert sum(isinstance(m, nn.Conv2d) and m.stride == (2, 2) for m in encoder.modules()) == stages
    dense = [m for m in encoder.modules() if isinstance(m, nn.Linear)]
    assert len(dense) == 1 and dense[0].in_features == 64 * map_side * map_side


@pytest.mark.parametrize(
    ("architecture", "shape", "words"),
    [
        ("resnet", (1, 32, 16), ["resnet", "square", "16, 28, 32, 64", "got 32x16"]),
        ("resnet", (1, 8, 8), ["resnet", "side >= 16", "got 8x8"]),
        ("resnet", (1, 36, 36), ["resnet", "halves exactly", "got 36x36"]),  # 36 -> 18 -> 9
        ("resnet", (1, 30, 30), ["resnet", "got 30x30"]),
        ("conv4", (1, 28, 28), ["conv4", "multiple of 16", "got 28x28"]),
    ],
)
def test_unsupported_shapes_are_explained(architecture, shape, words):
    why = ARCHITECTURES[architecture].check(shape)
    assert why is not None and "\n" not in why
    for word in words:
        assert word in why
    if architecture == "resnet":
        # Building anyway fails with the same reason, not with a shape error deep inside torch.
        with pytest.raises(ValueError, match="resnet needs square images"):
            ARCHITECTURES["resnet"].encoder(shape, 4)


def test_the_sweep_validator_rejects_resnet_on_8x8_digits():
    digits = "dataset={name: digits, n_train: 500, n_test: 100}"
    assert load_sweep("sweeps/smoke.yaml", overrides=["architecture=mlp4", digits]).trials
    with pytest.raises(ConfigError, match=r"architecture: resnet needs square .* got 8x8"):
        load_sweep("sweeps/smoke.yaml", overrides=["architecture=resnet", digits])


def parameters(architecture: str, shape=(1, 32, 32), latent_dim: int = 16) -> int:
    return build("vae", architecture, shape, latent_dim).num_parameters()


def test_parameter_counts():
    assert parameters("mlp4") > parameters("mlp2")
    # mlp2 and conv4 are frozen (committed results depend on them): pin their sizes.
    assert parameters("mlp2") == 1_161_056
    assert parameters("conv4") == 374_881
    # Two more 400x400 layers in each of the encoder and decoder.
    assert parameters("mlp4") - parameters("mlp2") == 4 * (400 * 400 + 400)


@pytest.fixture(scope="module")
def sprites():
    return load_dataset("dsprites", resolution=32, n_train=256, n_test=64)


@pytest.mark.parametrize("architecture", ["mlp4", "resnet"])
def test_a_few_adam_steps_lower_the_vae_loss(sprites, architecture):
    torch.manual_seed(0)
    model = build("vae", architecture, sprites.image_shape, latent_dim=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def test_loss() -> float:
        torch.manual_seed(1)  # the same posterior draws before and after training
        with torch.no_grad():
            return model.loss(sprites.x_test).total.item()

    before = test_loss()
    for step in range(16):
        batch = sprites.x_train[(step * 64) % 256 :][:64]
        out = model.loss(batch)
        opt.zero_grad()
        out.total.backward()
        opt.step()
    after = test_loss()
    assert after < 0.5 * before, (before, after)
