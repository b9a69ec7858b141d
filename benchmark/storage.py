"""Where trials keep their state: a local or shared (NFS) path, or a URI that pyarrow understands.

`--storage-path` names one root for Ray Tune's trial storage and for the trial state this
project keeps itself: `<root>/<experiment>/trials/<trial hash>/` holds the training checkpoint
`state.pt`, the attempts log `attempts.jsonl` (one line per start: step, node, host) and, once
the trial is done, `out/` (its `result.json` and images). A trial retried on another node, or
rerun by a restarted driver, finds its state there.

For a path the trial works in that folder directly. For a URI (`s3://bucket/vaebench`,
`gs://...`, `hdfs://...`, `file:///...`) the trial works in a local scratch folder: the state
is pulled at the start, `state.pt` and `attempts.jsonl` are pushed after every checkpoint, and
`out/` is pushed when the trial is done. Copies go through `pyarrow.fs`, the layer Ray Tune
itself uses for its `storage_path`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

STATE = "state.pt"
ATTEMPTS = "attempts.jsonl"
OUT = "out"


class StorageError(ValueError):
    """A `--storage-path` that is neither a usable path nor a URI pyarrow can open."""


def is_uri(root: str) -> bool:
    """Whether `root` is a URI (scheme://...) rather than a local path."""
    return "://" in root


def resolve_root(root: str | Path) -> str:
    """`root` as the workers will see it: an absolute path, or the URI unchanged.

    Raises StorageError when pyarrow has no filesystem for the URI's scheme (or lacks the
    library for it, e.g. `s3://` without S3 support built in).
    """
    root = str(root)
    if not is_uri(root):
        return str(Path(root).expanduser().resolve())
    try:
        pafs.FileSystem.from_uri(root)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as e:
        raise StorageError(
            f"--storage-path {root}: pyarrow cannot open it ({e}); allowed: a path, or a URI "
            "such as s3://bucket/prefix, gs://bucket/prefix, hdfs://host/path, file:///path"
        ) from None
    return root


def join(root: str, *parts: str) -> str:
    """`root/part/...` for a path or a URI alike."""
    return "/".join([root.rstrip("/"), *parts]) if is_uri(root) else str(Path(root, *parts))


class TrialState:
    """The state folder of one trial, local to this worker for the duration of a `with` block.

    `dir` is the folder the trial reads and writes (`dir/state.pt`, `dir/out/...`). For a path
    root it is the shared folder itself and `push`/`finish` do nothing; for a URI root it is a
    scratch copy, removed when the block exits.
    """

    def __init__(self, root: str, trial_hash: str) -> None:
        self.location = join(root, trial_hash)
        self._remote: tuple[pafs.FileSystem, str] | None = None
        if is_uri(root):
            self._remote = pafs.FileSystem.from_uri(self.location)
            self.dir = Path(tempfile.mkdtemp(prefix=f"vaebench-{trial_hash}-"))
        else:
            self.dir = Path(self.location)

    def __enter__(self) -> TrialState:
        if self._remote is not None:
            fs, path = self._remote
            if fs.get_file_info(path).type == pafs.FileType.Directory:
                pafs.copy_files(path, str(self.dir), source_filesystem=fs,
                                destination_filesystem=pafs.LocalFileSystem())  # fmt: skip
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._remote is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def push(self) -> None:
        """Upload the checkpoint and the attempts log (after each checkpoint is written)."""
        if self._remote is None:
            return
        for name in (ATTEMPTS, STATE):
            if (self.dir / name).is_file():
                self._upload(self.dir / name, name)

    def finish(self) -> None:
        """Upload `out/` and drop the remote checkpoint once the trial wrote its result."""
        if self._remote is None:
            return
        fs, path = self._remote
        if (self.dir / OUT).is_dir():
            fs.delete_dir_contents(f"{path}/{OUT}", missing_dir_ok=True)
            fs.create_dir(f"{path}/{OUT}", recursive=True)  # copy_files makes only subfolders
            pafs.copy_files(
                str(self.dir / OUT), f"{path}/{OUT}",
                source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs,
            )  # fmt: skip
        if (self.dir / ATTEMPTS).is_file():
            self._upload(self.dir / ATTEMPTS, ATTEMPTS)
        if not (self.dir / STATE).is_file() and fs.get_file_info(f"{path}/{STATE}").is_file:
            fs.delete_file(f"{path}/{STATE}")

    def _upload(self, local: Path, name: str) -> None:
        fs, path = self._remote
        fs.create_dir(path, recursive=True)
        # Written under a temporary name and moved into place where the filesystem can rename
        # (local, HDFS), so a node lost mid-upload leaves the previous checkpoint readable.
        tmp = f"{path}/.{name}.tmp"
        pafs.copy_files(str(local), tmp, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=fs)  # fmt: skip
        try:
            fs.move(tmp, f"{path}/{name}")
        except (OSError, NotImplementedError, pa.ArrowNotImplementedError):
            pafs.copy_files(str(local), f"{path}/{name}", source_filesystem=pafs.LocalFileSystem(),
                            destination_filesystem=fs)  # fmt: skip
            fs.delete_file(tmp)
