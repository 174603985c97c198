"""The three benchmark datasets in their release layouts (PROTOCOL.md §1, "Layout").

* AVSync15: ``videos/<class_folder>/<file>.mp4``; list lines ``<class_folder>/<file>.mp4``;
  ``class_mapping.json`` maps folder → text. 256x256 clips.
* Landscapes: ``videos/{train,test}/<class_folder>/<file>.mp4``; list lines relative to the split
  folder; ``class_mapping.json``. 256x256 clips.
* TheGreatestHits: flat ``videos/<name>.mp4`` with bare names in the lists; the class is fixed to
  "hitting with a stick". 128x256 (h x w) clips.

The data root defaults to ``datasets/<Name>`` under the working directory, else
``$AVSYNC_BENCH_DATA/<Name>``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from avsync_bench.errors import AVSyncBenchError
from avsync_bench.protocol import ClipSpec, ProtocolMode, ProtocolRules, rules_for

__all__ = ["DatasetError", "DatasetInfo", "TestVideo", "DATASETS", "resolve_root", "load_split"]


class DatasetError(AVSyncBenchError, ValueError):
    """The dataset root, a list file or a listed video is missing or malformed."""


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of one dataset.

    Attributes:
        key: CLI name (``avsync15``, ``landscapes``, ``thegreatesthits``).
        folder: release folder name (``AVSync15`` …).
        spec: clip spec (frame size).
        split_subfolders: videos live under ``videos/<split>/`` (Landscapes).
        fixed_class: the single class text, when the dataset has no class folders.
        test_videos: number of test videos in the full release (clip counts: ×3).
    """

    key: str
    folder: str
    spec: ClipSpec
    split_subfolders: bool = False
    fixed_class: str | None = None
    test_videos: int = 0


DATASETS: dict[str, DatasetInfo] = {
    "avsync15": DatasetInfo("avsync15", "AVSync15", ClipSpec(256, 256), test_videos=150),
    "landscapes": DatasetInfo(
        "landscapes", "Landscapes", ClipSpec(256, 256), split_subfolders=True, test_videos=100
    ),
    "thegreatesthits": DatasetInfo(
        "thegreatesthits",
        "TheGreatestHits",
        ClipSpec(128, 256),
        fixed_class="hitting with a stick",
        test_videos=244,
    ),
}


@dataclass(frozen=True)
class TestVideo:
    """One listed video of a split.

    Attributes:
        rel: the list line (e.g. ``dog_barking/x.mp4``); predictions are named after it.
        path: absolute path of the video file.
        class_folder: raw class string (the folder name, or the fixed class).
        class_text: conditioning text (``class_mapping.json``; the fixed class otherwise).
    """

    rel: str
    path: Path
    class_folder: str
    class_text: str

    @property
    def stem(self) -> str:
        """The list line without ``.mp4`` (official output naming, PROTOCOL.md §1)."""
        return self.rel[: -len(".mp4")] if self.rel.endswith(".mp4") else self.rel

    def clip_name(self, clip_index: int) -> str:
        """Relative path of the generated file for clip ``clip_index``: ``<stem>_clip-NN.mp4``."""
        return f"{self.stem}_clip-{clip_index:02d}.mp4"

    def it_text(self, mode: ProtocolMode | ProtocolRules) -> str:
        """IT's text: the raw class folder string (``official``) or the mapped text (§8), as
        :attr:`ProtocolRules.it_text` says."""
        return self.class_folder if rules_for(mode).it_text == "folder" else self.class_text


