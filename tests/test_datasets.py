"""Dataset layouts and their errors."""

from __future__ import annotations

import json

import pytest
from conftest import GALLERY, need_shared, write_test_video

from avsync_bench.datasets import DatasetError, load_split, resolve_root
from avsync_bench.protocol import ProtocolMode


def test_gallery_in_avsync15_layout():
    need_shared(GALLERY)
    videos = load_split("avsync15", GALLERY)
    assert len(videos) == 15 and len({v.class_folder for v in videos}) == 15
    violin = next(v for v in videos if v.class_folder.startswith("playing_violin"))
    assert violin.it_text(ProtocolMode.official) == violin.class_folder
    assert violin.it_text(ProtocolMode.corrected) == violin.class_text != violin.class_folder
    assert videos[0].clip_name(2) == f"{videos[0].stem}_clip-02.mp4"


def test_landscapes_split_subfolders_and_greatest_hits_flat(tmp_path):
    land = tmp_path / "Landscapes"
    write_test_video(land / "videos/test/fire_crackling/x.mp4", 10, 2.2, audio=True)
    (land / "test.txt").write_text("fire_crackling/x.mp4\n")
    (land / "class_mapping.json").write_text(json.dumps({"fire_crackling": "fire crackling"}))
    (video,) = load_split("landscapes", land)
    assert video.path == (land / "videos/test/fire_crackling/x.mp4").resolve()
    hits = tmp_path / "TheGreatestHits"
    write_test_video(hits / "videos/0001_denoised_thumb.mp4", 10, 2.2)
    (hits / "test.txt").write_text("0001_denoised_thumb.mp4\n")
    (video,) = load_split("thegreatesthits", hits)
    assert video.class_text == video.class_folder == "hitting with a stick"
    assert video.clip_name(0) == "0001_denoised_thumb_clip-00.mp4"


def test_errors_name_what_is_missing(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="does not exist"):
        resolve_root("avsync15", tmp_path / "nowhere")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVSYNC_BENCH_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetError, match="datasets/AVSync15"):
        resolve_root("avsync15", None)
    (tmp_path / "env/AVSync15").mkdir(parents=True)
    assert resolve_root("avsync15", None) == tmp_path / "env/AVSync15"
    root = tmp_path / "env/AVSync15"
    with pytest.raises(DatasetError, match="test.txt: split list missing"):
        load_split("avsync15", root)
    (root / "test.txt").write_text("dog/a.mp4\ndog/b.mp4\n")
    with pytest.raises(DatasetError, match="class_mapping.json"):
        load_split("avsync15", root)
    (root / "class_mapping.json").write_text(json.dumps({"dog": "dog"}))
    with pytest.raises(DatasetError, match=r"2 listed video\(s\) missing: .*dog/a.mp4.*dog/b.mp4"):
        load_split("avsync15", root)
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_split("kinetics", root)
