"""avsync_bench.io.atomic: the one atomic-write helper (a crash never leaves a half-written file)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avsync_bench.io.atomic import atomic_open, atomic_path, atomic_write_json, atomic_write_text


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "results.json"
    atomic_write_json(target, {"fid": 1.5}, indent=2)
    assert target.read_text() == '{\n  "fid": 1.5\n}\n'
    with pytest.raises(RuntimeError), atomic_open(target, "w") as handle:
        handle.write('{"fid": ')
        raise RuntimeError("killed half-way")
    assert json.loads(target.read_text()) == {"fid": 1.5}
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.json"]


def test_writers_that_need_a_path_or_an_extension(tmp_path):
    target = tmp_path / "x.npy"
    with atomic_path(target, suffix=".npy") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".x.npy.") and tmp.suffix == ".npy"
        np.save(tmp, np.arange(3))
    assert np.load(target).tolist() == [0, 1, 2]
    assert atomic_write_text(tmp_path / "a.md", "é\n").read_bytes() == "é\n".encode()
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "nan.json", {"v": float("nan")}, allow_nan=False)
    assert not any(p.name.startswith(".nan.json") for p in tmp_path.iterdir())
