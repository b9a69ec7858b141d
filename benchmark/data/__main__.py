"""Pre-render (and cache) datasets, then print each description and fingerprint.

    python -m benchmark.data dsprites --resolution 32 --n-train 20000 --cache-dir results/cache
    python -m benchmark.data --sweep sweeps/beta_tradeoff.yaml --cache-dir results/cache/data \
        --manifest results/cache/data/beta_tradeoff.json

The second form prepares every distinct dataset a sweep uses and writes a JSON manifest of their
fingerprints: the DVC `data` stage, whose output the sweep stage depends on.
"""

from __future__ import annotations

import json
import sys

from benchmark.atomic import write_text_atomic
from benchmark.cli import Parser

from . import SPECS, DataError, load_dataset


def _from_sweep(path: str, profile: str) -> list[dict]:
    from benchmark.config import ConfigError, load_sweep

    try:
        sweep = load_sweep(path, profile)
    except ConfigError as e:
        raise DataError(str(e)) from None
    seen: dict[str, dict] = {}
    for trial in sweep.trials:
        d = trial.config.dataset.model_dump()
        seen.setdefault(json.dumps(d, sort_keys=True), d)
    return list(seen.values())


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmark.data`: prepare (download, render, cache) datasets; 0 on success,
    2 with one error line on a bad argument or sweep file."""
    parser = Parser(prog="python -m benchmark.data", description=__doc__.split("\n")[0])
    parser.add_argument("name", nargs="?", help=f"dataset name; one of: {', '.join(SPECS)}")
    parser.add_argument("--sweep", help="prepare every dataset this sweep file uses instead")
    parser.add_argument("--profile", default="default", help="with --sweep: the profile")
    parser.add_argument("--manifest", help="write the datasets' fingerprints to this JSON file")
    parser.add_argument(
        "--resolution", type=int, default=None, help="image side (default: the dataset's own)"
    )
    parser.add_argument("--n-train", type=int, default=None, help="default: all non-test images")
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--split-seed", type=int, default=0)
    paths = "; ".join(f"{n}: {s.path_help}" for n, s in SPECS.items() if s.accepts_path)
    parser.add_argument("--path", default=None, help=f"a file of the data ({paths})")
    parser.add_argument("--cache-dir", default=None, help="where rendered arrays are cached")
    parser.add_argument(
        "--data-root", default=None,
        help="folder of downloadable datasets ("
        + ", ".join(n for n, s in SPECS.items() if s.accepts_data_root) + ")",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if bool(args.name) == bool(args.sweep):
        parser.error("give either a dataset name or --sweep FILE")
    try:
        if args.sweep:
            specs = _from_sweep(args.sweep, args.profile)
        else:
            specs = [{
                "name": args.name, "resolution": args.resolution, "n_train": args.n_train,
                "n_test": args.n_test, "split_seed": args.split_seed, "path": args.path,
                "data_root": args.data_root,
            }]  # fmt: skip
        manifest = []
        for spec in specs:
            dataset = load_dataset(
                spec["name"],
                resolution=spec["resolution"],
                n_train=spec["n_train"],
                n_test=spec["n_test"],
                split_seed=spec["split_seed"],
                path=spec["path"],
                data_root=spec.get("data_root"),
                cache_dir=args.cache_dir,
            )
            print(dataset.description)
            print(f"fingerprint: {dataset.fingerprint}")
            manifest.append({**spec, "description": dataset.description,
                             "fingerprint": dataset.fingerprint})  # fmt: skip
    except DataError as err:
        # A config mistake, not a bug: one readable line, no traceback.
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.manifest:
        write_text_atomic(args.manifest, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
