"""Downloads from the three kinds of source, always into ``<target>.incomplete`` first.

* Direct URLs: ``huggingface_hub``'s ``http_get`` (HTTP ``Range`` resume of an existing
  ``.incomplete`` file, retries after a dropped connection, size check), shown with a rich
  progress bar (size, speed, time left).
* Hub repositories: ``HfApi.list_repo_tree(expand=True)`` at the pinned commit gives every file's
  published sha256 (LFS) or git blob id (small files); ``snapshot_download`` with the registry's
  ``allow_patterns`` fetches them; each file is then checked against what the Hub published.
* Google Drive folders: ``gdown.download_folder`` (``resume=True``).

Nothing here installs or pins: :class:`avsync_bench.weights.store.WeightStore` moves a finished,
verified ``.incomplete`` into place (``os.replace``) and records its checksum.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from avsync_bench.errors import AVSyncBenchError
from avsync_bench.weights.registry import HubSource

__all__ = [
    "DownloadError",
    "HubFile",
    "offline",
    "download_url",
    "hub_published_files",
    "download_hub",
    "download_drive_folder",
    "git_blob_sha1",
]


class DownloadError(AVSyncBenchError, OSError):
    """A download failed (network, HTTP status, or the source lacks the files)."""


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``AVSYNC_BENCH_OFFLINE``) is set to a true value."""
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
        for var in ("HF_HUB_OFFLINE", "AVSYNC_BENCH_OFFLINE")
    )


