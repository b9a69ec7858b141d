"""python -m benchmark.perf: where the time of a sweep goes, measured in one run.

Training throughput of every variant × architecture against a bare loop on the same model, the
share of the machine's fp32/bf16 matmul peak that reaches (FLOPs by FlopCounterMode), the cost
of each evaluation metric, Ray's overhead per trial and a sweep's parallel efficiency. Writes
results/perf/perf.md and perf.csv (machine, date, commit in both). Timings on a shared machine
are noisy: compare the ratios, which are measured side by side in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

import variants
from benchmark.cli import Parser
from benchmark.config import TrainConfig
from benchmark.manifest import git_commit, machine
from benchmark.paths import FEATURE_NETS, RESULTS
from benchmark.perf.train_throughput import (
    build,
    matmul_peak,
    measure_compile,
    measure_option,
    measure_pair,
    use_cpu_clock,
)
from variants.architectures import ARCHITECTURES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m benchmark.perf", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="short timings (finishes in under 5 minutes); same table")  # fmt: skip
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved timing rounds per loop; medians are reported "
                   "(default: 5)")  # fmt: skip
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed training steps per round, at least (default: 3 with --quick, else 50; "
        "raised so that a round lasts 0.3 s with --quick, else 1 s)",
    )
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 = what each trial of a local sweep gets)")  # fmt: skip
    p.add_argument("--device", default="auto",
                   help="auto (cuda if available, else cpu), cpu, cuda, cuda:N")  # fmt: skip
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="CPU timings by the process's CPU time (default: robust to other load "
                   "on a shared machine, with 1 thread) or by the wall clock")  # fmt: skip
    p.add_argument("--sweep-trials", type=int, default=None,
                   help="trials of the Ray overhead sweep (default: 4 with --quick, else 8; "
                   "0: skip it)")  # fmt: skip
    p.add_argument(
        "--feature-nets",
        default=str(FEATURE_NETS),
        help="cache of domain feature nets for the FD/KID timing (never trained here)",
    )
    p.add_argument("--out", default=str(RESULTS / "perf"),
                   help="folder for perf.md and perf.csv")  # fmt: skip
    args = p.parse_args(argv)
    if args.repeats is None:  # not `or`: an explicit 0 is refused below, not replaced
        args.repeats = 5
    args.min_round_seconds = 0.3 if args.quick else 1.0
    if args.steps is None:
        args.steps = 3 if args.quick else 50
    if args.sweep_trials is None:
        args.sweep_trials = 4 if args.quick else 8
    from benchmark.manifest import pick_device

    try:
        for key in ("repeats", "steps", "threads"):
            if getattr(args, key) < 1:
                raise ValueError(f"--{key} {getattr(args, key)}: must be >= 1")
        if args.sweep_trials < 0:
            raise ValueError(f"--sweep-trials {args.sweep_trials}: must be >= 0 (0 skips it)")
        args.device = pick_device(args.device)
        try:  # now, not after minutes of timing
            Path(args.out).mkdir(parents=True, exist_ok=True)
            if not os.access(args.out, os.W_OK):
                raise PermissionError("not writable")
        except OSError as e:
            raise ValueError(f"--out {args.out}: cannot write there ({e})") from None
    except ValueError as e:  # one line, exit 2, as `benchmark.run` says a bad value
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    return args


def _data(device: torch.device, n: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    from benchmark.data import load_dataset

    data = load_dataset("dsprites", resolution=32, n_train=n, n_test=64)
    return data.x_train.to(device), data.y_train.to(device), data.num_classes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    use_cpu_clock(args.clock == "cpu" and args.threads == 1)
    dev = args.device
    t_start = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = {"machine": machine(), "torch": torch.__version__, "commit": git_commit(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "device": str(dev),
            "threads": str(torch.get_num_threads()),
            "clock": "process CPU time" if args.clock == "cpu" and args.threads == 1 else "wall",
            "load_average_1min": f"{load:.1f}"}  # fmt: skip
    print(" | ".join(f"{k}: {v}" for k, v in head.items()), flush=True)
    csv_rows: list[dict[str, Any]] = []

    def row(section: str, name: str, metric: str, value: float, unit: str = "") -> None:
        csv_rows.append({"section": section, "name": name, "metric": metric,
                         "value": value, "unit": unit})  # fmt: skip

    md = io.StringIO()
    md.write("# vaebench performance\n\n")
    md.write("".join(f"- {k}: {v}\n" for k, v in head.items()))
    md.write(
        f"- quick: {args.quick}; {args.repeats} interleaved rounds of at least {args.steps} "
        f"steps and {args.min_round_seconds} s each\n\n"
    )

    peak = {"fp32": matmul_peak(torch.float32, dev), "bf16": matmul_peak(torch.bfloat16, dev)}
    for k, v in peak.items():
        row("peak", f"matmul 1024x1024 {k}", "gflops", v, "GFLOP/s")
    print(f"matmul peak: fp32 {peak['fp32']:.1f} GFLOP/s, bf16 {peak['bf16']:.1f} GFLOP/s",
          flush=True)  # fmt: skip
    md.write(f"Measured matmul peak (1024x1024, this run): fp32 **{peak['fp32']:.1f}** GFLOP/s, "
             f"bf16 **{peak['bf16']:.1f}** GFLOP/s.\n\n")  # fmt: skip

    # --- training throughput, every variant x architecture ---------------------------------
    batch = 64
    # Enough images that most rounds (raised to their minimum length) see each image once.
    x, y, classes = _data(dev, max(batch * (args.steps + 1), 8192))
    shape = tuple(x.shape[1:])
    header = (f"{'variant':<13}{'arch':<8}{'params':>9}{'MFLOP/img':>10}{'ours img/s':>11}"
              f"{'bare img/s':>11}{'ratio':>7}{'GFLOP/s':>9}{'% fp32 pk':>10}")  # fmt: skip
    print(f"training, 32x32 dSprites-like, batch {batch}, fp32:\n{header}", flush=True)
    md.write(f"## Training throughput (32x32 dSprites-like, batch {batch}, fp32, fused Adam)\n\n"
             "ratio = ours / bare loop (median of per-round ratios); % of the fp32 matmul peak "
             "measured right after the pair\n\n"
             "| variant | architecture | params | MFLOP/img | ours img/s | bare img/s | ratio | "
             "GFLOP/s | % fp32 peak |\n|---|---|---|---|---|---|---|---|---|\n")  # fmt: skip
    ratios = []
    for variant in variants.names():
        for arch in ARCHITECTURES:
            model = build(variant, arch, shape, 10, classes)
            if isinstance(model, str):
                print(f"{variant:<13}{arch:<8} skipped: {model}")
                continue
            model = model.to(dev)
            yy = y if model.needs_labels else None
            r = measure_pair(model, x, yy, steps=args.steps, repeats=args.repeats, batch=batch,
                             min_seconds=args.min_round_seconds)  # fmt: skip
            # The peak is measured again beside each pair: on a shared machine it drifts.
            near = matmul_peak(torch.float32, dev, seconds=0.3)
            gf = r["flops_per_image"] * r["ours"] / 1e9
            pct = 100 * gf / near
            ratios.append(r["ratio"])
            params = model.num_parameters()
            print(f"{variant:<13}{arch:<8}{params:>9}{r['flops_per_image'] / 1e6:>10.2f}"
                  f"{r['ours']:>11.0f}{r['bare']:>11.0f}{r['ratio']:>7.2f}{gf:>9.1f}"
                  f"{pct:>9.0f}%", flush=True)  # fmt: skip
            md.write(f"| {variant} | {arch} | {params} | {r['flops_per_image'] / 1e6:.2f} | "
                     f"{r['ours']:.0f} | {r['bare']:.0f} | {r['ratio']:.2f} | {gf:.1f} | "
                     f"{pct:.0f}% |\n")  # fmt: skip
            name = f"{variant}/{arch}"
            row("train", name, "ours", r["ours"], "img/s")
            row("train", name, "bare", r["bare"], "img/s")
            row("train", name, "ratio", r["ratio"])
            row("train", name, "mflop_per_image", r["flops_per_image"] / 1e6, "MFLOP")
            row("train", name, "pct_fp32_peak", pct, "%")

    print(f"[{time.perf_counter() - t_start:.0f} s]", flush=True)
    # --- precision: bf16 against fp32, and the MLP headline -------------------------------
    md.write("\n## bf16 autocast (`train.precision: bf16`) against fp32, vae\n\n")
    print("bf16 autocast vs fp32 (vae, ours):", flush=True)
    native_bf16 = peak["bf16"] >= peak["fp32"] / 4
    if not native_bf16:  # an emulated bf16 matmul: timing bf16 training would take forever
        line = (
            f"bf16: skipped, no native bf16 matmul on this {dev.type} (measured bf16 "
            f"{peak['bf16']:.1f} vs fp32 {peak['fp32']:.1f} GFLOP/s); keep precision fp32"
        )
        print(f"  {line}", flush=True)
        md.write(f"{line}\n")
    else:
        md.write("| architecture | fp32 img/s | bf16 img/s | speed-up | % bf16 peak |\n"
                 "|---|---|---|---|---|\n")  # fmt: skip
    for arch in ARCHITECTURES if native_bf16 else ():
        model = build("vae", arch, shape, 10, classes)
        if isinstance(model, str):
            continue
        model = model.to(dev)
        f32 = measure_pair(model, x, None, steps=args.steps, repeats=args.repeats, batch=batch,
                           min_seconds=args.min_round_seconds)  # fmt: skip
        b16 = measure_pair(model, x, None, steps=f32["steps"], repeats=args.repeats, batch=batch,
                           precision="bf16")  # fmt: skip
        pct = 100 * b16["flops_per_image"] * b16["ours"] / 1e9 / peak["bf16"]
        speed = b16["ours"] / f32["ours"]
        print(f"  {arch:<8} fp32 {f32['ours']:.0f} img/s, bf16 {b16['ours']:.0f} img/s "
              f"(x{speed:.2f}), {pct:.0f}% of bf16 peak", flush=True)  # fmt: skip
        md.write(f"| {arch} | {f32['ours']:.0f} | {b16['ours']:.0f} | {speed:.2f} | "
                 f"{pct:.0f}% |\n")  # fmt: skip
        row("bf16", f"vae/{arch}", "speedup_vs_fp32", speed)
        row("bf16", f"vae/{arch}", "pct_bf16_peak", pct, "%")

    # --- channels_last and torch.compile: options that pay only in some places ---------
    print("train.channels_last vs NCHW (vae, ours, fp32):", flush=True)
    md.write("\n## `train.channels_last` against the default NCHW (vae, fp32)\n\n"
             "Off by default: not bitwise NCHW's numerics (deterministic for a seed: "
             "tests/test_train_options.py).\n\n| architecture | NCHW img/s | channels_last img/s "
             "| speed-up |\n|---|---|---|---|\n")  # fmt: skip
    for arch in ("conv4", "resnet"):
        model = build("vae", arch, shape, 10, classes)
        if isinstance(model, str):
            continue
        c = measure_option(model.to(dev), x, steps=args.steps, repeats=args.repeats,
                           batch=batch, min_seconds=args.min_round_seconds,
                           channels_last=True)  # fmt: skip
        print(f"  {arch:<8} NCHW {c['default']:.0f} img/s, channels_last {c['option']:.0f} img/s "
              f"(x{c['speedup']:.2f})", flush=True)  # fmt: skip
        md.write(f"| {arch} | {c['default']:.0f} | {c['option']:.0f} | {c['speedup']:.2f} |\n")
        row("channels_last", f"vae/{arch}", "speedup_vs_nchw", c["speedup"])
    trial_steps = TrainConfig().steps
    md.write(f"\n## `train.compile` (vae, fp32): does it pay over a trial of {trial_steps} steps?"
             "\n\n| architecture | compile (s) | eager ms/step | compiled ms/step | break-even "
             "steps | pays? |\n|---|---|---|---|---|---|\n")  # fmt: skip
    print(f"train.compile (vae, fp32; a trial is {trial_steps} steps):", flush=True)
    # conv4 is the β sweep's network; --quick times only it (a compile takes ~20 s).
    for arch in ("conv4",) if args.quick else ("conv4", "mlp2"):
        model = build("vae", arch, shape, 10, classes)
        if isinstance(model, str):
            continue
        try:
            c = measure_compile(model.to(dev), x, steps=max(args.steps, 20),
                                repeats=args.repeats, batch=batch)  # fmt: skip
        except Exception as e:  # noqa: BLE001 - no compiler, unsupported op: say so, go on
            line = f"{arch}: torch.compile unavailable ({str(e).strip().splitlines()[0]})"
            print(f"  {line}", flush=True)
            md.write(f"\n{line}\n")
            continue
        pays = c["break_even_steps"] < trial_steps
        print(f"  {arch:<8} compile {c['compile_seconds']:.1f} s, eager "
              f"{1e3 * c['eager_step_seconds']:.2f} ms/step, compiled "
              f"{1e3 * c['compiled_step_seconds']:.2f} ms/step, break-even "
              f"{c['break_even_steps']:.0f} steps: {'pays' if pays else 'does not pay'}",
              flush=True)  # fmt: skip
        md.write(f"| {arch} | {c['compile_seconds']:.1f} | {1e3 * c['eager_step_seconds']:.2f} | "
                 f"{1e3 * c['compiled_step_seconds']:.2f} | {c['break_even_steps']:.0f} | "
                 f"{'yes' if pays else 'no'} |\n")  # fmt: skip
        for k, v in c.items():
            row("compile", f"vae/{arch}", k, v)

    cls = variants.get("vae")
    torch.manual_seed(0)
    mlp = cls(cls.Config(), image_shape=(1, 28, 28), latent_dim=10, architecture="mlp2").to(dev)
    head_steps = max(args.steps, 50)  # the headline: a steadier median than a few steps give
    xb = torch.bernoulli(torch.rand(128 * (head_steps + 1), 1, 28, 28, device=dev))
    r = measure_pair(mlp, xb, None, steps=head_steps, repeats=args.repeats, batch=128)
    near = matmul_peak(torch.float32, dev, seconds=0.3)
    pct = 100 * r["flops_per_image"] * r["ours"] / 1e9 / near
    row("headline", "vae/mlp2 28x28 batch 128", "pct_fp32_peak", pct, "%")
    row("headline", "vae/mlp2 28x28 batch 128", "ours", r["ours"], "img/s")
    line = (f"mlp2 VAE ({mlp.num_parameters()} params, 28x28 binary, batch 128): "
            f"{r['ours']:.0f} img/s, {r['flops_per_image'] / 1e6:.2f} MFLOP/img, "
            f"{pct:.0f}% of the fp32 peak")  # fmt: skip
    print(line, flush=True)
    md.write(f"\n**{line}.**\n")

    print(f"[{time.perf_counter() - t_start:.0f} s]", flush=True)
    try:
        import pythae  # noqa: F401 - not a project dependency: a row only where installed
    except ImportError:
        line = "vaebench / pythae: skipped (pythae not installed; see pythae_compare.py)"
    else:
        from benchmark.perf.pythae_compare import compare

        logging.getLogger("pythae").setLevel(logging.WARNING)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            pc = compare(repeats=args.repeats, steps=max(args.steps, 30), threads=args.threads)
        line = (f"vaebench / pythae BaseTrainer on the same mlp2 VAE (fp32, {args.threads} "
                f"thread(s)): {pc['ratio']:.2f} ({pc['vaebench']:.0f} vs {pc['pythae']:.0f} "
                "img/s)")  # fmt: skip
        row("headline", "vaebench/pythae mlp2", "ratio", pc["ratio"])
    print(line, flush=True)
    md.write(f"\n**{line}.**\n")

    # --- evaluation cost ---------------------------------------------------------------
    from benchmark.perf.eval_cost import measure_eval

    sizes = "the registry's test sizes" if args.quick else "the default (paper) sizes"
    print(f"evaluation cost (conv4 VAE, 32x32, {sizes}):", flush=True)
    md.write(
        f"\n## Evaluation cost (conv4 VAE, 32x32 dSprites-like, {sizes})\n\n"
        "Each metric's registry `compute` on a fresh context after the shared test pass; a "
        "point is a test image, a code, a vote or an image pair (`benchmark/perf/eval_cost.py`)."
        "\n\n| metric | points | seconds | s per 1,000 points | setting |\n|---|---|---|---|---|\n"
    )
    with contextlib.redirect_stdout(io.StringIO()):
        eval_rows, skipped = measure_eval(dev, quick=args.quick,
                                          feature_nets=Path(args.feature_nets))  # fmt: skip
    for e in eval_rows:
        per = "" if math.isnan(e["per_1000"]) else f"{e['per_1000']:.3f}"
        print(f"  {e['metric']:<32} N={e['n']:<6} {e['seconds']:7.2f} s  {per or 'n/a':>8} s/1k"
              f"  ({e['setting']})", flush=True)  # fmt: skip
        md.write(f"| {e['metric']} | {e['n']} | {e['seconds']:.2f} | {per or 'n/a'} | "
                 f"{e['setting']} |\n")  # fmt: skip
        row("eval", e["metric"], "seconds", e["seconds"], "s")
        if per:
            row("eval", e["metric"], "seconds_per_1000", e["per_1000"], "s")
    for line in skipped:
        print(f"  {line}")
        md.write(f"\n{line}\n")

    print(f"[{time.perf_counter() - t_start:.0f} s]", flush=True)
    # --- Ray: per-trial overhead and parallel efficiency --------------------------------
    md.write("\n## Ray Tune per trial (real sweep of short smoke trials, MLflow in a scratch "
             "store)\n\n")  # fmt: skip
    if args.sweep_trials:
        from benchmark.perf.sweep_overhead import (
            measure_sweep,
            measured_efficiency,
            projected_efficiency,
        )

        s = measure_sweep(n_trials=args.sweep_trials, steps=400 if args.quick else 1500)
        items = [
            ("trials (finished)", f"{s['n']} ({s['finished']})"),
            ("slots (trials at once)", s["slots"]),
            ("worker processes used", s["worker_processes"]),
            ("Ray start-up (s)", f"{s['ray_init_seconds']:.1f}"),
            ("first trial start after tuner start (s)", f"{s['first_start_seconds']:.1f}"),
            ("  of which Tune's floor: first start of trivial trials (s)",
             f"{s['floor_first_start_seconds']:.1f}"),
            ("trial's own time, mean (s)", f"{s['own_seconds_mean']:.1f}"),
            ("data load in a trial, mean (s)", f"{s['data_seconds_mean']:.2f}"),
            ("gap between consecutive trials, median / max (s)",
             f"{s['gap_seconds_median']:.1f} / {s['gap_seconds_max']:.1f}"),
            ("  Tune's floor: a trivial trial's start to the next start on its slot, median (s)",
             f"{s['floor_gap_seconds_median']:.2f}"),
            ("overhead per trial: (wall x slots - sum own) / N (s)",
             f"{s['overhead_per_trial_seconds']:.1f}"),
            ("parallel efficiency of this short sweep, start-up included: sum own / (wall x "
             "slots)", f"{s['parallel_efficiency']:.3f}"),
            ("steady-state efficiency: from the first start to the last end",
             f"{s['steady_efficiency']:.3f}"),
            ("worker import of the trainable's module, fresh process (s)",
             f"{s['worker_import_seconds']:.1f}"),
        ]  # fmt: skip
        gap = s["gap_seconds_median"] if math.isfinite(s["gap_seconds_median"]) else 0.0
        for sweep_name in ("beta_tradeoff", "variants"):
            runs = RESULTS / sweep_name / "runs.csv"
            try:
                eff, n, own = projected_efficiency(runs, s["slots"], s["first_start_seconds"], gap)
            except (OSError, KeyError, ValueError) as e:
                items.append((f"projected efficiency, {sweep_name}", f"n/a ({e})"))
                continue
            items.append((f"projected efficiency of the committed {sweep_name} sweep ({n} trials, "
                          f"{own / 60:.0f} trial-min; measured first start and gap)",
                          f"{eff:.3f}"))  # fmt: skip
            s[f"projected_efficiency_{sweep_name}"] = eff
        for sweep_name in ("beta_tradeoff", "variants", "architecture", "likelihood"):
            try:
                eff, n, minutes = measured_efficiency(RESULTS / sweep_name, s["slots"])
            except (OSError, KeyError, ValueError):
                continue  # not committed, or made before sweep.json recorded its minutes
            items.append((f"measured efficiency of the committed {sweep_name} sweep as it ran "
                          f"({n} trials in {minutes:.1f} min)", f"{eff:.3f}"))  # fmt: skip
            s[f"measured_efficiency_{sweep_name}"] = eff
        md.write("| quantity | value |\n|---|---|\n")
        for k, v in items:
            print(f"  {k}: {v}", flush=True)
            md.write(f"| {k} | {v} |\n")
        for k, v in s.items():
            row("ray", "smoke sweep", k, float(v))
    else:
        md.write("skipped (--sweep-trials 0)\n")

    print(f"[{time.perf_counter() - t_start:.0f} s]", flush=True)
    total = time.perf_counter() - t_start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    last = f"min train ratio vs bare loop: {min(ratios):.2f}" if ratios else "no pairs timed"
    md.write(f"\nHarness wall time {total:.0f} s.\n\n{last}\n")
    (out / "perf.md").write_text(md.getvalue())
    with open(out / "perf.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["section", "name", "metric", "value", "unit",
                                          *head])  # fmt: skip
        w.writeheader()
        for r_ in csv_rows:
            w.writerow({**r_, **head})
    print(f"wrote {out / 'perf.md'} and {out / 'perf.csv'} ({total:.0f} s)")
    print(last)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: nothing was written (perf.md and perf.csv come last)
        print("\ninterrupted: nothing written", file=sys.stderr)
        sys.exit(130)
