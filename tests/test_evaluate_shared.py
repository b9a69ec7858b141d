"""The test-split pass runs the encoder once per batch, and that changes no bit of a metric."""

import pytest
import torch

from benchmark.config import EvalConfig, load_sweep
from benchmark.evaluate import EvalContext, encoder_memo
from benchmark.trial import build_model, load_trial_data


@pytest.mark.parametrize("variant", ["beta_vae", "cvae", "hierarchical"])
def test_test_pass_encodes_each_batch_once_and_keeps_every_bit(variant):
    overrides = [f"variant={variant}", "dataset.n_test=300"]
    config = load_sweep("sweeps/smoke.yaml", overrides=overrides).trials[0].config
    data = load_trial_data(config)
    torch.manual_seed(0)
    model = build_model(config, data).eval()
    cfg = EvalConfig(metrics=[], batch_size=128)  # 3 batches: 128, 128, 44
    calls = []
    # On its first layer: hooks on the encoder itself fire on memo hits too.
    first = next(m for m in model.encoder.modules() if not list(m.children()))
    handle = first.register_forward_hook(lambda m, args, out: calls.append(args[0].shape))
    runs = []
    try:
        for memo in (True, False):
            ctx = EvalContext(model, data, cfg, device=torch.device("cpu"), seed=0,
                              feature_net=None, dataset_name=data.name)  # fmt: skip
            torch.manual_seed(1)
            calls.clear()
            if memo:
                with torch.no_grad():
                    ctx.run_test_pass()
            else:  # the same pass with the memo switched off: every method runs its encoder
                with torch.no_grad(), _no_memo():
                    ctx.run_test_pass()
            runs.append((ctx.test_pass, ctx.means, len(calls)))
    finally:
        handle.remove()
    (shared, shared_means, n_shared), (plain, plain_means, n_plain) = runs
    assert n_shared == 3  # one encoder run per test batch
    assert n_plain > n_shared  # without the memo reconstruct, loss and encode each run it
    assert shared == plain  # bitwise: float equality of every test-pass number
    assert shared_means is not None and torch.equal(shared_means, plain_means)
    assert "forward" not in vars(model.encoder)  # the class's forward is back


class _no_memo:
    """Replaces `encoder_memo` in benchmark.evaluate by a no-op for the block."""

    def __enter__(self):
        import contextlib

        import benchmark.evaluate as ev

        self.saved = ev.encoder_memo
        ev.encoder_memo = lambda model: contextlib.nullcontext()

    def __exit__(self, *exc):
        import benchmark.evaluate as ev

        ev.encoder_memo = self.saved


def test_memo_recomputes_after_an_in_place_change_of_the_input():
    enc = torch.nn.Linear(3, 2)
    model = torch.nn.Module()
    model.encoder = enc
    x = torch.ones(4, 3)
    with encoder_memo(model), torch.no_grad():
        a = model.encoder(x).clone()
        x.mul_(2)
        b = model.encoder(x)
    assert not torch.equal(a, b) and torch.equal(b, enc(x).detach())
