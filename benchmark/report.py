"""MLflow runs → runs.csv, table.{md,tex,csv} and figure.png under results/<sweep>/.

Reads only MLflow (the latest parent run of the sweep and its trial runs), so

    python -m benchmark.report sweeps/beta_tradeoff.yaml

rebuilds a sweep's results from the tracking store alone. Seeds are aggregated as mean ± std
(sample std, ddof=1) over finished trials; diverged or failed trials are counted and shown as
such, never averaged in.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

from benchmark.atomic import atomic_path, remove_stale, write_text_atomic
from benchmark.cli import Parser
from benchmark.config import ConfigError, load_sweep
from benchmark.metric_names import from_mlflow
from benchmark.metrics import registry as metric_registry
from benchmark.paths import RESULTS
from benchmark.stats import Summary, mark_best, summarize
from benchmark.tracking import TAG, default_tracking_uri, missing_store

# Columns of the run itself, after the metrics' columns (which come from the metric registry).
RUN_COLUMNS: dict[str, tuple[str, str]] = {
    "likelihood_sigma": ("σ of p(x|z)", ".3f"),
    "n_params": ("Parameters", ",.0f"),
    "train_seconds": ("Train time (s)", ".0f"),
}


def direction(m: str) -> str | None:
    """'lower', 'higher' or None (a trade-off: no best is marked) for column `m`, from the
    metric's declaration; the run's own columns (size, time) have none."""
    found = metric_registry.column_of(m)
    return found[1].better if found else None


NO_SPREAD = {"n_params"}  # the same for every seed: a ± 0 would be noise
ALWAYS = ("variant", "architecture", "latent_dim", "beta", "seed")
HEADERS = {"beta": "β", "latent_dim": "Latent dim", "seed": "Seed", "dataset.name": "Dataset"}
# MLflow stores an infinity as ±sys.float_info.max (1.797e308): read back, that is not a number.
NOT_A_VALUE = 1e308
IMAGE_QUALITY = re.compile(r"^(fd_\w+|kid_\w+|fid_inception)$")
NA_REASON_CHARS = 80  # a "n/a (reason)" cell is cut here; the trial's notes keep the whole line


def metric_columns(columns) -> list[str]:
    """The table's metric columns present in `columns`, in the registry's order (a templated
    column such as fd_<dataset> gives one column per feature network, sorted, so scores of
    different networks never share a column), then the run's own columns."""
    present = list(dict.fromkeys(columns))
    out: list[str] = []
    for metric in metric_registry.metrics():
        for col in metric.columns:
            out += sorted(c for c in present if col.matches(c) and c not in out)
    return out + [c for c in RUN_COLUMNS if c in present]


def metric_format(m: str, n: int | None = None, nets: list[str] = ()) -> tuple[str, str]:
    """(column header, number format); image-quality headers name their feature network and
    the number N of generated (and real) images, so no one compares across scales unawares."""
    if m in RUN_COLUMNS:
        return RUN_COLUMNS[m]
    found = metric_registry.column_of(m)
    if found is None:
        return m, ".4g"
    net = ""
    if nets and "{dataset}" in found[1].key:
        # Values in a feature net are comparable only within that net: the header names it.
        net = f"{'/'.join(nets)}" + (" — NOT one scale" if len(nets) > 1 else "")
    return found[1].header_for(m, n, net), found[1].fmt


def _spread(m: str) -> bool:
    found = metric_registry.column_of(m)
    return m not in NO_SPREAD and (found is None or found[1].spread)


def _note_keys(metric: metric_registry.Metric, key: str | None = None) -> list[str]:
    # Runs logged before a rename carry the metric's old note key (e.g. note.fid for fd).
    key = key or metric.note_key
    return [key] + ([*metric.deprecated_names] if key == metric.note_key else [])


def _fid_samples(runs: pd.DataFrame) -> int | None:
    if "fid_samples" not in runs.columns:
        return None
    values = set(runs["fid_samples"].dropna())
    return int(values.pop()) if len(values) == 1 else None


class ReportError(Exception):
    """The report cannot be built from the tracking store (no experiment, sweep or trials)."""

    pass


@dataclass
class SweepRuns:
    """One sweep's runs from MLflow: the parent's tags, one row per trial, and the grid's axes."""

    parent: dict[str, str]  # the parent run's tags, without the prefix
    runs: pd.DataFrame  # one row per trial
    axes: list[str]


