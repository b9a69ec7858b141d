"""The one atomic-write helper (`benchmark.atomic`): whole file or the old one, never a part."""

from pathlib import Path

import pytest

from benchmark.atomic import atomic_path, write_bytes_atomic, write_text_atomic


def test_writes_replace_the_file_and_leave_no_temporary_behind(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "table.md"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    write_bytes_atomic(tmp_path / "w.pt", b"\x00\x01")
    assert (tmp_path / "w.pt").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["sub", "table.md", "w.pt"]


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "sweep.json"
    target.write_text("previous")
    with pytest.raises(RuntimeError, match="killed"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.json"]


def test_temporary_names_keep_the_suffix_and_differ_between_writers(tmp_path: Path) -> None:
    target = tmp_path / "figure.png"
    with atomic_path(target) as a, atomic_path(target) as b:
        assert a.suffix == b.suffix == ".png"  # matplotlib picks the format by suffix
        assert a != b and a.parent == b.parent == tmp_path and a.name.startswith(".")
        a.write_text("a")
        b.write_text("b")
    assert target.read_text() == "a"  # the outer writer finished last
