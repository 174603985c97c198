"""``calibrate`` and ``curate``: the two steps of AVSync-AC as Python functions (paper §3).

:func:`calibrate` measures every window of a curated reference dataset (e.g. AVSync15) and sets
each threshold at a stated percentile of the reference distribution. :func:`curate` measures a
folder of videos, applies the thresholds, merges kept windows, drops small classes and writes
the release layout, ``windows.parquet``, ``summary.json`` and ``summary.html``.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import avsync_bench  # noqa: F401
from avsync_bench import __version__
from avsync_bench.curation.decide import (
    decide_windows,
    filter_classes,
    merge_segments,
    reference_values,
    split_videos,
)
from avsync_bench.curation.networks import NetworkSpec
from avsync_bench.curation.pipeline import list_videos, measure_videos, ray_session, read_parts
from avsync_bench.curation.release import example_name, write_examples, write_release
from avsync_bench.curation.settings import (
    DEFAULT_PERCENTILES,
    CurationError,
    CurationSettings,
    Thresholds,
    write_json_atomic,
)
from avsync_bench.curation.summary import build_summary, render_html
from avsync_bench.io.atomic import atomic_path

__all__ = ["calibrate", "curate", "read_class_mapping"]


def read_class_mapping(path: Path | None) -> dict[str, str]:
    """``class_mapping.json`` ({folder: text}); empty when ``path`` is None or absent.

    Raises:
        CurationError: not a JSON object of strings.
    """
    if path is None or not Path(path).is_file():
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CurationError(f"{path}: not a class mapping JSON file ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise CurationError(f"{path}: expected an object mapping class folder to text")
    return data


def _write_parquet(frame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)


def calibrate(
    reference: str | Path,
    spec: NetworkSpec,
    out: str | Path,
    *,
    settings: CurationSettings | None = None,
    percentiles: dict[str, float] | None = None,
    work_dir: str | Path | None = None,
    **measure_options,
) -> tuple[Thresholds, dict]:
    """Measure a reference dataset (release layout) and write the thresholds file ``out``.

    The reference's videos are those listed in its ``train.txt``/``test.txt`` (all files under
    ``videos/`` when it has no list); its ``class_mapping.json`` gives the IT texts. Block files
    and the reference's ``windows.parquet`` go to ``work_dir`` (default ``<out>.calibration``),
    so an interrupted calibration resumes.

    Raises:
        CurationError: no videos, or a measurement without any finite reference value.
    """
    settings = settings or CurationSettings()
    percentiles = percentiles or dict(DEFAULT_PERCENTILES)
    root, out = Path(reference), Path(out)
    work = Path(work_dir) if work_dir else out.with_name(out.name + ".calibration")
    items = list_videos(root / "videos", read_class_mapping(root / "class_mapping.json"))
    listed = set()
    for split in ("train.txt", "test.txt"):
        if (root / split).is_file():
            listed |= {
                line.strip() for line in (root / split).read_text().splitlines() if line.strip()
            }
    if listed:
        items = [i for i in items if i["video"] in listed]
        if not items:
            raise CurationError(f"{root}: no listed video exists under videos/")
    identity = spec.identity()
    files, info = measure_videos(
        items, work / "parts", spec, settings, networks_identity=identity, **measure_options
    )
    frame = read_parts(files)
    _write_parquet(frame, work / "windows.parquet")
    windows = int((frame["window_index"] >= 0).sum())
    ref = {
        "path": str(root.resolve()),
        "videos": len(items),
        "windows": windows,
        "decode_errors": int(((frame["window_index"] < 0) & frame["error"].notna()).sum()),
        "package_version": __version__,
    }
    thresholds = Thresholds.from_reference(
        reference_values(frame), percentiles, ref, settings, identity
    )
    thresholds.save(out)
    return thresholds, info


def curate(
    videos_dir: str | Path,
    thresholds_path: str | Path,
    spec: NetworkSpec,
    out: str | Path,
    *,
    settings: CurationSettings | None = None,
    min_per_class: int = 100,
    test_fraction: float = 0.1,
    class_mapping: str | Path | None = None,
    **measure_options,
) -> dict:
    """Curate ``videos_dir`` (``<class>/<file>``) into ``out`` (see module docstring).

    Args:
        class_mapping: IT texts; default ``videos_dir/class_mapping.json``, else the one beside
            ``videos_dir`` when it is a release layout's ``videos/``, else folder names with
            underscores as spaces.
        measure_options: ``backend``, ``block_size``, ``ray_address``, ``num_cpus``,
            ``actors``, ``on_block`` (:func:`~.pipeline.measure_videos`).

    Returns:
        The summary (also written to ``out/summary.json``).

    Raises:
        CurationError: bad thresholds file (or measured with other settings/networks), bad
            folder, bad options.
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise CurationError(f"--test-fraction must be within [0, 1], got {test_fraction}")
    if min_per_class < 1:
        raise CurationError(f"--min-per-class must be at least 1, got {min_per_class}")
    settings = settings or CurationSettings()
    started = time.perf_counter()
    videos_dir, out = Path(videos_dir), Path(out)
    thresholds = Thresholds.load(thresholds_path)
    identity = spec.identity()
    thresholds.check_compatible(settings, identity, str(thresholds_path))
    if class_mapping is None:
        for candidate in (
            videos_dir / "class_mapping.json",
            videos_dir.parent / "class_mapping.json",
        ):
            if candidate.is_file() and (
                candidate.parent == videos_dir or videos_dir.name == "videos"
            ):
                class_mapping = candidate
                break
    mapping = read_class_mapping(Path(class_mapping) if class_mapping else None)
    items = list_videos(videos_dir, mapping)
    backend = measure_options.get("backend", "local")
    session = (
        ray_session(measure_options.get("ray_address"), measure_options.get("num_cpus"))
        if backend == "ray"
        else contextlib.nullcontext()
    )
    with session:
        summary = _curate(
            items, thresholds, spec, out, settings, identity, min_per_class, test_fraction,
            write_examples_ray if backend == "ray" else None, measure_options,
        )  # fmt: skip
    summary["timings_s"]["total"] = round(time.perf_counter() - started, 3)
    summary.update(
        {
            "format": "avsync-bench curation summary 1",
            "package_version": __version__,
            "videos_dir": str(videos_dir.resolve()),
            "class_mapping": str(class_mapping) if class_mapping else None,
            "thresholds_file": str(Path(thresholds_path).resolve()),
        }
    )
    frame = summary.pop("_frame")
    write_json_atomic(out / "summary.json", summary)
    (out / "summary.html").write_text(render_html(summary, frame, thresholds))
    return summary