def resolve_root(dataset: str, data_root: str | Path | None) -> Path:
    """The dataset root: ``data_root`` if given, else ``datasets/<Name>``, else
    ``$AVSYNC_BENCH_DATA/<Name>`` (default ``$AVSYNC_BENCH_HOME/datasets/<Name>``, where
    ``avsync-bench datasets fetch`` puts it).

    Raises:
        DatasetError: unknown dataset, or no existing root (the message lists the places tried).
    """
    info = _info(dataset)
    if data_root is not None:
        root = Path(data_root)
        if not root.is_dir():
            raise DatasetError(f"data root {root} does not exist")
        return root
    tried = [Path("datasets") / info.folder]
    env = os.environ.get("AVSYNC_BENCH_DATA")
    home = Path(os.environ.get("AVSYNC_BENCH_HOME", Path.home() / ".cache" / "avsync-bench"))
    tried.append((Path(env) if env else home / "datasets") / info.folder)  # `datasets fetch`
    for root in tried:
        if root.is_dir():
            return root
    raise DatasetError(
        f"no {info.folder} dataset found; tried {', '.join(map(str, tried))} "
        f"(pass --data-root, set AVSYNC_BENCH_DATA, or run: avsync-bench datasets fetch {dataset})"
    )


def _info(dataset: str) -> DatasetInfo:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise DatasetError(
            f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}"
        ) from None


def _class_mapping(root: Path) -> dict[str, str]:
    path = root / "class_mapping.json"
    if not path.is_file():
        raise DatasetError(f"{path}: class mapping missing")
    try:
        mapping = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(mapping, dict):
        raise DatasetError(f"{path}: expected an object mapping class folder to text")
    return mapping


def _read_list(list_path: Path) -> list[tuple[int, str]]:
    """The non-blank lines of a list file as (1-based line number, stripped text).

    Raises:
        DatasetError: unreadable file, or a line that is not UTF-8 (names the file, line, column).
    """
    try:
        raw = list_path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{list_path}: cannot read the list ({exc.strerror})") from exc
    out = []
    for number, line in enumerate(raw.splitlines(), 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"{list_path}:{number}: not UTF-8 text (byte 0x{line[exc.start]:02x} at column "
                f"{exc.start + 1}: {line!r}); list files must be UTF-8"
            ) from None
        if text.strip():
            out.append((number, text.strip()))
    return out


def load_split(dataset: str, root: str | Path, split: str = "test") -> list[TestVideo]:
    """List the videos of a split, sorted by list line (the official evaluation order).

    Raises:
        DatasetError: a missing list file, a malformed or duplicated line, a class missing from
            ``class_mapping.json``, or a listed video that does not exist (all missing videos are
            named in one message).
    """
    info = _info(dataset)
    root = Path(root)
    list_path = root / f"{split}.txt"
    if not list_path.is_file():
        raise DatasetError(f"{list_path}: split list missing")
    numbered = _read_list(list_path)
    if not numbered:
        raise DatasetError(f"{list_path}: the list is empty")
    mapping = None if info.fixed_class else _class_mapping(root)
    video_dir = root / "videos" / split if info.split_subfolders else root / "videos"
    videos, missing, seen = [], [], set()
    for number, line in numbered:
        if "," in line:
            raise DatasetError(f"{list_path}:{number}: 'path,start,end' lines are not supported")
        if not line.endswith(".mp4"):
            raise DatasetError(f"{list_path}:{number}: expected a .mp4 path, got {line!r}")
        if line in seen:
            raise DatasetError(f"{list_path}:{number}: {line} is listed twice")
        seen.add(line)
        if info.fixed_class:
            if "/" in line:
                raise DatasetError(f"{list_path}:{number}: expected a bare file name, got {line!r}")
            folder = text = info.fixed_class
        else:
            if line.count("/") != 1:
                raise DatasetError(
                    f"{list_path}:{number}: expected <class>/<file>.mp4, got {line!r}"
                )
            folder = line.split("/")[0]
            if folder not in mapping:
                raise DatasetError(
                    f"{list_path}:{number}: class {folder!r} not in class_mapping.json"
                )
            text = mapping[folder]
        path = video_dir / line
        if not path.is_file():
            missing.append(str(path))
        videos.append(TestVideo(line, path.resolve(), folder, text))
    if missing:
        raise DatasetError(f"{len(missing)} listed video(s) missing: " + ", ".join(missing))
    return sorted(videos, key=lambda v: v.rel)
