"""Running the measurement stages over many videos: blocks, resume, local and Ray backends.

Videos are grouped into blocks (``block_size`` videos, in sorted order). Each finished block is
written as one Parquet file ``parts/block-<index>-<hash>.parquet``, the hash covering the
block's videos, the measurement settings and the networks' identity; a rerun skips every block
whose file exists, so a killed run resumes where it stopped and a run with other settings never
reuses stale blocks. Files are written to a temporary name and renamed.

Backends:
    * ``local``: the stage functions of :mod:`avsync_bench.curation.measure`, in this process.
    * ``ray``: the same functions as Ray Data stages (``ray.data``, ``map_batches``): decoding as
      CPU tasks, ImageBind and the AV-sync classifier as actor pools (one GPU per actor when the
      cluster has GPUs), on a local Ray instance (``ray.init()``) or an existing cluster
      (``ray_address``). Finished rows stream back to the driver, which writes each block when
      all its videos have arrived.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import avsync_bench  # noqa: F401
from avsync_bench.curation.measure import decode_stage, imagebind_stage, rows_stage, sync_stage
from avsync_bench.curation.networks import CurationNetworks, NetworkSpec
from avsync_bench.curation.settings import MEASUREMENT_NAMES, CurationError, CurationSettings
from avsync_bench.io.atomic import atomic_path

__all__ = [
    "VIDEO_EXTENSIONS",
    "Block",
    "list_videos",
    "plan_blocks",
    "measure_videos",
    "read_parts",
    "ray_session",
]

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")


def _schema():
    import pyarrow as pa

    floats = ["duration", "scene_start", "scene_end", "start", "end", *MEASUREMENT_NAMES]
    return pa.schema(
        [("video", pa.string()), ("class_folder", pa.string()), ("block", pa.int64())]
        + [("n_scenes", pa.int64()), ("n_short_scenes", pa.int64())]
        + [("window_index", pa.int64()), ("scene_index", pa.int64())]
        + [(name, pa.float64()) for name in floats]
        + [("phi_sync", pa.float64()), ("error", pa.string())]
    )


def default_text(folder: str) -> str:
    """A class folder's text when no mapping gives one: underscores to spaces, collapsed."""
    return " ".join(folder.replace("_", " ").split())


def list_videos(videos_dir: str | Path, class_mapping: dict[str, str] | None = None) -> list[dict]:
    """Every video under ``videos_dir/<class>/`` (sorted), as stage-1 items.

    Raises:
        CurationError: the folder is missing, holds videos outside class folders, or none.
    """
    root = Path(videos_dir)
    if not root.is_dir():
        raise CurationError(f"{root}: videos folder not found")
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
    )
    loose = [p for p in files if p.parent == root]
    if loose:
        raise CurationError(
            f"{root}: videos must sit in class folders (<class>/<file>); found {loose[0].name}"
            + (f" and {len(loose) - 1} more" if len(loose) > 1 else "")
        )
    if not files:
        raise CurationError(f"{root}: no video files ({', '.join(VIDEO_EXTENSIONS)})")
    mapping = class_mapping or {}
    items = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        folder = rel.split("/", 1)[0]
        text = mapping.get(folder, default_text(folder))
        items.append({"video": rel, "path": str(path.resolve()), "class_folder": folder})
        items[-1]["class_text"] = text
    return items


@dataclass
class Block:
    """A group of videos measured and written together (one Parquet file)."""

    index: int
    items: list[dict]
    name: str
    rows: list[dict] = field(default_factory=list)


def plan_blocks(items: list[dict], block_size: int, digest: str) -> list[Block]:
    """Split ``items`` into blocks; each file name hashes its videos and ``digest``."""
    if block_size < 1:
        raise CurationError("--block-size must be at least 1")
    blocks = []
    for index, begin in enumerate(range(0, len(items), block_size)):
        chunk = [dict(item, block=index) for item in items[begin : begin + block_size]]
        key = json.dumps([digest, [(i["video"], i["class_text"]) for i in chunk]])
        name = f"block-{index:05d}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.parquet"
        blocks.append(Block(index, chunk, name))
    return blocks


def _write_block(parts: Path, block: Block, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sorted(rows, key=lambda r: (r["video"], r["window_index"]))
    schema = _schema()
    table = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema)
    with atomic_path(parts / block.name) as tmp:
        pq.write_table(table, tmp)


def _local(pending: list[Block], spec: NetworkSpec, settings: CurationSettings, done, timings):
    networks = None
    for block in pending:
        t0 = time.perf_counter()
        works = decode_stage(block.items, settings)
        t1 = time.perf_counter()
        networks = networks or CurationNetworks(spec)
        t2 = time.perf_counter()
        imagebind_stage(works, networks, settings)
        t3 = time.perf_counter()
        sync_stage(works, networks, settings)
        t4 = time.perf_counter()
        for key, value in (("decode", t1 - t0), ("load", t2 - t1), ("imagebind", t3 - t2)):
            timings[key] = timings.get(key, 0.0) + value
        timings["sync"] = timings.get("sync", 0.0) + t4 - t3
        done(block, rows_stage(works))


