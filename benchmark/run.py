"""Run a sweep: python -m benchmark.run sweeps/beta_tradeoff.yaml [--profile NAME] [...]

Validates the sweep file (exit 2 with one line on any mistake, before Ray starts), creates the
MLflow store, experiment and sweep run, runs every trial as a Ray Tune trial, then writes the
tables and figure to results/<sweep>/ (results/<sweep>+<hash of the overrides>/ with --override).

Exit status: 0 when the sweep ran (even if some trials diverged or failed: they are reported
as such); 1 with --strict when any trial did not finish; 2 for bad input; 130 on Ctrl-C.

Resume: when the newest run of the same sweep (same trials) did not finish (Ctrl-C, a killed
driver, a lost machine), rerunning the command continues that run: trials that finished or
diverged are kept, the others continue from their last checkpoint in their existing MLflow
runs. `--fresh` starts a new run instead.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from benchmark.atomic import write_text_atomic
from benchmark.cli import Parser
from benchmark.paths import FEATURE_NETS, RESULTS

# FD is only comparable within one feature net: every sweep uses the committed nets, whatever
# results dir it writes to; a missing net is trained there once (and then named by its hash).


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The run CLI's options; a bad option exits 2 with one line (`benchmark.cli.Parser`)."""
    p = Parser(
        prog="python -m benchmark.run",
        description="Run a vaebench sweep through Ray Tune and log every trial to MLflow.",
        epilog="Example: python -m benchmark.run sweeps/beta_tradeoff.yaml "
        "--override train.steps=500 --override grid.seed=[0]",
    )
    p.add_argument("sweep", nargs="?", help="sweep file (YAML), e.g. sweeps/beta_tradeoff.yaml")
    p.add_argument(
        "--profile", default="default",
        help="a profile of the sweep file, e.g. 'paper' for the full protocol (default: default)",
    )  # fmt: skip
    p.add_argument(
        "--override", action="append", default=[], metavar="KEY=VALUE",
        help="override a base key (train.steps=500) or a grid axis (grid.beta=[1,4]); "
        "values are YAML; repeatable",
    )  # fmt: skip
    p.add_argument(
        "--device", default="auto",
        help="torch device for every trial: auto (CUDA if available, else CPU), cpu, cuda, cuda:1",
    )  # fmt: skip
    p.add_argument(
        "--address", default=None,
        help="join a Ray cluster: 'auto', HOST:PORT or ray://HOST:10001 (the code is shipped to "
        "its workers; see docs/cluster.md); default: start a local Ray",
    )  # fmt: skip
    p.add_argument(
        "--storage-path", default=None, metavar="PATH_OR_URI",
        help="Ray's trial storage and the trial checkpoints: a path every node sees (NFS) or a "
        "pyarrow URI (s3://bucket/prefix); default: <results-dir>/ray",
    )  # fmt: skip
    p.add_argument(
        "--num-cpus", type=int, default=None,
        help="CPUs for the local Ray (default: all cores); trials run as many at once as fit",
    )  # fmt: skip
    p.add_argument(
        "--tracking-uri", default=None,
        help="MLflow tracking URI, e.g. http://mlflow:5000 (default: sqlite:///<results>/mlflow.db)",
    )  # fmt: skip
    p.add_argument(
        "--results-dir", default=str(RESULTS),
        help="tables, figures, the MLflow store and Ray's trial storage (default: results/)",
    )  # fmt: skip
    p.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE",
        help="import MODULE first so that the variants it registers can be swept; repeatable",
    )  # fmt: skip
    p.add_argument(
        "--fresh", action="store_true",
        help="start a new sweep run even if the last run of this sweep was interrupted "
        "(default: resume it: finished trials are kept, the others continue from checkpoints)",
    )  # fmt: skip
    p.add_argument(
        "--checkpoint-every", type=int, default=500, metavar="STEPS",
        help="save each trial's training state every STEPS steps, for resume (0: never; "
        "default: 500)",
    )  # fmt: skip
    p.add_argument(
        "--feature-nets", default=str(FEATURE_NETS), metavar="DIR",
        help="the FD feature nets, which define the fd_<dataset> scale (default: the committed "
        "results/feature_nets, whatever --results-dir is)",
    )  # fmt: skip
    p.add_argument(
        "--rerun", action="store_true",
        help="retrain every trial even when a finished run with the same identity (config, "
        "code numerics, data) is in the tracking store (default: reuse it, see README)",
    )  # fmt: skip
    p.add_argument("--yes", action="store_true", help="allow grids over the trial sanity limit")
    p.add_argument("--strict", action="store_true", help="exit 1 if any trial diverged or failed")
    p.add_argument(
        "--dry-run", action="store_true",
        help="validate; show the base config, trials, total steps, where results go and a time "
        "estimate; run nothing",
    )  # fmt: skip
    p.add_argument(
        "--no-report", action="store_true",
        help="skip the tables and figure (DVC runs `benchmark.report` as its own stage)",
    )  # fmt: skip
    p.add_argument(
        "--list-variants", action="store_true",
        help="print each variant with a one-line description and its parameters, then exit",
    )  # fmt: skip
    p.add_argument(
        "--list-metrics", action="store_true",
        help="print every metric (eval.metrics) with its description, needs and parameters",
    )  # fmt: skip
    return p.parse_args(argv)


