"""The local weights folder: resolve, verify, download once, import, and mark stand-ins.

Folder: ``--weights-dir`` if given, else ``$AVSYNC_BENCH_HOME/weights`` (default
``~/.cache/avsync-bench/weights``). Beside the files:

* ``pins.json``: sha256 recorded at first download/import of files without a published checksum;
  later uses must match it.
* ``standins.json``: files written by ``avsync-bench weights make-standins`` (deterministic
  weights for tests and dry runs). A resolved stand-in is marked ``standin`` and skips the
  published checksum; results computed with it carry ``standin: true`` and the leaderboard
  refuses them.
* ``hashes.json``: a cache of file hashes keyed by (size, mtime), so a 4.5 GB file is hashed once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from avsync_bench.weights.registry import WeightSpec, get_spec

__all__ = [
    "WeightsError",
    "MissingWeightsError",
    "ResolvedWeight",
    "WeightStore",
    "default_home",
    "sha256_path",
]


class WeightsError(RuntimeError):
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
            if spec.direct:
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


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

    def _hash(self, path: Path) -> str:
        stat = path.stat()
        key = f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"
        hashes = self._json("hashes.json")
        if key not in hashes or path.is_dir():
            hashes[key] = sha256_path(path)
            if not path.is_dir():
                try:  # a memo only: a read-only weights folder just recomputes next time
                    _write_json_atomic(self.root / "hashes.json", hashes)
                except OSError:
                    pass
        return hashes[key]

    def _verify(self, spec: WeightSpec, path: Path, digest: str) -> None:
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
                f"({pins[spec.name]}); remove {self.root / 'pins.json'} entry to re-pin"
            )
        if spec.name not in pins and not (spec.sha256 or spec.sha256_prefix):
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

        Raises:
            MissingWeightsError: at least one is absent. WeightsError: a checksum mismatch.
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
            entry = entry if isinstance(entry, dict) else {"sha256": entry}
            standin = entry["sha256"] == digest
            if not standin:
                self._verify(spec, path, digest)
            config = entry.get("config") if standin else None
            resolved[name] = ResolvedWeight(name, path, digest, standin, config)
        return resolved

    def fetch(self, name: str, progress: bool = True) -> ResolvedWeight:
        """Download weights ``name`` once from the official URL (atomic, verified).

        Raises:
            WeightsError: the URL is not a direct download, or the download fails.
        """
        spec = get_spec(name)
        target = self.path(name)
        if target.exists():
            return self.resolve(name)
        if not spec.direct:
            raise WeightsError(
                f"{name} cannot be downloaded automatically from {spec.url}; download it there, "
                f"then run: avsync-bench weights import {name} PATH"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        try:
            with (
                urllib.request.urlopen(spec.url, timeout=60) as response,
                open(partial, "wb") as out,
            ):
                shutil.copyfileobj(response, out, length=1 << 20)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise WeightsError(
                f"cannot download {name} from {spec.url} ({exc}); offline machines: download it "
                f"elsewhere, then run: avsync-bench weights import {name} PATH"
            ) from exc
        try:
            self._verify(spec, partial, sha256_path(partial))
        except WeightsError:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)
        return self.resolve(name)

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
        self._verify(spec, source, sha256_path(source))
        target = self.path(name)
        self.root.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        if source.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(source, partial)
            shutil.rmtree(target, ignore_errors=True)
        else:
            shutil.copyfile(source, partial)
        os.replace(partial, target)
        standins = self._json("standins.json")
        if standins.pop(name, None) is not None:
            _write_json_atomic(self.root / "standins.json", standins)
        return self.resolve(name)

    def register_standin(self, name: str, config: dict | None = None) -> ResolvedWeight:
        """Record the file now at :meth:`path` as a stand-in (deterministic weights), with the
        model configuration it was written for when that differs from the real one."""
        standins = self._json("standins.json")
        digest = sha256_path(self.path(name))
        standins[name] = {"sha256": digest, "config": config} if config else digest
        _write_json_atomic(self.root / "standins.json", standins)
        return self.resolve(name)

    def status(self) -> list[dict]:
        """One row per registry entry: name, present, standin, path, url, licence."""
        from avsync_bench.weights.registry import REGISTRY

        standins = self._json("standins.json")
        return [
            {
                "name": spec.name,
                "present": self.path(spec.name).exists(),
                "standin": spec.name in standins,
                "path": str(self.path(spec.name)),
                "url": spec.url,
                "licence": spec.licence,
                "used_by": spec.used_by,
            }
            for spec in REGISTRY.values()
        ]