class _StageActor:
    """A Ray Data actor holding one copy of the networks (``kind``: imagebind or sync)."""

    def __init__(self, spec: NetworkSpec, settings: CurationSettings, kind: str):
        self.networks = CurationNetworks(spec)
        self.settings, self.kind = settings, kind

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        works = [pickle.loads(p) for p in batch["payload"]]
        stage = imagebind_stage if self.kind == "imagebind" else sync_stage
        works = stage(works, self.networks, self.settings)
        return {"payload": np.array([pickle.dumps(w) for w in works], dtype=object)}


def _decode_batch(batch: dict, settings: CurationSettings) -> dict:
    import numpy as np

    works = decode_stage([pickle.loads(p) for p in batch["payload"]], settings)
    return {"payload": np.array([pickle.dumps(w) for w in works], dtype=object)}


def _rows_batch(batch: dict) -> dict:
    import numpy as np

    rows = [rows_stage([pickle.loads(p)]) for p in batch["payload"]]
    return {"payload": np.array([pickle.dumps(r) for r in rows], dtype=object)}


@contextlib.contextmanager
def ray_session(ray_address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Use the running Ray, else start one (local ``ray.init()``, or join ``ray_address``) and
    shut it down afterwards.

    Raises:
        CurationError: Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise CurationError("--backend ray needs Ray: pip install 'avsync-bench[curate]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(
            address=ray_address,
            num_cpus=num_cpus if ray_address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        yield
    finally:
        if started:
            ray.shutdown()


def _ray(pending, spec, settings, done, actors):
    import numpy as np
    import ray

    gpus = ray.cluster_resources().get("GPU", 0) > 0
    if gpus and spec.device == "cpu":
        spec = NetworkSpec(spec.weights_dir, spec.tiny, "cuda")
    resources = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 0.5}
    items = [{"payload": pickle.dumps(i)} for b in pending for i in b.items]
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 200)))
    ds = ds.map_batches(_decode_batch, fn_kwargs={"settings": settings}, batch_size=1, num_cpus=1)
    for kind in ("imagebind", "sync"):
        ds = ds.map_batches(
            _StageActor,
            fn_constructor_kwargs={"spec": spec, "settings": settings, "kind": kind},
            batch_size=4,
            concurrency=actors,
            **resources,
        )
    ds = ds.map_batches(_rows_batch, batch_size=1, num_cpus=0.25)
    by_index = {b.index: b for b in pending}
    left = {b.index: len(b.items) for b in pending}
    for batch in ds.iter_batches(batch_size=1, batch_format="numpy"):
        for payload in np.atleast_1d(batch["payload"]):
            rows = pickle.loads(payload)
            index = rows[0]["block"]
            by_index[index].rows.extend(rows)
            left[index] -= 1
            if left[index] == 0:
                done(by_index[index], by_index[index].rows)


def measure_videos(
    items: list[dict],
    parts: str | Path,
    spec: NetworkSpec,
    settings: CurationSettings,
    *,
    backend: str = "local",
    block_size: int = 8,
    ray_address: str | None = None,
    num_cpus: int | None = None,
    actors: int = 1,
    on_block: Callable[[Block], None] | None = None,
    networks_identity: dict | None = None,
) -> tuple[list[Path], dict]:
    """Measure every window of ``items``, resuming from the block files already in ``parts``.

    Args:
        items: from :func:`list_videos`.
        parts: folder of the block files.
        backend: ``local`` or ``ray``.
        on_block: called after each block file is written (progress; tests stop runs with it).

    Returns:
        (the block files of this plan in order, ``{"blocks", "skipped", "timings"}``).

    Raises:
        CurationError: unknown backend; Ray not installed for ``ray``.
    """
    if backend not in ("local", "ray"):
        raise CurationError(f"--backend must be local or ray, got {backend!r}")
    parts = Path(parts)
    parts.mkdir(parents=True, exist_ok=True)
    identity = networks_identity if networks_identity is not None else spec.identity()
    blocks = plan_blocks(items, block_size, settings.digest(identity))
    pending = [b for b in blocks if not (parts / b.name).is_file()]
    timings: dict[str, float] = {}

    def done(block: Block, rows: list[dict]) -> None:
        _write_block(parts, block, rows)
        if on_block is not None:
            on_block(block)

    start = time.perf_counter()
    if pending and backend == "local":
        _local(pending, spec, settings, done, timings)
    elif pending:
        with ray_session(ray_address, num_cpus):
            _ray(pending, spec, settings, done, actors)
    timings["total"] = time.perf_counter() - start
    info = {"blocks": len(blocks), "skipped": len(blocks) - len(pending), "timings": timings}
    return [parts / b.name for b in blocks], info


def read_parts(files: list[Path]):
    """The rows of block files as one DataFrame, sorted by video and window."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(f, schema=_schema()) for f in files]
    table = pa.concat_tables(tables) if tables else _schema().empty_table()
    frame = table.to_pandas()
    return frame.sort_values(["video", "window_index"], kind="stable").reset_index(drop=True)
