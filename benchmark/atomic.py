"""Atomic file writes: a reader sees the old file or the whole new one, never a partial file.

Every output of record (tables, sweep.json, checkpoints, cached nets and datasets, pins) is
written to a temporary file in the destination folder and renamed over the destination with
`os.replace`, which is atomic on POSIX and Windows within one filesystem. The temporary name
holds the process id and a random token, so parallel writers (two drivers finishing one sweep,
threads, trials sharing a cache) never rename each other's file away, and it keeps the
destination's suffix, so writers that choose a format by suffix (matplotlib) still work.
Remote filesystems (`benchmark.storage`) have their own move-or-copy logic.

A folder of outputs (a report's images/ and figures/) is written file by file, then cleared of
the files the current run did not write (`remove_stale`): it ends holding exactly that run's
outputs, and a reader never sees a folder without them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on a clean exit it replaces `path` atomically.

    The caller writes the whole file to the yielded path (any writer: `torch.save`,
    `fig.savefig`, `open(..., "wb")`). The parent folder is created. If the block raises, the
    temporary file is removed, `path` is left as it was, and the exception propagates.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically (see `atomic_path`); returns `path` as a Path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (see `atomic_path`); returns `path` as a Path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def remove_stale(folder: str | Path, keep: Iterable[str | Path]) -> list[Path]:
    """Delete the files directly in `folder` that are not in `keep`; returns those deleted.

    Call it after writing the new files: a folder of outputs then holds only the current run's
    (a grid point dropped since the last run leaves no image behind). Hidden files (other
    writers' temporaries, see `atomic_path`) and subfolders are left alone; a missing `folder`
    deletes nothing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = {Path(p).resolve() for p in keep}
    gone = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.resolve() not in wanted:
            path.unlink(missing_ok=True)
            gone.append(path)
    return gone
