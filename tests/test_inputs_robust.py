"""Folders and lists (issue 15 §5): symlinked class folders are followed, loops refused, and a
non-UTF-8 list line is named by file and line."""

from __future__ import annotations

import os
import shutil

import pytest

from avsync_bench.datasets import DatasetError, load_split
from avsync_bench.predictions import PredictionError, check_predictions
from avsync_bench.protocol import ClipSpec
from baselines.runner import run_adapter
from baselines.static import StaticAdapter

SPEC = ClipSpec()


@pytest.fixture(scope="module")
def static_preds(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("preds")
    assert len(run_adapter(StaticAdapter(), out, data_root=tiny_dataset).written) == 6
    return out


def test_class_folder_symlink_is_followed(tiny_dataset, static_preds, tmp_path):
    preds = tmp_path / "preds"
    shutil.copytree(static_preds, preds)
    elsewhere = tmp_path / "storage" / "hammering_clips"
    elsewhere.parent.mkdir()
    shutil.move(preds / "hammering", elsewhere)
    os.symlink(elsewhere, preds / "hammering", target_is_directory=True)
    report = check_predictions(preds, load_split("avsync15", tiny_dataset), SPEC)
    assert report.problems == [] and report.complete
    assert report.found["hammering/b_clip-01.mp4"].resolve().parent == elsewhere.resolve()


def test_symlink_loop_is_refused(tiny_dataset, static_preds, tmp_path):
    preds = tmp_path / "preds"
    shutil.copytree(static_preds, preds)
    os.symlink(preds, preds / "hammering" / "again", target_is_directory=True)
    with pytest.raises(PredictionError, match=r"hammering/again: directory symlink loop"):
        check_predictions(preds, load_split("avsync15", tiny_dataset), SPEC)


def test_non_utf8_list_line_names_file_and_line(tiny_dataset, tmp_path):
    root = tmp_path / "AVSync15"
    shutil.copytree(tiny_dataset, root)
    (root / "test.txt").write_bytes(b"dog_barking/a.mp4\n\nhammering/b\xe9.mp4\n")
    with pytest.raises(DatasetError) as info:
        load_split("avsync15", root)
    message = str(info.value)
    assert f"{root / 'test.txt'}:3:" in message and "0xe9" in message and "UTF-8" in message
