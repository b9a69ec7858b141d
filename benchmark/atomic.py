"""Atomic file writes: a reader sees the old file or the whole new one, never a partial file.

Every output of record (tables, sweep.json, checkpoints, cached nets and datasets, pins) is
written to a temporary file in the destination folder and renamed over the destination with
`os.replace`, which is atomic on POSIX and Windows within one filesystem. The temporary name
holds the process id and a random token, so parallel writers (two drivers finishing one sweep,
threads, trials sharing a cache) never rename each other's file away, and it keeps the
destination's suffix, so writers that choose a format by suffix (matplotlib) still work.
Remote filesystems (`benchmark.storage`) have their own move-or-copy logic.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
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
