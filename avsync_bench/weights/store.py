"""The local weights folder: resolve, verify, download once, import, and mark stand-ins.

Folder: ``--weights-dir`` if given, else ``$AVSYNC_BENCH_HOME/weights`` (default
``~/.cache/avsync-bench/weights``). Beside the files:

* ``pins.json``: sha256 recorded at first download/import of files without a published checksum;
  later uses must match it.
* ``standins.json``: files written by ``avsync-bench weights make-standins`` (deterministic
  weights for tests and dry runs). A resolved stand-in is marked ``standin`` and skips the
  published checksum; results computed with it carry ``standin: true`` and the leaderboard
  refuses them.
* ``hashes.json``: a cache of file hashes keyed by (path, size, mtime), so a 4.5 GB file is
  hashed once (``weights verify`` re-hashes everything).
* ``manifests.json``: for folders fetched from the Hub or Google Drive, the source, the commit
  and every file's sha256 (the Hub's published LFS sha256 where there is one), so a mismatch
  names the file.

Nothing is installed or pinned before it loads with its real loader
(:mod:`avsync_bench.weights.probes`); downloads go to ``<name>.incomplete`` and are moved into
place only when complete and verified (:mod:`avsync_bench.weights.fetch`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from avsync_bench.errors import AVSyncBenchError
from avsync_bench.io.atomic import atomic_write_json
from avsync_bench.weights.registry import WeightSpec, get_spec

__all__ = [
    "WeightsError",
    "MissingWeightsError",
    "ResolvedWeight",
    "WeightStore",
    "default_home",
    "sha256_path",
]


class WeightsError(AVSyncBenchError, RuntimeError):
    """A weights file fails verification or cannot be fetched/imported."""


class MissingWeightsError(WeightsError):
    """One or more weights files are absent; the message names each file, its URL and the
    import command."""

    def __init__(self, store: WeightStore, names: list[str]):
        lines = [f"missing weights ({len(names)}) in {store.root}:"]
        for name in names:
            spec = get_spec(name)
            lines.append(f"  - {name}: {store.root / spec.filename}")
            lines.append(f"      official URL: {spec.url}")
            if spec.hub is not None:
                lines.append(f"      hub:          {spec.hub.repo_type} {spec.hub.repo_id}")
            lines.append(f"      download:     avsync-bench weights fetch {name}")
            lines.append(
                f"      import:       avsync-bench weights import {name} /path/to/{spec.filename}"
            )
        lines.append(
            "(offline machines: download elsewhere, then import; see `avsync-bench weights list`)"
        )
        super().__init__("\n".join(lines))
        self.names = names


def default_home() -> Path:
    """``$AVSYNC_BENCH_HOME``, default ``~/.cache/avsync-bench``."""
    return Path(os.environ.get("AVSYNC_BENCH_HOME", Path.home() / ".cache" / "avsync-bench"))


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a folder (over its sorted relative paths and file contents)."""
    digest = hashlib.sha256()
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
            digest.update(bytes.fromhex(sha256_path(file)))
        return digest.hexdigest()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_digest(files: dict[str, str]) -> str:
    """:func:`sha256_path` of a folder from its files' sha256s (``relative path → hex``)."""
    digest = hashlib.sha256()
    for rel in sorted(files, key=lambda r: Path(r)):
        digest.update(rel.encode() + b"\0")
        digest.update(bytes.fromhex(files[rel]))
    return digest.hexdigest()


@dataclass(frozen=True)
class ResolvedWeight:
    """A verified local weights file: where it is, its sha256, and whether it is a stand-in."""

    name: str
    path: Path
    sha256: str
    standin: bool
    config: dict | None = None

    def provenance(self) -> dict:
        """JSON-ready record for results files."""
        return {"file": self.path.name, "sha256": self.sha256, "standin": self.standin}


def _write_json_atomic(path: Path, data: dict) -> None:
    atomic_write_json(path, data, newline=False, indent=1, sort_keys=True)


