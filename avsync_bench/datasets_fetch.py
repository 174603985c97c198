"""``avsync-bench datasets fetch | verify``: the benchmark datasets in their release layout.

Sources (``--source``):

* ``drive`` (default): the official ASVA release folder on Google Drive (lists, class mapping
  and AVSync15 videos; PROTOCOL.md §5), downloaded with gdown.
* ``hub``: a Hugging Face dataset mirror (AVSync15: ``RyanWW/KeyVID_data``, folder
  ``AVSync15/``), pinned to the commit of the first download and checked file by file against
  the Hub's published sha256. Its lists must equal the official ones (read from the Drive
  folder without downloading the videos); a mirror that differs is refused, naming the entries.

Everything lands in ``<root>.incomplete`` first and is moved to ``<root>`` only after
:func:`verify_release` passes: the lists parse, every listed file is present, no class folder is
extra or missing, every video has a video and an audio stream and decodes, and
``MANIFEST.sha256`` (``sha256sum`` format, every list and video) is written. ``datasets verify``
runs the same checks on any copy and re-checks the manifest. A copy with fewer videos than the
full release (e.g. a gallery subset) is valid but reported as partial, with its counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from avsync_bench.datasets import DATASETS, DatasetError
from avsync_bench.weights.registry import HubSource

__all__ = ["DatasetRelease", "RELEASES", "VerifyReport", "default_data_root", "fetch_dataset",
           "verify_release"]  # fmt: skip

ASVA_DRIVE = "https://drive.google.com/drive/folders/1rGPBiswIVBgZj5BUViGRWePxEEdq21p6"
MANIFEST = "MANIFEST.sha256"


@dataclass(frozen=True)
class DatasetRelease:
    """Where a dataset comes from and what the full release holds.

    Attributes:
        key: CLI name. drive: official Google Drive folder. hub: a Hub mirror (or None).
        classes: number of class folders (None: flat layout). train, test: listed videos.
        videos_note: where the videos come from when the Drive folder holds only the lists.
    """

    key: str
    drive: str
    hub: HubSource | None
    classes: int | None
    train: int
    test: int
    videos_note: str = ""


RELEASES: dict[str, DatasetRelease] = {
    "avsync15": DatasetRelease(
        "avsync15",
        ASVA_DRIVE,
        HubSource(
            repo_id="RyanWW/KeyVID_data",
            repo_type="dataset",
            revision=None,  # unconfirmed: the head is pinned at first download
            allow_patterns=(
                "AVSync15/train.txt",
                "AVSync15/test.txt",
                "AVSync15/class_mapping.json",
                "AVSync15/videos/*",
            ),
            subfolder="AVSync15",
        ),
        classes=15,
        train=1350,
        test=150,
    ),
    "landscapes": DatasetRelease(
        "landscapes",
        ASVA_DRIVE,
        None,
        classes=9,
        train=900,
        test=100,
        videos_note="videos: the Landscapes release of MM-Diffusion (researchmm/MM-Diffusion)",
    ),  # fmt: skip
    "thegreatesthits": DatasetRelease(
        "thegreatesthits",
        ASVA_DRIVE,
        None,
        classes=None,
        train=733,
        test=244,
        videos_note="videos: the Greatest Hits dataset (andrewowens.com/vis), *_denoised_thumb.mp4",
    ),  # fmt: skip
}


def default_data_root(dataset: str) -> Path:
    """``$AVSYNC_BENCH_DATA/<Name>``, else ``$AVSYNC_BENCH_HOME/datasets/<Name>``."""
    from avsync_bench.weights.store import default_home

    base = os.environ.get("AVSYNC_BENCH_DATA")
    return (Path(base) if base else default_home() / "datasets") / DATASETS[dataset].folder


@dataclass
class VerifyReport:
    """Outcome of :func:`verify_release`: ``problems`` empty means valid."""

    root: Path
    counts: dict[str, int] = field(default_factory=dict)
    classes: int = 0
    problems: list[str] = field(default_factory=list)
    partial: str | None = None
    manifest: str = ""

    def summary(self) -> str:
        counts = ", ".join(f"{split} {n}" for split, n in self.counts.items())
        text = f"{self.root}: {counts} videos, {self.classes} classes; {self.manifest}"
        if self.partial:
            text += f"\nPARTIAL release: {self.partial}"
        return text


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _media_problem(path: Path) -> str | None:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream"
            if not container.streams.audio:
                return "no audio stream"
            for stream in (container.streams.video[0], container.streams.audio[0]):
                container.seek(0)
                next(container.decode(stream))
    except (av.error.FFmpegError, OSError, ValueError, StopIteration) as exc:
        return f"undecodable ({type(exc).__name__}: {exc})"
    return None


def _read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _split_dir(root: Path, dataset: str, split: str) -> Path:
    return root / "videos" / split if DATASETS[dataset].split_subfolders else root / "videos"


def _differences(name: str, ours: list[str], official: list[str]) -> list[str]:
    extra, missing = sorted(set(ours) - set(official)), sorted(set(official) - set(ours))
    out = []
    if extra:
        out.append(
            f"{name}: {len(extra)} entries not in the official list: {', '.join(extra[:10])}"
        )
    if missing:
        out.append(f"{name}: {len(missing)} official entries absent: {', '.join(missing[:10])}")
    return out


def verify_release(
    dataset: str, root: str | Path, official: dict[str, list[str]] | None = None, check_media=True
) -> VerifyReport:
    """Check a dataset copy against its lists (and the official lists when given).

    Args:
        dataset: ``avsync15`` | ``landscapes`` | ``thegreatesthits``.
        root: the release folder (``train.txt``, ``test.txt``, ``videos/``…).
        official: the official lists (``{"train": [...], "test": [...]}``); entries that differ
            are problems.
        check_media: probe every video for a video and an audio stream that decode.

    Returns:
        A report; ``problems`` names every missing, extra or undecodable file, extra or missing
        class, list difference and manifest mismatch. ``MANIFEST.sha256`` is written when absent
        and the rest is valid, else re-checked.

    Raises:
        DatasetError: unknown dataset or root that is not a folder.
    """
    if dataset not in RELEASES:
        raise DatasetError(f"unknown dataset {dataset!r}; choose one of {sorted(RELEASES)}")
    release, info, root = RELEASES[dataset], DATASETS[dataset], Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    report = VerifyReport(root)
    problems = report.problems
    listed: dict[str, list[str]] = {}
    for split in ("train", "test"):
        path = root / f"{split}.txt"
        if not path.is_file():
            problems.append(f"{path}: list missing")
            continue
        listed[split] = _read_list(path)
        report.counts[split] = len(listed[split])
        if official and split in official:
            problems += _differences(f"{split}.txt", listed[split], official[split])
    mapping: dict = {}
    if info.fixed_class is None:
        try:
            mapping = json.loads((root / "class_mapping.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{root / 'class_mapping.json'}: unreadable ({exc})")
    expected_files: set[Path] = set()
    list_classes: set[str] = set()
    for split, lines in listed.items():
        for line in lines:
            expected_files.add(_split_dir(root, dataset, split) / line)
            if info.fixed_class is None:
                list_classes.add(line.split("/")[0])
    for file in sorted(expected_files):
        if not file.is_file():
            problems.append(f"{file}: listed but missing")
    on_disk = (
        {p for p in (root / "videos").rglob("*") if p.is_file()}
        if (root / "videos").is_dir()
        else set()
    )
    for file in sorted(on_disk - expected_files):
        problems.append(f"{file}: extra file, in no list")
    if info.fixed_class is None:
        folders = {p.parent.name for p in on_disk}
        for cls in sorted(folders - list_classes):
            problems.append(f"class {cls!r}: extra class folder (in no list)")
        for cls in sorted(set(mapping) - list_classes - folders):
            problems.append(f"class {cls!r}: in class_mapping.json but has no listed video")
        for cls in sorted(list_classes - set(mapping)):
            problems.append(f"class {cls!r}: listed but missing from class_mapping.json")
        report.classes = len(list_classes | folders)
        if release.classes is not None and report.classes != release.classes and not problems:
            missing = release.classes - report.classes
            report.partial = f"{report.classes}/{release.classes} classes ({missing} missing)"
    if check_media:
        for file in sorted(f for f in expected_files if f.is_file()):
            problem = _media_problem(file)
            if problem:
                problems.append(f"{file}: {problem}")
    full = {"train": release.train, "test": release.test}
    short = [f"{split} {report.counts.get(split, 0)}/{n}" for split, n in full.items()
             if report.counts.get(split, 0) != n]  # fmt: skip
    if short:
        note = "listed videos " + ", ".join(short) + " of the full release"
        report.partial = f"{report.partial}; {note}" if report.partial else note
    _manifest(root, sorted(expected_files & on_disk), report)
    return report


def _manifest(root: Path, videos: list[Path], report: VerifyReport) -> None:
    path = root / MANIFEST
    files = [
        root / n for n in ("train.txt", "test.txt", "class_mapping.json") if (root / n).is_file()
    ]
    files += videos
    if path.is_file():
        recorded = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            digest, _, rel = line.partition("  ")
            recorded[rel] = digest
        current = {f.relative_to(root).as_posix() for f in files}
        for rel in sorted(set(recorded) - current):
            report.problems.append(f"{root / rel}: in {MANIFEST} but missing")
        for file in files:
            rel = file.relative_to(root).as_posix()
            if rel not in recorded:
                report.problems.append(f"{file}: not in {MANIFEST}")
            elif _sha256(file) != recorded[rel]:
                report.problems.append(f"{file}: sha256 differs from {MANIFEST}")
        report.manifest = f"{MANIFEST} re-checked ({len(recorded)} files)"
    elif not report.problems:
        lines = [f"{_sha256(f)}  {f.relative_to(root).as_posix()}" for f in files]
        try:
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            report.manifest = f"{MANIFEST} written ({len(lines)} files)"
        except OSError as exc:  # a read-only copy is still checked, just not recorded
            report.manifest = f"{MANIFEST} not written ({exc.strerror}: {path})"
    else:
        report.manifest = f"{MANIFEST} not written (problems found)"


def _find_release(dataset: str, folder: Path) -> Path:
    name = DATASETS[dataset].folder
    candidates = [p.parent for p in folder.rglob("test.txt")]
    named = [c for c in candidates if c.name == name]
    found = named or ([folder] if folder in candidates else []) or candidates[:1]
    if not found:
        raise DatasetError(f"{folder}: the download holds no {name} release (no test.txt)")
    return found[0]


def official_lists(dataset: str) -> dict[str, list[str]]:
    """The official train/test lists, read from the Drive folder without the videos.

    Raises:
        DatasetError: the folder cannot be listed or lacks the dataset's lists.
    """
    import tempfile

    import gdown

    name, release = DATASETS[dataset].folder, RELEASES[dataset]
    try:
        entries = gdown.download_folder(url=release.drive, skip_download=True, quiet=True)
    except Exception as exc:
        raise DatasetError(
            f"cannot read the official lists from {release.drive} ({exc}); a mirror is accepted "
            "only after its lists are compared with them"
        ) from exc
    lists = {}
    with tempfile.TemporaryDirectory() as tmp:
        for entry in entries or []:
            parts = Path(entry.path).parts
            if len(parts) >= 2 and parts[-2] == name and parts[-1] in ("train.txt", "test.txt"):
                out = Path(tmp) / parts[-1]
                gdown.download(id=entry.id, output=str(out), quiet=True)
                lists[parts[-1].removesuffix(".txt")] = _read_list(out)
    if set(lists) != {"train", "test"}:
        raise DatasetError(f"{release.drive}: no {name}/train.txt and test.txt found")
    return lists


def fetch_dataset(
    dataset: str, root: str | Path | None = None, source: str = "drive"
) -> VerifyReport:
    """Download ``dataset`` into ``root`` (default :func:`default_data_root`) and verify it.

    Raises:
        DatasetError: offline, the source fails or lacks the dataset, or verification finds
            problems (all named; the download stays in ``<root>.incomplete``, never used).
    """
    from avsync_bench.weights.download import DownloadError, download_hub, offline

    if dataset not in RELEASES:
        raise DatasetError(f"unknown dataset {dataset!r}; choose one of {sorted(RELEASES)}")
    release = RELEASES[dataset]
    root = Path(root) if root is not None else default_data_root(dataset)
    if root.is_dir():
        report = verify_release(dataset, root)
        if report.problems:
            raise DatasetError(_problem_text(report, "the existing copy"))
        report.manifest = f"already present; {report.manifest}"
        return report
    if source not in ("drive", "hub"):
        raise DatasetError(f"--source must be drive or hub, not {source!r}")
    where = release.drive if source == "drive" else release.hub and release.hub.repo_id
    if source == "hub" and release.hub is None:
        raise DatasetError(f"{dataset}: no Hub mirror is known; use --source drive")
    if offline():
        raise DatasetError(
            f"offline (HF_HUB_OFFLINE is set): cannot fetch {dataset} from {where}; download it "
            f"elsewhere, copy it to {root}, then run: avsync-bench datasets verify {dataset} --root {root}"
        )
    partial = root.with_name(root.name + ".incomplete")
    official = None
    try:
        if source == "drive":
            from avsync_bench.weights.download import download_drive_folder

            download_drive_folder(release.drive, partial)
            found = _find_release(dataset, partial)
        else:
            official = official_lists(dataset)
            state = partial.parent / f".{root.name}.revision"
            from avsync_bench.weights.download import resolve_revision

            revision = (
                state.read_text().strip() if state.is_file() else resolve_revision(release.hub)
            )
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(revision)
            download_hub(release.hub, revision, partial)
            found = partial
    except DownloadError as exc:
        raise DatasetError(f"cannot fetch {dataset} from {where}: {exc}") from exc
    report = verify_release(dataset, found, official)
    if report.problems:
        note = f"\n({release.videos_note})" if release.videos_note else ""
        raise DatasetError(_problem_text(report, f"the download from {where}") + note)
    root.parent.mkdir(parents=True, exist_ok=True)
    os.replace(found, root)
    if found != partial:
        shutil.rmtree(partial, ignore_errors=True)
    report.root = root
    return report


def _problem_text(report: VerifyReport, what: str) -> str:
    shown = report.problems[:50]
    more = len(report.problems) - len(shown)
    return (
        f"{what} at {report.root} is refused ({len(report.problems)} problem(s)):\n  "
        + "\n  ".join(shown)
        + (f"\n  … and {more} more" if more else "")
    )
