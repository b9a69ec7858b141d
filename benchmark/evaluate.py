"""Test-split metrics of a trained variant: the registered metrics, in registration order
(conventions: docs/design.md).

The decoder likelihood adds a note (`decoder_likelihood`): which p(x|z), and whether recon,
elbo, nll and bits/dim are those of a normalised density for this data (Bernoulli on grey
pixels is not); learned likelihood parameters (the Gaussian's σ) are recorded as metrics.

Every trial first makes one pass over the test split (mse, recon, kl, elbo and the variant's
extras; the posterior means for active_units), then computes each metric listed in
`eval.metrics` (`benchmark.metrics.registry`) from an `EvalContext` that shares what several
metrics need: the generated samples (fd, prdc), the factor-sampled codes (mig and the other
factor metrics), the domain features. A metric that is not applicable (no factors, discrete
latents) gets a "not applicable: ..." note; one that fails gets a "not computed: <reason>" note,
and the trial keeps every other metric.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from benchmark.data import Dataset
from benchmark.metrics import registry
from variants.base import Variant

FeatureNetOrReason = tuple[torch.nn.Module, dict] | str | None


def _batches(x: torch.Tensor, size: int):
    for start in range(0, x.shape[0], size):
        yield slice(start, start + size)


@contextlib.contextmanager
def encoder_memo(model: torch.nn.Module) -> Iterator[None]:
    """Within the block, `model.encoder` runs once per input tensor: `reconstruct`, `loss` and
    `encode` of one test batch share its output (bitwise what each would compute: same network,
    same input, no randomness in it). One entry; an input or output changed in place since (its
    version counter moved) is computed afresh. A model without an `encoder` module is left as is.
    """
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, torch.nn.Module):
        yield
        return
    forward, last = encoder.forward, {}

    def memo(x: torch.Tensor, *args, **kwargs):
        if args or kwargs or not isinstance(x, torch.Tensor):
            return forward(x, *args, **kwargs)
        key = (x.data_ptr(), x.shape, x.stride(), x.dtype, x.device, x._version)
        hit = last.get("key") == key and last["out"]._version == last["version"]
        if not hit:
            out = forward(x)
            last.update(key=key, out=out, version=out._version, x=x)  # x kept: its ptr stays
        return last["out"]

    encoder.forward = memo
    try:
        yield
    finally:
        del encoder.forward  # back to the class's forward


@dataclass(frozen=True, eq=False)
class FactorCodes:
    """Posterior means of images drawn with uniformly sampled factor classes.

    codes: (N, d) float; factors: (N, F') int64 classes of the factors that vary in the sample
    (single-valued factors are dropped: their entropy is 0); names: their names; all_names:
    every factor of the dataset; dropped: the names of the dropped factors.
    """

    codes: np.ndarray
    factors: np.ndarray
    names: tuple[str, ...]
    all_names: tuple[str, ...]
    dropped: tuple[str, ...]


class EvalContext:
    """What the metrics of one trial share, each computed at most once (see the module doc)."""

    def __init__(
        self,
        model: Variant,
        data: Dataset,
        cfg,
        *,
        device: torch.device,
        seed: int,
        feature_net: FeatureNetOrReason,
        dataset_name: str,
    ) -> None:
        self.model, self.data, self.cfg = model, data, cfg
        self.device, self.seed = device, seed
        self.feature_net, self.dataset_name = feature_net, dataset_name
        self.test_pass: dict[str, float] = {}
        self.means: torch.Tensor | None = None
        self._factor_codes: dict[int, FactorCodes] = {}

    def run_test_pass(self) -> None:
        """mse (per pixel), recon, kl, elbo (nats per image, β = 1) and the variant's extras over
        the test split, and the posterior means when the latents are continuous."""
        model, data, cfg = self.model, self.data, self.cfg
        x_all, y_all = data.x_test, data.y_test
        n = x_all.shape[0]
        sq_err = recon = kl = 0.0
        extras: dict[str, float] = {}
        means = []
        # One encoder run per batch, shared by reconstruct, loss and encode (encoder_memo).
        with encoder_memo(model):
            for sl in _batches(x_all, cfg.batch_size):
                x = x_all[sl].to(self.device)
                y = None if y_all is None else y_all[sl].to(self.device)
                sq_err += (model.reconstruct(x, y) - x).pow(2).sum().item()
                out = model.loss(x, y)
                recon += out.recon.item() * x.shape[0]
                kl += out.kl.item() * x.shape[0]
                for key, value in out.extras.items():
                    extras[key] = extras.get(key, 0.0) + float(value) * x.shape[0]
                if model.continuous_latents:
                    means.append(model.encode(x, y).mean.cpu())
        pixels = math.prod(data.image_shape)
        self.test_pass = {
            "mse": sq_err / (n * pixels),
            "recon": recon / n,
            "kl": kl / n,
            "elbo": -(recon + kl) / n,
            **{key: total / n for key, total in extras.items()},
        }
        self.means = torch.cat(means) if means else None

    @cached_property
    def _pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        model, data, cfg = self.model, self.data, self.cfg
        n = cfg.fid_samples
        real = data.x_test[:n]
        y = None
        if model.needs_labels and data.y_test is not None:
            y = data.y_test[:n].to(self.device)
        gen = torch.Generator(device=self.device).manual_seed(self.seed + 2)
        fake = torch.cat([
            model.sample(min(cfg.batch_size, n - start),
                         None if y is None else y[start : start + cfg.batch_size],
                         generator=gen).cpu()
            for start in range(0, n, cfg.batch_size)
        ]).clamp(0, 1)  # fmt: skip
        return real, fake

    def image_pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(real, fake): the first N = eval.fid_samples test images and N samples from the
        prior (seed + 2), (N, C, H, W) in [0, 1]. Label-conditioned variants sample with the
        real images' labels, so both sets have the same class mix."""
        return self._pair

    @torch.no_grad()
    def domain_features(self, images: torch.Tensor) -> np.ndarray:
        """(N, D) float64 features of `images` in the dataset's domain feature net, as FD sees
        them (`benchmark.metrics.fid.DomainFeatures`); raises Unavailable without a net."""
        from benchmark.metrics.fid import DEFAULT_BATCH_SIZE, DomainFeatures

        if not isinstance(self.feature_net, tuple):
            raise registry.Unavailable(self.feature_net or "no domain feature net")
        adapter = DomainFeatures(self.feature_net[0])
        param = next(adapter.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        return torch.cat([
            adapter(images[sl].float().to(device)).cpu()
            for sl in _batches(images, DEFAULT_BATCH_SIZE)
        ]).numpy()  # fmt: skip

    def ground_truth(self):
        """The dataset's factor grid (see `ground_truth_of`), for disentanglement_lib's
        protocol: observations drawn for chosen factor classes."""
        return ground_truth_of(self.data)

    def ground_truth_names(self) -> tuple[str, ...]:
        """Names of the factors the sampled scores see (single-valued ones dropped)."""
        grid = self.ground_truth()
        return tuple(self.data.factor_names[j] for j in grid.varying)

    def representation(self):
        """Images -> (n, d) posterior means of the model (disentanglement_lib's `mean`);
        raises ValueError for label-conditioned or discrete-latent variants."""
        from benchmark.metrics.ground_truth import posterior_means

        return posterior_means(self.model, self.device)

    @torch.no_grad()
    def factor_codes(self, n: int) -> FactorCodes:
        """Posterior means of n images whose factor classes are drawn uniformly
        (`np.random.default_rng(seed)`), with single-valued factors dropped; raises Unavailable
        when no factor varies."""
        if n in self._factor_codes:
            return self._factor_codes[n]
        data, model = self.data, self.model
        imgs, factors = data.sample_factors(n, np.random.default_rng(self.seed))
        labels = None
        if data.label_factor is not None:
            labels = torch.from_numpy(factors[:, data.label_factor])
        codes = torch.cat([
            model.encode(imgs[sl].to(self.device),
                         None if labels is None else labels[sl].to(self.device)).mean.cpu()
            for sl in _batches(imgs, 1000)
        ])  # fmt: skip
        factors = np.asarray(factors)
        names = tuple(data.factor_names)
        varies = [j for j in range(factors.shape[1]) if np.any(factors[:, j] != factors[0, j])]
        if not varies:
            raise registry.Unavailable(f"no factor varies over the {n} sampled images")
        keep = factors if len(varies) == factors.shape[1] else factors[:, varies]
        result = FactorCodes(
            codes=codes.numpy(),
            factors=keep,
            names=tuple(names[j] for j in varies),
            all_names=names,
            dropped=tuple(names[j] for j in range(len(names)) if j not in varies),
        )
        self._factor_codes[n] = result
        return result


def ground_truth_of(data: Dataset):
    """The dataset's factor grid as a `benchmark.metrics.ground_truth.FactorGrid` (observations
    of chosen factor classes, single-valued factors dropped), for the sampled scores; raises
    Unavailable for a dataset without one. The dataset's factor sampler provides it
    (`factor_grid()`), so no dataset is named here."""
    factor_grid = getattr(data.sample_factors, "factor_grid", None)
    if factor_grid is None:
        raise registry.Unavailable(f"{data.name} has no factor grid to draw observations from")
    return factor_grid()


def not_applicable(metric: registry.Metric, ctx: EvalContext) -> str | None:
    """Why `metric` does not apply to this model and dataset, or None."""
    needs = metric.needs
    if needs.continuous_latents and not ctx.model.continuous_latents:
        return f"{ctx.model.name} has discrete latents"
    if needs.factors and ctx.data.sample_factors is None:
        return f"{ctx.data.name} has no ground-truth factors"
    if needs.labels and ctx.data.y_test is None:
        return f"{ctx.data.name} has no labels"
    return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


@torch.no_grad()
def evaluate(
    model: Variant,
    data: Dataset,
    cfg,
    *,
    device: torch.device,
    seed: int,
    feature_net: FeatureNetOrReason = None,
    dataset_name: str | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """Returns (metrics, notes): numbers to log, and strings saying how each was obtained.

    `cfg` is the trial's `EvalConfig`. `feature_net` is the dataset's domain feature net and its
    cache record, for `fd_<dataset>` and `prdc`, or a string saying why there is none;
    `dataset_name` (default: data.name) is the <dataset>. A metric that raises is recorded in
    the notes as "not computed: <first line of the error>"; nothing else is lost.
    """
    model.eval()
    torch.manual_seed(seed + 1)  # the one-sample ELBO draws noise: make it repeatable
    ctx = EvalContext(
        model, data, cfg, device=device, seed=seed, feature_net=feature_net,
        dataset_name=dataset_name or data.name,
    )  # fmt: skip
    ctx.run_test_pass()
    metrics = dict(ctx.test_pass)
    notes = {"eval_points": str(data.x_test.shape[0]), **model.notes()}
    normalised = _likelihood_notes(model, data.x_test, metrics, notes)
    if model.continuous_latents:
        notes["representation"] = model.representation
    chosen = {m.name for m in registry.selected(cfg)}
    for metric in registry.metrics():
        why = not_applicable(metric, ctx)
        if why is not None and metric.needs.continuous_latents and not model.continuous_latents:
            # Said for every such metric, listed or not: the table's notes explain the gap.
            notes.setdefault(metric.note_key, f"not applicable: {why}")
        if metric.name not in chosen:
            continue
        if why is not None:
            notes.setdefault(metric.note_key, f"not applicable: {why}")
            continue
        try:
            values, metric_notes = metric.compute(ctx, metric.params_of(cfg))
        except Exception as e:  # noqa: BLE001 - one metric must not cost the trial the others
            notes[metric.note_key] = f"not computed: {_first_line(e)}"
            continue
        metrics.update(values)
        notes.update(metric_notes)
    if not normalised and "nll" in notes and not notes["nll"].startswith("not "):
        notes["nll"] += "; not a normalised density for grey pixels"
    return metrics, notes


def _likelihood_notes(
    model: Variant, x: torch.Tensor, metrics: dict[str, float], notes: dict[str, str]
) -> bool:
    """Adds the decoder likelihood's note and learned parameters; True if its recon, elbo and
    nll are those of a normalised density for the data `x` (binary or grey)."""
    likelihood = getattr(model, "likelihood", None)
    if likelihood is None:  # a plug-in variant outside the Variant base class
        return True
    binary = bool(((x == 0) | (x == 1)).all())
    normalised, note = likelihood.density_note(binary)
    notes["decoder_likelihood"] = f"{likelihood.describe()}: {note}"
    metrics.update(likelihood.metrics())
    return normalised


def image_quality(
    model: Variant,
    data: Dataset,
    cfg,
    device: torch.device,
    seed: int,
    feature_net: FeatureNetOrReason,
    dataset_name: str,
) -> tuple[dict[str, float], dict[str, str]]:
    """The `fd` metric alone (for `benchmark.perf`): FD/KID in the domain net's features and,
    when its weights are on disk, Inception FID; see `benchmark.metrics.fd`."""
    ctx = EvalContext(
        model, data, cfg, device=device, seed=seed, feature_net=feature_net,
        dataset_name=dataset_name,
    )  # fmt: skip
    metric = registry.get("fd")
    return metric.compute(ctx, metric.params_of(cfg))