class WeightStore:
    """Access to one weights folder (see module docstring)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_home() / "weights"

    def _json(self, name: str) -> dict:
        path = self.root / name
        return json.loads(path.read_text()) if path.is_file() else {}

    def path(self, name: str) -> Path:
        """Where weights ``name`` live (whether or not present)."""
        return self.root / get_spec(name).filename

    def _file_hash(self, file: Path, hashes: dict, fresh: bool) -> str:
        stat = file.stat()
        key = f"{file.relative_to(self.root).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}"
        if fresh or key not in hashes:
            hashes[key] = sha256_path(file)
        return hashes[key]

    def _hash(self, path: Path, fresh: bool = False) -> str:
        """sha256 as :func:`sha256_path`, with per-file results cached in ``hashes.json``."""
        if not path.is_relative_to(self.root):
            return sha256_path(path)
        hashes = self._json("hashes.json")
        if path.is_dir():
            digest = hashlib.sha256()
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                digest.update(file.relative_to(path).as_posix().encode() + b"\0")
                digest.update(bytes.fromhex(self._file_hash(file, hashes, fresh)))
            value = digest.hexdigest()
        else:
            value = self._file_hash(path, hashes, fresh)
        try:  # a memo only: a read-only weights folder just recomputes next time
            _write_json_atomic(self.root / "hashes.json", hashes)
        except OSError:
            pass
        return value

    def _verify(self, spec: WeightSpec, path: Path, digest: str, pin: bool = True) -> None:
        if spec.sha256 and digest != spec.sha256:
            raise WeightsError(f"{path}: sha256 {digest} != published {spec.sha256}")
        if spec.sha256_prefix and not digest.startswith(spec.sha256_prefix):
            raise WeightsError(
                f"{path}: sha256 {digest[:16]}… does not start with the published {spec.sha256_prefix}"
            )
        pins = self._json("pins.json")
        if spec.name in pins and pins[spec.name] != digest:
            raise WeightsError(
                f"{path}: sha256 {digest} differs from the one pinned at first download/import "
                f"({pins[spec.name]}); to start again: avsync-bench weights remove {spec.name}"
            )
        if pin and spec.name not in pins and not (spec.sha256 or spec.sha256_prefix):
            pins[spec.name] = digest
            _write_json_atomic(self.root / "pins.json", pins)

    def resolve(self, name: str) -> ResolvedWeight:
        """Verify and return weights ``name``.

        Raises:
            MissingWeightsError: absent. WeightsError: checksum mismatch.
        """
        return self.resolve_all([name])[name]

    def resolve_all(self, names: list[str]) -> dict[str, ResolvedWeight]:
        """Resolve several weights at once; every missing one is named in a single error.

        A file registered by ``weights make-standins`` resolves as a stand-in only while its
        sha256 is the one recorded then; a changed stand-in is an error (it is never pinned as
        real weights).

        Raises:
            MissingWeightsError: at least one is absent. WeightsError: a checksum mismatch
                (against the published sha256, the pin, or the recorded stand-in).
        """
        missing = [name for name in dict.fromkeys(names) if not self.path(name).exists()]
        if missing:
            raise MissingWeightsError(self, missing)
        standins = self._json("standins.json")
        resolved = {}
        for name in dict.fromkeys(names):
            spec, path = get_spec(name), self.path(name)
            digest = self._hash(path)
            entry = standins.get(name)
            if entry is None:
                self._verify(spec, path, digest)
                resolved[name] = ResolvedWeight(name, path, digest, False, None)
                continue
            entry = entry if isinstance(entry, dict) else {"sha256": entry}
            if entry["sha256"] != digest:  # never pinned as real weights
                raise WeightsError(
                    f"{path}: sha256 {digest} != the stand-in's {entry['sha256']} written by "
                    f"`avsync-bench weights make-standins`: the file changed since; make the "
                    f"stand-in again, or `avsync-bench weights remove {name}` and fetch or "
                    f"import the real weights"
                )
            resolved[name] = ResolvedWeight(name, path, digest, True, entry.get("config"))
        return resolved

    def fetch(self, name: str, progress: bool = True) -> ResolvedWeight:
        """Download weights ``name`` once from its source (see :mod:`avsync_bench.weights.fetch`).

        Raises:
            FetchError: offline, or the download or its verification failed (the message names
                the file, the source and the ``weights import`` command).
        """
        from avsync_bench.weights.fetch import fetch_all

        return fetch_all(self, [name], progress=progress)[name]

    def install(self, name: str, partial: Path, manifest: dict | None = None) -> ResolvedWeight:
        """Probe, verify, pin and move a complete download ``partial`` into place (atomic).

        Raises:
            WeightsError: it does not load with its real loader, or fails its checksum; the
                partial download is left where it is, never pinned.
        """
        from avsync_bench.weights.probes import ProbeError, probe

        spec = get_spec(name)
        try:
            probe(name, partial)
        except ProbeError as exc:
            raise WeightsError(str(exc)) from exc
        files = (manifest or {}).get("files") or {}
        on_disk = {f.relative_to(partial).as_posix() for f in partial.rglob("*") if f.is_file()}
        known = partial.is_dir() and set(files) == on_disk  # hashes already checked: reuse them
        self._verify(spec, partial, folder_digest(files) if known else sha256_path(partial))
        target = self.path(name)
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(partial, target)
        if known:  # seed the hash cache so resolving does not read every byte again
            hashes = self._json("hashes.json")
            for rel, digest in files.items():
                stat = (target / rel).stat()
                key = f"{(target / rel).relative_to(self.root).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}"
                hashes[key] = digest
            _write_json_atomic(self.root / "hashes.json", hashes)
        manifests = self._json("manifests.json")
        if manifest is not None:
            manifests[name] = manifest
        else:
            manifests.pop(name, None)
        _write_json_atomic(self.root / "manifests.json", manifests)
        standins = self._json("standins.json")
        if standins.pop(name, None) is not None:
            _write_json_atomic(self.root / "standins.json", standins)
        return self.resolve(name)

    def remove(self, name: str) -> list[str]:
        """Delete weights ``name``: the file or folder, any ``.incomplete`` download, its pin,
        manifest and stand-in record. Returns what was removed (empty when nothing was there)."""
        target = self.path(name)
        removed = []
        for path in (target, target.with_name(target.name + ".incomplete")):
            if path.is_dir():
                shutil.rmtree(path)
                removed.append(str(path))
            elif path.exists():
                path.unlink()
                removed.append(str(path))
        for record in ("pins.json", "manifests.json", "standins.json", "revisions.json"):
            data = self._json(record)
            if data.pop(name, None) is not None:
                _write_json_atomic(self.root / record, data)
                removed.append(f"{record} entry")
        return removed

    def import_(self, name: str, source: str | Path) -> ResolvedWeight:
        """Copy a local file (or folder) into the weights folder after verifying it.

        Raises:
            WeightsError: the source is missing, of the wrong kind, or fails verification.
        """
        spec, source = get_spec(name), Path(source)
        if not source.exists():
            raise WeightsError(f"{source}: no such file or folder")
        if spec.folder != source.is_dir():
            kind = "a folder" if spec.folder else "a file"
            raise WeightsError(f"{source}: {name} must be {kind}")
        from avsync_bench.weights.probes import ProbeError, probe

        self._verify(spec, source, sha256_path(source), pin=False)
        try:
            probe(name, source)
        except ProbeError as exc:
            raise WeightsError(f"refused to import {source} as {name}: {exc}") from exc
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.path(name).with_name(self.path(name).name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        if source.is_dir():
            shutil.copytree(source, partial)
        else:
            shutil.copyfile(source, partial)
        return self.install(name, partial)

    def register_standin(self, name: str, config: dict | None = None) -> ResolvedWeight:
        """Record the file now at :meth:`path` as a stand-in (deterministic weights), with the
        model configuration it was written for when that differs from the real one."""
        standins = self._json("standins.json")
        digest = sha256_path(self.path(name))
        standins[name] = {"sha256": digest, "config": config} if config else digest
        _write_json_atomic(self.root / "standins.json", standins)
        return self.resolve(name)

    def check(self, name: str, fresh: bool = False) -> tuple[str, str]:
        """Status of weights ``name`` and a detail line.

        Status is one of ``missing``, ``standin``, ``verified`` (matches a published checksum:
        the publisher's sha256 or prefix, or the Hub's LFS sha256s recorded at download),
        ``pinned`` (matches the sha256 pinned at first download/import), ``present`` (not yet
        pinned: it is pinned on first use), ``checksum mismatch`` (the detail names the file).
        ``fresh`` re-hashes every byte instead of trusting ``hashes.json``.
        """
        spec, path = get_spec(name), self.path(name)
        if not path.exists():
            partial = path.with_name(path.name + ".incomplete")
            return "missing", ("partial download kept for resuming" if partial.exists() else "")
        digest = self._hash(path, fresh=fresh)
        entry = self._json("standins.json").get(name)
        if entry is not None:
            standin_sha = entry["sha256"] if isinstance(entry, dict) else entry
            if standin_sha == digest:
                return "standin", "deterministic stand-in weights"
            return "checksum mismatch", f"{path}: sha256 {digest} != the stand-in's {standin_sha}"
        manifest = self._json("manifests.json").get(name)
        if manifest and path.is_dir():
            hashes = self._json("hashes.json")
            for rel, expected in sorted(manifest.get("files", {}).items()):
                file = path / rel
                if not file.is_file():
                    return "checksum mismatch", f"{file}: missing (listed in the manifest)"
                if self._file_hash(file, hashes, fresh) != expected:
                    return "checksum mismatch", f"{file}: sha256 differs from {expected}"
        if spec.sha256 and digest != spec.sha256:
            return "checksum mismatch", f"{path}: sha256 {digest} != published {spec.sha256}"
        if spec.sha256_prefix:
            if not digest.startswith(spec.sha256_prefix):
                return "checksum mismatch", f"{path}: sha256 {digest[:16]}… != published prefix"
            return "verified", f"sha256 {digest[:16]}… (published prefix {spec.sha256_prefix})"
        if spec.sha256:
            return "verified", f"sha256 {digest[:16]}… (published)"
        pin = self._json("pins.json").get(name)
        if pin is None:
            return "present", "not pinned yet"
        if pin != digest:
            return "checksum mismatch", f"{path}: sha256 {digest} != pinned {pin}"
        if manifest and manifest.get("published"):
            source = manifest.get("source", "")
            return "verified", f"{len(manifest['files'])} files = {source} published sha256"
        return "pinned", f"sha256 {digest[:16]}… pinned"

    def status(self, fresh: bool = False) -> list[dict]:
        """One row per registry entry: name, status, detail, source, size, path, url, licence."""
        from avsync_bench.weights.registry import REGISTRY

        rows = []
        for spec in REGISTRY.values():
            status, detail = self.check(spec.name, fresh=fresh)
            source = spec.url if spec.hub is None else f"{spec.hub.repo_type} {spec.hub.repo_id}"
            rows.append(
                {
                    "name": spec.name,
                    "status": status,
                    "detail": detail,
                    "present": status != "missing",
                    "standin": status == "standin",
                    "source": f"{spec.source}: {source}",
                    "size": spec.size,
                    "path": str(self.path(spec.name)),
                    "url": spec.url,
                    "licence": spec.licence,
                    "used_by": spec.used_by,
                }
            )
        return rows
