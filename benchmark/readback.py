"""Files the project reads back (checkpoints, kept results, caches, feature nets, records): an
unreadable one is set aside with a warning, and the piece it held is recomputed.

A truncated or corrupt file must cost the work it held, never more: deleting it would lose the
evidence, and failing on it would lose the trial (or, on rerun, the sweep) it belongs to.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def set_aside(path: str | Path, why: str) -> Path:
    """Rename the unreadable file `path` to `<name>.corrupt-<UTC time>` (kept for a post-mortem)
    and print one warning line to stderr. Returns the new path (`path` itself if it vanished)."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        path.replace(target)
    except FileNotFoundError:  # another process set it aside first
        target = path
    print(f"warning: {path} is unreadable ({why}); set aside as {target.name}; recomputing it",
          file=sys.stderr, flush=True)  # fmt: skip
    return target


def read_json(path: str | Path) -> Any | None:
    """The JSON in `path`; None if there is no such file, or if it is unreadable (then it is set
    aside, see `set_aside`)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        set_aside(path, f"{type(e).__name__}: {e}")
        return None