def _parse(value: str):
    if value == "None":  # MLflow stores params as str(); an unset value comes back as "None"
        return None
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def load_runs(tracking_uri: str, experiment: str, parent_id: str | None = None) -> SweepRuns:
    """The runs of one sweep: the latest sweep run of `experiment`, or `parent_id`.

    Raises ReportError when the store (creating nothing), the experiment, the sweep run or its
    trial runs do not exist.
    """
    absent = missing_store(tracking_uri)
    if absent is not None:
        raise ReportError(f"no MLflow store at {absent}: it is made by running the sweep "
                          f"(python -m benchmark.run ...); the committed tables and figures are "
                          f"in results/{experiment}/")  # fmt: skip
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ReportError(f"no MLflow experiment {experiment!r} in {tracking_uri}")
    if parent_id is None:
        parents = client.search_runs(
            [exp.experiment_id],
            filter_string=f"tags.`{TAG}role` = 'sweep'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not parents:
            raise ReportError(f"experiment {experiment!r} has no sweep run")
        parent = parents[0]
    else:
        parent = client.get_run(parent_id)
    children = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        max_results=10_000,
    )
    axes = [a for a in parent.data.tags.get(f"{TAG}axes", "").split(",") if a]
    rows = []
    for run in children:
        tags, params = run.data.tags, run.data.params
        row = {
            "trial": tags.get(f"{TAG}trial_name", ""),
            "index": int(tags.get(f"{TAG}trial_index", -1)),
            **{k: _parse(params[k]) for k in ALWAYS if k in params},
            "status": tags.get(f"{TAG}status", "unknown"),
            "reason": tags.get(f"{TAG}reason", ""),
        }
        for key, value in params.items():
            if key not in row and ("." not in key or key in axes):
                row[key] = _parse(value)
        row.update({from_mlflow(k): _finite(v) for k, v in run.data.metrics.items()})
        requested = _parse(params.get("eval.metrics", "[]"))
        row["eval_metrics"] = ",".join(requested) if isinstance(requested, list) else ""
        row["dataset"] = tags.get(f"{TAG}dataset", "")
        row["dataset_fingerprint"] = tags.get(f"{TAG}dataset_fingerprint", "")
        for key, value in tags.items():
            if key.startswith(f"{TAG}note."):
                row["note." + key[len(f"{TAG}note.") :]] = value
        row["device"] = tags.get(f"{TAG}device", "")
        row["steps"] = _parse(params.get("train.steps", "null"))
        row["batch_size"] = _parse(params.get("train.batch_size", "null"))
        row["lr"] = _parse(params.get("train.lr", "null"))
        row["config"] = tags.get(f"{TAG}config", "")
        row["cached_from"] = tags.get(f"{TAG}cached_from", "")
        row["model_sha256"] = tags.get(f"{TAG}model_sha256", "")
        row["environment"] = tags.get(f"{TAG}environment", "")
        row["run_id"] = run.info.run_id
        rows.append(row)
    if not rows:
        raise ReportError(f"sweep run {parent.info.run_id} has no trial runs")
    runs = pd.DataFrame(rows).sort_values("index").reset_index(drop=True)
    p_tags = {k[len(TAG) :]: v for k, v in parent.data.tags.items() if k.startswith(TAG)}
    p_tags["run_id"] = parent.info.run_id
    p_tags["description"] = parent.data.tags.get("mlflow.note.content", "")
    return SweepRuns(p_tags, runs, axes)


def _finite(value: float) -> float:
    """`value`, or NaN for NaN, ±inf and MLflow's stand-in for inf (old stores hold them)."""
    return value if math.isfinite(value) and abs(value) < NOT_A_VALUE else math.nan


def _requested(runs: pd.DataFrame) -> set[str] | None:
    """The table metrics some trial asked for (eval.metrics): their columns stay, as n/a or as
    the trials' status, even when no trial produced a number for them."""
    if "eval_metrics" not in runs.columns:
        return None  # not recorded: every metric with a note may have been asked for
    names = {m for text in runs["eval_metrics"].dropna() for m in str(text).split(",") if m}
    out = set()
    for name in names:
        try:
            metric = metric_registry.get(name)
        except KeyError:  # a plugin metric not registered in this process
            continue
        out.update(c.key for c in metric.columns)
    return out