def _rich_tqdm():
    from tqdm.rich import tqdm_rich

    class RichBar(tqdm_rich):
        """tqdm's rich bar (bytes, speed, time left) without its 'experimental' warning."""

        def __init__(self, *args, **kwargs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                super().__init__(*args, **kwargs)

    return RichBar


def download_url(url: str, partial: Path, progress: bool = True) -> Path:
    """Download ``url`` into ``partial``, resuming from its current size.

    Args:
        url: the file's URL.
        partial: the ``.incomplete`` file; kept on failure so a later call resumes.
        progress: draw a rich progress bar on stderr.

    Raises:
        DownloadError: HTTP error or connection failure after the downloader's retries.
    """
    from huggingface_hub.file_download import http_get

    partial.parent.mkdir(parents=True, exist_ok=True)
    resume = partial.stat().st_size if partial.is_file() else 0
    try:
        with open(partial, "ab") as handle:
            http_get(
                url,
                handle,
                resume_size=resume,
                displayed_filename=partial.name.removesuffix(".incomplete"),
                tqdm_class=_rich_tqdm() if progress else None,
            )
    except Exception as exc:  # httpx errors, HfHubHTTPError, OSError (size mismatch)
        if partial.stat().st_size == 0:
            partial.unlink()  # nothing to resume from
        raise DownloadError(f"{url}: {type(exc).__name__}: {exc}") from exc
    return partial


@dataclass(frozen=True)
class HubFile:
    """One repository file as the Hub publishes it at a commit."""

    path: str
    size: int
    sha256: str | None  # LFS files
    blob_id: str  # git blob sha1 (all files)


def git_blob_sha1(path: Path) -> str:
    """The git blob id of a file: sha1 of ``b"blob <size>\\0"`` + content."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_revision(source: HubSource) -> str:
    """The commit to download: the pinned one, else the branch head's commit sha."""
    if source.revision:
        return source.revision
    from huggingface_hub import HfApi

    try:
        return HfApi().repo_info(source.repo_id, repo_type=source.repo_type).sha
    except Exception as exc:  # httpx errors, HfHubHTTPError, offline mode
        raise DownloadError(
            f"{source.repo_type} {source.repo_id}: {type(exc).__name__}: {exc}"
        ) from exc


def hub_published_files(source: HubSource, revision: str) -> list[HubFile]:
    """Every file matching ``source.allow_patterns`` at ``revision``, with its published hashes.

    Raises:
        DownloadError: no file matches (the repository lacks them).
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import EntryNotFoundError

    where = f"{source.repo_type} {source.repo_id}@{revision}"
    try:
        tree = list(
            HfApi().list_repo_tree(
                source.repo_id,
                path_in_repo=source.subfolder or None,
                recursive=True,
                expand=True,
                revision=revision,
                repo_type=source.repo_type,
            )
        )
    except EntryNotFoundError as exc:
        raise DownloadError(f"{where}: no file matches {list(source.allow_patterns)}") from exc
    except Exception as exc:  # httpx errors, HfHubHTTPError, offline mode
        raise DownloadError(f"{where}: {type(exc).__name__}: {exc}") from exc
    files = []
    for entry in tree:
        if not hasattr(entry, "blob_id") or not any(
            fnmatch.fnmatch(entry.path, pattern) for pattern in source.allow_patterns
        ):
            continue
        lfs = getattr(entry, "lfs", None)
        sha256 = lfs.sha256 if lfs is not None else None
        files.append(HubFile(entry.path, entry.size, sha256, entry.blob_id))
    if not files:
        raise DownloadError(f"{where}: no file matches {list(source.allow_patterns)}")
    return sorted(files, key=lambda f: f.path)


def download_hub(source: HubSource, revision: str, partial: Path) -> list[HubFile]:
    """Download the files of ``source`` at ``revision`` into the folder ``partial`` and check
    each against the Hub's published sha256 (LFS) or blob id; ``source.subfolder`` becomes the
    folder's root.

    Returns:
        The published files (paths relative to the repository).

    Raises:
        DownloadError: the download fails, or a file is absent or differs from the published
            hash (the message names the file; the folder is kept for a resumed download).
    """
    from huggingface_hub import snapshot_download

    published = hub_published_files(source, revision)
    staging = partial / ".hub"
    try:
        snapshot_download(
            source.repo_id,
            repo_type=source.repo_type,
            revision=revision,
            allow_patterns=list(source.allow_patterns),
            local_dir=str(staging),
        )
    except Exception as exc:
        raise DownloadError(
            f"{source.repo_type} {source.repo_id}@{revision}: {type(exc).__name__}: {exc}"
        ) from exc
    bad: dict[str, str] = {}
    for item in published:
        file = staging / item.path
        if not file.is_file():
            bad[item.path] = "not downloaded"
        elif item.sha256 is not None:
            from avsync_bench.weights.store import sha256_path

            digest = sha256_path(file)
            if digest != item.sha256:
                bad[item.path] = f"sha256 {digest} != published LFS sha256 {item.sha256}"
        elif git_blob_sha1(file) != item.blob_id:
            bad[item.path] = f"git blob id differs from the published {item.blob_id}"
    if bad:
        for path in bad:
            (staging / path).unlink(missing_ok=True)
        raise DownloadError(
            f"{source.repo_id}@{revision}: {len(bad)} file(s) refused:\n  "
            + "\n  ".join(f"{path}: {why}" for path, why in bad.items())
        )
    prefix = f"{source.subfolder.rstrip('/')}/" if source.subfolder else ""
    for item in published:
        dest = partial / item.path.removeprefix(prefix)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / item.path, dest)
    shutil.rmtree(staging, ignore_errors=True)
    return published


def download_drive_folder(url: str, partial: Path, progress: bool = True) -> Path:
    """Download a public Google Drive folder into ``partial`` with gdown (resumable).

    Raises:
        DownloadError: gdown fails or returns no file.
    """
    import gdown

    partial.mkdir(parents=True, exist_ok=True)
    try:
        files = gdown.download_folder(url=url, output=str(partial), quiet=not progress, resume=True)
    except Exception as exc:
        if not any(partial.iterdir()):
            partial.rmdir()  # nothing to resume from
        raise DownloadError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if not files:
        raise DownloadError(f"{url}: gdown returned no file")
    return partial
