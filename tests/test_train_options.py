"""Training options: gradient clipping, LR schedules, spectral norm, bf16, and their resume."""

import copy
import math

import pytest
import torch
from torch.nn.utils import parametrize
from torch.optim.optimizer import register_optimizer_step_pre_hook

from benchmark.config import ConfigError, TrainConfig, load_sweep
from benchmark.train import cosine_factor, make_optimizer, make_scheduler, train
from benchmark.trial import build_model, load_trial_data
from variants.base import LossOutput


@pytest.fixture(scope="module")
def smoke():
    config = load_sweep("sweeps/smoke.yaml").trials[0].config
    return config, load_trial_data(config)


def _model(smoke):
    config, data = smoke
    torch.manual_seed(0)
    return build_model(config, data)


def _cfg(**kw):
    return TrainConfig(**{"steps": 40, "batch_size": 32, "log_every": 10, **kw})


def test_grad_clip_bounds_the_gradient_norm_adam_steps_with(smoke):
    seen = []

    def record(opt, args, kwargs):
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        seen.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())

    handle = register_optimizer_step_pre_hook(record)
    try:
        train(_model(smoke), smoke[1].x_train, _cfg(steps=20), seed=0)
        unclipped, seen[:] = list(seen), []
        history = train(_model(smoke), smoke[1].x_train, _cfg(steps=20, grad_clip=0.5), seed=0)
    finally:
        handle.remove()
    assert min(unclipped) > 0.5  # else the test could not fail
    assert len(seen) == 20 and max(seen) <= 0.5 * (1 + 1e-5)
    assert history.history[0]["grad_norm"] > 0.5  # the logged norm is the pre-clip one


def test_cosine_schedule_matches_torchs_own_warmup_plus_cosine():
    steps, warmup = 50, 5
    p = torch.nn.Parameter(torch.zeros(1))
    ours = make_optimizer([p], 1e-3)
    ref = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    ref_sched = torch.optim.lr_scheduler.SequentialLR(
        ref,
        [
            torch.optim.lr_scheduler.LinearLR(ref, 1 / warmup, 1.0, total_iters=warmup - 1),
            torch.optim.lr_scheduler.CosineAnnealingLR(ref, T_max=steps - warmup),
        ],
        milestones=[warmup],
    )
    sched = make_scheduler(ours, TrainConfig(steps=steps, lr_schedule="cosine",
                                             lr_warmup_steps=warmup))  # fmt: skip
    for step in range(steps):
        got, want = ours.param_groups[0]["lr"], ref.param_groups[0]["lr"]
        assert got == pytest.approx(want, rel=1e-9, abs=1e-15), step
        assert got == pytest.approx(1e-3 * cosine_factor(step, warmup, steps), rel=1e-12)
        ours.step(), ref.step(), sched.step(), ref_sched.step()
    assert cosine_factor(0, 5, 50) == 0.2 and cosine_factor(4, 5, 50) == 1.0
    halfway = 0.5 * (1 + math.cos(math.pi * 22 / 45))
    assert cosine_factor(5 + 22, 5, 50) == pytest.approx(halfway)


class _Flat(torch.nn.Module):
    """A model whose loss does not depend on its parameter: a perfectly flat loss."""

    default_kl_warmup_steps = 0

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3))

    def loss(self, x, y=None, *, kl_weight=1.0, free_bits=0.0):
        total = 0.0 * self.w.sum() + 1.0
        return LossOutput(total, total.detach(), torch.zeros(()))


def test_plateau_schedule_reduces_lr_on_a_flat_loss():
    x = torch.zeros(64, 1, 2, 2)
    cfg = _cfg(steps=100, lr_schedule="plateau", lr_plateau_patience=2, lr_plateau_factor=0.5)
    lrs = [r["lr"] for r in train(_Flat(), x, cfg, seed=0).history]
    # Window 1 sets the best loss; 3 windows without improvement (> patience 2) halve the LR.
    assert lrs == [1e-3] * 4 + [5e-4] * 3 + [2.5e-4] * 3
    const = train(_Flat(), x, _cfg(steps=100), seed=0).history
    assert {r["lr"] for r in const} == {1e-3}


def test_spectral_norm_bounds_the_decoders_largest_singular_value(smoke):
    model = _model(smoke)
    train(model, smoke[1].x_train, _cfg(steps=30, spectral_norm_decoder=True), seed=0)
    layers = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    model.eval()
    for m in layers:
        assert torch.linalg.matrix_norm(m.weight, ord=2).item() == pytest.approx(1.0, abs=0.05)
    plain = _model(smoke)
    train(plain, smoke[1].x_train, _cfg(steps=5), seed=0)
    assert not any(parametrize.is_parametrized(m) for m in plain.decoder.modules())