def option(argv: list[str], flag: str, default: str | None) -> str | None:
    """The value of `flag` in an argument list (its last occurrence), else `default`."""
    values = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]
    return values[-1] if values else default


def check_address(address: str | None) -> str | None:
    """Why `--address HOST:PORT` cannot be joined (nothing listens there), else None.

    Ray itself retries an unreachable head for minutes; a TCP connect with a timeout answers at
    once. `auto` and `ray://` addresses are left to Ray.
    """
    import socket

    if not address or address == "auto" or "://" in address:
        return None
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return (f"--address {address}: not HOST:PORT; allowed: auto, HOST:PORT of a running Ray "
                "head (ray start --head), or ray://HOST:10001")  # fmt: skip
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        return (
            f"--address {address}: no Ray head answers there ({e.strerror or e}); allowed: "
            "auto, HOST:PORT of a running Ray head (ray start --head), or ray://HOST:10001"
        )
    return None


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmark.run`: run a sweep's trials through Ray Tune, log them to MLflow, report.

    Exit codes: 0 done (also with failed trials, unless --strict); 1 --strict and not every
    trial finished; 2 a bad sweep, override or option (one line naming its source); 130
    interrupted (rerun to resume).
    """
    args = parse_args(argv)
    from benchmark.paths import (
        absolute,
        absolute_tracking_uri,
        absolutize_env,
        export_import_roots,
    )

    # Once, here: trials run in working directories of their own (see benchmark.paths).
    args.results_dir = absolute(args.results_dir)
    if args.tracking_uri:
        args.tracking_uri = absolute_tracking_uri(args.tracking_uri)
    absolutize_env()
    for module in args.plugin:
        try:
            importlib.import_module(module)
        except ImportError as e:
            return _fail(f"--plugin {module}: cannot import it ({e})")

    export_import_roots(args.plugin)

    if args.list_variants:
        from benchmark.plan import variant_listing

        print(variant_listing())
        return 0
    if args.list_metrics:
        from benchmark.config import EvalConfig
        from benchmark.metrics import registry

        defaults = EvalConfig().model_dump()
        print("\n".join(registry.describe(m, defaults) for m in registry.metrics()))
        return 0
    if not args.sweep:
        return _fail("no sweep file given; e.g. python -m benchmark.run sweeps/smoke.yaml")
    if args.num_cpus is not None and args.num_cpus < 1:
        return _fail(f"--num-cpus: {args.num_cpus} is not allowed; allowed: an integer >= 1")
    if args.checkpoint_every < 0:
        return _fail(
            f"--checkpoint-every: {args.checkpoint_every} is not allowed; allowed: an integer "
            ">= 0 (0: no checkpoints)"
        )

    from benchmark.config import ConfigError, load_sweep
    from benchmark.data import DataError
    from benchmark.feature_nets import FeatureNetError
    from benchmark.manifest import pick_device
    from benchmark.storage import StorageError, resolve_root

    try:
        sweep = load_sweep(args.sweep, args.profile, args.override, allow_large=args.yes)
        # On a cluster the GPUs are on the workers, not necessarily where the driver runs.
        pick_device(args.device, check_available=not args.address)
        if args.storage_path is not None:
            args.storage_path = resolve_root(args.storage_path)
    except (ConfigError, StorageError) as e:
        return _fail(str(e))
    except (ValueError, RuntimeError) as e:
        return _fail(str(e))
    remote_tracking = (args.tracking_uri or "").startswith(("http://", "https://"))
    if (args.address or "").startswith("ray://") and not (args.storage_path and remote_tracking):
        # Through Ray Client, Tune's controller (and the MLflow callback) runs on the head node,
        # where this machine's results/ folder and SQLite store do not exist.
        return _fail(f"--address {args.address}: a ray:// address needs --tracking-uri "
                     "http://HOST:PORT and --storage-path on storage the head node sees "
                     "(or run the command on the head node with --address auto)")  # fmt: skip

    print(f"sweep {sweep.name} (profile {sweep.profile}): {len(sweep.trials)} trials over "
          f"{', '.join(sweep.axes) or 'no axes'}")  # fmt: skip
    if sweep.overrides:
        # Overrides make another sweep: its outputs never replace the sweep file's own.
        print(f"with {len(sweep.overrides)} overrides: tables and figures go to "
              f"{Path(args.results_dir) / sweep.results_name}/ (MLflow experiment "
              f"{sweep.results_name}); benchmark.report finds them with the same --override "
              "flags")  # fmt: skip
    from benchmark.plan import big_sweep_warning, dry_run_text, precision_warning

    problem = check_address(args.address)
    if problem:
        return _fail(problem)
    if args.dry_run:
        print(dry_run_text(sweep, args.results_dir, args.tracking_uri, args.num_cpus, args.device))
        return 0
    for warning in (
        big_sweep_warning(sweep, Path(args.results_dir), args.num_cpus, args.device),
        precision_warning(sweep, args.device, args.address),
    ):
        if warning:
            print(warning)
    try:
        check_data_files(sweep)
        prepare_feature_nets(sweep, Path(args.feature_nets).resolve())
    except (DataError, FeatureNetError) as e:
        return _fail(str(e))
    return _run(sweep, args)


def prepare_feature_nets(sweep, cache_root: Path) -> None:
    """Train (once, cached) the domain feature net of every dataset the sweep scores by FD,
    before any trial starts: trials only load it, so concurrent trials never race to train it."""
    from benchmark.data import SPECS
    from benchmark.feature_nets import load_or_train
    from benchmark.metrics.registry import needs_feature_net

    seen = set()
    for t in sweep.trials:
        d = t.config.dataset
        spec = SPECS[d.name]
        if not needs_feature_net(t.config.eval) or not (spec.labelled or spec.has_factors):
            continue
        key = (d.name, spec.check_resolution(d.resolution), d.data_root)
        if key not in seen:
            seen.add(key)
            load_or_train(key[0], key[1], cache_root, data_root=key[2])


def check_data_files(sweep) -> None:
    """Read every file-backed dataset the sweep uses once, before Ray starts: a dataset that is
    missing offline stops the command with one line saying where to put it, instead of failing
    every trial."""
    from benchmark.data import SPECS, load_dataset

    seen = set()
    for t in sweep.trials:
        d = t.config.dataset
        key = (d.name, d.resolution, d.n_train, d.n_test, d.split_seed, d.data_root)
        if SPECS[d.name].accepts_data_root and key not in seen:
            seen.add(key)
            data = load_dataset(
                d.name,
                resolution=d.resolution,
                n_train=d.n_train,
                n_test=d.n_test,
                split_seed=d.split_seed,
                data_root=d.data_root,
            )
            print(f"data: {data.description}")


def _reuse_cached(sweep, tracker, parent: str, done: dict, reuse: dict, *, rerun: bool) -> int:
    """Copy finished runs of trials with the same identity into this sweep run (not `rerun`).

    Fills `done` for the copied trials and returns how many there were.
    """
    from benchmark.cache import identities
    from benchmark.tracking import copy_trial, find_cached

    tracker.identities = identities(sweep)
    if rerun:
        return 0
    n = 0
    for t in sweep.trials:
        if t.index in done or t.index in reuse:
            continue
        source = find_cached(tracker, tracker.identities[t.index], exclude_parent=parent)
        if source:
            copy_trial(tracker, source, t, len(sweep.trials))
            done[t.index] = "finished"
            n += 1
    return n


def _claim(results: Path, parent: str):
    """An exclusive lock on the sweep run `parent` for this driver's lifetime (the OS drops it
    when the process dies, so a killed driver's run can be resumed), or None if a live driver
    holds it."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(results / ".locks" / f"sweep-{parent}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


def browse_hint(uri: str, experiment_id: str) -> str:
    """How to open the runs: the venv's own mlflow (not whatever is on PATH) and the run list."""
    from benchmark.tracking import is_local_store

    if not is_local_store(uri):
        return f"Browse the runs: {uri.rstrip('/')}/#/experiments/{experiment_id}/runs"
    exe = Path(sys.executable).with_name("mlflow")
    command = str(exe) if exe.is_file() else f"{sys.executable} -m mlflow"
    return (
        f"Browse the runs: {command} ui --backend-store-uri {uri}\n"
        f"  then open http://127.0.0.1:5000/#/experiments/{experiment_id}/runs"
    )


def _run(sweep, args: argparse.Namespace) -> int:
    from filelock import FileLock

    from benchmark.manifest import manifest
    from benchmark.report import build_report, write_index
    from benchmark.tracking import (
        DONE,
        LOCK_FILE,
        Tracker,
        default_tracking_uri,
    )

    results = Path(args.results_dir).resolve()
    results.mkdir(parents=True, exist_ok=True)
    uri = args.tracking_uri or default_tracking_uri(results)
    tracker = Tracker(uri, results, sweep.results_name)
    info = manifest()
    done: dict[int, str] = {}  # trial index → final status from the interrupted attempt
    reuse: dict[int, str] = {}  # trial index → its unfinished MLflow run, to continue
    # Under the store's lock, so that two drivers started together never both resume, or both
    # miss, the same sweep run; the claim on the run is held until this process ends.
    with FileLock(str(results / LOCK_FILE), timeout=600):
        found = None if args.fresh else tracker.find_resumable(sweep)
        claim = None if found is None else _claim(results, found[0])
        if claim is None:
            if found is not None:
                print(f"sweep run {found[0]} is being run by another driver; starting a new one")
            found = None
            parent = tracker.start_sweep(sweep, info, args.override)
            claim = _claim(results, parent)
    if found is not None:
        parent, children = found
        tracker.resume_sweep(parent, info, sweep, args.override)
        for t in sweep.trials:
            run_id, status = children.get(t.config.hash(), (None, None))
            if status in DONE:
                done[t.index] = status
            elif run_id:
                reuse[t.index] = run_id
        print(f"resuming the interrupted sweep run {parent}: {len(done)}/{len(sweep.trials)} "
              f"trials are done and are kept; the others continue from their last checkpoint "
              f"(--fresh starts over)")  # fmt: skip
    from benchmark.cache import sweep_numerics

    # The report's "Numerics" line: the probes' digests this code was checked against.
    tracker.client.set_tag(parent, "vaebench.numerics",
                           json.dumps(sweep_numerics(t.config for t in sweep.trials)))  # fmt: skip
    print(f"MLflow: {uri} (experiment {sweep.results_name}, sweep run {parent})")
    cached = _reuse_cached(sweep, tracker, parent, done, reuse, rerun=args.rerun)
    if cached:
        print(f"cache: {cached} trials have a finished run with the same identity and are not "
              "retrained (--rerun retrains them)")  # fmt: skip

    from benchmark.tune import init_ray, run_sweep_with_ray

    t0 = time.monotonic()
    interrupted = False
    statuses: dict[int, str] = dict(done)
    todo = [t.index for t in sweep.trials if t.index not in done]
    try:
        if todo:
            try:
                init_ray(args.address, args.num_cpus, args.plugin)
            except ConnectionError as e:
                return _fail(f"--address {args.address}: no Ray cluster answers there ({e})")
            print(f"Ray up in {time.monotonic() - t0:.0f}s; running {len(todo)} trials")
        statuses.update(run_sweep_with_ray(
            sweep, tracker,
            storage_path=args.storage_path or results / "ray",
            experiment_name=f"{sweep.results_name}-{parent[:8]}",
            device=args.device,
            cache_dir=results / "cache" / "data",
            feature_nets=Path(args.feature_nets).resolve(),
            plugins=args.plugin,
            indices=todo,
            reuse_runs=reuse,
            checkpoint_every=args.checkpoint_every,
        ))  # fmt: skip
    except KeyboardInterrupt:
        interrupted = True
    # Tune catches Ctrl-C itself and returns early: trials without a final status were cut off.
    interrupted = (
        interrupted or len(statuses) < len(sweep.trials) or "interrupted" in statuses.values()
    )
    counts: dict[str, int] = {}
    for index in range(len(sweep.trials)):
        status = statuses.get(index, "not run")
        counts[status] = counts.get(status, 0) + 1
    sweep_status = tracker.finish_sweep(counts, interrupted=interrupted)

    out_dir = results / sweep.results_name
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"sweep_run_id": parent, "tracking_uri": uri, "profile": sweep.profile,
              "sweep_file": sweep.file, "overrides": list(sweep.overrides),
              "commit": info["commit"], "trials": counts,
              "minutes": round((time.monotonic() - t0) / 60, 1),
              # The pinned numerics this code produced the results with (the drift guard).
              "numerics": sweep_numerics(t.config for t in sweep.trials)}  # fmt: skip
    # The sweep's one small output of record: DVC's sweep stage tracks it, the report stage uses it.
    write_text_atomic(out_dir / "sweep.json", json.dumps(record, indent=2, sort_keys=True) + "\n")
    ran = counts.get("finished", 0) + counts.get("diverged", 0) + counts.get("failed", 0)
    if ran and not args.no_report:
        for path in build_report(uri, sweep.results_name, out_dir, parent).values():
            print(f"wrote {path}")
        if out_dir.parent == RESULTS:  # the committed results' index
            print(f"wrote {write_index(out_dir.parent)}")
        tracker.log_sweep_results(out_dir, sweep.axes)
    minutes = (time.monotonic() - t0) / 60
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    print(f"{counts.get('finished', 0)}/{len(sweep.trials)} finished ({summary}) "
          f"in {minutes:.1f} min")  # fmt: skip
    print(browse_hint(uri, tracker.experiment_id))
    if interrupted:
        print("interrupted: rerun the same command to resume (finished trials are kept, the "
              "others continue from their last checkpoint)")  # fmt: skip
        return 130
    if sweep_status == "incomplete":
        n_done = sum(counts.get(s, 0) for s in DONE)
        print(f"incomplete: {len(sweep.trials) - n_done} trials failed or did not run; rerun the "
              "same command to retry them (finished and diverged trials are kept)")  # fmt: skip
    if args.strict and counts.get("finished", 0) < len(sweep.trials):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