def _is_requested(column: str, requested: set[str] | None) -> bool:
    """Whether `column` (e.g. fd_dsprites) belongs to a metric some trial asked for (None:
    unknown, so any)."""
    if requested is None:
        return True
    return any(metric_registry.Column(key, "", "").matches(column) for key in requested)


def aggregate(sr: SweepRuns) -> pd.DataFrame:
    """One row per grid point without the seed; per metric: mean, std (ddof=1), n and the 95%
    Student-t interval of the mean over finished seeds (`benchmark.stats.summarize`)."""
    keys = [a for a in sr.axes if a != "seed" and a in sr.runs.columns]
    df = sr.runs
    metrics = metric_columns([*df.columns, *_declared_columns()])
    groups = df.groupby(keys, sort=False, dropna=False) if keys else [((), df)]
    out = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        ok = g[g["status"] == "finished"]
        row = dict(zip(keys, key, strict=True))
        row["n_finished"] = len(ok)
        row["n_trials"] = len(g)
        bad = g[g["status"] != "finished"]["status"].value_counts()
        row["not_finished"] = ", ".join(f"{n} {s}" for s, n in bad.items())
        for m in metrics:
            s = summarize(ok[m].dropna().tolist() if m in ok.columns else [])
            row[f"{m}_mean"], row[f"{m}_std"], row[f"{m}_n"] = s.mean, s.std, s.n
            row[f"{m}_ci_low"], row[f"{m}_ci_high"] = s.low, s.high
            if not s.n:
                row[f"{m}_na"] = _not_computed(ok, m)
        out.append(row)
    return pd.DataFrame(out)


def _summary(r: pd.Series, m: str) -> Summary:
    get = lambda k: float(r.get(f"{m}_{k}", math.nan))  # noqa: E731
    n = r.get(f"{m}_n", 0)
    return Summary(int(n) if pd.notna(n) else 0, get("mean"), get("std"), get("ci_low"),
                   get("ci_high"))  # fmt: skip


def _declared_columns() -> list[str]:
    """Each metric's main column (keyed like the metric's note), a candidate for the table even
    when no run has a value, so that a metric that was not applicable or failed shows as n/a."""
    return [c.key for m in metric_registry.metrics() for c in m.columns if c.key == m.note_key]


def _not_computed(runs: pd.DataFrame, column: str) -> str:
    """Why `column` has no value in these (finished) runs: the owning metric's
    "not computed: <reason>" note, shortened; "" when none says so."""
    found = metric_registry.column_of(column)
    if found is None or runs.empty:
        return ""
    reasons = set()
    for key in _note_keys(found[0]):
        col = f"note.{key}"
        if col in runs.columns:
            reasons |= {
                t.removeprefix("not computed: ") for t in runs[col].dropna()
                if isinstance(t, str) and t.startswith("not computed: ")
            }  # fmt: skip
    text = "; ".join(sorted(reasons))
    return text if len(text) <= NA_REASON_CHARS else text[: NA_REASON_CHARS - 1] + "…"


def _cell(s: Summary, fmt: str, spread: bool = True, mark: str = "", na_reason: str = "") -> str:
    """'mean ± std [low, high]' (the 95% t-interval), '*' best, '†' tied with the best;
    'n/a (reason)' when the metric could not be computed."""
    if not _shown(s.mean):
        return f"n/a ({na_reason})" if na_reason else "n/a"
    text = format(s.mean, fmt)
    if spread and _shown(s.std) and _shown(s.low) and _shown(s.high):
        text += f" ± {format(s.std, fmt)} [{format(s.low, fmt)}, {format(s.high, fmt)}]"
    return text + {"best": " *", "tied": " †", "": ""}[mark]


def _shown(value: float) -> bool:
    """A number a table may print: not NaN, not ±inf, not MLflow's stand-in for inf."""
    return math.isfinite(value) and abs(value) < NOT_A_VALUE