@pytest.mark.parametrize(
    "options",
    [
        {"lr_schedule": "cosine", "lr_warmup_steps": 10, "grad_clip": 1.0},
        {"lr_schedule": "plateau", "precision": "bf16", "spectral_norm_decoder": True},
    ],
)
def test_resume_with_options_is_bitwise_equal_to_straight_run(smoke, options):
    x = smoke[1].x_train
    cfg = _cfg(steps=60, **options)
    torch.manual_seed(0)
    straight = _model(smoke)
    torch.manual_seed(1)
    train(straight, x, cfg, seed=0)
    states = []
    cut = _model(smoke)
    torch.manual_seed(1)
    # The state holds live tensors that training goes on changing: keep a copy, as a file would.
    train(cut, x, cfg, seed=0, save=lambda s: states.append(copy.deepcopy(s)),
          checkpoint_every=30)  # fmt: skip
    assert states and states[0]["step"] == 30 and (states[0]["scheduler"] is not None)
    resumed = _model(smoke)
    torch.manual_seed(123)  # the RNG state comes from the checkpoint, not from here
    train(resumed, x, cfg, seed=0, resume=states[0])
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_bf16_is_deterministic_and_close_to_fp32(smoke):
    x = smoke[1].x_train
    runs = []
    for precision in ("bf16", "bf16", "fp32"):
        torch.manual_seed(1)
        runs.append(train(_model(smoke), x, _cfg(steps=40, precision=precision), seed=0))

    def curve(run):
        return [{k: v for k, v in r.items() if k != "images_per_second"} for r in run.history]

    assert curve(runs[0]) == curve(runs[1])
    bf16, fp32 = runs[0].history[-1]["train_loss"], runs[2].history[-1]["train_loss"]
    assert bf16 != fp32 and bf16 == pytest.approx(fp32, rel=0.05)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.precision=fp16", "train.precision: Input should be 'fp32' or 'bf16'"),
        ("train.lr_schedule=step", "'constant', 'cosine' or 'plateau'"),
        ("train.grad_clip=0", "train.grad_clip: Input should be greater than 0"),
        ("train.lr_warmup_steps=5", "train.lr_warmup_steps: only for lr_schedule 'cosine'"),
        ("train.spectral_norm_decoder=1", "spectral_norm_decoder: Input should be a valid boolean"),
        ("train.lr_plateau_factor=1", "train.lr_plateau_factor"),
    ],
)
def test_bad_training_options_name_the_key_and_the_allowed_values(override, needle):
    with pytest.raises(ConfigError) as info:
        load_sweep("sweeps/smoke.yaml", overrides=[override])
    assert needle in str(info.value), str(info.value)
    with pytest.raises(ConfigError, match="allowed: 0 .. train.steps - 1"):
        load_sweep("sweeps/smoke.yaml", overrides=["train.lr_schedule=cosine",
                                                   "train.lr_warmup_steps=60"])  # fmt: skip


def test_a_trial_running_alone_gets_every_core_and_trials_sharing_get_their_share():
    from benchmark.tune import threads_per_trial

    assert threads_per_trial(1, 1, cores=2) == 2  # one trial: the free core too
    assert threads_per_trial(1, 12, cores=2) == 1  # 2 at a time: one core each
    assert threads_per_trial(1, 3, cores=8) == 2  # 3 trials on 8 cores
    assert threads_per_trial(4, 2, cores=8) == 4
    assert threads_per_trial(1, 1, cores=None) == 1  # multi-node: its own CPUs only


def test_channels_last_is_deterministic_and_close_to_nchw():
    config = load_sweep("sweeps/smoke.yaml", overrides=["architecture=conv4"]).trials[0].config
    x = load_trial_data(config).x_train[:256]
    models = []
    for on in (True, True, False):
        torch.manual_seed(0)
        model = build_model(config, load_trial_data(config))
        torch.manual_seed(1)
        train(model, x, _cfg(steps=8, channels_last=on), seed=0)
        models.append(model)
    conv = next(m for m in models[0].modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # the option is on
    for (name, a), b, c in zip(models[0].state_dict().items(), models[1].state_dict().values(),
                               models[2].state_dict().values(), strict=True):  # fmt: skip
        assert torch.equal(a, b), name  # same seed, same option: bitwise the same weights
        assert torch.allclose(a, c, atol=1e-3), name  # and NCHW's up to rounding


def test_bf16_on_a_cpu_without_native_bf16_is_warned_before_the_sweep(tmp_path):
    from benchmark.plan import dry_run_text, native_bf16_on_cpu, precision_warning

    bf16 = load_sweep("sweeps/smoke.yaml", overrides=["train.precision=bf16"])
    fp32 = load_sweep("sweeps/smoke.yaml")
    slow = not native_bf16_on_cpu()  # this machine (AVX2): True
    text = dry_run_text(bf16, tmp_path, None, 2, "cpu")
    assert ("bf16 is emulated here, about 90x slower" in text) == slow
    assert "bf16 is emulated" not in dry_run_text(fp32, tmp_path, None, 2, "cpu")
    # Not on a cluster (its workers' devices are not known to the driver), not on CUDA.
    assert precision_warning(bf16, "cpu", address="10.0.0.1:6379") == ""
    assert precision_warning(bf16, "cuda") == ""