def _curate(
    items, thresholds, spec, out, settings, identity, min_per_class, test_fraction, writer, options
) -> dict:
    files, info = measure_videos(
        items, out / "parts", spec, settings, networks_identity=identity, **options
    )
    frame = decide_windows(read_parts(files), thresholds)
    segments = merge_segments(frame)
    frame, examples, counts, dropped = filter_classes(frame, segments, min_per_class)
    split = split_videos(examples, test_fraction)
    frame["example"] = None
    for e in examples:
        frame.loc[e["rows"], "example"] = example_name(e["video"], e["start"], e["end"])
    t_release = time.perf_counter()
    sources = {i["video"]: i["path"] for i in items}
    texts = {i["class_folder"]: i["class_text"] for i in items}
    release = write_release(out, examples, split, sources, texts, writer)
    info["timings"]["release"] = time.perf_counter() - t_release
    _write_parquet(frame, out / "windows.parquet")
    summary = build_summary(frame, segments, examples, counts, dropped, split, release)
    summary.update(
        {
            "thresholds": thresholds.to_dict()["thresholds"],
            "percentiles": thresholds.percentiles,
            "thresholds_reference": thresholds.reference,
            "settings": settings.to_dict(),
            "networks": identity,
            "standin": bool(identity.get("standin")),
            "min_per_class": min_per_class,
            "test_fraction": test_fraction,
            "partial": bool(release["errors"]),
            "blocks": {"total": info["blocks"], "resumed": info["skipped"]},
            "timings_s": {k: round(v, 3) for k, v in info["timings"].items()},
        }
    )
    summary["_frame"] = frame
    return summary


def _write_batch(batch: dict) -> dict:
    import numpy as np

    jobs = [json.loads(j) for j in batch["job"]]
    errors = write_examples(jobs)
    return {
        "target": np.array([j["target"] for j in jobs], dtype=object),
        "error": np.array(["" if e is None else e for e in errors], dtype=object),
    }


def write_examples_ray(jobs: list[dict]) -> list[str | None]:
    """:func:`~.release.write_examples` as Ray Data tasks (one example per task, 1 CPU each)."""
    import ray

    if not jobs:
        return []
    ds = ray.data.from_items([{"job": json.dumps(j)} for j in jobs])
    ds = ds.map_batches(_write_batch, batch_size=1, num_cpus=1)
    found = {row["target"]: row["error"] or None for row in ds.iter_rows()}
    return [found[j["target"]] for j in jobs]
