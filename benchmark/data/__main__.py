"""Pre-render (and cache) a dataset, then print its description and fingerprint.

    python -m benchmark.data dsprites --resolution 32 --n-train 20000 --cache-dir results/cache

Used as a DVC stage: the cache file is the stage output and the fingerprint line lets a later
stage (and a human) check that it trains on exactly this data.
"""

from __future__ import annotations

import argparse
import sys

from . import DATASETS, DataError, load_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.data", description=__doc__.split("\n")[0]
    )
    parser.add_argument("name", help=f"dataset name; one of: {', '.join(DATASETS)}")
    parser.add_argument("--resolution", type=int, default=None, help="dsprites: 16/32/64")
    parser.add_argument("--n-train", type=int, default=None, help="default: all non-test images")
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--path", default=None, help="real dSprites npz (default: renderer)")
    parser.add_argument("--cache-dir", default=None, help="where rendered arrays are cached")
    args = parser.parse_args(argv)
    try:
        dataset = load_dataset(
            args.name,
            resolution=args.resolution,
            n_train=args.n_train,
            n_test=args.n_test,
            split_seed=args.split_seed,
            path=args.path,
            cache_dir=args.cache_dir,
        )
    except DataError as err:
        # A config mistake, not a bug: one readable line, no traceback.
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(dataset.description)
    print(f"fingerprint: {dataset.fingerprint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
