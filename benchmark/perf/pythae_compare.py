"""vaebench's training loop against pythae's `BaseTrainer` on the same VAE (mlp2 networks).

    PYTHONPATH=$PWD:<where pythae is> python -m benchmark.perf.pythae_compare [--repeats 5]

pythae (Chadebec et al. 2022, arXiv:2206.08309) is not a project dependency: install it
anywhere importable (`pip install --target /tmp/pythae_pkgs --no-deps pythae` is enough, its
other requirements are already ours). Both loops train copies of one set of weights: the
`vae` variant's mlp2 encoder and decoder, latent 10, batch 128, Adam at lr 1e-3, on 28×28
binary images, fp32, 1 torch thread (timed by the process's CPU time). pythae runs as shipped
(DataLoader over its `BaseDataset`, its Adam; only its tqdm bar is removed); one timed unit is
one epoch of its `train_step` against the same number of steps of `benchmark.train.train`.
Repeats are interleaved; medians are reported.
"""

from __future__ import annotations

import copy
import logging
import statistics
import tempfile
import time

import torch

import variants
from benchmark.cli import Parser
from benchmark.config import TrainConfig
from benchmark.perf import require_counts
from benchmark.train import train


def _pythae_trainer(model: variants.base.Variant, x: torch.Tensor, batch: int, out_dir: str):
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    for name in list(logging.root.manager.loggerDict):  # its INFO banners on every new trainer
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)

    class Encoder(BaseEncoder):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> ModelOutput:
            mean, logvar = self.net(x).chunk(2, dim=-1)
            return ModelOutput(embedding=mean, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, z: torch.Tensor) -> ModelOutput:
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    cfg = VAEConfig(input_dim=tuple(x.shape[1:]), latent_dim=model.latent_dim,
                    reconstruction_loss="bce")  # fmt: skip
    vae = VAE(cfg, encoder=Encoder(copy.deepcopy(model.encoder)),
              decoder=Decoder(copy.deepcopy(model.decoder)))  # fmt: skip
    tcfg = BaseTrainerConfig(output_dir=out_dir, per_device_train_batch_size=batch,
                             learning_rate=1e-3, num_epochs=1, no_cuda=True)  # fmt: skip
    trainer = BaseTrainer(vae, BaseDataset(x, torch.zeros(x.shape[0])), training_config=tcfg)
    trainer.prepare_training()
    # Its tqdm bar writes per batch to the terminal; dropping it only makes pythae faster.
    handler = trainer.callback_handler
    handler.callbacks = [c for c in handler.callbacks if "ProgressBar" not in type(c).__name__]
    return trainer


def compare(repeats: int = 5, steps: int = 60, batch: int = 128, threads: int = 1) -> dict:
    """Images per second of both trainers (medians over interleaved repeats) and their ratio."""
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.rand(steps * batch, 1, 28, 28, generator=gen), generator=gen)
    torch.manual_seed(0)
    cls = variants.get("vae")
    model = cls(cls.Config(), image_shape=(1, 28, 28), latent_dim=10, architecture="mlp2")
    cfg = TrainConfig(steps=steps, batch_size=batch, lr=1e-3, log_every=steps)
    # 1 thread: the process's CPU time, robust to other load on a shared machine (pythae's
    # DataLoader runs in this process, num_workers=0); else the wall clock.
    clock = time.process_time if threads == 1 else time.perf_counter
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as out:
        for r in range(repeats + 1):  # the first round warms both up and is not counted
            m = copy.deepcopy(model)
            t0 = clock()
            train(m, x, cfg, seed=r)
            t_ours = clock() - t0
            trainer = _pythae_trainer(model, x, batch, out)
            t0 = clock()
            trainer.train_step(epoch=1)
            t_theirs = clock() - t0
            if r:
                ours.append(steps * batch / t_ours)
                theirs.append(steps * batch / t_theirs)
    return {
        "params": model.num_parameters(),
        "threads": threads,
        "vaebench": statistics.median(ours),
        "pythae": statistics.median(theirs),
        "ratio": statistics.median(a / b for a, b in zip(ours, theirs, strict=True)),
    }


def main(argv: list[str] | None = None) -> None:
    p = Parser(prog="python -m benchmark.perf.pythae_compare",
                                description=__doc__.splitlines()[0])  # fmt: skip
    p.add_argument("--repeats", type=int, default=5, help="interleaved timed rounds (median)")
    p.add_argument("--steps", type=int, default=60, help="steps (batches of 128) per round")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args(argv)
    require_counts(p, args, "repeats", "steps", "threads")
    try:
        import pythae  # noqa: F401
    except ImportError:
        print("pythae is not installed; skipped (pip install --target DIR --no-deps pythae)")
        return
    logging.getLogger("pythae").setLevel(logging.WARNING)
    r = compare(args.repeats, args.steps, threads=args.threads)
    print(f"mlp2 VAE, {r['params']} parameters, batch 128, 28x28 binary, fp32, "
          f"{r['threads']} thread(s), median of {args.repeats}:")  # fmt: skip
    print(f"  vaebench {r['vaebench']:.0f} img/s, pythae BaseTrainer {r['pythae']:.0f} img/s")
    print(f"vaebench / pythae: {r['ratio']:.2f}")


if __name__ == "__main__":
    main()