def _table_rows(sr: SweepRuns, agg: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    keys = [a for a in sr.axes if a != "seed" and a in agg.columns]
    requested = _requested(sr.runs)
    metrics = [
        m for m in metric_columns([*sr.runs.columns, *_declared_columns()])
        if (f"{m}_mean" in agg.columns and agg[f"{m}_mean"].notna().any())
        # n/a columns only for metrics a trial asked for: a VQ-VAE notes every continuous-latent
        # metric as not applicable, asked for or not
        or (_is_requested(m, requested) and (
            f"note.{m}" in sr.runs.columns or m in (requested or ())
            or (f"{m}_na" in agg.columns and (agg[f"{m}_na"].fillna("") != "").any())))
    ]  # fmt: skip
    n = _fid_samples(sr.runs)
    header = [HEADERS.get(k, k) for k in keys] + [
        metric_format(m, n, feature_nets(sr.runs, m))[0] for m in metrics
    ]
    if NOT_A_DENSITY in _notes(sr.runs, "decoder_likelihood"):  # see the Likelihood line
        # ‡, not †: † marks cells tied with the best
        header = [h + " ‡" if h in DENSITY_HEADERS else h for h in header]
    header += ["Seeds"]
    # Log-likelihoods under different p(x|z) are not on one scale (a pmf, a density on [0, 1]
    # or on R^D): no "best" ELBO/NLL across rows that differ in the likelihood.
    incomparable = LIKELIHOOD_SCALED if "likelihood" in keys else set()
    # Rows of different datasets are not on one scale either: the best is marked per dataset.
    group = agg["dataset.name"].tolist() if "dataset.name" in keys else [None] * len(agg)
    marks: dict[str, list[str]] = {m: [""] * len(agg) for m in metrics}
    for g in dict.fromkeys(group):
        rows_g = [i for i, v in enumerate(group) if v == g]
        for m in metrics:
            cells_g = [_summary(agg.iloc[i], m) for i in rows_g]
            for i, mark in zip(rows_g, mark_best(cells_g, None if m in incomparable
                                                 else direction(m)), strict=True):  # fmt: skip
                marks[m][i] = mark
    rows = []
    for i, (_, r) in enumerate(agg.iterrows()):
        cells = [str(r[k]) for k in keys]
        if r["n_finished"] == 0:
            cells += [r["not_finished"] or "–"] * len(metrics)
        else:
            cells += [
                _cell(
                    _summary(r, m),
                    metric_format(m)[1],
                    _spread(m),
                    marks[m][i],
                    r.get(f"{m}_na", "") if isinstance(r.get(f"{m}_na", ""), str) else "",
                )
                for m in metrics
            ]
        seeds = f"{r['n_finished']}/{r['n_trials']}"
        if r["not_finished"]:
            seeds += f" ({r['not_finished']})"
        cells.append(seeds)
        rows.append(cells)
    return header, rows


def _notes(runs: pd.DataFrame, key: str) -> str:
    col = f"note.{key}"
    if col not in runs.columns:
        return ""
    # runs logged before the disentanglement notes said "trial seed" named each seed's number
    notes = {_SEEDED.sub("RandomState(trial seed)", str(n)) for n in runs[col].dropna()}
    return "; ".join(sorted(notes - {""}))


_SEEDED = re.compile(r"RandomState\(\d+\)")


def _provenance(sr: SweepRuns) -> list[tuple[str, str]]:
    runs, p = sr.runs, sr.parent
    first = runs.iloc[0]
    constant = [
        f"{k} {first[k]}" for k in ("variant", "architecture", "latent_dim", "beta")
        if k in runs.columns and k not in sr.axes and runs[k].nunique(dropna=False) == 1
        and pd.notna(first[k])
    ]  # fmt: skip
    train = f"{first['steps']} steps, batch {first['batch_size']}, Adam lr {first['lr']}"
    datasets = "; ".join(sorted(set(runs["dataset"]) - {""})) or "unknown"
    prints = ", ".join(sorted(set(runs["dataset_fingerprint"]) - {""}))
    metric_lines = []
    for metric in metric_registry.metrics():
        for label, key, absent in metric.provenance:
            text = "; ".join(filter(None, (_notes(runs, k) for k in _note_keys(metric, key))))
            if text or absent is not None:
                metric_lines.append((label, text or absent))
    warmup = "; ".join(
        f"{v}: {text}" for v, g in runs.groupby("variant", sort=False)
        for text in [_notes(g, "kl_warmup")] if text
    ) if "variant" in runs.columns else _notes(runs, "kl_warmup")  # fmt: skip
    status = runs["status"].value_counts()
    return [
        ("Sweep", f"`{p.get('sweep_file', '?')}`, profile `{p.get('profile', '?')}`"
                  + _overrides(p)),
        ("Dataset", f"{datasets} (fingerprint {prints})"),
        ("Model", ", ".join(constant) + f"; {train}"),
        ("Likelihood", (_notes(runs, "decoder_likelihood")
                        or "Bernoulli (BCE summed over pixels)") + "; KL summed over latents, nats"
                       + ("; ‡ not a normalised density for grey pixels where the likelihood is "
                          "Bernoulli" if NOT_A_DENSITY in _notes(runs, "decoder_likelihood")
                          else "")),
        *metric_lines,
        *([("KL warm-up not over", warmup)] if warmup else []),
        ("Machine", f"{p.get('machine', '?')}; devices: {', '.join(sorted(set(runs['device']) - {''}))}"),  # noqa: E501
        ("Date", p.get("date", "?")),
        ("Commit", p.get("commit", "?")),
        ("Trials", f"{len(runs)} ({', '.join(f'{n} {s}' for s, n in status.items())}"
                   f"{_cached(runs)}); cells are mean ± std [95% Student-t interval of the mean] "
                   "over the finished seeds (n in the Seeds column); * best in its column, † tied "
                   "with the best (intervals overlap)"),
        ("Numerics", _numerics(p)),
        ("MLflow", f"sweep run {p['run_id']}"),
    ]  # fmt: skip


def _overrides(parent: dict[str, str]) -> str:
    overrides = json.loads(parent.get("overrides") or "[]")
    return ", overrides " + " ".join(f"`{o}`" for o in overrides) if overrides else ""


def _cached(runs: pd.DataFrame) -> str:
    if "cached_from" not in runs.columns:
        return ""
    n = int((runs["cached_from"].fillna("") != "").sum())
    return f"; {n} reused from earlier runs of the same identity, not retrained" if n else ""


def _numerics(parent: dict[str, str]) -> str:
    """The pinned numerics probes the sweep was made under (see benchmark.numerics)."""
    raw = parent.get("numerics")
    if not raw:
        return "not recorded (made before the drift guard)"
    digests = json.loads(raw)
    return (
        "probes " + ", ".join(f"{k} {v}" for k, v in digests.items()) + " (results/numerics.json)"
    )


def feature_nets(runs: pd.DataFrame, column: str | None = None) -> list[str]:
    """Short weight hashes of the FD feature nets the trials used (from their FD notes); for a
    `column` such as fd_fashion_mnist or kid_fashion_mnist, only that dataset's net(s)."""
    notes = _notes(runs, "fd") + "; " + _notes(runs, "fid")
    if column is None:
        return sorted(set(re.findall(r"net ([0-9a-f]{8})", notes)))
    dataset = column.split("_", 1)[1] if "_" in column else column
    # Each note reads "fd_<dataset>: Fréchet distance ... net <hash>, ...".
    pattern = rf"fd_{re.escape(dataset)}: (?:(?!; fd_).)*?net ([0-9a-f]{{8}})"
    return sorted(set(re.findall(pattern, notes)))


def to_markdown(sr: SweepRuns, agg: pd.DataFrame) -> str:
    """table.md: the aggregated table (mean ± std over seeds, best marked) with its notes."""
    header, rows = _table_rows(sr, agg)
    lines = [f"# {sr.parent.get('sweep', '')}: {sr.parent.get('description', '')}", ""]
    lines += [f"- **{k}**: {v}" for k, v in _provenance(sr)]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = _variant_notes(sr)
    if notes:
        lines += ["", "Notes:", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


NOT_A_DENSITY = "not a normalised density for grey pixels"
DENSITY_HEADERS = {"ELBO (nats)", "NLL (nats)", "NLL (bits/dim)"}
LIKELIHOOD_SCALED = {"elbo", "nll", "bits_per_dim"}


def _shared_notes() -> set[str]:
    """Note keys shown in the provenance lines (or the metric cells), not as variant notes."""
    keys = {"eval_points", "mig_representation", "kl_warmup", "decoder_likelihood"}
    for m in metric_registry.metrics():
        # Notes of the always-computed metrics (kl, elbo, ...) come from the variants.
        keys |= {*m.deprecated_names, *(key for _, key, _ in m.provenance)}
        keys |= set() if m.always else {m.note_key}
    return keys


def _variant_notes(sr: SweepRuns) -> list[str]:
    """Per-variant notes (e.g. VQ-VAE's constant KL), one line each, deduplicated."""
    runs = sr.runs
    out = []
    shared = _shared_notes()
    cols = [c for c in runs.columns if c.startswith("note.") and c[5:] not in shared]
    for variant, g in runs.groupby("variant", sort=False):
        for col in cols:
            for text in sorted(set(g[col].dropna()) - {"", "posterior mean"}):
                out.append(f"{variant}: {col[5:]}: {text}")
    return out


_TEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "β": r"$\beta$", "γ": r"$\gamma$", "σ": r"$\sigma$", "≈": r"$\approx$",
    "×": r"$\times$", "→": r"$\to$", "†": r"$^\dagger$", "‡": r"$^\ddagger$",
    "–": "--", "—": "---", "…": "...",
}  # fmt: skip
_TEX_RE = re.compile("|".join(map(re.escape, _TEX)))


def _tex_escape(text: str) -> str:
    """Plain text → LaTeX text, in one pass (an escape is never escaped again)."""
    return _TEX_RE.sub(lambda m: _TEX[m.group(0)], text)


def _tex_cell(text: str) -> str:
    if text.endswith(" *"):
        return f"\\textbf{{{_tex_escape(text[:-2])}}}"
    return _tex_escape(text)


def to_latex(sr: SweepRuns, agg: pd.DataFrame) -> str:
    """A booktabs table ready to `\\input` (needs `\\usepackage{booktabs}`).

    The caption names the dataset, the profile, N for FD/FID, k for NLL and the feature net.
    """
    header, rows = _table_rows(sr, agg)
    prov = dict(_provenance(sr))
    keys = len([a for a in sr.axes if a != "seed" and a in agg.columns])
    runs = sr.runs
    extra = []
    n = _fid_samples(runs)
    if n:
        nets = feature_nets(runs)
        extra.append(f"FD/KID on N={n} samples" + (f", feature net {'/'.join(nets)}" if nets
                                                   else ""))  # fmt: skip
    nll = _notes(runs, "nll")
    k = re.search(r"k=(\d+)", nll)
    if k:
        extra.append(f"NLL by importance sampling with k={k.group(1)}")
    parts = [
        sr.parent.get("description", "").rstrip("."),
        f"Dataset: {prov['Dataset']}",
        prov["Model"],
        *extra,
        prov.get("KL warm-up not over") and f"KL warm-up not over: {prov['KL warm-up not over']}",
        "Mean ± std [95% Student-t interval] over seeds; best in bold, † tied with the best",
        f"Profile {sr.parent.get('profile')}{_overrides(sr.parent).replace('`', '')}; "
        f"{prov['Machine']}; {prov['Date']}; commit "
        f"{prov['Commit']}",
    ]
    caption = ". ".join(_tex_escape(x) for x in parts if x) + "."
    spec = "l" * (keys) + "r" * (len(header) - keys)
    lines = [
        "% Generated by benchmark.report from MLflow; do not edit by hand.",
        "% Needs \\usepackage{booktabs}; use with \\input{table.tex}.",
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{{caption}}}",
        f"\\label{{tab:{sr.parent.get('sweep', 'sweep')}}}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(_tex_escape(h) for h in header) + " \\\\",
        "\\midrule",
        *[" & ".join(_tex_cell(c) for c in r) + " \\\\" for r in rows],
        "\\bottomrule",
        "\\end{tabular}",
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


def figure(sr: SweepRuns, path: Path) -> None:
    """figure.png: each metric against the first numeric axis, mean and 95% CI per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    keys = [a for a in sr.axes if a != "seed"]
    df = sr.runs[sr.runs["status"] == "finished"]
    quality = [m for m in metric_columns(df.columns) if m.startswith("fd_")]
    wanted = ("mse", "kl", *quality, "mig", "active_units", "elbo")
    metrics = [m for m in wanted if m in df.columns and df[m].notna().any()][:5]
    if not metrics:  # no trial finished: say so instead of drawing empty axes
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{sr.parent.get('sweep')}: no finished trial to plot", ha="center")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return
    fig, axs = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    # A numeric axis (β, latent dim) reads best along x, with a categorical one as the hue.
    keys = sorted(keys, key=lambda k: not pd.api.types.is_numeric_dtype(df[k]))
    x = keys[0] if keys else "seed"
    hue = keys[1] if len(keys) > 1 else None
    numeric = pd.api.types.is_numeric_dtype(df[x])
    for ax, m in zip(axs[0], metrics, strict=True):
        if numeric:
            sns.lineplot(data=df, x=x, y=m, hue=hue, errorbar="sd", marker="o", ax=ax)
            if df[x].min() > 0 and df[x].max() / df[x].min() >= 10:
                ax.set_xscale("log")
                ax.set_xticks(
                    sorted(df[x].unique()), labels=[f"{v:g}" for v in sorted(df[x].unique())]
                )
        else:
            # Categories have no order: points with error bars, no connecting line.
            sns.pointplot(data=df, x=x, y=m, hue=hue, errorbar="sd", linestyle="none", ax=ax)
            ax.tick_params(axis="x", rotation=30)
        ax.set_xlabel(HEADERS.get(x, x))
        ax.set_ylabel(metric_format(m)[0])
        ax.grid(alpha=0.3)
    n_seeds = df.groupby(keys).size().max() if keys else len(df)
    fig.suptitle(
        f"{sr.parent.get('sweep')} ({sr.parent.get('profile')}"
        f"{_overrides(sr.parent).replace('`', '')}): mean ± sd over ≤{n_seeds} seeds,"
        f" commit {sr.parent.get('commit')}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def export_images(tracking_uri: str, sr: SweepRuns, out_dir: Path) -> dict[str, Path]:
    """The sample and reconstruction grids of the first finished seed of each grid point.

    Returns {"images/<name>": path}; files of `out_dir` it did not write are left for the
    caller (`build_report` removes them)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    client = MlflowClient(tracking_uri=tracking_uri)
    keys = [a for a in sr.axes if a != "seed"]
    ok = sr.runs[sr.runs["status"] == "finished"]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for _, run in ok.sort_values("index").drop_duplicates(keys or None).iterrows():
        label = "_".join(f"{k}-{run[k]}" for k in keys) or "all"
        # A grid value may be a whole mapping or a text with "/" (a dataset): one safe name.
        label = re.sub(r"[^\w.,=+-]+", "_", label)[:120]
        seed = run.get("seed", 0)
        for kind in ("samples", "reconstructions"):
            name = f"{label}_seed-{seed}_{kind}.png"
            with tempfile.TemporaryDirectory() as tmp:
                got = Path(client.download_artifacts(run["run_id"], f"{kind}.png", tmp))
                with atomic_path(out_dir / name) as dest:
                    shutil.copyfile(got, dest)
            paths[f"images/{name}"] = out_dir / name
    return paths


TABLES = ("runs.csv", "table.md", "table.tex", "table.csv")
FIGURES = ("figure.png",)


def runs_table(sr: SweepRuns) -> pd.DataFrame:
    """runs.csv: one row per trial, the identifying columns first, then every logged key."""
    # a sweep of variants without β (e.g. only `vae`) has no beta column
    front = ["trial", *(c for c in ALWAYS if c in sr.runs.columns), "status"]
    return sr.runs[front + [c for c in sr.runs.columns if c not in front]]


def build_report(
    tracking_uri: str,
    experiment: str,
    out_dir: str | Path,
    parent_id: str | None = None,
    only: str | None = None,
) -> dict[str, Path]:
    """Writes runs.csv, table.{md,tex,csv} and figure.png (or `only` tables / figures)."""
    sr = load_runs(tracking_uri, experiment, parent_id)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = {None: TABLES + FIGURES, "tables": TABLES, "figures": FIGURES}[only]
    paths = {n: out / n for n in names}
    if "figure.png" in paths:
        with atomic_path(paths["figure.png"]) as tmp_fig:
            figure(sr, tmp_fig)
    if only != "tables":
        images = export_images(tracking_uri, sr, out / "images")
        paths.update(images)
        remove_stale(out / "images", images.values())  # e.g. a β the sweep no longer has
        from benchmark.figures import paper_figures

        client = MlflowClient(tracking_uri=tracking_uri)
        figures = paper_figures(client, sr.runs, sr.axes, out)
        paths.update({f"figures/{p.name}": p for p in figures})
        remove_stale(out / "figures", figures)
    if only == "figures":
        return paths
    agg = aggregate(sr)
    write_text_atomic(paths["runs.csv"], runs_table(sr).to_csv(index=False))
    write_text_atomic(paths["table.csv"], agg.to_csv(index=False))
    write_text_atomic(paths["table.md"], to_markdown(sr, agg))
    write_text_atomic(paths["table.tex"], to_latex(sr, agg))
    return paths


def write_index(results: Path) -> Path:
    """`results/README.md`: every sweep folder with its tables, figures, status and provenance."""
    lines = ["# Results", "",
             "Generated by `benchmark.report` (`write_index`); every table is from real runs. Each "
             "sweep's `sweep.json` records the commit, profile, minutes and the numerics digests "
             "it was made under (see `results/numerics.json` and `python -m benchmark.verify`).",
             ""]  # fmt: skip
    for sj in sorted(results.glob("*/sweep.json")):
        folder = sj.parent
        record = json.loads(sj.read_text())
        state = "**STALE** (regeneration pending)" if record.get("stale") else "current"
        lines.append(f"## {folder.name}")
        lines.append("")
        flags = "".join(f", --override {o}" for o in record.get("overrides", []))
        lines.append(f"- status: {state}; commit {record.get('commit', '?')}, profile "
                     f"{record.get('profile', '?')}, {record.get('minutes', '?')} min"
                     f"{flags}")  # fmt: skip
        tables = [n for n in ("table.md", "table.tex", "table.csv", "runs.csv", "compare.md")
                  if (folder / n).is_file()]  # fmt: skip
        lines.append("- tables: " + ", ".join(f"[{n}]({folder.name}/{n})" for n in tables))
        figs = sorted(p.name for p in folder.glob("figures/*.png"))
        if (folder / "figure.png").is_file():
            figs.insert(0, "../figure.png")
        if figs:
            lines.append("- figures: " + ", ".join(
                f"[{Path(n).stem}]({folder.name}/figures/{n})" for n in figs))  # fmt: skip
        lines.append("")
    path = results / "README.md"
    write_text_atomic(path, "\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmark.report`: rebuild a sweep's tables and figures from MLflow.

    Exit codes: 0 written; 2 a bad sweep file, no store or no runs to report (one line; a
    missing store is not created).
    """
    parser = Parser(
        prog="python -m benchmark.report",
        description="Rebuild a sweep's tables and figure from its MLflow runs alone.",
    )
    parser.add_argument("sweep", help="the sweep file, e.g. sweeps/beta_tradeoff.yaml")
    parser.add_argument("--profile", default="default", help="the profile the sweep ran with")
    parser.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE",
        help="the --override flags the sweep ran with (they name its folder and experiment)",
    )  # fmt: skip
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--tracking-uri", help="default: sqlite:///<results-dir>/mlflow.db")
    parser.add_argument("--run-id", help="a specific sweep (parent) run; default: the latest")
    parser.add_argument("--only", choices=["tables", "figures"], help="write only these")
    args = parser.parse_args(argv)
    try:
        # The data files may have moved since the sweep ran: the report reads MLflow alone.
        sweep = load_sweep(args.sweep, args.profile, args.override, check_files=False)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    uri = args.tracking_uri or default_tracking_uri(args.results_dir)
    absent = missing_store(uri)
    if absent is not None:  # checked here to name the command that makes it
        flags = "".join(f" --override {o}" for o in sweep.overrides)
        flags += f" --profile {sweep.profile}" if sweep.profile != "default" else ""
        print(f"error: no MLflow store at {absent}: it is made by running the sweep (python -m "
              f"benchmark.run {args.sweep}{flags}); the committed tables and figures are in "
              f"results/{sweep.results_name}/", file=sys.stderr)  # fmt: skip
        return 2
    try:
        paths = build_report(
            uri,
            sweep.results_name,
            Path(args.results_dir) / sweep.results_name,
            args.run_id,
            args.only,
        )
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {write_index(Path(args.results_dir))}")
    for path in paths.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
