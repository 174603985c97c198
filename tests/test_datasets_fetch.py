"""datasets fetch/verify from local fake mirrors built from the AVSync15 gallery (no network)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import GALLERY, need_shared
from test_weights_fetch import FakeHub
from typer.testing import CliRunner

from avsync_bench.cli import app
from avsync_bench.datasets import DatasetError, resolve_root
from avsync_bench.datasets_fetch import MANIFEST, RELEASES, fetch_dataset, verify_release


@pytest.fixture
def gallery(tmp_path) -> Path:
    need_shared(GALLERY)
    copy = tmp_path / "gallery" / "AVSync15"
    shutil.copytree(GALLERY, copy)
    return copy


def _fake_drive(monkeypatch, release: Path, mutate=None):
    """gdown.download_folder writing ``release`` (after ``mutate``) under a nested folder."""
    import gdown

    calls = []

    def download_folder(url=None, output=None, quiet=False, resume=False, skip_download=False):
        calls.append((url, skip_download))
        target = Path(output) / "ASVA release" / "AVSync15"
        shutil.copytree(release, target)
        if mutate:
            mutate(target)
        return [str(p) for p in target.rglob("*") if p.is_file()]

    monkeypatch.setattr(gdown, "download_folder", download_folder)
    return calls


def test_gallery_copy_is_valid_but_partial_and_the_manifest_is_rechecked(gallery):
    report = verify_release("avsync15", gallery)
    assert report.problems == [] and report.counts == {"train": 0, "test": 15}
    assert "test 15/150" in report.partial and "train 0/1350" in report.partial
    assert (gallery / MANIFEST).is_file() and "written (18 files)" in report.manifest
    again = verify_release("avsync15", gallery)
    assert again.problems == [] and "re-checked" in again.manifest
    video = next((gallery / "videos").rglob("*.mp4"))
    video.write_bytes(video.read_bytes()[:-10] + b"0123456789")
    changed = verify_release("avsync15", gallery, check_media=False)
    assert changed.problems == [f"{video}: sha256 differs from {MANIFEST}"]


def test_verify_cli_reports_partial_and_exit_codes(gallery):
    ok = CliRunner().invoke(app, ["datasets", "verify", "avsync15", "--root", str(gallery)])
    assert ok.exit_code == 0 and "PARTIAL release" in ok.output and "test 15/150" in ok.output
    (gallery / "videos" / "dog_barking" / "stray.mp4").write_bytes(b"x")
    bad = CliRunner().invoke(app, ["datasets", "verify", "avsync15", "--root", str(gallery)])
    assert bad.exit_code == 1 and "stray.mp4: extra file" in bad.output


def test_drive_fetch_installs_a_verified_copy_that_score_finds(gallery, tmp_path, monkeypatch):
    monkeypatch.setenv("AVSYNC_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AVSYNC_BENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    calls = _fake_drive(monkeypatch, gallery)
    report = fetch_dataset("avsync15")
    root = tmp_path / "home" / "datasets" / "AVSync15"
    assert calls == [(RELEASES["avsync15"].drive, False)] and report.root == root
    assert (root / MANIFEST).is_file() and not root.with_name("AVSync15.incomplete").exists()
    assert resolve_root("avsync15", None) == root  # `score` without --data-root


def _drop_one(root: Path):
    next((root / "videos" / "hammering").glob("*.mp4")).unlink()


def _extra_class(root: Path):
    (root / "videos" / "whistling").mkdir()
    shutil.copy(next((root / "videos" / "hammering").glob("*.mp4")), root / "videos" / "whistling")


def _corrupt(root: Path):
    video = next((root / "videos" / "frog_croaking").glob("*.mp4"))
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(4000))


@pytest.mark.parametrize(
    "mutate, named",
    [
        (_drop_one, r"hammering/gallery_hammering\.mp4: listed but missing"),
        (_extra_class, r"class 'whistling': extra class folder"),
        (_corrupt, r"frog_croaking/gallery_frog_croaking\.mp4: undecodable"),
    ],
)
def test_drive_fetch_refuses_a_broken_release_by_name(
    gallery, tmp_path, monkeypatch, mutate, named
):
    _fake_drive(monkeypatch, gallery, mutate)
    root = tmp_path / "data" / "AVSync15"
    with pytest.raises(DatasetError, match=named):
        fetch_dataset("avsync15", root)
    assert not root.exists()  # the download stays in AVSync15.incomplete, never used


@pytest.mark.parametrize("differ", [False, True], ids=["same-lists", "differing-list"])
def test_hub_mirror_is_checked_against_the_official_lists(gallery, tmp_path, monkeypatch, differ):
    import gdown

    def mirror(root: Path):
        shutil.copytree(gallery, root)
        if not differ:
            return
        lines = (root / "test.txt").read_text().splitlines()
        renamed = "dog_barking/renamed.mp4"
        (root / "videos" / lines[3]).rename(root / "videos" / renamed)
        (root / "test.txt").write_text("\n".join(lines[:3] + [renamed] + lines[4:]) + "\n")

    hub = FakeHub(monkeypatch, mirror, prefix="AVSync15")
    hub.tmp = tmp_path / "remote"
    official = {
        "AVSync15/train.txt": gallery / "train.txt",
        "AVSync15/test.txt": gallery / "test.txt",
    }
    listed = []

    def download_folder(url=None, output=None, quiet=False, resume=False, skip_download=False):
        listed.append((url, skip_download))
        return [SimpleNamespace(id=name, path=f"ASVA/{name}", local_path=None) for name in official]

    monkeypatch.setattr(gdown, "download_folder", download_folder)
    monkeypatch.setattr(
        gdown, "download", lambda id, output, quiet: shutil.copy(official[id], output)
    )
    root = tmp_path / "data" / "AVSync15"
    if not differ:
        report = fetch_dataset("avsync15", root, source="hub")
        assert report.problems == [] and (root / MANIFEST).is_file()
        assert (root.parent / ".AVSync15.revision").read_text() == hub.head  # pinned at first fetch
        return
    with pytest.raises(DatasetError) as info:
        fetch_dataset("avsync15", root, source="hub")
    text = str(info.value)
    assert "test.txt: 1 entries not in the official list: dog_barking/renamed.mp4" in text
    original = gallery.joinpath("test.txt").read_text().splitlines()[3]
    assert f"test.txt: 1 official entries absent: {original}" in text
    assert listed == [(RELEASES["avsync15"].drive, True)] and not root.exists()
    (snapshot,) = [c for c in hub.calls if c[0] == "snapshot_download"]
    assert snapshot[1:3] == ("RyanWW/KeyVID_data", "dataset") and snapshot[3] == hub.head
    assert snapshot[4] == ["AVSync15/train.txt", "AVSync15/test.txt", "AVSync15/class_mapping.json",
                           "AVSync15/videos/*"]  # fmt: skip


def test_offline_fetch_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(
        app, ["datasets", "fetch", "avsync15", "--root", str(tmp_path / "AVSync15")]
    )
    assert result.exit_code == 1 and "offline" in result.output
    assert (
        RELEASES["avsync15"].drive in result.output and "datasets verify avsync15" in result.output
    )
