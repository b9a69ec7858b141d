"""The figures a paper uses, built from a sweep's MLflow runs (seaborn; PNG and PDF).

- `rate_distortion`: KL (rate, nats) against the reconstruction term (distortion, nats) across
  the grid, one line per variant (Alemi et al. 2018, arXiv 1711.00464, Fig. 1 style);
- `metric_vs_axis`: e.g. MIG against β, mean and 95% CI over seeds;
- `training_curves`: the training loss of every trial against the step, mean and 95% CI band
  over seeds per grid point;
- `traversals`: the latent traversal grid of the best trial (each latent over ±3σ around a test
  image's posterior mean; drawn by the trial, `benchmark.trial`);
- `image_grids`: the sample and reconstruction grids of one seed per grid point, assembled.

Each function returns the paths it wrote (nothing when the sweep lacks what it needs).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from benchmark.atomic import atomic_path, write_text_atomic
from benchmark.metric_names import to_mlflow

FORMATS = (".png", ".pdf")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    return plt, sns


def _save(fig, path: Path) -> list[Path]:
    out = []
    for suffix in FORMATS:
        p = path.with_suffix(suffix)
        with atomic_path(p) as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight")
        out.append(p)
    return out


def _finished(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "finished"]


def _numeric_axis(runs: pd.DataFrame, axes: list[str]) -> str | None:
    for a in axes:
        if a != "seed" and a in runs.columns and pd.api.types.is_numeric_dtype(runs[a]):
            return a
    return None


def rate_distortion(runs: pd.DataFrame, axes: list[str], out: Path) -> list[Path]:
    """KL against the reconstruction term, one line per variant, ordered along the grid axis."""
    df = _finished(runs)
    if not {"kl", "recon"} <= set(df.columns) or df["kl"].isna().all():
        return []
    x = _numeric_axis(df, axes)
    keys = [k for k in ("variant", x) if k and k in df.columns]
    g = df.groupby(keys, dropna=False)[["kl", "recon"]].mean().reset_index()
    if len(g) < 2:
        return []
    plt, sns = _plt()
    fig, ax = plt.subplots(figsize=(4.4, 3.4))
    for variant, gv in g.groupby("variant"):
        gv = gv.sort_values(x) if x else gv
        ax.plot(gv["recon"], gv["kl"], marker="o", label=variant)
        if x:
            for _, r in gv.iterrows():
                ax.annotate(f"{r[x]:g}", (r["recon"], r["kl"]), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))  # fmt: skip
    ax.set_xlabel("distortion: −log p(x|z) (nats)")
    ax.set_ylabel("rate: KL (nats)")
    ax.set_title("rate–distortion" + (f" (labels: {x})" if x else ""), fontsize=9)
    ax.legend(fontsize=7)
    paths = _save(fig, out / "rate_distortion")
    plt.close(fig)
    return paths


def metric_vs_axis(runs: pd.DataFrame, axes: list[str], metric: str, out: Path) -> list[Path]:
    """`metric` against the first numeric grid axis, one line per variant, 95% CI over seeds."""
    df = _finished(runs)
    x = _numeric_axis(df, axes)
    if x is None or metric not in df.columns or df[metric].isna().all():
        return []
    plt, sns = _plt()
    fig, ax = plt.subplots(figsize=(4.4, 3.4))
    hue = "variant" if df["variant"].nunique() > 1 else None
    sns.lineplot(data=df, x=x, y=metric, hue=hue, errorbar=("ci", 95), marker="o", ax=ax)
    if df[x].min() > 0 and df[x].max() / df[x].min() >= 10:
        ax.set_xscale("log")
    ax.set_title(f"{metric} against {x}: mean and 95% CI over seeds", fontsize=9)
    paths = _save(fig, out / f"{metric}_vs_{x.replace('.', '_')}")
    plt.close(fig)
    return paths


def training_curves(client, runs: pd.DataFrame, axes: list[str], out: Path) -> list[Path]:
    """Training loss against step per grid point, mean and 95% CI band over seeds."""
    df = _finished(runs)
    keys = [a for a in axes if a != "seed" and a in df.columns]
    rows = []
    for _, r in df.iterrows():
        label = ", ".join(f"{k}={r[k]}" for k in keys) or "all"
        # The unit-named curve (benchmark.metric_names), or the bare name of an older store.
        history = client.get_metric_history(r["run_id"], to_mlflow("train_loss"))
        for m in history or client.get_metric_history(r["run_id"], "train_loss"):
            rows.append({"step": m.step, "train_loss": m.value, "point": label})
    if not rows:
        return []
    plt, sns = _plt()
    curves = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    sns.lineplot(data=curves, x="step", y="train_loss", hue="point", errorbar=("ci", 95), ax=ax)
    ax.set_yscale("log")
    ax.set_ylabel("training loss (nats per example)")
    ax.legend(fontsize=6, ncol=2)
    ax.set_title("training curves: mean and 95% CI over seeds", fontsize=9)
    paths = _save(fig, out / "training_curves")
    plt.close(fig)
    return paths


def best_trial(runs: pd.DataFrame, metric: str, direction: str) -> pd.Series | None:
    """The finished trial with the best `metric` ("lower" or "higher" is better), or None.

    None when the metric is absent or has no finished value.
    """
    df = _finished(runs)
    if metric not in df.columns or df[metric].isna().all():
        return None
    df = df.dropna(subset=[metric])
    return df.loc[df[metric].idxmin() if direction == "lower" else df[metric].idxmax()]


def _download(client, run_id: str, name: str, dest: Path) -> Path | None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if name not in {a.path for a in client.list_artifacts(run_id)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        got = Path(client.download_artifacts(run_id, name, tmp))
        shutil.copyfile(got, dest)
    return dest


def traversals(client, runs: pd.DataFrame, out: Path) -> list[Path]:
    """The traversal grid of the best trial: by MIG where the sweep has it, else by ELBO."""
    pick = best_trial(runs, "mig", "higher")
    by = "MIG"
    if pick is None:
        pick, by = best_trial(runs, "elbo", "higher"), "ELBO"
    if pick is None:
        return []
    dest = out / "traversals.png"
    if _download(client, pick["run_id"], "traversals.png", dest) is None:
        return []
    upscale(dest)
    write_text_atomic(
        out / "traversals.txt",
        f"Latent traversals of trial {pick['trial']} (the best by {by}): row j varies latent j "
        "over ±3σ (its posterior std) around the posterior mean of the first test image; the "
        "other latents stay at that mean.\n",
    )
    return [dest, out / "traversals.txt"]


def upscale(path: Path, factor: int = 3) -> None:
    """Enlarge a grid of small tiles in place (nearest neighbour: no invented detail)."""
    from PIL import Image

    img = Image.open(path)
    img.resize((img.width * factor, img.height * factor), Image.NEAREST).save(path)


def image_grids(client, runs: pd.DataFrame, axes: list[str], out: Path) -> list[Path]:
    """Samples and reconstructions of the first seed of every grid point, side by side."""
    from PIL import Image

    df = _finished(runs).sort_values("index")
    keys = [a for a in axes if a != "seed" and a in df.columns]
    picks = df.drop_duplicates(keys or None) if keys else df.head(1)
    if picks.empty:
        return []
    plt, _ = _plt()
    paths = []
    for kind in ("samples", "reconstructions"):
        images = []
        with tempfile.TemporaryDirectory() as tmp:
            for _, r in picks.iterrows():
                got = _download(client, r["run_id"], f"{kind}.png", Path(tmp) / f"{r['index']}.png")
                if got is not None:
                    label = ", ".join(f"{k}={r[k]}" for k in keys) or r["trial"]
                    images.append((label, Image.open(got).convert("RGB").copy()))
        if not images:
            continue
        cols = min(4, len(images))
        rows = -(-len(images) // cols)
        fig, axs = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.8 * rows), squeeze=False)
        for ax in axs.flat:
            ax.axis("off")
        for ax, (label, img) in zip(axs.flat, images, strict=False):
            ax.imshow(img, interpolation="nearest")
            ax.set_title(label, fontsize=7)
        fig.suptitle(f"{kind} (seed of the first trial per grid point)", fontsize=9)
        paths += _save(fig, out / f"{kind}_grid")
        plt.close(fig)
    return paths


def paper_figures(client, runs: pd.DataFrame, axes: list[str], out: Path) -> list[Path]:
    """Every figure above that the sweep has the data for, under `out/figures/`."""
    out = out / "figures"
    out.mkdir(parents=True, exist_ok=True)
    paths = rate_distortion(runs, axes, out)
    for metric in ("mig", "mse", "kl"):
        paths += metric_vs_axis(runs, axes, metric, out)
    paths += training_curves(client, runs, axes, out)
    paths += traversals(client, runs, out)
    paths += image_grids(client, runs, axes, out)
    return paths
