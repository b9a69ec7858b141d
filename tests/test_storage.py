"""Trial state on shared storage given as a pyarrow URI (`benchmark.storage`), without Ray.

`file://` URIs go through exactly the pyarrow code path of `s3://` or `gs://` (a
`pyarrow.fs.FileSystem` from the URI, `copy_files` between it and the worker's scratch folder).
"""

from __future__ import annotations

import json

import pytest

from benchmark.storage import StorageError, TrialState, join, resolve_root


def test_uri_state_round_trip(tmp_path):
    root = (tmp_path / "shared").as_uri()
    remote = tmp_path / "shared" / "abc123"
    with TrialState(root, "abc123") as state:  # first attempt, on one node
        scratch = state.dir
        assert scratch != remote and not remote.exists()
        (state.dir / "attempts.jsonl").write_text('{"start_step": 0}\n')
        (state.dir / "state.pt").write_bytes(b"step 100")
        state.push()
        assert (remote / "state.pt").read_bytes() == b"step 100"
        assert not list(remote.glob(".*.tmp"))  # uploaded under a temporary name, then moved
    assert not scratch.exists()  # the node was "lost": its scratch copy is gone

    with TrialState(root, "abc123") as state:  # the retry, elsewhere: pulls the checkpoint
        assert (state.dir / "state.pt").read_bytes() == b"step 100"
        with open(state.dir / "attempts.jsonl", "a") as f:
            f.write('{"start_step": 100}\n')
        (state.dir / "state.pt").unlink()  # the trial finished: run_trial drops its checkpoint
        (state.dir / "out" / "images").mkdir(parents=True)
        (state.dir / "out" / "result.json").write_text(json.dumps({"status": "finished"}))
        (state.dir / "out" / "images" / "a.png").write_bytes(b"png")
        state.finish()
    assert json.loads((remote / "out" / "result.json").read_text())["status"] == "finished"
    assert (remote / "out" / "images" / "a.png").read_bytes() == b"png"
    assert not (remote / "state.pt").exists()
    assert (remote / "attempts.jsonl").read_text().count("start_step") == 2


def test_path_root_is_used_in_place(tmp_path):
    root = resolve_root(tmp_path / "shared")
    with TrialState(root, "abc") as state:
        assert state.dir == tmp_path / "shared" / "abc" and state.dir.is_dir()
        (state.dir / "state.pt").write_bytes(b"x")
        state.push()
        state.finish()
    assert (tmp_path / "shared" / "abc" / "state.pt").read_bytes() == b"x"  # not removed
    assert join("s3://b/p/", "e", "trials") == "s3://b/p/e/trials"


def test_unknown_scheme_is_one_line_error():
    with pytest.raises(StorageError, match=r"--storage-path nope://x: pyarrow cannot open it"):
        resolve_root("nope://x")
