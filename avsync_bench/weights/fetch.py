"""``avsync-bench weights fetch``: get every requested entry, or say precisely what is missing.

Order per entry: already installed → verified and returned; offline (``HF_HUB_OFFLINE=1``)
→ not attempted; otherwise downloaded from its source into ``<name>.incomplete``
(:mod:`avsync_bench.weights.download`), checked against the published checksum, loaded with its
real loader (:mod:`avsync_bench.weights.probes`), pinned and moved into place. An entry whose
hub repository lacks the files falls back to its Google Drive folder. Failures do not stop the
other entries; at the end one :class:`FetchError` names each entry not obtained, with its
source, the reason and the ``weights import`` command. A partial download is kept for resuming,
never used and never pinned.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from avsync_bench.weights.download import (
    DownloadError,
    download_drive_folder,
    download_hub,
    download_url,
    offline,
    resolve_revision,
)
from avsync_bench.weights.probes import find_root
from avsync_bench.weights.registry import REGISTRY, WeightSpec, get_spec
from avsync_bench.weights.store import (
    ResolvedWeight,
    WeightsError,
    WeightStore,
    _write_json_atomic,
    sha256_path,
)

__all__ = ["FetchError", "fetch_all"]


class FetchError(WeightsError):
    """Some entries could not be fetched; ``failures`` maps each name to its reason."""

    def __init__(self, store: WeightStore, failures: dict[str, str], fetched: list[str]):
        lines = [
            f"could not get {len(failures)} weights entr{'y' if len(failures) == 1 else 'ies'}:"
        ]
        for name, reason in failures.items():
            spec = get_spec(name)
            lines.append(f"  - {name} → {store.path(name)}")
            lines.append(f"      source: {_describe(spec)}")
            lines.append(f"      reason: {reason}")
            lines.append(
                f"      import: avsync-bench weights import {name} /path/to/{spec.filename}"
            )
        if fetched:
            lines.append(f"obtained: {', '.join(fetched)}")
        super().__init__("\n".join(lines))
        self.failures = failures
        self.fetched = fetched


def _describe(spec: WeightSpec) -> str:
    if spec.hub is not None:
        hub = spec.hub
        text = f"hub {hub.repo_type} {hub.repo_id}@{hub.revision or 'head (pinned at first fetch)'}"
        text += f" {list(hub.allow_patterns)}"
        if spec.fallback_drive:
            text += f"; else Google Drive {spec.fallback_drive}"
        return text
    return f"{'Google Drive ' if spec.source == 'drive' else ''}{spec.url}"


def _fetch_url(store: WeightStore, spec: WeightSpec, progress: bool) -> ResolvedWeight:
    target = store.path(spec.name)
    partial = target.with_name(target.name + ".incomplete")
    download_url(spec.url, partial, progress=progress)
    digest = sha256_path(partial)
    published = spec.sha256 or spec.sha256_prefix
    if published and not digest.startswith(published):
        partial.unlink()
        raise WeightsError(
            f"{partial.name} from {spec.url}: sha256 {digest} does not match the published "
            f"{published}; the download was deleted, nothing was pinned"
        )
    try:
        return store.install(spec.name, partial)
    except WeightsError:
        partial.unlink(missing_ok=True)  # complete but refused: resuming it cannot help
        raise


def _from_folder(store: WeightStore, spec: WeightSpec, partial: Path, manifest: dict):
    root = find_root(spec.name, partial)
    if root is None:
        raise WeightsError(f"{partial}: the download does not hold the expected {spec.filename}")
    if root != partial:  # the release sits deeper in the downloaded folder
        moved = partial.with_name(partial.name + ".root")
        shutil.rmtree(moved, ignore_errors=True)
        root.rename(moved)
        shutil.rmtree(partial)
        moved.rename(partial)
    if not manifest.get("files"):
        manifest["files"] = {
            file.relative_to(partial).as_posix(): sha256_path(file)
            for file in sorted(partial.rglob("*"))
            if file.is_file()
        }
    return store.install(spec.name, partial, manifest)


def _fetch_hub(store: WeightStore, spec: WeightSpec) -> ResolvedWeight:
    target = store.path(spec.name)
    partial = target.with_name(target.name + ".incomplete")
    hub = spec.hub
    pinned = store._json("revisions.json").get(spec.name)
    revision = hub.revision or pinned or resolve_revision(hub)
    published = download_hub(hub, revision, partial)
    if hub.revision is None and pinned is None:
        revisions = store._json("revisions.json")
        revisions[spec.name] = revision
        _write_json_atomic(store.root / "revisions.json", revisions)
    prefix = f"{hub.subfolder.rstrip('/')}/" if hub.subfolder else ""
    manifest = {
        "source": f"hub {hub.repo_type} {hub.repo_id}",
        "revision": revision,
        "published": True,
        "files": {
            f.path.removeprefix(prefix): f.sha256
            or sha256_path(partial / f.path.removeprefix(prefix))
            for f in published
        },
    }
    return _from_folder(store, spec, partial, manifest)


def _fetch_drive(store: WeightStore, spec: WeightSpec, url: str, progress: bool):
    target = store.path(spec.name)
    partial = target.with_name(target.name + ".incomplete")
    if partial.is_dir() and (partial / ".hub").exists():
        shutil.rmtree(partial)  # a hub attempt's leftovers, not a Drive download
    download_drive_folder(url, partial, progress=progress)
    return _from_folder(store, spec, partial, {"source": f"Google Drive {url}", "published": False})


def fetch_one(store: WeightStore, name: str, progress: bool = True) -> ResolvedWeight:
    """Fetch one entry (see module docstring).

    Raises:
        DownloadError: the source failed. WeightsError: checksum or loader refused the files.
    """
    spec = get_spec(name)
    store.root.mkdir(parents=True, exist_ok=True)
    if spec.source == "url":
        return _fetch_url(store, spec, progress)
    if spec.source == "drive":
        return _fetch_drive(store, spec, spec.url, progress)
    try:
        return _fetch_hub(store, spec)
    except DownloadError as exc:
        if not spec.fallback_drive or "no file matches" not in str(exc):
            raise
        return _fetch_drive(store, spec, spec.fallback_drive, progress)


def fetch_all(
    store: WeightStore, names: list[str] | None = None, progress: bool = True
) -> dict[str, ResolvedWeight]:
    """Fetch ``names`` (default: every registry entry); installed ones are only verified.

    Raises:
        KeyError: an unknown name. FetchError: at least one entry was not obtained (all named,
            with source, reason and import command); the others are installed.
    """
    names = list(dict.fromkeys(names or REGISTRY))
    for name in names:
        get_spec(name)
    done: dict[str, ResolvedWeight] = {}
    failures: dict[str, str] = {}
    for name in names:
        if store.path(name).exists():
            try:
                done[name] = store.resolve(name)
            except WeightsError as exc:
                failures[name] = str(exc)
            continue
        if offline():
            failures[name] = "offline (HF_HUB_OFFLINE is set): not attempted"
            continue
        try:
            done[name] = fetch_one(store, name, progress=progress)
        except (DownloadError, WeightsError, OSError) as exc:
            failures[name] = str(exc).replace("\n", "\n              ")
    if failures:
        raise FetchError(store, failures, list(done))
    return done
